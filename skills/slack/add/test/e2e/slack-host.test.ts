// A real hako host (real Docker, the real image, a scripted model) reached from Slack through
// the local emulator: in Socket Mode (the tokens in secrets.env, as the owner puts them),
// with the Events API over HTTP through hako's webhook listener, and killed with -9 in the
// middle of a turn.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, HakoProcess } from '../support/hako.ts';
import { startModelServer, type ModelServer, type RecordedRequest } from '../support/model-server.ts';
import { SlackEmulator, type MessageEvent, type SlackConversation, type SlackUser } from '../support/slack-emulator.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The host loads the channel as `hako skill add slack` makes it: through installed.ts, or while developed, by preloading register.ts. */
function loadSlack(): Record<string, string> {
  const installed = fs.readFileSync(path.join(ROOT, 'src/channels/installed.ts'), 'utf8');
  if (installed.includes("'./slack/register.ts'")) return {};
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(ROOT, 'src/channels/slack/register.ts')).href}`.trim() };
}

/** A host whose Slack credentials are in HAKO_CONFIG/secrets.env (mode 0600). */
async function hostWithSlack(emu: SlackEmulator, model: ModelServer, opts: { mode?: 'socket' | 'events'; owner: SlackUser; home?: string; configDir?: string; env?: Record<string, string> }): Promise<HakoProcess> {
  const configDir = opts.configDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
  const second = opts.mode === 'events' ? `SLACK_SIGNING_SECRET=${emu.signingSecret}` : `SLACK_APP_TOKEN=${emu.appToken}`;
  fs.writeFileSync(path.join(configDir, 'secrets.env'), `# the owner's channel secrets\nSLACK_BOT_TOKEN=${emu.botToken}\n${second}\n`, { mode: 0o600 });
  return HakoProcess.start({
    configDir, ...(opts.home ? { home: opts.home } : {}),
    env: {
      HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test',
      SLACK_API_URL: emu.apiUrl, SLACK_OWNER_IDS: opts.owner.id, HAKO_WEBHOOK_PORT: String(await freePort()), ...loadSlack(), ...opts.env,
    },
  });
}

async function cli(h: HakoProcess, args: string[]): Promise<string> {
  const r = await h.cli(args);
  assert.equal(r.code, 0, `hako ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function lastUserText(req: RecordedRequest): string {
  const user = (req.json?.messages ?? []).findLast((m: { role: string }) => m.role === 'user');
  return typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? '');
}

/** The bot's messages in the thread of `m` in `c`, once `count` are there. */
async function answer(emu: SlackEmulator, c: SlackConversation, m: MessageEvent, count = 1, h?: HakoProcess) {
  const thread = () => emu.postedIn(c.id).filter((p) => p.thread_ts === (m.thread_ts ?? m.ts));
  await emu.waitUntil(() => thread().length >= count, () => `${count} answers in the thread of ${m.ts} in ${c.id}; it has ${JSON.stringify(emu.postedIn(c.id).map((p) => [p.thread_ts, p.text.slice(0, 60)]))}${h ? `; host output:\n${h.output.slice(-3000)}` : ''}`, 120_000);
  return thread().slice(0, count);
}

describe('a real hako host reached from Slack over Socket Mode', { timeout: 600_000 }, () => {
  let emu: SlackEmulator;
  let model: ModelServer;
  let h: HakoProcess;
  let owner: SlackUser;
  let dm: SlackConversation;

  before(async () => {
    emu = await SlackEmulator.start();
    model = await startModelServer();
    owner = emu.user('Olivia Owner');
    dm = emu.dm(owner);
    h = await hostWithSlack(emu, model, { owner });
    assert.match(h.output, /chat channels: on: .*slack/);
    await cli(h, ['groups', 'set', 'main', '--chat', `slack:${dm.id}`]);
  });
  after(async () => {
    await h?.stop();
    h?.cleanup();
    await model?.close();
    await emu?.close();
  });

  test('slack host - a direct message is answered in its thread, in mrkdwn', async () => {
    model.script({ text: 'Your list: **milk** & [the shop](https://shop.example)' });
    const m = emu.message({ channel: dm, text: 'what is on my list today?' });
    const [reply] = await answer(emu, dm, m, 1, h);
    assert.equal(reply!.text, 'Your list: *milk* &amp; <https://shop.example|the shop>');
    const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('what is on my list today?'));
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.sender, 'Olivia');
  });

  test('slack host - a channel message without the mention is stored, not answered; the mention is answered in its thread with it as context', async () => {
    const general = emu.channel('general');
    await cli(h, ['groups', 'add', 'team', '--chat', `slack:${general.id}`]);
    const bob = emu.user('Bob');
    emu.message({ channel: general, user: bob, text: 'the launch moved to Friday' });
    const asked = emu.message({ channel: general, user: owner, text: 'when is the launch?', mention: true });
    await answer(emu, general, asked, 1, h);
    const sent = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(sent, /Bob: the launch moved to Friday/);
    assert.match(sent, /Olivia: @hako when is the launch\?/);
    await h.settled();
    assert.equal(emu.postedIn(general.id).length, 1, 'one answer in the channel');
    assert.deepEqual((await h.messages('team')).map((x) => [x.role, x.sender]).slice(0, 2), [['user', 'Bob'], ['user', 'Olivia']]);
  });

  test('slack host - an unknown channel is reported to main once, and nothing of it is stored or seen by the model', async () => {
    const random = emu.channel('random-people');
    const eve = emu.user('Eve');
    emu.message({ channel: random, user: eve, text: 'secret plan one', mention: true });
    emu.message({ channel: random, user: eve, text: 'secret plan two', mention: true });
    await answer(emu, dm, emu.message({ channel: dm, text: 'anything new?' }), 1, h);
    await h.settled();
    const notices = (await h.messages('main')).filter((x) => x.role === 'assistant' && x.text.includes(`slack:${random.id}`));
    assert.equal(notices.length, 1, `one notice: ${JSON.stringify(notices.map((x) => x.text))}`);
    assert.match(notices[0]!.text, /#random-people/);
    assert.ok(!model.requests.some((r) => r.body.includes('secret plan')), 'the model never saw the stranger');
    assert.equal(emu.postedIn(random.id).length, 0, 'nothing sent to the stranger');
    assert.equal(emu.postedIn(dm.id).filter((p) => p.text.includes(`slack:${random.id}`)).length, 1, 'the owner saw the notice in Slack, once');
  });

  test('slack host - a 9,000-character reply arrives as three messages in the thread, cut at paragraphs, nothing lost', async () => {
    const paragraph = (i: number) => `Paragraph ${i}: ${'All work and no play makes a long reply. '.repeat(11).trim()}`;
    const long = Array.from({ length: 20 }, (_, i) => paragraph(i)).join('\n\n').slice(0, 9000).trim();
    model.script({ text: long });
    const m = emu.message({ channel: dm, text: 'write me a long answer' });
    const pieces = await answer(emu, dm, m, 3, h);
    for (const p of pieces) assert.ok(p.text.length <= 4000);
    assert.ok(pieces.slice(1).every((p) => /^Paragraph \d+:/.test(p.text)), 'cut at paragraphs');
    assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
    await h.settled();
    assert.equal(emu.postedIn(dm.id).filter((p) => p.thread_ts === m.ts).length, 3, 'nothing more');
  });

  test('slack host - a file on a message lands in the group workspace, where the agent reads it', async () => {
    const data = Buffer.from('deal,amount\nacme,1200\n');
    model.script(
      (req) => {
        const at = /\[attached: (inbox\/[^\s]+) /.exec(lastUserText(req));
        return at ? { toolCalls: [{ name: 'bash', args: { command: `wc -c < /workspace/group/${at[1]}` } }] } : { text: `no file in ${lastUserText(req)}` };
      },
      (req) => ({ text: `the file has ${String(req.json.messages.at(-1).content).match(/\d+/)?.[0]} bytes` }),
    );
    const m = emu.message({ channel: dm, text: 'how big is this?', files: [emu.file('deals.csv', data, 'text/csv')] });
    const [reply] = await answer(emu, dm, m, 1, h);
    assert.equal(reply!.text, `the file has ${data.length} bytes`);
    const inbox = path.join(h.home, 'groups', 'main', 'inbox');
    const files = fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.deepEqual(files.map((f) => fs.readFileSync(path.join(f.parentPath, f.name)).toString()), [data.toString()]);
  });

  test('slack host - a 429 from Slack is waited out and the reply arrives once', async () => {
    emu.rateLimit('chat.postMessage', { calls: 2, retryAfter: 1 });
    const m = emu.message({ channel: dm, text: 'are you rate limited?' });
    const [reply] = await answer(emu, dm, m, 1, h);
    assert.match(reply!.text, /are you rate limited\?/);
    await h.settled();
    assert.equal(emu.postedIn(dm.id).filter((p) => p.text.includes('are you rate limited?')).length, 1);
  });

  test('slack host - the tokens are in no log line, no database and no container', async () => {
    const logs = h.output + fs.readFileSync(path.join(h.home, 'logs', 'hako.log'), 'utf8');
    const db = fs.readFileSync(path.join(h.home, 'hako.db'));
    for (const secret of [emu.botToken, emu.appToken]) {
      assert.ok(!logs.includes(secret), 'not logged');
      assert.ok(!db.includes(secret), 'not in the database');
    }
    const { execFileSync } = await import('node:child_process');
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=dev.hako.home=${h.home}`]).toString().split('\n').filter(Boolean);
    for (const id of ids) assert.ok(!execFileSync('docker', ['inspect', id]).toString().includes(emu.botToken), `not in container ${id}`);
  });
});

describe('a real hako host reached from Slack over the Events API', { timeout: 600_000 }, () => {
  let emu: SlackEmulator;
  let model: ModelServer;
  let h: HakoProcess;
  let owner: SlackUser;
  let dm: SlackConversation;

  before(async () => {
    emu = await SlackEmulator.start();
    model = await startModelServer();
    owner = emu.user('Olivia Owner');
    dm = emu.dm(owner);
    const port = await freePort();
    h = await hostWithSlack(emu, model, { owner, mode: 'events', env: { HAKO_WEBHOOK_PORT: String(port) } });
    emu.deliverOverHttp(`http://127.0.0.1:${port}/slack/events`);
    await cli(h, ['groups', 'set', 'main', '--chat', `slack:${dm.id}`]);
  });
  after(async () => {
    await h?.stop();
    h?.cleanup();
    await model?.close();
    await emu?.close();
  });

  test('slack host events - the URL check is answered and a signed direct message is answered in its thread', async () => {
    const check = await emu.postSigned({ token: 'x', challenge: 'ch4ll3nge', type: 'url_verification' });
    assert.deepEqual([check.status, JSON.parse(check.text)], [200, { challenge: 'ch4ll3nge' }]);
    const m = emu.message({ channel: dm, text: 'hello over http' });
    const [reply] = await answer(emu, dm, m, 1, h);
    assert.match(reply!.text, /hello over http/);
  });

  test('slack host events - a forged and a replayed request are refused 401, nothing is stored, and hako audit shows webhook.refused', async () => {
    const event = { token: 'x', team_id: 'T1', api_app_id: 'A1', type: 'event_callback', event_id: 'EvFORGED', event_time: 1, event: { type: 'message', channel: dm.id, channel_type: 'im', user: owner.id, text: 'forged: wire the money', ts: '1700000001.000001' } };
    const forged = await emu.postSigned(event, { secret: 'not-the-secret' });
    const genuine = { ...event, event_id: 'EvGENUINE', event: { ...event.event, text: 'genuine once', ts: '1700000001.000002' } };
    const raw = JSON.stringify(genuine);
    const { signSlackRequest } = await import('../support/slack-emulator.ts');
    const headers = { 'content-type': 'application/json', ...signSlackRequest(emu.signingSecret, raw, Math.floor(Date.now() / 1000)) };
    assert.equal((await emu.post(raw, headers)).status, 200);
    const replayed = await emu.post(raw, headers);
    const stale = await emu.postSigned({ ...event, event_id: 'EvSTALE' }, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    assert.deepEqual([forged.status, replayed.status, stale.status], [401, 401, 401]);
    await h.settled();
    const texts = (await h.messages('main')).map((x) => x.text).join('\n');
    assert.ok(!texts.includes('wire the money'), 'nothing of the forged request stored');
    assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text === 'genuine once').length, 1, 'the genuine one stored once');
    const refused = JSON.parse(await cli(h, ['audit', '--kind', 'webhook.refused', '--json'])) as { data: { channel: string; reason: string } }[];
    assert.deepEqual(refused.map((r) => [r.data.channel, r.data.reason]), [
      ['slack', 'bad signature'],
      ['slack', 'replayed request (this signature was seen before)'],
      ['slack', 'stale timestamp (more than 5 minutes off): a replayed or delayed request'],
    ]);
    assert.ok(!JSON.stringify(refused).includes(emu.signingSecret));
  });

  test('slack host events - Slack\'s retry of an event is stored once', async () => {
    const body = { token: 'x', team_id: 'T1', api_app_id: 'A1', type: 'event_callback', event_id: 'EvRETRIED', event_time: 1, event: { type: 'message', channel: dm.id, channel_type: 'im', user: owner.id, text: 'retried message', ts: '1700000002.000001' } };
    assert.equal((await emu.postSigned(body)).status, 200);
    assert.equal((await emu.postSigned(body, { retryNum: 1, timestamp: Math.floor(Date.now() / 1000) + 1 })).status, 200);
    await h.settled();
    assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text === 'retried message').length, 1);
  });

  test('slack host events - a revoked bot token is one clear line in the log and in hako status; the host keeps serving', async () => {
    emu.revoke('token_revoked');
    emu.message({ channel: dm, text: 'are you there?' });
    const logged = await h.waitForLog((e) => e.msg.startsWith('slack: Slack refused the bot token'), 60_000);
    assert.match(logged.msg, /\(token_revoked\).*SLACK_BOT_TOKEN in ~\/\.config\/hako\/secrets\.env/);
    assert.match(await cli(h, ['status']), /slack — PROBLEM: slack: Slack refused the bot token \(token_revoked\)/);
    const id = await h.post('main', 'still there?');
    await h.waitForReplies('main', id);
    assert.equal(h.logEvents().filter((e) => e.msg.startsWith('slack: Slack refused')).length, 1, 'logged once');
    assert.equal(h.child.exitCode, null, 'the host runs on');
  });
});

describe('kill -9 of the host during a Slack turn', { timeout: 600_000 }, () => {
  test('slack host - killed with the batch handed to the agent: after a restart the message is answered once, in its thread', async (t) => {
    const emu = await SlackEmulator.start();
    const model = await startModelServer();
    t.after(async () => { await model.close(); await emu.close(); });
    const owner = emu.user('Olivia');
    const dm = emu.dm(owner);
    const first = await hostWithSlack(emu, model, { owner });
    t.after(() => first.cleanup());
    await cli(first, ['groups', 'set', 'main', '--chat', `slack:${dm.id}`]);
    await first.stop();
    const crashing = await hostWithSlack(emu, model, { owner, home: first.home, configDir: first.configDir, env: { HAKO_FAILPOINT: 'batch-sent' } });
    const m = emu.message({ channel: dm, text: 'survive the crash' });
    const end = await crashing.exited();
    assert.equal(end.signal, 'SIGKILL', 'the host died in the turn');
    const h = await hostWithSlack(emu, model, { owner, home: first.home, configDir: first.configDir });
    t.after(() => h.stop());
    const [reply] = await answer(emu, dm, m, 1, h);
    assert.match(reply!.text, /survive the crash/);
    await h.settled();
    assert.equal(emu.postedIn(dm.id).filter((p) => p.text.includes('survive the crash')).length, 1, 'answered once');
    assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('survive the crash')).length, 1, 'stored once');
  });
});
