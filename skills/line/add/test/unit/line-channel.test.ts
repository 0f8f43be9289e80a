// The LINE channel with the real @line/bot-sdk against the local Messaging API emulator
// (test/support/line-emulator.ts) over real HTTP, its webhooks posted by the emulator —
// signed as LINE signs them — through hako's real webhook listener: first the shared channel
// conformance suite, then the channel's own behaviour with a recording context.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChannelContext, ChatInbound, ReceiveResult } from '../../src/core/channel.ts';
import type { Group, StoredMessage } from '../../src/core/store-contract.ts';
import type { Logger } from '../../src/core/log.ts';
import { groupPaths } from '../../src/core/paths.ts';
import '../../src/channels/line/register.ts';
import { installedChannels } from '../../src/channels/registry.ts';
import { WebhookListener } from '../../src/channels/webhook.ts';
import { TOKEN_REFUSED } from '../../src/channels/line/errors.ts';
import { lineConfig } from '../../src/channels/line/config.ts';
import type { LineChannel } from '../../src/channels/line/channel.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { LineEmulator, type LineUser } from '../support/line-emulator.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const JPEG = Buffer.from('ffd8ffe000104a46494600010100000100010000ffd9', 'hex');

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { lines.push(`${level} ${msg} ${JSON.stringify(fields)}`); };
  return { lines, debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

function envFor(emu: LineEmulator, extra: Record<string, string> = {}): Record<string, string> {
  return { LINE_CHANNEL_ACCESS_TOKEN: emu.token, LINE_CHANNEL_SECRET: emu.secret, LINE_API_ROOT: emu.apiRoot, LINE_DATA_API_ROOT: emu.dataApiRoot, ...extra };
}

async function lineModule() {
  const m = (await installedChannels()).find((x) => x.name === 'line');
  assert.ok(m, 'the line module registered itself');
  return m;
}

async function makeChannel(emu: LineEmulator, opts: { home?: string; env?: Record<string, string>; log?: Logger } = {}): Promise<LineChannel> {
  const m = await lineModule();
  return await m.create({ env: envFor(emu, opts.env), home: opts.home ?? os.tmpdir(), assistantName: 'hako', log: opts.log ?? recordingLog() }) as LineChannel;
}

/** A channel made directly, with a clock and a short backoff the test controls. */
async function clockedChannel(emu: LineEmulator, o: { now: () => number; home?: string; log?: Logger; env?: Record<string, string> }): Promise<LineChannel> {
  const [{ messagingApi, validateSignature }, { LineChannel }] = await Promise.all([import('@line/bot-sdk'), import('../../src/channels/line/channel.ts')]);
  const config = lineConfig(envFor(emu, o.env));
  return new LineChannel({
    config, validateSignature, home: o.home ?? os.tmpdir(), log: o.log ?? recordingLog(), now: o.now, backoff: () => 5,
    api: new messagingApi.MessagingApiClient({ channelAccessToken: config.token, baseURL: config.apiRoot }),
    blob: new messagingApi.MessagingApiBlobClient({ channelAccessToken: config.token, baseURL: config.dataApiRoot }),
  });
}

type TestContext = ChannelContext & { received: ChatInbound[]; refusals: { reason: string; detail?: Record<string, string> }[] };

/** A core stand-in: chats bound to groups (real folders under `home`), messages kept, deduplicated by (chat, ref) as the store does. */
function chatContext(home: string, bindings: Record<string, string> = {}, groups: Record<string, Partial<Group>> = {}): TestContext {
  const received: ChatInbound[] = [];
  const refusals: TestContext['refusals'] = [];
  const group = (name: string): Group => ({ name, isMain: false, trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '', ...groups[name] });
  for (const g of new Set(Object.values(bindings))) fs.mkdirSync(groupPaths(home, g).folder, { recursive: true });
  return {
    received, refusals,
    accept: async () => { throw new Error('a chat channel uses receive'); },
    receive: async (m): Promise<ReceiveResult> => {
      const g = bindings[m.chat];
      if (!g) {
        received.push(m);
        return { kind: 'unbound', told: received.filter((r) => r.chat === m.chat).length === 1 };
      }
      const duplicate = received.some((r) => r.chat === m.chat && r.ref === m.ref);
      if (!duplicate) received.push(m);
      const message: StoredMessage = { id: `m${received.length}`, group: g, role: 'user', sender: m.sender, text: m.text, ts: '', state: 'pending', batchId: null, attempts: 0, chat: m.chat };
      return { kind: 'stored', message, engaged: true, ...(duplicate ? { duplicate } : {}) };
    },
    groupFor: (chat) => bindings[chat],
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: (_channel, reason, detail) => { refusals.push({ reason, ...(detail ? { detail: { ...detail } } : {}) }); },
    getGroup: (name) => (Object.values(bindings).includes(name) ? group(name) : undefined),
    listGroups: () => [],
  };
}

function tmpHome(t: { after: (fn: () => void) => void }): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-line-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

/** Starts the channel and hako's webhook listener in front of it; the emulator posts there. */
async function serve(t: { after: (fn: () => Promise<void>) => void }, emu: LineEmulator, channel: LineChannel, ctx: ChannelContext): Promise<void> {
  await channel.start(ctx);
  const listener = new WebhookListener({ port: 0, bind: '127.0.0.1', channels: [channel], log: recordingLog() });
  await listener.start(ctx);
  emu.webhookUrl = `http://127.0.0.1:${listener.port}/line/webhook`;
  t.after(async () => { await listener.stop(); await channel.stop(); });
}

// --- the conformance suite ---------------------------------------------------------------

channelConformance('line', async () => {
  const emu = await LineEmulator.start();
  const user = emu.user('Conformance');
  return {
    channel: await makeChannel(emu),
    address: user.userId,
    limit: 5000,
    sent: async () => emu.texts(user.userId),
    refuseNext: () => emu.refuseNext('/v2/bot/message/push', 400, 'Failed to send messages'),
    // LINE shows plain text: the channel drops Markdown emphasis markers.
    shows: (text) => text.replace(/(?<![\p{L}\p{N}*])\*([^*\s][^*]*?)\*/gu, '$1').replace(/(?<![\p{L}\p{N}_])_([^_\s][^_]*?)_(?![\p{L}\p{N}])/gu, '$1'),
    close: () => emu.close(),
  };
});

// --- the channel against the emulator --------------------------------------------------

describe('line channel against the Messaging API emulator', { timeout: 60_000 }, () => {
  let emu: LineEmulator;
  let owner: LineUser;
  before(async () => {
    emu = await LineEmulator.start({ botName: 'hako' });
    owner = emu.user('Olivia Owner');
  });
  after(() => emu.close());
  const ownerEnv = () => ({ LINE_OWNER_IDS: owner.userId });

  test('line - a 1:1 message arrives as a direct message from the owner; the answer uses its reply token', async (t) => {
    const ctx = chatContext(tmpHome(t), { [`line:${owner.userId}`]: 'main' });
    const channel = await makeChannel(emu, { env: ownerEnv() });
    await serve(t, emu, channel, ctx);
    const d = await emu.say({ chat: emu.chatWith(owner), from: owner, text: 'What is on my list?' });
    assert.equal(d.status, 200);
    assert.deepEqual(ctx.received, [{ chat: `line:${owner.userId}`, chatTitle: 'Olivia Owner', sender: 'Olivia Owner', senderId: `line:${owner.userId}`, trusted: true, text: 'What is on my list?', direct: true, ref: d.event.webhookEventId }]);
    await channel.send({ id: 'r1', group: 'main', address: owner.userId, text: 'Milk and **eggs**.', replyTo: d.event.webhookEventId });
    assert.deepEqual(emu.sent(owner.userId), [{ via: 'reply', type: 'text', text: 'Milk and eggs.' }]);
    await channel.send({ id: 'r2', group: 'main', address: owner.userId, text: 'And bread.', replyTo: d.event.webhookEventId });
    assert.equal(emu.sent(owner.userId).at(-1)!.via, 'push', 'a reply token is used once; the second answer is pushed');
  });

  test('line - in a group only a mention of the bot is direct; every message arrives with the member\'s name; a stranger is not trusted', async (t) => {
    const bob = emu.user('Bob');
    const team = emu.group('Sales', [bob, owner]);
    const ctx = chatContext(tmpHome(t), { [`line:${team.id}`]: 'sales' });
    await serve(t, emu, await makeChannel(emu, { env: ownerEnv() }), ctx);
    await emu.say({ chat: team, from: bob, text: 'the launch moved to Friday' });
    await emu.say({ chat: team, from: owner, text: 'when is the launch?', mention: true });
    assert.deepEqual(ctx.received.map((r) => [r.chat, r.sender, r.senderId, r.text, r.direct, r.trusted]), [
      [`line:${team.id}`, 'Bob', `line:${bob.userId}`, 'the launch moved to Friday', false, false],
      [`line:${team.id}`, 'Olivia Owner', `line:${owner.userId}`, '@hako when is the launch?', true, true],
    ]);
    assert.equal(ctx.received[0]!.chatTitle, undefined);
  });

  test('line - a forged or unsigned webhook is refused 401 before anything is read or stored, and reported', async (t) => {
    const ctx = chatContext(tmpHome(t), { [`line:${owner.userId}`]: 'main' });
    await serve(t, emu, await makeChannel(emu, { env: ownerEnv() }), ctx);
    const profiles = emu.callsOf('/v2/bot/profile').length;
    const event = emu.textEvent({ chat: emu.chatWith(owner), from: owner, text: 'transfer everything' });
    const body = emu.body([event]);
    const forged = await emu.deliver([event], { signature: emu.sign(body, 'f'.repeat(32)) });
    const unsigned = await emu.deliver([event], { signature: null });
    const garbage = await emu.deliver([event], { signature: 'not base64 at all' });
    assert.deepEqual([forged.status, unsigned.status, garbage.status], [401, 401, 401]);
    assert.equal(ctx.received.length, 0, 'nothing stored');
    assert.deepEqual(ctx.refusals.map((r) => r.reason), ['bad signature', 'no signature', 'bad signature']);
    assert.equal(emu.callsOf('/v2/bot/profile').length, profiles, 'not even the profile was looked up');
  });

  test('line - a replayed webhook is refused: the same event again, or an event older than 10 minutes; a LINE redelivery is taken once', async (t) => {
    const ctx = chatContext(tmpHome(t), { [`line:${owner.userId}`]: 'main' });
    await serve(t, emu, await makeChannel(emu, { env: ownerEnv() }), ctx);
    const event = emu.textEvent({ chat: emu.chatWith(owner), from: owner, text: 'pay invoice 7' });
    assert.equal((await emu.deliver([event])).status, 200);
    const again = await emu.deliver([event]);
    const old = await emu.say({ chat: emu.chatWith(owner), from: owner, text: 'pay invoice 8', timestamp: Date.now() - 11 * 60_000 });
    const redelivered = await emu.deliver([{ ...event, deliveryContext: { isRedelivery: true } }]);
    assert.deepEqual([again.status, old.status, redelivered.status], [401, 401, 200]);
    assert.deepEqual(ctx.received.map((r) => r.text), ['pay invoice 7'], 'stored once; the old one never');
    assert.deepEqual(ctx.refusals.map((r) => r.reason), ['replay: event already received', 'replay: event older than 10 minutes']);
  });

  test('line - the Verify button (no events) is answered 200 and stores nothing', async (t) => {
    const ctx = chatContext(tmpHome(t));
    await serve(t, emu, await makeChannel(emu), ctx);
    assert.equal((await emu.deliver([])).status, 200);
    assert.equal(ctx.received.length, 0);
  });

  test('line - a long reply is cut at 5,000 characters; five messages go with the reply token, the rest by push', async (t) => {
    const who = emu.user('Long');
    const ctx = chatContext(tmpHome(t), { [`line:${who.userId}`]: 'long' });
    const channel = await makeChannel(emu);
    await serve(t, emu, channel, ctx);
    const d = await emu.say({ chat: emu.chatWith(who), from: who, text: 'tell me everything' });
    const paragraph = (i: number) => `Paragraph ${i}: ${'all work and no play '.repeat(60).trim()}.`;
    const text = Array.from({ length: 24 }, (_, i) => paragraph(i)).join('\n\n');
    assert.ok(text.length > 25_000);
    await channel.send({ id: 'long', group: 'g', address: who.userId, text, replyTo: d.event.webhookEventId });
    const sent = emu.sent(who.userId);
    assert.ok(sent.length > 5);
    assert.deepEqual(sent.map((s) => s.via), [...Array(5).fill('reply'), ...Array(sent.length - 5).fill('push')]);
    for (const s of sent) assert.ok(s.text.length <= 5000 && /^Paragraph \d+:/.test(s.text));
    assert.equal(sent.map((s) => s.text).join('').replace(/\s/g, ''), text.replace(/\s/g, ''));
  });

  test('line - an answer after 50 s, or one LINE no longer takes the reply token for, goes by push', async (t) => {
    let now = Date.now();
    const ctx = chatContext(tmpHome(t));
    const channel = await clockedChannel(emu, { now: () => now });
    await serve(t, emu, channel, ctx);
    const late = emu.user('Late');
    const a = await emu.say({ chat: emu.chatWith(late), from: late, text: 'slow question' });
    now += 50_001;
    await channel.send({ id: 'late', group: 'g', address: late.userId, text: 'slow answer', replyTo: a.event.webhookEventId });
    assert.equal(emu.callsOf('/v2/bot/message/reply').filter((c) => c.body.messages[0].text === 'slow answer').length, 0, 'the expired token was not even tried');
    const b = await emu.say({ chat: emu.chatWith(late), from: late, text: 'another', timestamp: now });
    emu.replyTokenTtlMs = 0;
    t.after(() => { emu.replyTokenTtlMs = 60_000; });
    await channel.send({ id: 'late2', group: 'g', address: late.userId, text: 'refused token', replyTo: b.event.webhookEventId });
    assert.deepEqual(emu.sent(late.userId).map((s) => [s.via, s.text]), [['push', 'slow answer'], ['push', 'refused token']]);
  });

  test('line - an image, a video and a file from the owner are saved to the group inbox and listed', async (t) => {
    const home = tmpHome(t);
    const ctx = chatContext(home, { [`line:${owner.userId}`]: 'main' });
    await serve(t, emu, await makeChannel(emu, { home, env: ownerEnv() }), ctx);
    const chat = emu.chatWith(owner);
    const photo = Buffer.concat([JPEG, Buffer.alloc(4000, 7)]);
    await emu.deliver([emu.mediaEvent({ chat, from: owner, kind: 'image', data: photo })]);
    await emu.deliver([emu.mediaEvent({ chat, from: owner, kind: 'video', data: Buffer.from('mp4 bytes') })]);
    await emu.deliver([emu.mediaEvent({ chat, from: owner, kind: 'file', data: Buffer.from('%PDF-1.4'), fileName: '../../Q3 report.pdf' })]);
    const lines = ctx.received.map((r) => r.text);
    assert.equal(lines.length, 3);
    const paths = lines.map((l) => /^\[attached: (inbox\/\d{4}-\d{2}-\d{2}\/[^ ]+) \(/.exec(l)?.[1]);
    assert.ok(paths.every(Boolean), JSON.stringify(lines));
    const folder = groupPaths(home, 'main').folder;
    assert.deepEqual([photo, Buffer.from('mp4 bytes'), Buffer.from('%PDF-1.4')], paths.map((p) => fs.readFileSync(path.join(folder, p!))));
    assert.match(paths[2]!, /Q3_report\.pdf$/, 'the sender\'s name, made safe');
    assert.match(lines[0]!, /\(image\/jpeg, 4 KB\)\]$/);
  });

  test('line - a file from an unbound chat, from a sender who may not engage, or over HAKO_ATTACHMENT_MAX_BYTES is never downloaded', async (t) => {
    const home = tmpHome(t);
    const mallory = emu.user('Mallory');
    const team = emu.group('Team', [mallory, owner]);
    const ctx = chatContext(home, { [`line:${team.id}`]: 'team', [`line:${owner.userId}`]: 'main' });
    await serve(t, emu, await makeChannel(emu, { home, env: { ...ownerEnv(), HAKO_ATTACHMENT_MAX_BYTES: '1000' } }), ctx);
    const before = emu.callsOf('/v2/bot/message').filter((c) => c.path.endsWith('/content')).length;
    const stranger = emu.user('Stranger');
    await emu.deliver([emu.mediaEvent({ chat: emu.chatWith(stranger), from: stranger, kind: 'file', data: Buffer.from('x'), fileName: 'x.sh' })]);
    await emu.deliver([emu.mediaEvent({ chat: team, from: mallory, kind: 'image', data: JPEG })]);
    await emu.deliver([emu.mediaEvent({ chat: emu.chatWith(owner), from: owner, kind: 'file', data: Buffer.alloc(5000), fileName: 'big.bin' })]);
    assert.deepEqual(ctx.received.map((r) => r.text), [
      '[file "x.sh": not saved]',
      '[image: not saved: the sender may not engage this group]',
      '[file "big.bin": not saved: over the 1000 bytes limit (HAKO_ATTACHMENT_MAX_BYTES)]',
    ]);
    assert.equal(emu.callsOf('/v2/bot/message').filter((c) => c.path.endsWith('/content')).length, before, 'no content was fetched');
    assert.equal(fs.existsSync(path.join(groupPaths(home, 'team').folder, 'inbox')), false);
  });

  test('line - a 429 on a push is waited out and the message arrives once; a push sent again after a lost answer is not delivered twice', async (t) => {
    const log = recordingLog();
    const channel = await clockedChannel(emu, { now: Date.now, log });
    await serve(t, emu, channel, chatContext(tmpHome(t)));
    const gus = emu.user('Gus');
    emu.rateLimit({ calls: 2, paths: ['/v2/bot/message/push'] });
    await channel.send({ id: 'rl', group: 'g', address: gus.userId, text: 'after the wait' });
    assert.deepEqual(emu.texts(gus.userId), ['after the wait']);
    assert.deepEqual(emu.callsOf('/v2/bot/message/push').filter((c) => c.body.to === gus.userId).map((c) => c.status), [429, 429, 200]);
    assert.ok(log.lines.some((l) => l.includes('(429)')));
    // A second process (after a crash) sends the same stored message again: LINE knows the retry key.
    const other = await clockedChannel(emu, { now: Date.now });
    await other.start(chatContext(tmpHome(t)));
    t.after(() => other.stop());
    await other.send({ id: 'rl', group: 'g', address: gus.userId, text: 'after the wait' });
    assert.deepEqual(emu.texts(gus.userId), ['after the wait'], 'delivered once');
    assert.equal(emu.callsOf('/v2/bot/message/push').filter((c) => c.body.to === gus.userId).at(-1)!.status, 409);
  });

  test('line - Markdown is shown as plain text: emphasis dropped, links with their address, code kept as written', async (t) => {
    const channel = await makeChannel(emu);
    await serve(t, emu, channel, chatContext(tmpHome(t)));
    const carol = emu.user('Carol');
    await channel.send({ id: 'md', group: 'g', address: carol.userId, text: '## Costs\n\n**Total**: see [the sheet](https://example.com/a_b) for _all_ of it.\n\n```python\nprint(a_b * 2)  # **x**\n```' });
    assert.deepEqual(emu.texts(carol.userId), ['Costs\n\nTotal: see the sheet (https://example.com/a_b) for all of it.\n\nprint(a_b * 2)  # **x**']);
  });

  test('line - a file the agent sent cannot go through LINE: the text says it is in the workspace', async (t) => {
    const channel = await makeChannel(emu);
    await serve(t, emu, channel, chatContext(tmpHome(t)));
    const dan = emu.user('Dan');
    await channel.send({ id: 'f', group: 'sales', address: dan.userId, text: 'Here is Q3.', file: { path: '/nonexistent/q3.csv', name: 'q3.csv' } });
    assert.deepEqual(emu.texts(dan.userId), ['Here is Q3.\n\n(The file "q3.csv" is in the group\'s workspace: LINE cannot deliver files from hako.)']);
  });

  test('line - the loading animation is shown in a 1:1 chat only, and stops', async (t) => {
    const channel = await makeChannel(emu);
    await serve(t, emu, channel, chatContext(tmpHome(t)));
    const eve = emu.user('Eve');
    const team = emu.group('Team', [eve]);
    const before = emu.callsOf('/v2/bot/chat/loading/start').length;
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    const stopUser = channel.typing(eve.userId);
    const stopGroup = channel.typing(team.id);
    t.mock.timers.tick(50_000);
    stopUser();
    stopUser();
    stopGroup();
    t.mock.timers.tick(200_000);
    t.mock.timers.reset();
    await emu.waitUntil(() => emu.callsOf('/v2/bot/chat/loading/start').length >= before + 2, () => 'two loading calls');
    assert.deepEqual(emu.callsOf('/v2/bot/chat/loading/start').slice(before).map((c) => [c.body.chatId, c.body.loadingSeconds, c.status]), [[eve.userId, 60, 202], [eve.userId, 60, 202]]);
  });

  test('line - a revoked token is one clear line, logged once: sends fail with it, webhooks are still stored', async (t) => {
    const own = await LineEmulator.start();
    t.after(() => own.close());
    const log = recordingLog();
    const who = own.user('Ivy');
    const ctx = chatContext(tmpHome(t), { [`line:${who.userId}`]: 'main' });
    const channel = await makeChannel(own, { log });
    await serve(t, own, channel, ctx);
    assert.equal(channel.problem(), undefined);
    own.revokeToken();
    await assert.rejects(channel.send({ id: 'x', group: 'g', address: who.userId, text: 'hi' }), (err: Error) => err.message.includes('the channel access token was refused (401)'));
    assert.equal(channel.problem(), TOKEN_REFUSED);
    await assert.rejects(channel.send({ id: 'y', group: 'g', address: who.userId, text: 'hi' }), (err: Error) => err.message === TOKEN_REFUSED);
    assert.equal((await own.say({ chat: own.chatWith(who), from: who, text: 'still here' })).status, 200);
    assert.deepEqual(ctx.received.map((r) => r.text), ['still here']);
    assert.equal(log.lines.filter((l) => l.includes('the channel access token was refused')).length, 1, 'logged once');
    assert.ok(!log.lines.some((l) => l.includes(own.token) || l.includes(own.secret)), 'no credential in the log');
  });

  test('line - a token refused at start: the start line says so and problem() keeps saying it', async () => {
    const own = await LineEmulator.start();
    try {
      own.revokeToken();
      const log = recordingLog();
      const channel = await makeChannel(own, { log });
      await channel.start(chatContext(os.tmpdir()));
      assert.equal(channel.problem(), TOKEN_REFUSED);
      assert.deepEqual(log.lines.filter((l) => l.startsWith('error')).length, 1);
      await channel.stop();
    } finally {
      await own.close();
    }
  });

  test('line - check says what is wrong: nothing when the token works, the clear line when refused, the server when unreachable', async () => {
    const m = await lineModule();
    const deps = (env: Record<string, string>) => ({ env, home: os.tmpdir(), assistantName: 'hako', log: recordingLog() });
    assert.equal(await m.check!(deps(envFor(emu))), undefined);
    const revoked = await LineEmulator.start();
    revoked.revokeToken();
    assert.equal(await m.check!(deps(envFor(revoked))), TOKEN_REFUSED);
    const env = envFor(revoked);
    await revoked.close();
    assert.match((await m.check!(deps(env)))!, /^line: cannot reach the Messaging API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): check the network, or LINE_API_ROOT$/);
    assert.match((await m.check!(deps({})))!, /LINE_CHANNEL_ACCESS_TOKEN is not set/);
  });

  test('line - the module registers its settings and secrets, and importing it loads no @line/bot-sdk', async () => {
    const m = await lineModule();
    assert.deepEqual([m.required, m.secrets], [['LINE_CHANNEL_ACCESS_TOKEN', 'LINE_CHANNEL_SECRET'], ['LINE_CHANNEL_ACCESS_TOKEN', 'LINE_CHANNEL_SECRET']]);
    const probe = `
      await import(${JSON.stringify(path.join(ROOT, 'src/channels/line/register.ts'))});
      console.log(JSON.stringify(globalThis.__lineLoaded ?? []));`;
    // The ESM loader keeps no public cache: resolve hooks record every module the import pulls in.
    const hook = `
      import { registerHooks } from 'node:module';
      globalThis.__lineLoaded = [];
      registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); if (r.url.includes('/node_modules/@line/')) globalThis.__lineLoaded.push(r.url); return r; } });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', hook + probe], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    assert.equal(await new Promise((r) => child.once('close', r)), 0);
    assert.deepEqual(JSON.parse(out), []);
  });
});
