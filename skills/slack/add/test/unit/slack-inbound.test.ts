// Slack message events as hako takes them (pure mapping), the settings that choose Socket
// Mode or the Events API, and the check of a request posted to /slack/events.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifySlackRequest } from '@slack/bolt';
import { mapEvent, plainText, threadOf } from '../../src/channels/slack/inbound.ts';
import { slackConfig, slackMode } from '../../src/channels/slack/config.ts';
import { RequestVerifier } from '../../src/channels/slack/verify.ts';
import { signSlackRequest } from '../support/slack-emulator.ts';

const bot = { userId: 'UBOT', botId: 'BBOT' };
const base = { type: 'message', channel: 'C0123', channel_type: 'channel', user: 'U1', text: 'hi', ts: '1700000000.000100', event_ts: '1700000000.000100' };

test('slack inbound - a channel message is not direct; a mention of the bot is, shown as @name', () => {
  assert.deepEqual(mapEvent(base, bot, 'hako'), { channel: 'C0123', chat: 'slack:C0123', user: 'U1', im: false, text: 'hi', direct: false, ref: '1700000000.000100', files: [] });
  const m = mapEvent({ ...base, text: '<@UBOT> what now?' }, bot, 'hako');
  assert.deepEqual([m?.text, m?.direct], ['@hako what now?', true]);
});

test('slack inbound - a direct message always engages', () => {
  assert.equal(mapEvent({ ...base, channel: 'D0456', channel_type: 'im' }, bot, 'hako')?.direct, true);
});

test('slack inbound - a thread reply keeps its thread in the ref; the reply goes to that thread', () => {
  const m = mapEvent({ ...base, thread_ts: '1699999999.000001' }, bot, 'hako')!;
  assert.equal(m.ref, '1700000000.000100/1699999999.000001');
  assert.equal(threadOf(m.ref), '1699999999.000001');
  assert.equal(threadOf('1700000000.000100'), '1700000000.000100', 'a top-level message starts a thread');
});

test('slack inbound - bot messages, the bot itself, edits, deletes and joins are not taken', () => {
  for (const e of [
    { ...base, bot_id: 'B9' }, { ...base, user: 'UBOT' }, { ...base, subtype: 'message_changed' },
    { ...base, subtype: 'message_deleted' }, { ...base, subtype: 'channel_join' }, { ...base, subtype: 'bot_message' },
    { ...base, text: '  ' }, { ...base, channel: '../x' }, { type: 'app_mention', ...{ channel: 'C1' } }, null, 'x',
  ]) assert.equal(mapEvent(e, bot, 'hako'), undefined, JSON.stringify(e));
});

test('slack inbound - files on a message are listed with their private download URL', () => {
  const m = mapEvent({ ...base, subtype: 'file_share', text: '', files: [{ id: 'F1', name: 'q3.pdf', mimetype: 'application/pdf', size: 12, url_private_download: 'https://files.slack.com/files-pri/T-F1/download/q3.pdf' }] }, bot, 'hako');
  assert.deepEqual(m?.files, [{ id: 'F1', name: 'q3.pdf', mime: 'application/pdf', size: 12, url: 'https://files.slack.com/files-pri/T-F1/download/q3.pdf' }]);
});

test('slack inbound - Slack syntax becomes readable text', () => {
  assert.equal(plainText('&lt;b&gt; &amp; <https://a.example|site> <#C1|general> <@U2> <!here>', 'UBOT', 'hako'), '<b> & site (https://a.example) #general @U2 @here');
});

test('slack config - Socket Mode with both tokens, the Events API with the signing secret, else off naming what is missing', () => {
  assert.equal(slackMode({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' }).kind, 'socket');
  assert.equal(slackMode({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' }).kind, 'events');
  assert.match((slackMode({}) as { reason: string }).reason, /^SLACK_BOT_TOKEN not set/);
  assert.match((slackMode({ SLACK_BOT_TOKEN: 'xoxb-1' }) as { reason: string }).reason, /SLACK_APP_TOKEN .* or SLACK_SIGNING_SECRET/);
});

test('slack config - wrong tokens, a plain-http API URL off loopback and bad owner ids are refused with the fix', () => {
  assert.throws(() => slackConfig({ SLACK_BOT_TOKEN: 'xoxp-1', SLACK_APP_TOKEN: 'xapp-1' }), /SLACK_BOT_TOKEN does not look like a bot token/);
  assert.throws(() => slackConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xoxb-2' }), /SLACK_APP_TOKEN .*connections:write/);
  assert.throws(() => slackConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', SLACK_API_URL: 'http://slack.example/api/' }), /must use https/);
  assert.throws(() => slackConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', SLACK_OWNER_IDS: 'U0AB1,alice' }), /SLACK_OWNER_IDS holds "alice"/);
  const c = slackConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', SLACK_API_URL: 'http://127.0.0.1:9/api', SLACK_OWNER_IDS: 'U0AB1, U0CD2' });
  assert.deepEqual([c.apiUrl, [...c.ownerIds]], ['http://127.0.0.1:9/api/', ['U0AB1', 'U0CD2']]);
});

test('slack verify - a signed request passes once; forged, stale, future and replayed ones are refused', () => {
  const secret = 'shh';
  let now = 1_700_000_000_000;
  const v = new RequestVerifier({ signingSecret: secret, verify: verifySlackRequest, now: () => now });
  const body = '{"type":"event_callback"}';
  const req = (headers: Record<string, string>, b = body) => ({ headers, body: Buffer.from(b) });
  const signed = signSlackRequest(secret, body, now / 1000);
  assert.deepEqual(v.check(req(signed)), { ok: true });
  assert.deepEqual(v.check(req(signed)), { ok: false, reason: 'replayed request (this signature was seen before)' });
  assert.deepEqual(v.check(req(signSlackRequest('guess', body, now / 1000))), { ok: false, reason: 'bad signature' });
  assert.deepEqual(v.check(req(signSlackRequest(secret, body, now / 1000 + 1), '{"type":"event_callback","x":1}')), { ok: false, reason: 'bad signature' });
  assert.match((v.check(req(signSlackRequest(secret, body, now / 1000 - 301))) as { reason: string }).reason, /^stale timestamp/);
  assert.match((v.check(req(signSlackRequest(secret, body, now / 1000 + 301))) as { reason: string }).reason, /^stale timestamp/);
  assert.match((v.check(req({})) as { reason: string }).reason, /^unsigned request/);
  now += 2000;
  assert.deepEqual(v.check(req(signSlackRequest(secret, body, now / 1000))), { ok: true }, 'a retry signed anew passes');
});
