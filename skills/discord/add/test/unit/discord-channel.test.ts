// The Discord channel with the real discord.js against the local Discord emulator
// (test/support/discord-emulator.ts) over real HTTP and a real WebSocket: the shared channel
// conformance suite, then the gateway (identify, heartbeat, resume, reconnect, invalid
// session, a refused token), intake (DMs, mentions, threads, attachments) and sending
// (replies, splitting, pings, files, 429s, typing) with a recording context.

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
import '../../src/channels/discord/register.ts';
import { installedChannels } from '../../src/channels/registry.ts';
import { INTENTS_REFUSED, TOKEN_REFUSED } from '../../src/channels/discord/errors.ts';
import type { DiscordChannel } from '../../src/channels/discord/channel.ts';
import { DiscordState } from '../../src/channels/discord/state.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { DiscordEmulator } from '../support/discord-emulator.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { lines.push(`${level} ${msg} ${JSON.stringify(fields)}`); };
  return { lines, debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

async function discordModule() {
  const m = (await installedChannels()).find((x) => x.name === 'discord');
  assert.ok(m, 'the discord module registered itself');
  return m;
}

const ownHomes: string[] = [];
after(() => {
  for (const h of ownHomes) fs.rmSync(h, { recursive: true, force: true });
  // discord.js (its @discordjs/ws) can arm a reconnect after a client was destroyed while the
  // emulator went away, and then retries for ever: the same known library bug the host guards
  // against in `hako start`. Every test here has finished: the file's process must end too,
  // or the test runner waits on it. Unref'd, this fires only if such a handle holds it.
  setTimeout(() => process.exit(), 2000).unref();
});

async function makeChannel(emu: DiscordEmulator, opts: { home?: string; env?: Record<string, string>; log?: Logger } = {}): Promise<DiscordChannel> {
  const m = await discordModule();
  const env = { DISCORD_BOT_TOKEN: emu.token, DISCORD_API_ROOT: emu.apiRoot, ...opts.env };
  // A home of its own: the channel keeps its state file there.
  const home = opts.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-dc-home-'));
  if (!opts.home) ownHomes.push(home);
  return await m.create({ env, home, assistantName: 'hako', log: opts.log ?? recordingLog() }) as DiscordChannel;
}

/** A core stand-in: chats bound to groups (each with a real folder under `home`), every received message kept. */
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
    listGroups: () => [...new Set(Object.values(bindings))].map((g) => ({ ...group(g), chats: Object.keys(bindings).filter((c) => bindings[c] === g) })),
  };
}

function tmpHome(t: { after: (fn: () => void) => void }): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-dc-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

// --- the conformance suite ---------------------------------------------------------------

channelConformance('discord', async () => {
  const emu = await DiscordEmulator.start();
  const chat = emu.dm(emu.user('Conformance'));
  return {
    channel: await makeChannel(emu),
    address: chat.id,
    limit: 2000,
    sent: async () => emu.texts(chat.id),
    refuseNext: () => emu.refuseNext(404, 10003, 'Unknown Channel'),
    close: () => emu.close(),
  };
});

// --- the channel against the emulator --------------------------------------------------

describe('discord channel against the emulator', { timeout: 60_000 }, () => {
  let emu: DiscordEmulator;
  before(async () => { emu = await DiscordEmulator.start({ username: 'hako', heartbeatMs: 200 }); });
  after(() => emu.close());

  async function started(t: { after: (fn: () => Promise<void>) => void }, ctx: ChannelContext, opts: Parameters<typeof makeChannel>[1] = {}): Promise<DiscordChannel> {
    const channel = await makeChannel(emu, opts);
    await channel.start(ctx);
    t.after(() => channel.stop());
    return channel;
  }

  test('discord - the gateway: Hello, Identify, READY and GUILD_CREATE, heartbeats acknowledged; a DM arrives direct and untrusted', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const before = emu.ops.length;
    const channel = await started(t, ctx);
    assert.equal(channel.bot?.id, emu.bot.id);
    await emu.waitUntil(() => emu.ops.slice(before).filter((op) => op === 1).length >= 2, () => `two heartbeats; ops ${emu.ops.slice(before)}`);
    assert.equal(emu.ops[before], 2, 'identify first');
    const alice = emu.user('Alice');
    const dm = emu.dm(alice);
    const m = emu.message({ channel: dm, text: 'What is on my list?' });
    const [got] = await ctx.nextReceived(1);
    assert.deepEqual(got, { chat: `discord:${dm.id}`, chatTitle: 'Alice (direct message)', sender: 'Alice', senderId: `discord:${alice.id}`, trusted: false, text: 'What is on my list?', direct: true, ref: m.id });
    assert.equal(channel.problem(), undefined);
  });

  test('discord - DISCORD_OWNER_IDS makes its users trusted; the bot\'s own and other bots\' messages are ignored', async (t) => {
    const owner = emu.user('Olivia');
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx, { env: { DISCORD_OWNER_IDS: owner.id } });
    const dm = emu.dm(owner);
    emu.message({ channel: dm, from: emu.user('Robo', { bot: true }), text: 'beep' });
    await channel.send({ id: 'own', group: 'g', address: dm.id, text: 'my own words' });
    emu.message({ channel: dm, text: 'hi' });
    const [got] = await ctx.nextReceived(1);
    assert.deepEqual([got!.text, got!.trusted, ctx.received.length], ['hi', true, 1]);
  });

  test('discord - in a guild channel only a mention is direct; the reply answers it in the channel, pinging nobody else', async (t) => {
    const general = emu.textChannel('general');
    const ctx = chatContext(tmpHome(t), { [`discord:${general.id}`]: 'team' });
    const channel = await started(t, ctx);
    const bob = emu.user('Bob');
    emu.message({ channel: general, from: bob, text: 'the launch moved to Friday' });
    const asked = emu.message({ channel: general, from: bob, text: 'when is the launch?', mention: true });
    const all = await ctx.nextReceived(2);
    assert.deepEqual(all.map((r) => [r.text, r.direct, r.chatTitle]), [['the launch moved to Friday', false, '#general in Test Guild'], ['@hako when is the launch?', true, '#general in Test Guild']]);
    await channel.send({ id: 'r1', group: 'team', address: general.id, text: 'Friday. @everyone @here <@&123456789012345678> take note', replyTo: all[1]!.ref! });
    const [reply] = emu.sent(general.id);
    assert.deepEqual([reply!.content, reply!.reply_to, reply!.allowed_mentions], ['Friday. @everyone @here <@&123456789012345678> take note', asked.id, { parse: [], replied_user: true }]);
  });

  test('discord - a thread message reaches its parent channel\'s group and the reply lands in the thread', async (t) => {
    const ops = emu.textChannel('ops');
    const ctx = chatContext(tmpHome(t), { [`discord:${ops.id}`]: 'ops' });
    const channel = await started(t, ctx);
    const thread = emu.thread(ops, 'incident 42');
    const asked = emu.message({ channel: thread, from: emu.user('Dan'), text: 'db down?', mention: true });
    const [got] = await ctx.nextReceived(1);
    assert.deepEqual([got!.chat, got!.ref], [`discord:${ops.id}`, `${asked.id}/${thread.id}`]);
    await channel.send({ id: 'th', group: 'ops', address: ops.id, text: 'looking', replyTo: got!.ref! });
    assert.deepEqual(emu.texts(thread.id), ['looking']);
    assert.deepEqual(emu.texts(ops.id), []);
  });

  test('discord - a 5,000-character reply arrives as three messages cut at paragraphs, the first answering the message', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const dm = emu.dm(emu.user('Lea'));
    const asked = emu.message({ channel: dm, text: 'long please' });
    const paragraph = (i: number) => `Paragraph ${i}: ${'All work and no play makes a long reply. '.repeat(11).trim()}`;
    const long = Array.from({ length: 11 }, (_, i) => paragraph(i)).join('\n\n').slice(0, 5000);
    await channel.send({ id: 'long', group: 'g', address: dm.id, text: long, replyTo: asked.id });
    const sent = emu.sent(dm.id);
    assert.equal(sent.length, 3);
    for (const s of sent) assert.ok(s.content.length <= 2000 && /^Paragraph \d+:/.test(s.content));
    assert.equal(sent.map((s) => s.content).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
    assert.deepEqual(sent.map((s) => s.reply_to), [asked.id, undefined, undefined]);
  });

  test('discord - a 429 with retry_after is waited out by discord.js\'s queue and the message arrives once', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const dm = emu.dm(emu.user('Gus'));
    emu.rateLimit({ calls: 1, retryAfter: 1 });
    await channel.send({ id: 'rl', group: 'g', address: dm.id, text: 'after the wait' });
    assert.deepEqual(emu.texts(dm.id), ['after the wait']);
    assert.equal(emu.callsOf('POST', new RegExp(`^/channels/${dm.id}/messages$`)).length, 2, 'refused once, then sent');
  });

  test('discord - a dropped gateway connection is resumed (op 6) and the message sent while it was down arrives', async (t) => {
    const log = recordingLog();
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx, { log });
    const dm = emu.dm(emu.user('Hal'));
    const identifies = emu.ops.filter((op) => op === 2).length;
    emu.dropConnections();
    emu.message({ channel: dm, text: 'sent while the connection was down' });
    const [got] = await ctx.nextReceived(1);
    assert.equal(got!.text, 'sent while the connection was down');
    assert.ok(emu.ops.includes(6), 'resumed');
    assert.equal(emu.ops.filter((op) => op === 2).length, identifies, 'no new identify');
    await emu.waitUntil(() => channel.problem() === undefined, () => `no problem; it is ${channel.problem()}`);
    assert.ok(log.lines.some((l) => l.includes('the gateway session resumed')));
  });

  test('discord - op 7 Reconnect resumes; op 9 Invalid Session identifies again; messages still arrive', async (t) => {
    const ctx = chatContext(tmpHome(t));
    await started(t, ctx);
    const dm = emu.dm(emu.user('Ira'));
    const resumes = emu.ops.filter((op) => op === 6).length;
    emu.requestReconnect();
    emu.message({ channel: dm, text: 'after reconnect' });
    await ctx.nextReceived(1);
    assert.equal(emu.ops.filter((op) => op === 6).length, resumes + 1);
    const identifies = emu.ops.filter((op) => op === 2).length;
    emu.invalidateSessions();
    await emu.waitUntil(() => emu.ops.filter((op) => op === 2).length > identifies && emu.connections > 0, () => 'a new identify');
    await emu.waitUntil(() => emu.ops.filter((op) => op === 1).length > 0, () => 'a heartbeat');
    emu.message({ channel: dm, text: 'after a new session' });
    const got = await ctx.nextReceived(2);
    assert.deepEqual(got.map((r) => r.text), ['after reconnect', 'after a new session']);
  });

  test('discord - an attachment from a bound chat is saved to the workspace; over the limit or from a stranger it is not fetched', async (t) => {
    const home = tmpHome(t);
    const owner = emu.user('Erin');
    const dm = emu.dm(owner);
    const team = emu.textChannel('team');
    const ctx = chatContext(home, { [`discord:${dm.id}`]: 'erin', [`discord:${team.id}`]: 'team' });
    await started(t, ctx, { home, env: { DISCORD_OWNER_IDS: owner.id, HAKO_ATTACHMENT_MAX_BYTES: '1000' } });
    const pdf = Buffer.from('%PDF-1.4 report');
    emu.message({ channel: dm, text: 'the report', attachments: [{ name: '../Q3 report.pdf', data: pdf, contentType: 'application/pdf' }] });
    emu.message({ channel: dm, attachments: [{ name: 'big.bin', data: Buffer.alloc(5000) }] });
    emu.message({ channel: team, from: emu.user('Mallory'), attachments: [{ name: 'x.sh', data: Buffer.from('payload') }] });
    const [a, big, stranger] = await ctx.nextReceived(3);
    const agentPath = /^\[file: (\/workspace\/group\/inbox\/\S+) \(application\/pdf\)\]$/m.exec(a!.text)?.[1];
    assert.ok(agentPath, a!.text);
    assert.match(agentPath!, /Q3_report\.pdf$/);
    assert.deepEqual(fs.readFileSync(path.join(groupPaths(home, 'erin').folder, agentPath!.slice('/workspace/group/'.length))), pdf);
    assert.equal(big!.text, '[file "big.bin": not saved: over the 1000 bytes limit (HAKO_ATTACHMENT_MAX_BYTES)]');
    assert.equal(stranger!.text, '[file "x.sh": not saved: the sender may not engage this group]');
    assert.equal(fs.existsSync(path.join(groupPaths(home, 'team').folder, 'inbox')), false);
  });

  test('discord - a file the agent sent goes out as a multipart attachment with the text, as a reply', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const dm = emu.dm(emu.user('Jo'));
    const asked = emu.message({ channel: dm, text: 'the numbers?' });
    const dir = tmpHome(t);
    fs.writeFileSync(path.join(dir, 'q3.csv'), 'deal,amount\n');
    await channel.send({ id: 'file', group: 'g', address: dm.id, text: 'Here is **Q3**.', replyTo: asked.id, file: { path: path.join(dir, 'q3.csv'), name: 'q3.csv' } });
    const [sent] = emu.sent(dm.id);
    assert.deepEqual([sent!.encoding, sent!.content, sent!.reply_to, sent!.files.map((f) => [f.name, f.data.toString()])], ['multipart', 'Here is **Q3**.', asked.id, [['q3.csv', 'deal,amount\n']]]);
  });

  test('discord - typing posts to /typing at once and every 8 s until stopped', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const dm = emu.dm(emu.user('Tim'));
    t.mock.timers.enable({ apis: ['setInterval'] });
    const stop = channel.typing(dm.id);
    await emu.waitUntil(() => emu.typings(dm.id) === 1, () => 'the first typing');
    t.mock.timers.tick(8000);
    await emu.waitUntil(() => emu.typings(dm.id) === 2, () => 'the second typing');
    stop();
    stop();
    t.mock.timers.tick(60_000);
    const calls = emu.calls.length;
    await channel.send({ id: 'after-typing', group: 'g', address: dm.id, text: 'done' });
    assert.equal(emu.typings(dm.id), 2, 'nothing after stop');
    assert.equal(emu.calls.length, calls + 1);
  });

  test('discord - a new session takes the messages written since the kept id oldest first, 100 a page, through the same filters, before the live ones; the newest id is kept', async (t) => {
    const home = tmpHome(t);
    const owner = emu.user('Pia');
    const backlog = emu.textChannel('backlog');
    const last = emu.message({ channel: backlog, from: owner, text: 'taken before the stop' });
    const state = DiscordState.load({ home, warn: assert.fail });
    state.advance(backlog.id, last.id);
    state.save();
    const missed = Array.from({ length: 250 }, (_, i) => emu.message({ channel: backlog, from: owner, text: `missed ${i}`, mention: i === 7 }));
    emu.message({ channel: backlog, from: emu.user('Robo', { bot: true }), text: 'beep' });
    emu.message({ channel: backlog, from: emu.user('Mallory'), attachments: [{ name: 'x.sh', data: Buffer.from('payload') }] });
    const ctx = chatContext(home, { [`discord:${backlog.id}`]: 'team' });
    const calls = emu.calls.length;
    const channel = await started(t, ctx, { home, env: { DISCORD_OWNER_IDS: owner.id } });
    const live = emu.message({ channel: backlog, from: owner, text: 'live after the start' });
    const got = await ctx.nextReceived(252);
    await channel.stop();
    assert.equal(got.length, 252, 'nothing taken twice, the bot\'s message not at all');
    assert.deepEqual(got.slice(0, 250).map((r) => [r.text, r.ref, r.direct]), missed.map((m, i) => [i === 7 ? '@hako missed 7' : `missed ${i}`, m.id, i === 7]));
    assert.deepEqual(got.slice(250).map((r) => r.text), ['[file "x.sh": not saved: the sender may not engage this group]', 'live after the start']);
    assert.equal(fs.existsSync(path.join(groupPaths(home, 'team').folder, 'inbox')), false, 'the stranger\'s file was not fetched');
    const pages = emu.calls.slice(calls).filter((c) => c.method === 'GET' && c.route === `/channels/${backlog.id}/messages`).map((c) => Object.fromEntries(new URLSearchParams(c.query)));
    assert.deepEqual(pages, [{ after: last.id, limit: '100' }, { after: missed[99]!.id, limit: '100' }, { after: missed[199]!.id, limit: '100' }]);
    assert.equal(DiscordState.load({ home, warn: assert.fail }).last(backlog.id), live.id);
  });

  test('discord - a first start replays no history: each bound channel\'s newest message (an empty one: 0) is kept as where catching up starts', async (t) => {
    const home = tmpHome(t);
    const talk = emu.textChannel('talk');
    const quiet = emu.textChannel('quiet');
    const empty = emu.textChannel('empty');
    const old = emu.user('Otto');
    emu.message({ channel: talk, from: old, text: 'old history in talk' });
    emu.message({ channel: quiet, from: old, text: 'old history in quiet, one' });
    const quietNewest = emu.message({ channel: quiet, from: old, text: 'old history in quiet, two' });
    const ctx = chatContext(home, { [`discord:${talk.id}`]: 'talk', [`discord:${quiet.id}`]: 'quiet', [`discord:${empty.id}`]: 'empty' });
    const channel = await started(t, ctx, { home });
    const live = emu.message({ channel: talk, from: old, text: 'new after the start' });
    // Taken one at a time: once the live message is in, a replay would have come before it.
    await ctx.nextReceived(1);
    await channel.stop();
    assert.deepEqual(ctx.received.map((r) => r.text), ['new after the start']);
    const kept = DiscordState.load({ home, warn: assert.fail });
    assert.deepEqual([kept.last(talk.id), kept.last(quiet.id), kept.last(empty.id)], [live.id, quietNewest.id, '0']);
  });

  test('discord - a resumed session fetches nothing; a session that could not be resumed (op 9) fetches what was written while none was connected, once', async (t) => {
    const home = tmpHome(t);
    const room = emu.textChannel('gap');
    const from = emu.user('Quinn');
    const ctx = chatContext(home, { [`discord:${room.id}`]: 'gap' });
    await started(t, ctx, { home });
    emu.message({ channel: room, from, text: 'first' });
    await ctx.nextReceived(1);
    const fetches = () => emu.calls.filter((c) => c.method === 'GET' && c.route === `/channels/${room.id}/messages`);
    const before = fetches().length;
    emu.dropConnections();
    const dropped = emu.message({ channel: room, from, text: 'during the drop' });
    await ctx.nextReceived(2);
    assert.ok(emu.ops.includes(6), 'resumed');
    assert.equal(fetches().length, before, 'a resumed session replays by itself');
    emu.invalidateSessions();
    // No session is left: the gateway never carries this one.
    emu.message({ channel: room, from, text: 'while no session was connected' });
    await ctx.nextReceived(3);
    assert.equal(new URLSearchParams(fetches()[before]!.query).get('after'), dropped.id);
    emu.message({ channel: room, from, text: 'in the new session' });
    await ctx.nextReceived(4);
    assert.deepEqual(ctx.received.map((r) => r.text), ['first', 'during the drop', 'while no session was connected', 'in the new session']);
  });

  test('discord - a token reset while connected (close 4004) is one clear line, logged once; no reconnecting; sends fail with it', async (t) => {
    const own = await DiscordEmulator.start({ heartbeatMs: 200 });
    t.after(() => own.close());
    const log = recordingLog();
    const channel = await makeChannel(own, { log });
    await channel.start(chatContext(tmpHome(t)));
    t.after(() => channel.stop());
    const dm = own.dm(own.user('Ivy'));
    own.revokeToken();
    // The channel learns of the close on its own socket, after the emulator's last event: look again each turn of the loop.
    while (channel.problem() === undefined) await new Promise((r) => setImmediate(r));
    assert.equal(channel.problem(), TOKEN_REFUSED);
    const ops = own.ops.length;
    await assert.rejects(channel.send({ id: 'x', group: 'g', address: dm.id, text: 'hi' }), (err: Error) => err.message === TOKEN_REFUSED);
    await channel.stop();
    assert.equal(own.connections, 0, 'no connection open');
    assert.equal(own.ops.length, ops, 'nothing sent on the gateway after the refusal: no crash loop');
    assert.equal(log.lines.filter((l) => l.includes('the bot token was refused')).length, 1, 'logged once');
    assert.ok(!log.lines.some((l) => l.includes(own.token)), 'the token is in no log line');
  });

  test('discord - a token refused at start makes start reject with the clear line', async (t) => {
    const own = await DiscordEmulator.start();
    t.after(() => own.close());
    own.revokeToken();
    const channel = await makeChannel(own);
    await assert.rejects(channel.start(chatContext(os.tmpdir())), (err: Error) => err.message === TOKEN_REFUSED);
    assert.equal(channel.problem(), TOKEN_REFUSED);
    await channel.stop();
  });

  test('discord - a bot without the Message Content intent (close 4014) gets one line saying where to turn it on, and no retries', async (t) => {
    const own = await DiscordEmulator.start();
    t.after(() => own.close());
    own.disallowMessageContent();
    const log = recordingLog();
    const channel = await makeChannel(own, { log });
    await assert.rejects(channel.start(chatContext(os.tmpdir())), (err: Error) => err.message === INTENTS_REFUSED);
    assert.equal(channel.problem(), INTENTS_REFUSED);
    assert.match(INTENTS_REFUSED, /Privileged Gateway Intents, turn on MESSAGE CONTENT INTENT/);
    assert.deepEqual(own.ops, [2], 'one identify, no retry');
    assert.equal(log.lines.filter((l) => l.includes('MESSAGE CONTENT')).length, 1, 'logged once');
    await channel.stop();
  });

  test('discord - Discord unreachable at start: start resolves, the problem says so, and the login is tried again with backoff until it works', async (t) => {
    const gone = await DiscordEmulator.start();
    const { apiRoot, token } = gone;
    const port = Number(new URL(apiRoot).port);
    await gone.close();
    const log = recordingLog();
    const ctx = chatContext(tmpHome(t));
    const channel = await makeChannel(gone, { log });
    await channel.start(ctx);
    t.after(() => channel.stop());
    assert.match(channel.problem()!, /^discord: cannot reach Discord at http:\/\/127\.0\.0\.1:\d+\/api \(.+\); trying again \(check the network, or DISCORD_API_ROOT\)$/);
    const back = await DiscordEmulator.start({ port, token });
    t.after(() => back.close());
    await back.waitUntil(() => back.ops.includes(2), () => 'an identify after the backoff');
    while (channel.problem() !== undefined) await new Promise((r) => setImmediate(r));
    const dm = back.dm(back.user('Una'));
    back.message({ channel: dm, text: 'you are back' });
    const [got] = await ctx.nextReceived(1);
    assert.equal(got!.text, 'you are back');
    assert.equal(log.lines.filter((l) => l.startsWith('warn discord: cannot reach Discord')).length, 1, 'warned once');
  });

  test('discord - check says what is wrong: nothing when the token works, the clear line when refused or without the Message Content intent, the server when unreachable', async () => {
    const m = await discordModule();
    const deps = (env: Record<string, string>) => ({ env, home: os.tmpdir(), assistantName: 'hako', log: recordingLog() });
    assert.equal(await m.check!(deps({ DISCORD_BOT_TOKEN: emu.token, DISCORD_API_ROOT: emu.apiRoot })), undefined);
    const noIntent = await DiscordEmulator.start();
    noIntent.disallowMessageContent();
    assert.equal(await m.check!(deps({ DISCORD_BOT_TOKEN: noIntent.token, DISCORD_API_ROOT: noIntent.apiRoot })), INTENTS_REFUSED);
    await noIntent.close();
    const revoked = await DiscordEmulator.start();
    revoked.revokeToken();
    assert.equal(await m.check!(deps({ DISCORD_BOT_TOKEN: revoked.token, DISCORD_API_ROOT: revoked.apiRoot })), TOKEN_REFUSED);
    const root = revoked.apiRoot;
    await revoked.close();
    const down = await m.check!(deps({ DISCORD_BOT_TOKEN: revoked.token, DISCORD_API_ROOT: root }));
    assert.match(down!, /^discord: cannot reach the Discord API at http:\/\/127\.0\.0\.1:\d+\/api \(.+\): check the network, or DISCORD_API_ROOT$/);
    assert.ok(!down!.includes(revoked.token));
    assert.match((await m.check!(deps({})))!, /DISCORD_BOT_TOKEN is not set/);
  });

  test('discord - the module registers its settings and secret, and importing it loads no discord.js', async () => {
    const m = await discordModule();
    assert.deepEqual([m.required, m.secrets], [['DISCORD_BOT_TOKEN'], ['DISCORD_BOT_TOKEN']]);
    const probe = `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(path.join(ROOT, 'src/channels/discord/register.ts'))});
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/discord.js/') || k.includes('/node_modules/@discordjs/'));
      console.log(JSON.stringify(loaded));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    assert.equal(await new Promise((r) => child.once('close', r)), 0);
    assert.deepEqual(JSON.parse(out), []);
  });
});
