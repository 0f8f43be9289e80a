// The Telegram channel with the real grammY client against the local Bot API emulator
// (test/support/telegram-emulator.ts) over real HTTP: first the shared channel conformance
// suite and the channel's own behaviour with a recording context, then a real hako host
// (real Docker, the real image, a scripted model) reached from Telegram chats.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Channel, ChannelContext, ChatInbound, ReceiveResult } from '../../src/core/channel.ts';
import type { Group, StoredMessage } from '../../src/core/store-contract.ts';
import type { Logger } from '../../src/core/log.ts';
import { groupPaths } from '../../src/core/paths.ts';
import '../../src/channels/telegram/register.ts';
import { installedChannels } from '../../src/channels/registry.ts';
import { TOKEN_REFUSED } from '../../src/channels/telegram/errors.ts';
import type { TelegramChannel } from '../../src/channels/telegram/channel.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { TelegramEmulator, TINY_JPEG, type TgChat } from '../support/telegram-emulator.ts';
import { HakoProcess } from '../support/hako.ts';
import { startModelServer, type ModelServer, type RecordedRequest } from '../support/model-server.ts';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** A logger that keeps every line, to look for the token in it. */
function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { lines.push(`${level} ${msg} ${JSON.stringify(fields)}`); };
  return { lines, debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

async function telegramModule() {
  const m = (await installedChannels()).find((x) => x.name === 'telegram');
  assert.ok(m, 'the telegram module registered itself');
  return m;
}

async function makeChannel(emu: TelegramEmulator, opts: { home?: string; env?: Record<string, string>; log?: Logger } = {}): Promise<TelegramChannel> {
  const m = await telegramModule();
  const env = { TELEGRAM_BOT_TOKEN: emu.token, TELEGRAM_API_ROOT: emu.apiRoot, ...opts.env };
  return await m.create({ env, home: opts.home ?? os.tmpdir(), assistantName: 'hako', log: opts.log ?? recordingLog() }) as TelegramChannel;
}

/** A channel made directly, with grammY's own transformer hook counting each call as it leaves the client. */
async function countedChannel(emu: TelegramEmulator, calls: string[]): Promise<TelegramChannel> {
  const [{ Api, InputFile }, { TelegramChannel }] = await Promise.all([import('grammy'), import('../../src/channels/telegram/channel.ts')]);
  const api = new Api(emu.token, { apiRoot: emu.apiRoot });
  api.config.use((prev, method, payload, signal) => {
    calls.push(method);
    return prev(method, payload, signal);
  });
  return new TelegramChannel({ config: { token: emu.token, apiRoot: emu.apiRoot, maxBytes: 1000, ownerIds: new Set<string>() }, api, InputFile, home: os.tmpdir(), log: recordingLog() });
}

/**
 * A core stand-in: chats bound to groups (each with a real folder under `home`), every
 * received message kept, and a promise for the next one.
 */
function chatContext(home: string, bindings: Record<string, string> = {}, groups: Record<string, Partial<Group>> = {}): ChannelContext & { received: ChatInbound[]; nextReceived(n: number): Promise<ChatInbound[]> } {
  const received: ChatInbound[] = [];
  const waiters: (() => void)[] = [];
  const group = (name: string): Group => ({ name, isMain: false, trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '', ...groups[name] });
  for (const g of new Set(Object.values(bindings))) fs.mkdirSync(groupPaths(home, g).folder, { recursive: true });
  return {
    received,
    async nextReceived(n: number) {
      while (received.length < n) await new Promise<void>((r) => waiters.push(r));
      return received;
    },
    accept: async () => { throw new Error('a chat channel uses receive'); },
    receive: async (m): Promise<ReceiveResult> => {
      received.push(m);
      for (const w of waiters.splice(0)) w();
      const g = bindings[m.chat];
      if (!g) return { kind: 'unbound', told: received.filter((r) => r.chat === m.chat).length === 1 };
      const message: StoredMessage = { id: `m${received.length}`, group: g, role: 'user', sender: m.sender, text: m.text, ts: '', state: 'pending', batchId: null, attempts: 0, chat: m.chat };
      return { kind: 'stored', message, engaged: true };
    },
    groupFor: (chat) => bindings[chat],
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: () => {},
    getGroup: (name) => (Object.values(bindings).includes(name) ? group(name) : undefined),
    listGroups: () => [],
  };
}

function tmpHome(t: { after: (fn: () => void) => void }): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-tg-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

// --- the conformance suite ---------------------------------------------------------------

channelConformance('telegram', async () => {
  const emu = await TelegramEmulator.start();
  const chat = emu.privateChat(emu.user('Conformance'));
  return {
    channel: await makeChannel(emu),
    address: String(chat.id),
    limit: 4096,
    sent: async () => emu.texts(chat.id),
    refuseNext: () => emu.refuseNext('sendMessage', 400, 'Bad Request: chat not found'),
    // Telegram renders Markdown emphasis: the markers are not shown.
    shows: (text) => text.replace(/(?<![\p{L}\p{N}*])\*([^*\s][^*]*?)\*/gu, '$1').replace(/(?<![\p{L}\p{N}_])_([^_\s][^_]*?)_(?![\p{L}\p{N}])/gu, '$1'),
    close: () => emu.close(),
  };
});

// --- the channel against the emulator --------------------------------------------------

describe('telegram channel against the Bot API emulator', { timeout: 60_000 }, () => {
  let emu: TelegramEmulator;
  before(async () => { emu = await TelegramEmulator.start({ username: 'hako_test_bot' }); });
  after(() => emu.close());

  async function started(t: { after: (fn: () => Promise<void>) => void }, ctx: ChannelContext, opts: Parameters<typeof makeChannel>[1] = {}): Promise<TelegramChannel> {
    const channel = await makeChannel(emu, opts);
    await channel.start(ctx);
    t.after(() => channel.stop());
    return channel;
  }

  test('telegram - a private message arrives as a direct message from the user; the reply answers it', async (t) => {
    const ctx = chatContext(tmpHome(t));
    await started(t, ctx);
    const alice = emu.user('Alice', { last: 'Smith' });
    const chat = emu.privateChat(alice);
    const m = emu.message({ chat, text: 'What is on my list?' });
    const [got] = await ctx.nextReceived(1);
    assert.deepEqual(got, { chat: `telegram:${chat.id}`, chatTitle: 'Alice Smith', sender: 'Alice Smith', senderId: `telegram:${alice.id}`, trusted: true, text: 'What is on my list?', direct: true, ref: String(m.message_id) });
  });

  test('telegram - in a group only an @mention or a reply to the bot is direct; every message arrives', async (t) => {
    const home = tmpHome(t);
    const group = emu.group('Sales team', { supergroup: true });
    const ctx = chatContext(home, { [`telegram:${group.id}`]: 'sales' });
    const channel = await started(t, ctx);
    const bob = emu.user('Bob');
    emu.message({ chat: group, from: bob, text: 'the launch moved to Friday' });
    const asked = emu.message({ chat: group, from: bob, text: 'when is the launch?', mention: true });
    await ctx.nextReceived(2);
    await channel.send({ id: 'r1', group: 'sales', address: String(group.id), text: 'Friday.', replyTo: String(asked.message_id) });
    const botMessage = emu.sent(group.id)[0]!;
    assert.equal(botMessage.reply_to, asked.message_id);
    emu.message({ chat: group, from: bob, text: 'thanks', replyTo: botMessage.message_id });
    const all = await ctx.nextReceived(3);
    assert.deepEqual(all.map((r) => [r.text, r.direct]), [['the launch moved to Friday', false], ['@hako_test_bot when is the launch?', true], ['thanks', true]]);
    assert.ok(all.every((r) => r.chatTitle === 'Sales team'));
  });

  test('telegram - a reply full of MarkdownV2 reserved characters and code is shown as written, never refused', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx);
    const chat = emu.privateChat(emu.user('Carol'));
    const text = 'Costs (net): 1.5k - 2k + tax = ~3k! See [the sheet](https://example.com/a_b?x=1&y=(2)) for _all_ the #numbers, {a|b}.\n\n```python\nprint(a_b * 2)  # [x] > y!\n```\n\n**Total**: `n * 3`.';
    await channel.send({ id: 'md', group: 'g', address: String(chat.id), text });
    const [shown] = emu.sent(chat.id);
    assert.equal(shown!.text, 'Costs (net): 1.5k - 2k + tax = ~3k! See the sheet for all the #numbers, {a|b}.\n\nprint(a_b * 2)  # [x] > y!\n\nTotal: n * 3.');
    assert.deepEqual(shown!.entities.map((e) => e.type), ['text_link', 'italic', 'pre', 'bold', 'code']);
    assert.equal(shown!.entities.find((e) => e.type === 'pre')!.language, 'python');
  });

  test('telegram - a reply whose formatting Telegram refuses is sent again as plain text', async (t) => {
    const log = recordingLog();
    const channel = await started(t, chatContext(tmpHome(t)), { log });
    const chat = emu.privateChat(emu.user('Dan'));
    emu.refuseNext('sendMessage', 400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0");
    await channel.send({ id: 'plain', group: 'g', address: String(chat.id), text: 'a **bold** claim' });
    const sent = emu.sent(chat.id);
    assert.deepEqual(sent.map((s) => [s.text, s.entities.length]), [['a bold claim', 0]]);
    assert.ok(log.lines.some((l) => l.includes('sending it as plain text')));
  });

  test('telegram - in a forum topic, the reply goes to the topic, by the topic binding or through the whole chat', async (t) => {
    const forum = emu.group('Ops', { forum: true });
    const alice = emu.user('Alice');
    const incidents = emu.createTopic(forum, 'Incidents', alice);
    const releases = emu.createTopic(forum, 'Releases', alice);
    const ctx = chatContext(tmpHome(t), { [`telegram:${forum.id}/${incidents}`]: 'incidents', [`telegram:${forum.id}`]: 'ops' });
    const channel = await started(t, ctx);
    const a = emu.message({ chat: forum, from: alice, text: 'db down?', thread: incidents, mention: true });
    const b = emu.message({ chat: forum, from: alice, text: 'ship it?', thread: releases, mention: true });
    const [inA, inB] = await ctx.nextReceived(2);
    assert.deepEqual([inA!.chat, inA!.ref], [`telegram:${forum.id}/${incidents}`, String(a.message_id)]);
    assert.deepEqual([inB!.chat, inB!.ref], [`telegram:${forum.id}`, `${b.message_id}/${releases}`]);
    await channel.send({ id: 'ta', group: 'incidents', address: `${forum.id}/${incidents}`, text: 'looking', replyTo: inA!.ref! });
    await channel.send({ id: 'tb', group: 'ops', address: String(forum.id), text: 'shipped', replyTo: inB!.ref! });
    assert.deepEqual(emu.sent(forum.id).map((s) => [s.text, s.thread_id, s.reply_to]), [['looking', incidents, a.message_id], ['shipped', releases, b.message_id]]);
  });

  test('telegram - a photo, a document and a voice note from a bound chat are saved to the workspace and listed', async (t) => {
    const home = tmpHome(t);
    const chat = emu.privateChat(emu.user('Erin'));
    const ctx = chatContext(home, { [`telegram:${chat.id}`]: 'erin' });
    await started(t, ctx, { home });
    const photo = Buffer.concat([TINY_JPEG, Buffer.alloc(5000, 7)]);
    emu.message({ chat, photo, caption: 'the receipt' });
    emu.message({ chat, document: { data: Buffer.from('%PDF-1.4 report'), name: '../../etc/Q3 report.pdf' } });
    emu.message({ chat, voice: { data: Buffer.from('OggS voice') } });
    const [p, d, v] = await ctx.nextReceived(3);
    const path_ = (text: string, kind: string) => new RegExp(`^\\[${kind}: (/workspace/group/inbox/[^\\]]+)\\]$`, 'm').exec(text)?.[1];
    const files = [[p!, 'photo', photo], [d!, 'document', Buffer.from('%PDF-1.4 report')], [v!, 'voice', Buffer.from('OggS voice')]] as const;
    for (const [msg, kind, bytes] of files) {
      const agentPath = path_(msg.text, kind);
      assert.ok(agentPath, `${kind} listed in ${JSON.stringify(msg.text)}`);
      const onHost = path.join(groupPaths(home, 'erin').folder, agentPath!.slice('/workspace/group/'.length));
      assert.deepEqual(fs.readFileSync(onHost), bytes, `${kind} saved whole`);
    }
    assert.match(p!.text, /^the receipt\n\[photo: /);
    assert.match(path_(d!.text, 'document')!, /Q3_report\.pdf$/, 'the sender\'s file name, made safe');
    assert.deepEqual(fs.readdirSync(path.join(home, 'groups')), ['erin'], 'nothing written outside the group folder');
  });

  test('telegram - a file from an unbound chat or from a sender off the allowlist is never downloaded', async (t) => {
    const home = tmpHome(t);
    const team = emu.group('Team');
    const ctx = chatContext(home, { [`telegram:${team.id}`]: 'team' }, { team: { allowedSenders: ['telegram:1'] } });
    await started(t, ctx, { home });
    const stranger = emu.privateChat(emu.user('Stranger'));
    const before = emu.callsOf('getFile').length;
    emu.message({ chat: stranger, document: { data: Buffer.from('payload'), name: 'x.sh' } });
    emu.message({ chat: team, from: emu.user('Mallory'), document: { data: Buffer.from('payload'), name: 'y.sh' } });
    const [s, m] = await ctx.nextReceived(2);
    assert.equal(s!.text, '[document: not saved]');
    assert.equal(m!.text, "[document: not saved: the sender is not on the group's allowlist]");
    assert.equal(emu.callsOf('getFile').length, before, 'getFile was never called');
    assert.equal(fs.existsSync(path.join(groupPaths(home, 'team').folder, 'inbox')), false);
  });

  test('telegram - in a group chat only TELEGRAM_OWNER_IDS are trusted, and another member\'s file is not fetched; a private chat\'s one user is trusted', async (t) => {
    const home = tmpHome(t);
    const team = emu.group('Team');
    const owner = emu.user('Olga', { id: 880001 });
    const dm = emu.privateChat(emu.user('Pia'));
    const ctx = chatContext(home, { [`telegram:${team.id}`]: 'team', [`telegram:${dm.id}`]: 'pia' });
    await started(t, ctx, { home, env: { TELEGRAM_OWNER_IDS: '880001' } });
    const before = emu.callsOf('getFile').length;
    emu.message({ chat: team, from: emu.user('Mallory'), caption: 'run this', mention: true, document: { data: Buffer.from('payload'), name: 'y.sh' } });
    emu.message({ chat: team, from: owner, text: 'what is new?', mention: true });
    emu.message({ chat: dm, text: 'hello' });
    const [stranger, own, pia] = await ctx.nextReceived(3);
    assert.deepEqual([stranger!.trusted, own!.trusted, pia!.trusted], [false, true, true]);
    assert.match(stranger!.text, /\[document: not saved: the sender may not engage this group\]/);
    assert.equal(emu.callsOf('getFile').length, before, 'the stranger\'s file was never fetched');
  });

  test('telegram - a file over HAKO_ATTACHMENT_MAX_BYTES is not downloaded, and the message says why', async (t) => {
    const home = tmpHome(t);
    const chat = emu.privateChat(emu.user('Fay'));
    const ctx = chatContext(home, { [`telegram:${chat.id}`]: 'fay' });
    await started(t, ctx, { home, env: { HAKO_ATTACHMENT_MAX_BYTES: '1000' } });
    const before = emu.callsOf('getFile').length;
    emu.message({ chat, text: 'big one', document: { data: Buffer.alloc(5000), name: 'big.bin' } });
    const [got] = await ctx.nextReceived(1);
    assert.equal(got!.text, 'big one\n[document "big.bin": not saved: over the 1000 bytes limit (HAKO_ATTACHMENT_MAX_BYTES)]');
    assert.equal(emu.callsOf('getFile').length, before);
  });

  test('telegram - a 429 on a send is waited out for retry_after, and the message arrives once', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const chat = emu.privateChat(emu.user('Gus'));
    emu.rateLimit({ calls: 1, retryAfter: 1, methods: ['sendMessage'] });
    await channel.send({ id: 'rl', group: 'g', address: String(chat.id), text: 'after the wait' });
    assert.deepEqual(emu.texts(chat.id), ['after the wait']);
    assert.equal(emu.callsOf('sendMessage').filter((c) => c.params.chat_id === chat.id).length, 2, 'refused once, then sent');
  });

  test('telegram - a long reply sent again after a failure does not repeat the pieces already delivered', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const chat = emu.privateChat(emu.user('Lea'));
    const text = Array.from({ length: 3 }, (_, i) => `Part ${i}: ${'x'.repeat(3000)}`).join('\n\n');
    emu.dropConnections({ calls: 1, methods: ['sendMessage'], skip: 1 });
    await assert.rejects(channel.send({ id: 'long-1', group: 'g', address: String(chat.id), text }), /telegram: the message to chat .* was not sent/);
    assert.deepEqual(emu.texts(chat.id).map((x) => x.slice(0, 7)), ['Part 0:']);
    await channel.send({ id: 'long-1', group: 'g', address: String(chat.id), text });
    assert.deepEqual(emu.texts(chat.id).map((x) => x.slice(0, 7)), ['Part 0:', 'Part 1:', 'Part 2:'], 'each piece once, in order');
  });

  test('telegram - a 429 on getUpdates and dropped connections: polling comes back and no message is lost', async (t) => {
    const log = recordingLog();
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx, { log });
    const chat = emu.privateChat(emu.user('Hal'));
    emu.rateLimit({ calls: 1, retryAfter: 1, methods: ['getUpdates'] });
    emu.dropConnections({ calls: 2, methods: ['getUpdates'] });
    emu.message({ chat, text: 'still there?' });
    const [got] = await ctx.nextReceived(1);
    assert.equal(got!.text, 'still there?');
    assert.ok(log.lines.some((l) => l.includes('429')), 'the rate limit was seen');
    assert.ok(log.lines.some((l) => l.includes('polling again')), 'the failure was seen and its end');
    assert.equal(channel.problem(), undefined);
  });

  test('telegram - a revoked token stops polling with one clear line, logged once; sends fail with it; the token is nowhere', async (t) => {
    const own = await TelegramEmulator.start();
    t.after(() => own.close());
    const log = recordingLog();
    const channel = await makeChannel(own, { log });
    const ctx = chatContext(tmpHome(t));
    await channel.start(ctx);
    t.after(() => channel.stop());
    const chat = own.privateChat(own.user('Ivy'));
    await own.waitForCalls('getUpdates', 1);
    own.revokeToken();
    while (channel.problem() === undefined) await new Promise((r) => setImmediate(r));
    assert.equal(channel.problem(), TOKEN_REFUSED);
    assert.match(TOKEN_REFUSED, /^telegram: the bot token was refused \(401 Unauthorized\).*TELEGRAM_BOT_TOKEN in ~\/\.config\/hako\/secrets\.env/);
    const polls = own.callsOf('getUpdates').length;
    await assert.rejects(channel.send({ id: 'x', group: 'g', address: String(chat.id), text: 'hi' }), (err: Error) => err.message === TOKEN_REFUSED);
    assert.equal(own.callsOf('getUpdates').length, polls, 'no more polling: no crash loop');
    assert.equal(log.lines.filter((l) => l.includes('the bot token was refused')).length, 1, 'logged once');
    const secret = own.token.split(':')[1]!;
    assert.ok(!log.lines.some((l) => l.includes(secret)), 'the token is in no log line');
  });

  test('telegram - a token refused at start makes start reject with the clear line', async () => {
    const own = await TelegramEmulator.start();
    try {
      own.revokeToken();
      const channel = await makeChannel(own);
      await assert.rejects(channel.start(chatContext(os.tmpdir())), (err: Error) => err.message === TOKEN_REFUSED);
      assert.equal(channel.problem(), TOKEN_REFUSED);
      await channel.stop();
    } finally {
      await own.close();
    }
  });

  test('telegram - typing sends the typing action every 4 s until stopped', async (t) => {
    const calls: string[] = [];
    const channel = await countedChannel(emu, calls);
    await channel.start(chatContext(tmpHome(t)));
    t.after(() => channel.stop());
    const chat = emu.group('Typing', { forum: true });
    const topic = emu.createTopic(chat, 'T', emu.user('Tim'));
    const typed = () => calls.filter((m) => m === 'sendChatAction').length;
    t.mock.timers.enable({ apis: ['setInterval'] });
    const stop = channel.typing(`${chat.id}/${topic}`);
    assert.equal(typed(), 1, 'at once');
    t.mock.timers.tick(3999);
    assert.equal(typed(), 1);
    t.mock.timers.tick(1);
    assert.equal(typed(), 2, 'again after 4 s');
    stop();
    stop();
    t.mock.timers.tick(60_000);
    assert.equal(typed(), 2, 'nothing after stop');
    const arrived = await emu.waitForCalls('sendChatAction', 2);
    assert.deepEqual(arrived.filter((c) => c.params.chat_id === chat.id).map((c) => [c.params.action, c.params.message_thread_id]), [['typing', topic], ['typing', topic]]);
  });

  test('telegram - a workspace file goes out as a photo, or as a document, with its caption', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const chat = emu.privateChat(emu.user('Jo'));
    await channel.sendFile({ address: String(chat.id), name: 'chart.jpg', data: TINY_JPEG, caption: 'the **chart**' });
    await channel.sendFile({ address: String(chat.id), name: 'data.csv', data: Buffer.from('a,b\n') });
    const [photo, doc] = emu.sent(chat.id);
    assert.deepEqual([photo!.kind, photo!.text, photo!.entities.map((e) => e.type), photo!.file!.data.equals(TINY_JPEG)], ['photo', 'the chart', ['bold'], true]);
    assert.deepEqual([doc!.kind, doc!.file!.name, doc!.file!.data.toString()], ['document', 'data.csv', 'a,b\n']);
  });

  test('telegram - a message with a file the agent sent goes out as that file with the text as its caption, as a reply', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const chat = emu.privateChat(emu.user('Lu'));
    const dir = tmpHome(t);
    fs.writeFileSync(path.join(dir, 'q3.csv'), 'deal,amount\n');
    await channel.send({ id: 'with-file', group: 'sales', address: String(chat.id), text: 'Here is **Q3**.', replyTo: '5', file: { path: path.join(dir, 'q3.csv'), name: 'q3.csv' } });
    const [doc] = emu.sent(chat.id);
    assert.deepEqual([doc!.kind, doc!.file!.name, doc!.file!.data.toString(), doc!.text], ['document', 'q3.csv', 'deal,amount\n', 'Here is Q3.']);
  });

  test('telegram - messages handled before a stop do not come again after a restart; those sent while down do', async (t) => {
    const home = tmpHome(t);
    const chat = emu.privateChat(emu.user('Kim'));
    const first = chatContext(home);
    const a = await makeChannel(emu);
    await a.start(first);
    emu.message({ chat, text: 'one' });
    await first.nextReceived(1);
    await a.stop();
    emu.message({ chat, text: 'two (while down)' });
    const second = chatContext(home);
    await started(t, second);
    emu.message({ chat, text: 'three' });
    const got = await second.nextReceived(2);
    assert.deepEqual(got.map((r) => r.text), ['two (while down)', 'three']);
  });

  test('telegram - check says what is wrong: nothing when the token works, the clear line when refused, the server when unreachable', async () => {
    const m = await telegramModule();
    const deps = (env: Record<string, string>) => ({ env, home: os.tmpdir(), assistantName: 'hako', log: recordingLog() });
    assert.equal(await m.check!(deps({ TELEGRAM_BOT_TOKEN: emu.token, TELEGRAM_API_ROOT: emu.apiRoot })), undefined);
    const revoked = await TelegramEmulator.start();
    revoked.revokeToken();
    assert.equal(await m.check!(deps({ TELEGRAM_BOT_TOKEN: revoked.token, TELEGRAM_API_ROOT: revoked.apiRoot })), TOKEN_REFUSED);
    const root = revoked.apiRoot;
    await revoked.close();
    const down = await m.check!(deps({ TELEGRAM_BOT_TOKEN: revoked.token, TELEGRAM_API_ROOT: root }));
    assert.match(down!, new RegExp(`^telegram: cannot reach the Bot API at ${root.replace(/[.]/g, '\\.')} \\(request to .*/bot\\[token\\]/getMe failed, reason: .+\\): check the network, or TELEGRAM_API_ROOT$`));
    assert.ok(!down!.includes(revoked.token.split(':')[1]!), 'no token in the message');
    assert.match((await m.check!(deps({})))!, /TELEGRAM_BOT_TOKEN is not set/);
  });

  test('telegram - the module registers its setting and secret, and importing it loads no grammY', async () => {
    const m = await telegramModule();
    assert.deepEqual([m.required, m.secrets], [['TELEGRAM_BOT_TOKEN'], ['TELEGRAM_BOT_TOKEN']]);
    const probe = `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(path.join(ROOT, 'src/channels/telegram/register.ts'))});
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/grammy/'));
      console.log(JSON.stringify(loaded));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    assert.equal(await new Promise((r) => child.once('close', r)), 0);
    assert.deepEqual(JSON.parse(out), []);
  });
});

// --- a real host reached from Telegram ------------------------------------------------

/**
 * The host loads the channel as `hako skill add telegram` makes it: through installed.ts
 * once the skill is added; while it is developed in the tree, by preloading register.ts.
 */
function loadTelegram(): Record<string, string> {
  const installed = fs.readFileSync(path.join(ROOT, 'src/channels/installed.ts'), 'utf8');
  if (installed.includes("'./telegram/register.ts'")) return {};
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(ROOT, 'src/channels/telegram/register.ts')).href}`.trim() };
}

/** A host whose bot token is in HAKO_CONFIG/secrets.env (mode 0600), as the owner puts it. */
async function hostWithTelegram(emu: TelegramEmulator, model: ModelServer, opts: { home?: string; configDir?: string; env?: Record<string, string> } = {}): Promise<HakoProcess> {
  const configDir = opts.configDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
  fs.writeFileSync(path.join(configDir, 'secrets.env'), `# the owner's channel secrets\nTELEGRAM_BOT_TOKEN=${emu.token}\n`, { mode: 0o600 });
  return HakoProcess.start({
    configDir, ...(opts.home ? { home: opts.home } : {}),
    env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test', TELEGRAM_API_ROOT: emu.apiRoot, ...loadTelegram(), ...opts.env },
  });
}

async function run(cmd: string, args: string[]): Promise<string> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  await new Promise((r) => child.once('close', r));
  return out;
}

async function cli(h: HakoProcess, args: string[]): Promise<string> {
  const r = await h.cli(args);
  assert.equal(r.code, 0, `hako ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The last user text the model was sent. */
function lastUserText(req: RecordedRequest): string {
  const user = (req.json?.messages ?? []).findLast((m: { role: string }) => m.role === 'user');
  return typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? '');
}

/** The bot's messages in `chat` from the one answering `m` on (a split reply: its pieces), once `count` are there. */
async function answer(emu: TelegramEmulator, chat: TgChat, m: { message_id: number }, count = 1, host?: HakoProcess) {
  const from = () => emu.sent(chat.id).findIndex((s) => s.reply_to === m.message_id);
  const pieces = () => (from() < 0 ? [] : emu.sent(chat.id).slice(from()));
  await emu.waitUntil(() => pieces().length >= count, () => `${count} messages answering message ${m.message_id} in chat ${chat.id}; it has ${JSON.stringify(emu.sent(chat.id).map((s) => [s.reply_to, s.text.slice(0, 60)]))}${host ? `; host output:\n${host.output.slice(-4000)}` : ''}`);
  return pieces().slice(0, count);
}

/** The owner's Telegram user id in the host tests (TELEGRAM_OWNER_IDS): trusted in group chats. */
const OWNER_ID = 990001;

describe('a real hako host reached from Telegram', { timeout: 600_000 }, () => {
  let emu: TelegramEmulator;
  let model: ModelServer;
  let h: HakoProcess;
  let owner: TgChat;

  before(async () => {
    emu = await TelegramEmulator.start({ username: 'hako_test_bot' });
    model = await startModelServer();
    h = await hostWithTelegram(emu, model, { env: { TELEGRAM_OWNER_IDS: String(OWNER_ID) } });
    assert.match(h.output, /chat channels: on: telegram/);
    owner = emu.privateChat(emu.user('Olivia', { last: 'Owner' }));
    await cli(h, ['groups', 'set', 'main', '--chat', `telegram:${owner.id}`]);
  });
  after(async () => {
    await h?.stop();
    h?.cleanup();
    await model?.close();
    await emu?.close();
  });

  test('telegram host - a private chat is answered in the chat, as a reply, with typing shown', async () => {
    const m = emu.message({ chat: owner, text: 'what is on my list today?' });
    const [reply] = await answer(emu, owner, m);
    assert.match(reply!.text, /^echo: .*what is on my list today\?/);
    assert.ok(emu.actions(owner.id).includes('typing'), 'typing was shown');
    const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('what is on my list today?'));
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.sender, 'Olivia Owner');
  });

  test('telegram host - a group message without the mention is stored, not answered; the mention is answered with it as context', async () => {
    const group = emu.group('Sales team', { supergroup: true });
    await cli(h, ['groups', 'add', 'sales', '--chat', `telegram:${group.id}`]);
    const bob = emu.user('Bob'), amy = emu.user('Amy', { id: OWNER_ID });
    emu.message({ chat: group, from: bob, text: 'the launch moved to Friday' });
    const asked = emu.message({ chat: group, from: amy, text: 'when is the launch?', mention: true });
    await answer(emu, group, asked);
    const sent = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(sent, /Bob: the launch moved to Friday/);
    assert.match(sent, /Amy: @hako_test_bot when is the launch\?/);
    await h.settled();
    assert.equal(emu.sent(group.id).length, 1, 'one answer in the group');
    const stored = await h.messages('sales');
    assert.deepEqual(stored.map((x) => [x.role, x.sender]), [['user', 'Bob'], ['user', 'Amy'], ['assistant', stored[2]!.sender]]);
  });

  test('telegram host - an unknown chat is reported to main once, and nothing of it is stored or seen by the model', async () => {
    const random = emu.group('Random people');
    const eve = emu.user('Eve');
    emu.message({ chat: random, from: eve, text: '@hako_test_bot secret plan one', mention: false });
    emu.message({ chat: random, from: eve, text: 'secret plan two', mention: true });
    // Updates are taken in order: once the owner's next message is answered, both were handled.
    await answer(emu, owner, emu.message({ chat: owner, text: 'anything new?' }));
    await h.settled();
    const notices = (await h.messages('main')).filter((x) => x.role === 'assistant' && x.text.includes(`telegram:${random.id}`));
    assert.equal(notices.length, 1, `one notice: ${JSON.stringify(notices.map((x) => x.text))}`);
    assert.match(notices[0]!.text, new RegExp(`"Random people" \\(${random.id}\\).*hako groups add \\S+ --chat telegram:${random.id}`));
    assert.ok(!model.requests.some((r) => r.body.includes('secret plan')), 'the model never saw the stranger');
    for (const g of ['main', 'sales']) assert.ok(!(await h.messages(g)).some((x) => x.text.includes('secret plan')), `nothing stored in ${g}`);
    assert.equal(emu.sent(random.id).length, 0, 'nothing sent to the stranger');
    assert.equal(emu.texts(owner.id).filter((x) => x.includes(`telegram:${random.id}`)).length, 1, 'the owner saw the notice in Telegram, once');
  });

  test('telegram host - a 5,000-character reply arrives as two messages cut at a paragraph, nothing lost', async () => {
    const paragraph = (i: number) => `Paragraph ${i}: ${'All work and no play makes a long reply. '.repeat(11).trim()}`;
    const long = Array.from({ length: 11 }, (_, i) => paragraph(i)).join('\n\n').slice(0, 5000);
    assert.ok(long.length === 5000);
    model.script({ text: long });
    const m = emu.message({ chat: owner, text: 'write me a long answer' });
    const pieces = await answer(emu, owner, m, 2);
    for (const p of pieces) assert.ok(p.text.length <= 4096);
    assert.match(pieces[1]!.text, /^Paragraph \d+:/, 'cut at a paragraph');
    assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
    assert.deepEqual(pieces.map((p) => p.reply_to), [m.message_id, undefined], 'the first piece answers the message');
    await h.settled();
    assert.equal(emu.sent(owner.id).at(-1), pieces[1], 'nothing after the two pieces');
  });

  test('telegram host - a photo lands in the group workspace, where the agent reads it', async () => {
    const photo = Buffer.concat([TINY_JPEG, Buffer.alloc(3000, 1)]);
    model.script(
      (req) => {
        const at = /\[photo: (\/workspace\/group\/inbox\/[^\]\s]+)\]/.exec(lastUserText(req));
        return at ? { toolCalls: [{ name: 'bash', args: { command: `wc -c < ${at[1]}` } }] } : { text: `no photo path in ${lastUserText(req)}` };
      },
      (req) => {
        const last = req.json.messages.at(-1);
        return { text: `the photo has ${String(last.content).match(/\d+/)?.[0]} bytes` };
      },
    );
    const [reply] = await answer(emu, owner, emu.message({ chat: owner, photo, caption: 'what is this?' }));
    assert.equal(reply!.text, `the photo has ${photo.length} bytes`);
    const inbox = path.join(h.home, 'groups', 'main', 'inbox');
    const files = fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.equal(files.length, 1);
    assert.deepEqual(fs.readFileSync(path.join(files[0]!.parentPath, files[0]!.name)), photo);
  });

  test('telegram host - a 429 from Telegram is waited out and the reply arrives once', async () => {
    emu.rateLimit({ calls: 2, retryAfter: 1, methods: ['sendMessage'] });
    const [reply] = await answer(emu, owner, emu.message({ chat: owner, text: 'are you rate limited?' }));
    assert.match(reply!.text, /are you rate limited\?/);
    await h.settled();
    assert.equal(emu.texts(owner.id).filter((t) => t.includes('are you rate limited?')).length, 1);
  });

  test('telegram host - the token is in no log line and in no container', async () => {
    const secret = emu.token.split(':')[1]!;
    assert.ok(!h.output.includes(secret), 'not on the console');
    assert.ok(!fs.readFileSync(path.join(h.home, 'logs', 'hako.log'), 'utf8').includes(secret), 'not in the log file');
    assert.ok(!fs.readFileSync(path.join(h.home, 'hako.db')).includes(secret), 'not in the database');
    const ids = (await run('docker', ['ps', '-aq', '--filter', `label=dev.hako.home=${h.home}`])).split('\n').filter(Boolean);
    assert.ok(ids.length >= 1, 'the warm container is there to look into');
    for (const id of ids) assert.ok(!(await run('docker', ['inspect', id])).includes(secret), `not in container ${id}'s configuration`);
    for (const id of ids) assert.ok(!(await run('docker', ['exec', id, 'sh', '-c', 'cat /proc/1/environ; env; ls -R /workspace 2>/dev/null'])).includes(secret), `not inside container ${id}`);
  });
});

describe('a revoked bot token on a running host', { timeout: 300_000 }, () => {
  test('telegram host - a revoked token is one clear line in the log and in hako status; the host keeps serving', async (t) => {
    const emu = await TelegramEmulator.start({ username: 'hako_test_bot' });
    const model = await startModelServer();
    const h = await hostWithTelegram(emu, model);
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); await emu.close(); });
    assert.match(await cli(h, ['status']), /channels: .*telegram ok/);
    await emu.waitForCalls('getUpdates', 1);
    emu.revokeToken();
    const logged = await h.waitForLog((e) => e.msg.startsWith('telegram: the bot token was refused'));
    assert.equal(logged.msg, TOKEN_REFUSED);
    assert.match(await cli(h, ['status']), new RegExp(`telegram — PROBLEM: ${TOKEN_REFUSED.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const polls = emu.callsOf('getUpdates').length;
    const id = await h.post('main', 'still there?');
    await h.waitForReplies('main', id);
    assert.equal(emu.callsOf('getUpdates').length, polls, 'no polling after the refusal: no crash loop');
    assert.equal(h.logEvents().filter((e) => e.msg.includes('the bot token was refused')).length, 1, 'logged once');
    assert.equal(h.child.exitCode, null, 'the host runs on');
  });
});

describe('kill -9 of the host during a Telegram turn', { timeout: 600_000 }, () => {
  // Inside a turn: the batch handed to the agent; the reply committed, not yet sent. (Killed
  // while a sendMessage is in flight — e.g. at "before-done", right after the reply went out —
  // Telegram may have shown the reply before hako recorded it: the restart sends it again.
  // Telegram has no idempotency key, and a second copy beats a lost reply.)
  for (const point of ['batch-sent', 'output-applied']) {
    test(`telegram host - killed at "${point}": after a restart the message is answered once in Telegram`, async (t) => {
      const emu = await TelegramEmulator.start({ username: 'hako_test_bot' });
      const model = await startModelServer();
      t.after(async () => { await model.close(); await emu.close(); });
      const first = await hostWithTelegram(emu, model);
      t.after(() => first.cleanup());
      const owner = emu.privateChat(emu.user('Olivia'));
      await cli(first, ['groups', 'set', 'main', '--chat', `telegram:${owner.id}`]);
      await first.stop();
      const crashing = await hostWithTelegram(emu, model, { home: first.home, configDir: first.configDir, env: { HAKO_FAILPOINT: point } });
      const m = emu.message({ chat: owner, text: `survive ${point}` });
      const end = await crashing.exited();
      assert.equal(end.signal, 'SIGKILL', `the host died at ${point}`);
      const h = await hostWithTelegram(emu, model, { home: first.home, configDir: first.configDir });
      t.after(() => h.stop());
      const [reply] = await answer(emu, owner, m, 1, h);
      assert.match(reply!.text, new RegExp(`survive ${point}`));
      await h.settled();
      assert.equal(emu.texts(owner.id).filter((x) => x.includes(`survive ${point}`)).length, 1, `answered once: ${JSON.stringify(emu.texts(owner.id))}`);
      assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes(`survive ${point}`)).length, 1, 'stored once');
    });
  }
});
