// The Slack channel with bolt's real clients against the local Slack emulator
// (test/support/slack-emulator.ts) over real HTTP and WebSocket: the shared channel
// conformance suite, then the channel's own behaviour with a recording context, in Socket
// Mode and with the Events API over HTTP. A real host reached from Slack: slack-host.test.ts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError, type ChannelContext, type ChatInbound, type ReceiveResult, type WebhookRequest } from '../../src/core/channel.ts';
import type { Group, StoredMessage } from '../../src/core/store-contract.ts';
import type { Logger } from '../../src/core/log.ts';
import { groupPaths } from '../../src/core/paths.ts';
import '../../src/channels/slack/register.ts';
import { installedChannels } from '../../src/channels/registry.ts';
import type { SlackChannel } from '../../src/channels/slack/channel.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { SlackEmulator, signSlackRequest, slackShows } from '../support/slack-emulator.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { lines.push(`${level} ${msg} ${JSON.stringify(fields)}`); };
  return { lines, debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

async function slackModule() {
  const m = (await installedChannels()).find((x) => x.name === 'slack');
  assert.ok(m, 'the slack module registered itself');
  return m;
}

type Mode = 'socket' | 'events';

async function makeChannel(emu: SlackEmulator, opts: { home?: string; env?: Record<string, string>; log?: Logger; mode?: Mode } = {}): Promise<SlackChannel> {
  const m = await slackModule();
  const credentials = opts.mode === 'events' ? { SLACK_SIGNING_SECRET: emu.signingSecret } : { SLACK_APP_TOKEN: emu.appToken };
  const env = { SLACK_BOT_TOKEN: emu.botToken, ...credentials, SLACK_API_URL: emu.apiUrl, ...opts.env };
  return await m.create({ env, home: opts.home ?? os.tmpdir(), assistantName: 'hako', log: opts.log ?? recordingLog() }) as SlackChannel;
}

/** A core stand-in: chats bound to groups (real folders under `home`), every received message kept. */
function chatContext(home: string, bindings: Record<string, string> = {}, groups: Record<string, Partial<Group>> = {}) {
  const received: ChatInbound[] = [];
  const refusals: { channel: string; reason: string }[] = [];
  const waiters: (() => void)[] = [];
  let failNext = 0;
  const group = (name: string): Group => ({ name, isMain: false, trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '', ...groups[name] });
  for (const g of new Set(Object.values(bindings))) fs.mkdirSync(groupPaths(home, g).folder, { recursive: true });
  const ctx: ChannelContext & { received: ChatInbound[]; refusals: typeof refusals; nextReceived(n: number): Promise<ChatInbound[]>; failStores(n: number): void } = {
    received, refusals,
    async nextReceived(n: number) {
      while (received.length < n) await new Promise<void>((r) => waiters.push(r));
      return received;
    },
    failStores(n: number) { failNext = n; },
    accept: async () => { throw new Error('a chat channel uses receive'); },
    receive: async (m): Promise<ReceiveResult> => {
      if (failNext > 0) {
        failNext--;
        throw new InputError(507, 'the disk is full');
      }
      const duplicate = received.some((r) => r.chat === m.chat && r.ref === m.ref);
      if (!duplicate) received.push(m);
      for (const w of waiters.splice(0)) w();
      const g = bindings[m.chat];
      if (!g) return { kind: 'unbound', told: received.filter((r) => r.chat === m.chat).length === 1 };
      const message: StoredMessage = { id: `m${received.length}`, group: g, role: 'user', sender: m.sender, text: m.text, ts: '', state: 'pending', batchId: null, attempts: 0, chat: m.chat };
      return { kind: 'stored', message, engaged: true, ...(duplicate ? { duplicate } : {}) };
    },
    groupFor: (chat) => bindings[chat],
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: (channel, reason) => { refusals.push({ channel, reason }); },
    getGroup: (name) => (Object.values(bindings).includes(name) ? group(name) : undefined),
    listGroups: () => [],
  };
  return ctx;
}

function tmpHome(t: { after: (fn: () => void) => void }): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-slack-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

// --- the conformance suite ---------------------------------------------------------------

channelConformance('slack', async () => {
  const emu = await SlackEmulator.start();
  const dm = emu.dm(emu.user('Conformance'));
  return {
    channel: await makeChannel(emu),
    address: dm.id,
    limit: 4000,
    sent: async () => emu.postedIn(dm.id).map((p) => slackShows(p.text)),
    refuseNext: () => emu.refuseNext('chat.postMessage', 'channel_not_found'),
    // Slack renders mrkdwn: emphasis markers are not shown.
    shows: (text) => text.replace(/(?<![\p{L}\p{N}*])\*([^*\s][^*]*?)\*/gu, '$1').replace(/(?<![\p{L}\p{N}_])_([^_\s][^_]*?)_(?![\p{L}\p{N}])/gu, '$1'),
    close: () => emu.close(),
  };
});

// --- Socket Mode -------------------------------------------------------------------------

describe('slack channel in Socket Mode against the emulator', { timeout: 60_000 }, () => {
  let emu: SlackEmulator;
  before(async () => { emu = await SlackEmulator.start(); });
  after(() => emu.close());

  async function started(t: { after: (fn: () => Promise<void>) => void }, ctx: ChannelContext, opts: Parameters<typeof makeChannel>[1] = {}): Promise<SlackChannel> {
    const channel = await makeChannel(emu, opts);
    await channel.start(ctx);
    t.after(() => channel.stop());
    return channel;
  }

  test('slack - a direct message arrives as direct, from the user by name, trusted only when SLACK_OWNER_IDS names them', async (t) => {
    const owner = emu.user('Olivia Owner');
    const ctx = chatContext(tmpHome(t));
    await started(t, ctx, { env: { SLACK_OWNER_IDS: owner.id } });
    const dm = emu.dm(owner);
    const m = emu.message({ channel: dm, text: 'what is on my list &amp; why?' });
    const stranger = emu.user('Sam Stranger');
    emu.message({ channel: emu.dm(stranger), text: 'hello' });
    const [got, other] = await ctx.nextReceived(2);
    assert.deepEqual(got, { chat: `slack:${dm.id}`, chatTitle: 'direct messages with Olivia', sender: 'Olivia', senderId: `slack:${owner.id}`, trusted: true, text: 'what is on my list & why?', direct: true, ref: m.ts });
    assert.deepEqual([other!.senderId, other!.trusted, other!.direct], [`slack:${stranger.id}`, false, true]);
  });

  test('slack - in a channel only the mention is direct; the reply goes into the thread of the message, a thread reply stays in its thread', async (t) => {
    const general = emu.channel('general');
    const ctx = chatContext(tmpHome(t), { [`slack:${general.id}`]: 'team' });
    const channel = await started(t, ctx);
    const bob = emu.user('Bob');
    emu.message({ channel: general, user: bob, text: 'the launch moved to Friday' });
    const asked = emu.message({ channel: general, user: bob, text: 'when is the launch?', mention: true });
    const inThread = emu.message({ channel: general, user: bob, text: 'and the venue?', thread_ts: asked.ts, mention: true });
    const got = await ctx.nextReceived(3);
    assert.deepEqual(got.map((r) => [r.text, r.direct]), [['the launch moved to Friday', false], ['@hako when is the launch?', true], ['@hako and the venue?', true]]);
    await channel.send({ id: 'r1', group: 'team', address: general.id, text: 'Friday.', replyTo: got[1]!.ref! });
    await channel.send({ id: 'r2', group: 'team', address: general.id, text: 'The hall.', replyTo: got[2]!.ref! });
    assert.deepEqual(emu.postedIn(general.id).map((p) => [p.text, p.thread_ts]), [['Friday.', asked.ts], ['The hall.', asked.ts]]);
    assert.equal(inThread.thread_ts, asked.ts);
  });

  test('slack - bot messages, the bot\'s own messages, edits and deletes never arrive', async (t) => {
    const ctx = chatContext(tmpHome(t));
    await started(t, ctx);
    const c = emu.channel('noise');
    const u = emu.user('Una');
    emu.message({ channel: c, user: u, text: 'from a bot', extra: { bot_id: 'B0OTHER' } });
    emu.event({ type: 'message', channel: c.id, channel_type: 'channel', user: emu.botUserId, text: 'my own', ts: '1.000001' });
    emu.event({ type: 'message', subtype: 'message_changed', channel: c.id, channel_type: 'channel', message: { user: u.id, text: 'edited' }, ts: '1.000002' });
    emu.event({ type: 'message', subtype: 'message_deleted', channel: c.id, channel_type: 'channel', deleted_ts: '1.000001', ts: '1.000003' });
    emu.message({ channel: c, user: u, text: 'a person' });
    const got = await ctx.nextReceived(1);
    await emu.waitUntil(() => emu.acked.length >= 5, () => 'five acks');
    assert.deepEqual(got.map((r) => r.text), ['a person']);
  });

  test('slack - a file on a message from the owner in a bound channel is downloaded with the bot token and saved to the inbox, in order with the next message', async (t) => {
    const home = tmpHome(t);
    const owner = emu.user('Erin');
    const c = emu.channel('files');
    const ctx = chatContext(home, { [`slack:${c.id}`]: 'erin' });
    await started(t, ctx, { home, env: { SLACK_OWNER_IDS: owner.id } });
    const data = Buffer.from('%PDF-1.4 the quarterly report');
    emu.message({ channel: c, user: owner, text: 'the report', files: [emu.file('../../Q3 report.pdf', data, 'application/pdf')] });
    emu.message({ channel: c, user: owner, text: 'read it please' });
    const [got, next] = await ctx.nextReceived(2);
    assert.equal(next!.text, 'read it please', 'a later message is stored after the one whose file was downloading');
    const at = /^\[attached: (inbox\/\d{4}-\d\d-\d\d\/Q3_report\.pdf) \(application\/pdf, 29 bytes\)\]$/m.exec(got!.text);
    assert.ok(at, got!.text);
    assert.match(got!.text, /^the report\n/);
    assert.deepEqual(fs.readFileSync(path.join(groupPaths(home, 'erin').folder, at[1]!)), data);
  });

  test('slack - a stranger\'s file, a file in an unbound chat and a file over HAKO_ATTACHMENT_MAX_BYTES are never downloaded', async (t) => {
    const home = tmpHome(t);
    const owner = emu.user('Fay');
    const c = emu.channel('guarded');
    const ctx = chatContext(home, { [`slack:${c.id}`]: 'fay' });
    await started(t, ctx, { home, env: { SLACK_OWNER_IDS: owner.id, HAKO_ATTACHMENT_MAX_BYTES: '1000' } });
    const before = emu.callsOf('files-pri').length;
    emu.message({ channel: c, user: emu.user('Mallory'), files: [emu.file('x.sh', Buffer.from('payload'))] });
    emu.message({ channel: emu.channel('elsewhere'), user: owner, files: [emu.file('y.sh', Buffer.from('payload'))] });
    emu.message({ channel: c, user: owner, text: 'big one', files: [emu.file('big.bin', Buffer.alloc(5000))] });
    const got = await ctx.nextReceived(3);
    assert.deepEqual(got.map((r) => r.text).sort(), [
      '[file "x.sh": not saved: the sender may not engage this group]',
      '[file "y.sh": not saved]',
      'big one\n[file "big.bin": not saved: over the 1000 bytes limit (HAKO_ATTACHMENT_MAX_BYTES)]',
    ].sort());
    assert.equal(emu.callsOf('files-pri').length, before, 'no download was tried');
    assert.equal(fs.existsSync(path.join(groupPaths(home, 'fay').folder, 'inbox')), false);
  });

  test('slack - a file the agent sends is uploaded (getUploadURLExternal, upload, completeUploadExternal) into the thread after the text', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const c = emu.channel('out');
    const dir = tmpHome(t);
    fs.writeFileSync(path.join(dir, 'q3.csv'), 'deal,amount\n');
    await channel.send({ id: 'f1', group: 'g', address: c.id, text: 'Here is **Q3**.', replyTo: '1700000000.000100', file: { path: path.join(dir, 'q3.csv'), name: 'q3.csv' } });
    const [text, file] = emu.postedIn(c.id);
    assert.deepEqual([text!.text, text!.thread_ts], ['Here is *Q3*.', '1700000000.000100']);
    assert.deepEqual([file!.file!.name, file!.file!.data.toString(), file!.thread_ts], ['q3.csv', 'deal,amount\n', '1700000000.000100']);
    assert.deepEqual(emu.calls.map((x) => x.method).filter((x) => x.startsWith('files.')), ['files.getUploadURLExternal', 'files.completeUploadExternal']);
  });

  test('slack - a 429 with Retry-After on a send is waited out, and the message arrives once', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const c = emu.channel('busy');
    emu.rateLimit('chat.postMessage', { calls: 1, retryAfter: 1 });
    await channel.send({ id: 'rl', group: 'g', address: c.id, text: 'after the wait' });
    assert.deepEqual(emu.postedIn(c.id).map((p) => p.text), ['after the wait']);
    assert.deepEqual(emu.callsOf('chat.postMessage').filter((x) => x.params.channel === c.id).map((x) => x.status), [429, 200]);
  });

  test('slack - an event that cannot be stored is not acknowledged; it comes again on the next connection and is stored once', async (t) => {
    const ctx = chatContext(tmpHome(t));
    await started(t, ctx);
    await emu.waitUntil(() => emu.connected === 1, () => 'a connection');
    ctx.failStores(1);
    const acked = emu.acked.length;
    const m = emu.message({ channel: emu.dm(emu.user('Gus')), text: 'do not lose me' });
    await emu.waitUntil(() => emu.callsOf('users.info').length > 0 && ctx.received.length === 0, () => 'the failed store');
    const connections = emu.connections;
    emu.refreshConnections();
    const [got] = await ctx.nextReceived(1);
    assert.equal(got!.ref, m.ts);
    await emu.waitUntil(() => emu.acked.length === acked + 1, () => 'one ack');
    assert.ok(emu.connections > connections, 'reconnected after the refresh');
    assert.equal(ctx.received.length, 1);
  });

  test('slack - after a dropped connection the channel reconnects and messages arrive', async (t) => {
    const log = recordingLog();
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx, { log });
    await emu.waitUntil(() => emu.connected === 1, () => 'a connection');
    const connections = emu.connections;
    emu.dropConnections();
    emu.message({ channel: emu.dm(emu.user('Hal')), text: 'still there?' });
    const [got] = await ctx.nextReceived(1);
    assert.equal(got!.text, 'still there?');
    assert.ok(emu.connections > connections);
    assert.ok(log.lines.some((l) => l.includes('reconnecting')));
    assert.equal(channel.problem(), undefined);
  });

  test('slack - a revoked token stops the socket with one clear line, logged once; sends fail with it; no reconnect loop; no token in the log', async (t) => {
    const own = await SlackEmulator.start();
    t.after(() => own.close());
    const log = recordingLog();
    const channel = await makeChannel(own, { log });
    await channel.start(chatContext(tmpHome(t)));
    t.after(() => channel.stop());
    await own.waitUntil(() => own.connected === 1, () => 'a connection');
    own.revoke('token_revoked');
    await until(() => channel.problem() !== undefined);
    const line = channel.problem()!;
    assert.match(line, /^slack: Slack refused the app-level token \(token_revoked\): it was revoked or is wrong; put a current one in SLACK_APP_TOKEN in ~\/\.config\/hako\/secrets\.env and restart hako$/);
    const opens = own.callsOf('apps.connections.open').length;
    const c = own.channel('x');
    await assert.rejects(channel.send({ id: 'x', group: 'g', address: c.id, text: 'hi' }), (err: Error) => err.message === line);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(own.callsOf('apps.connections.open').length, opens, 'no reconnect loop');
    assert.equal(log.lines.filter((l) => l.includes('Slack refused')).length, 1, 'logged once');
    for (const secret of [own.botToken, own.appToken]) assert.ok(!log.lines.some((l) => l.includes(secret)), 'no token in the log');
  });

  test('slack - a bot token refused at start makes start reject with the clear line, and status shows it', async () => {
    const own = await SlackEmulator.start();
    try {
      own.revoke('invalid_auth');
      const channel = await makeChannel(own);
      await assert.rejects(channel.start(chatContext(os.tmpdir())), /^Error: slack: Slack refused the bot token \(invalid_auth\).*SLACK_BOT_TOKEN/);
      assert.match(channel.problem()!, /SLACK_BOT_TOKEN/);
      await channel.stop();
    } finally {
      await own.close();
    }
  });

  test('slack - check says nothing when the token works, the clear line when refused, the server when unreachable', async () => {
    const m = await slackModule();
    const deps = (env: Record<string, string>) => ({ env, home: os.tmpdir(), assistantName: 'hako', log: recordingLog() });
    const env = { SLACK_BOT_TOKEN: emu.botToken, SLACK_APP_TOKEN: emu.appToken, SLACK_API_URL: emu.apiUrl };
    assert.equal(await m.check!(deps(env)), undefined);
    const own = await SlackEmulator.start();
    own.revoke('account_inactive');
    const ownEnv = { SLACK_BOT_TOKEN: own.botToken, SLACK_APP_TOKEN: own.appToken, SLACK_API_URL: own.apiUrl };
    assert.match((await m.check!(deps(ownEnv)))!, /^slack: Slack refused the bot token \(account_inactive\)/);
    await own.close();
    assert.match((await m.check!(deps(ownEnv)))!, /^slack: cannot reach the Web API at http:\/\/127\.0\.0\.1:\d+\/api\/ .*SLACK_API_URL$/);
    assert.match((await m.check!(deps({})))!, /SLACK_BOT_TOKEN not set/);
  });

  test('slack - the module names its settings and secrets, says which are missing, and importing it loads no bolt', async () => {
    const m = await slackModule();
    assert.deepEqual(m.secrets, ['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET']);
    assert.match(m.off!({ SLACK_BOT_TOKEN: 'xoxb-1' })!, /SLACK_APP_TOKEN \(Socket Mode\) or SLACK_SIGNING_SECRET/);
    assert.equal(m.off!({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' }), undefined);
    const probe = `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(path.join(ROOT, 'src/channels/slack/register.ts'))});
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/@slack/'));
      console.log(JSON.stringify(loaded));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    assert.equal(await new Promise((r) => child.once('close', r)), 0);
    assert.deepEqual(JSON.parse(out), []);
  });
});

// --- the Events API over HTTP ----------------------------------------------------------

describe('slack channel with the Events API over HTTP', { timeout: 60_000 }, () => {
  let emu: SlackEmulator;
  before(async () => { emu = await SlackEmulator.start(); });
  after(() => emu.close());

  /** Calls the channel's webhook as the listener would, with a request the emulator signed (or not). */
  function request(body: string, headers: Record<string, string>): WebhookRequest {
    return { method: 'POST', path: '/events', query: '', headers, body: Buffer.from(body), remote: '127.0.0.1' };
  }
  const signed = (body: unknown, opts: { secret?: string; at?: number; retry?: number } = {}) => {
    const raw = JSON.stringify(body);
    const headers = { 'content-type': 'application/json', ...signSlackRequest(opts.secret ?? emu.signingSecret, raw, opts.at ?? Math.floor(Date.now() / 1000)), ...(opts.retry ? { 'x-slack-retry-num': String(opts.retry) } : {}) };
    return request(raw, headers);
  };
  const callback = (event: Record<string, unknown>, id = `Ev${Math.random().toString(36).slice(2)}`) => ({ token: 'x', team_id: 'T1', api_app_id: 'A1', type: 'event_callback', event_id: id, event_time: 1, event });

  test('slack events - without a signing secret or app token the module stays off; with the secret it takes webhooks, Socket Mode does not', async () => {
    const socket = await makeChannel(emu);
    assert.equal(socket.webhook, undefined, 'Socket Mode opens no webhook port');
    const http = await makeChannel(emu, { mode: 'events' });
    assert.equal(typeof http.webhook, 'function');
    assert.equal((await http.webhook!(signed({ type: 'url_verification', challenge: 'c' }))).status, 503, 'not running yet');
  });

  test('slack events - the url_verification challenge is answered; a signed event is stored before the 200', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await makeChannel(emu, { mode: 'events' });
    await channel.start(ctx);
    t.after(() => channel.stop());
    const challenge = await channel.webhook!(signed({ token: 'x', challenge: 'abc123', type: 'url_verification' }));
    assert.deepEqual([challenge.status, JSON.parse(challenge.body!)], [200, { challenge: 'abc123' }]);
    const dm = emu.dm(emu.user('Ivy'));
    const reply = await channel.webhook!(signed(callback({ type: 'message', channel: dm.id, channel_type: 'im', user: dm.user, text: 'hi', ts: '1700000000.000001' })));
    assert.equal(reply.status, 200);
    assert.deepEqual(ctx.received.map((r) => [r.chat, r.text, r.direct]), [[`slack:${dm.id}`, 'hi', true]]);
  });

  test('slack events - Slack\'s retry of an event (x-slack-retry-num) is answered 200 and not stored twice', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await makeChannel(emu, { mode: 'events' });
    await channel.start(ctx);
    t.after(() => channel.stop());
    const dm = emu.dm(emu.user('Jo'));
    const body = callback({ type: 'message', channel: dm.id, channel_type: 'im', user: dm.user, text: 'once', ts: '1700000000.000002' }, 'EvRETRY1');
    assert.equal((await channel.webhook!(signed(body))).status, 200);
    assert.equal((await channel.webhook!(signed(body, { at: Math.floor(Date.now() / 1000) + 1, retry: 1 }))).status, 200);
    assert.equal(ctx.received.length, 1);
  });

  test('slack events - a forged, a stale and a replayed request are refused 401 with the reason, and nothing is stored', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await makeChannel(emu, { mode: 'events' });
    await channel.start(ctx);
    t.after(() => channel.stop());
    const dm = emu.dm(emu.user('Kim'));
    const event = (ts: string) => callback({ type: 'message', channel: dm.id, channel_type: 'im', user: dm.user, text: 'pay me', ts });
    const forged = await channel.webhook!(signed(event('1700000000.000003'), { secret: 'guessed' }));
    const stale = await channel.webhook!(signed(event('1700000000.000004'), { at: Math.floor(Date.now() / 1000) - 600 }));
    const unsigned = await channel.webhook!(request(JSON.stringify(event('1700000000.000005')), { 'content-type': 'application/json' }));
    const good = signed(event('1700000000.000006'));
    assert.equal((await channel.webhook!(good)).status, 200);
    const replayed = await channel.webhook!(good);
    assert.deepEqual([forged, stale, unsigned, replayed].map((r) => [r.status, r.refused]), [
      [401, 'bad signature'],
      [401, 'stale timestamp (more than 5 minutes off): a replayed or delayed request'],
      [401, 'unsigned request (no x-slack-signature or x-slack-request-timestamp)'],
      [401, 'replayed request (this signature was seen before)'],
    ]);
    assert.deepEqual(ctx.received.map((r) => r.ref), ['1700000000.000006'], 'only the genuine one');
  });

  test('slack events - a store that fails answers 500, so Slack delivers the event again', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await makeChannel(emu, { mode: 'events' });
    await channel.start(ctx);
    t.after(() => channel.stop());
    const dm = emu.dm(emu.user('Lu'));
    const body = callback({ type: 'message', channel: dm.id, channel_type: 'im', user: dm.user, text: 'again', ts: '1700000000.000007' });
    ctx.failStores(1);
    assert.equal((await channel.webhook!(signed(body))).status, 500);
    assert.equal((await channel.webhook!(signed(body, { at: Math.floor(Date.now() / 1000) + 1, retry: 1 }))).status, 200);
    assert.deepEqual(ctx.received.map((r) => r.text), ['again']);
  });
});

