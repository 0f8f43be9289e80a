// The WhatsApp Cloud API channel, made by its registered module, against the local Cloud
// API emulator (test/support/whatsapp-cloud-emulator.ts) over real HTTP: the shared channel
// conformance suite, then the webhook (verification, signature, replay, statuses), the
// mapping of messages, replies, files, the typing indicator, rate limits and a revoked
// token, with a core stand-in as the context. The host's side is test/e2e/whatsapp.test.ts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Channel, ChannelContext, ChatInbound, ReceiveResult, WebhookRequest } from '../../src/core/channel.ts';
import type { Group, StoredMessage } from '../../src/core/store-contract.ts';
import type { Logger } from '../../src/core/log.ts';
import { groupPaths } from '../../src/core/paths.ts';
import '../../src/channels/whatsapp/register.ts';
import { channelOff, installedChannels } from '../../src/channels/registry.ts';
import { CloudChannel } from '../../src/channels/whatsapp/cloud.ts';
import { cloudConfig } from '../../src/channels/whatsapp/config.ts';
import { TOKEN_REFUSED } from '../../src/channels/whatsapp/graph.ts';
import { MAX_AGE_S } from '../../src/channels/whatsapp/inbound.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { signWebhook, TINY_JPEG, WhatsAppCloudEmulator } from '../support/whatsapp-cloud-emulator.ts';

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { lines.push(`${level} ${msg} ${JSON.stringify(fields)}`); };
  return { lines, debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

async function whatsappModule() {
  const m = (await installedChannels()).find((x) => x.name === 'whatsapp');
  assert.ok(m, 'the whatsapp module registered itself');
  return m;
}

async function moduleChannel(emu: WhatsAppCloudEmulator, opts: { home?: string; env?: Record<string, string>; log?: Logger } = {}): Promise<Channel> {
  const m = await whatsappModule();
  return m.create({ env: { ...emu.env(), ...opts.env }, home: opts.home ?? os.tmpdir(), assistantName: 'hako', log: opts.log ?? recordingLog() });
}

/** A channel with fast rate-limit waits and a movable clock. */
function fastChannel(emu: WhatsAppCloudEmulator, opts: { home?: string; env?: Record<string, string>; log?: Logger; now?: () => number } = {}): CloudChannel {
  return new CloudChannel({
    config: cloudConfig({ ...emu.env(), ...opts.env }), home: opts.home ?? os.tmpdir(), log: opts.log ?? recordingLog(),
    rateWaitsMs: [10, 20, 40], ...(opts.now ? { now: opts.now } : {}),
  });
}

type Ctx = ChannelContext & { received: ChatInbound[]; refusals: string[] };

/** A core stand-in: chats bound to groups (each with a real folder under `home`), every received message kept; a ref seen before is a duplicate. */
function chatContext(home: string, bindings: Record<string, string> = {}, groups: Record<string, Partial<Group>> = {}): Ctx {
  const received: ChatInbound[] = [];
  const refusals: string[] = [];
  const refs = new Set<string>();
  const group = (name: string): Group => ({ name, isMain: false, trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '', ...groups[name] });
  for (const g of new Set(Object.values(bindings))) fs.mkdirSync(groupPaths(home, g).folder, { recursive: true });
  return {
    received, refusals,
    accept: async () => { throw new Error('a chat channel uses receive'); },
    receive: async (m): Promise<ReceiveResult> => {
      const g = bindings[m.chat];
      const message: StoredMessage = { id: `m${received.length}`, group: g ?? '', role: 'user', sender: m.sender, text: m.text, ts: '', state: 'pending', batchId: null, attempts: 0, chat: m.chat };
      if (g && m.ref && refs.has(m.ref)) return { kind: 'stored', message, engaged: false, duplicate: true };
      received.push(m);
      if (!g) return { kind: 'unbound', told: received.filter((r) => r.chat === m.chat).length === 1 };
      if (m.ref) refs.add(m.ref);
      return { kind: 'stored', message, engaged: true };
    },
    groupFor: (chat) => bindings[chat],
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: (_channel, reason) => { refusals.push(reason); },
    getGroup: (name) => (Object.values(bindings).includes(name) ? group(name) : undefined),
    listGroups: () => [],
  };
}

function tmpHome(t: { after: (fn: () => void) => void }): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-wa-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

function post(body: Buffer, signature: string | undefined): WebhookRequest {
  return { method: 'POST', path: '/webhook', query: '', headers: { 'content-type': 'application/json', ...(signature ? { 'x-hub-signature-256': signature } : {}) }, body, remote: '127.0.0.1' };
}

function get(query: string): WebhookRequest {
  return { method: 'GET', path: '/webhook', query, headers: {}, body: Buffer.alloc(0), remote: '127.0.0.1' };
}

const ALICE = '4915112345678';
const OWNER = '15551234567';

// --- the conformance suite ---------------------------------------------------------------

channelConformance('whatsapp cloud', async () => {
  const emu = await WhatsAppCloudEmulator.start();
  return {
    channel: await moduleChannel(emu),
    address: ALICE,
    limit: 4096,
    sent: async () => emu.shown(ALICE),
    refuseNext: () => emu.refuseNext(),
    // WhatsApp shows its own markup: *bold*, _italic_ and ~strike~ markers are not shown.
    shows: (text) => text.replace(/(?<![\p{L}\p{N}*])\*([^*\s][^*]*?)\*/gu, '$1').replace(/(?<![\p{L}\p{N}_])_([^_\s][^_]*?)_(?![\p{L}\p{N}])/gu, '$1'),
    close: () => emu.close(),
  };
});

// --- the module -------------------------------------------------------------------------

test('whatsapp module - the Cloud API, WhatsApp Web, both or neither: off says which and why', async () => {
  const m = await whatsappModule();
  const cloud = { WHATSAPP_ACCESS_TOKEN: 't', WHATSAPP_PHONE_NUMBER_ID: '1', WHATSAPP_APP_SECRET: 's', WHATSAPP_VERIFY_TOKEN: 'v' };
  assert.equal(channelOff(m, cloud), undefined);
  assert.equal(channelOff(m, { WHATSAPP_WEB: 'on' }), undefined);
  assert.match(channelOff(m, { ...cloud, WHATSAPP_WEB: 'on' })!, /choose one/);
  assert.match(channelOff(m, {})!, /WHATSAPP_ACCESS_TOKEN.*WHATSAPP_WEB=on/);
  assert.match(channelOff(m, { WHATSAPP_ACCESS_TOKEN: 't' })!, /WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN/);
  assert.deepEqual([...m.secrets].sort(), ['WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN']);
});

test('whatsapp module - a bad setting is refused with the setting named; the token never appears in the message', () => {
  const env = { WHATSAPP_ACCESS_TOKEN: 'EAAsecret', WHATSAPP_PHONE_NUMBER_ID: '1', WHATSAPP_APP_SECRET: 's', WHATSAPP_VERIFY_TOKEN: 'v' };
  assert.throws(() => cloudConfig({ ...env, WHATSAPP_GRAPH_URL: 'http://graph.example.com/v24.0' }), /WHATSAPP_GRAPH_URL must use https/);
  assert.throws(() => cloudConfig({ ...env, WHATSAPP_OWNER_NUMBERS: 'alice' }), /WHATSAPP_OWNER_NUMBERS/);
  assert.throws(() => cloudConfig({ ...env, WHATSAPP_PHONE_NUMBER_ID: '+1 555' }), /WHATSAPP_PHONE_NUMBER_ID/);
  assert.deepEqual([...cloudConfig({ ...env, WHATSAPP_OWNER_NUMBERS: '+491511234567, 15551234567' }).owners], ['491511234567', '15551234567']);
  for (const bad of [{ WHATSAPP_GRAPH_URL: 'ftp://x' }, { WHATSAPP_OWNER_NUMBERS: 'x' }, { WHATSAPP_PHONE_NUMBER_ID: 'x' }, { HAKO_ATTACHMENT_MAX_BYTES: '-1' }]) {
    assert.throws(() => cloudConfig({ ...env, ...bad }), (err: Error) => !err.message.includes('EAAsecret'));
  }
});

test('whatsapp module - check says nothing when the token works, the clear line when it is refused', async () => {
  const emu = await WhatsAppCloudEmulator.start();
  try {
    const m = await whatsappModule();
    const deps = { env: emu.env(), home: os.tmpdir(), assistantName: 'hako', log: recordingLog() };
    assert.equal(await m.check!(deps), undefined);
    emu.revokeToken();
    assert.equal(await m.check!(deps), TOKEN_REFUSED);
  } finally {
    await emu.close();
  }
});

// --- the channel against the emulator ----------------------------------------------------

describe('whatsapp cloud channel against the Cloud API emulator', { timeout: 60_000 }, () => {
  let emu: WhatsAppCloudEmulator;
  before(async () => { emu = await WhatsAppCloudEmulator.start(); });
  after(() => emu.close());

  async function started(t: { after: (fn: () => Promise<void>) => void }, ctx: ChannelContext, opts: Parameters<typeof fastChannel>[1] = {}): Promise<CloudChannel> {
    const channel = fastChannel(emu, opts);
    await channel.start(ctx);
    t.after(() => channel.stop());
    return channel;
  }

  test('whatsapp cloud - the GET verification answers the challenge as text for the right verify token, 403 refused for a wrong one', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    const ok = await channel.webhook(get(`hub.mode=subscribe&hub.verify_token=${emu.verifyToken}&hub.challenge=1158201444`));
    assert.deepEqual(ok, { status: 200, body: '1158201444', contentType: 'text/plain' });
    const wrong = await channel.webhook(get('hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444'));
    assert.equal(wrong.status, 403);
    assert.ok(wrong.refused);
    assert.ok(!wrong.body?.includes('1158201444'));
  });

  test('whatsapp cloud - a 1:1 message arrives as a direct message from the sender, named by its profile, trusted only as an owner number', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx, { env: { WHATSAPP_OWNER_NUMBERS: `+${OWNER}` } });
    const a = emu.inbound({ from: ALICE, name: 'Alice Smith', text: 'What is on my list?' });
    assert.equal((await channel.webhook(post(a.body, signWebhook(a.body, emu.appSecret)))).status, 200);
    const o = emu.inbound({ from: OWNER, name: 'Olivia', text: 'hello' });
    assert.equal((await channel.webhook(post(o.body, signWebhook(o.body, emu.appSecret)))).status, 200);
    assert.deepEqual(ctx.received, [
      { chat: `whatsapp:${ALICE}`, chatTitle: `Alice Smith (+${ALICE})`, sender: 'Alice Smith', senderId: `whatsapp:${ALICE}`, trusted: false, text: 'What is on my list?', direct: true, ref: a.id },
      { chat: `whatsapp:${OWNER}`, chatTitle: `Olivia (+${OWNER})`, sender: 'Olivia', senderId: `whatsapp:${OWNER}`, trusted: true, text: 'hello', direct: true, ref: o.id },
    ]);
  });

  test('whatsapp cloud - a forged, an unsigned or a re-signed-with-another-secret POST is refused 401 and nothing is stored', async (t) => {
    const ctx = chatContext(tmpHome(t), { [`whatsapp:${ALICE}`]: 'sales' });
    const channel = await started(t, ctx);
    const m = emu.inbound({ from: ALICE, text: 'transfer the money' });
    const forged = Buffer.from(m.body.toString().replace('transfer the money', 'transfer ALL the money'));
    for (const [body, sig] of [[forged, signWebhook(m.body, emu.appSecret)], [m.body, undefined], [m.body, signWebhook(m.body, 'not-the-secret')], [m.body, 'sha256=zz']] as const) {
      const r = await channel.webhook(post(body, sig));
      assert.equal(r.status, 401);
      assert.ok(r.refused, 'refused, so the listener audits it');
    }
    assert.deepEqual(ctx.received, []);
  });

  test('whatsapp cloud - a replay: an old signed request is refused 401; the same message again within the window is stored once', async (t) => {
    const ctx = chatContext(tmpHome(t), { [`whatsapp:${ALICE}`]: 'sales' });
    let now = Date.now() / 1000;
    const channel = await started(t, ctx, { now: () => now });
    const m = emu.inbound({ from: ALICE, text: 'pay invoice 42' });
    const signed = post(m.body, signWebhook(m.body, emu.appSecret));
    assert.equal((await channel.webhook(signed)).status, 200);
    assert.equal((await channel.webhook(signed)).status, 200, 'Meta delivers again when unsure: acknowledged');
    assert.equal(ctx.received.length, 1, 'stored once');
    now += MAX_AGE_S + 60;
    const replay = await channel.webhook(signed);
    assert.equal(replay.status, 401);
    assert.match(replay.refused!, /^replay: a message \d+ hours old/);
    const fresh = emu.inbound({ from: ALICE, text: 'pay invoice 43', timestamp: Math.floor(Date.now() / 1000) - MAX_AGE_S - 120 });
    assert.equal((await channel.webhook(post(fresh.body, signWebhook(fresh.body, emu.appSecret)))).status, 401);
    assert.equal(ctx.received.length, 1, 'nothing more stored');
  });

  test('whatsapp cloud - delivery statuses are acknowledged and ignored; another number of the same app is not ours', async (t) => {
    const ctx = chatContext(tmpHome(t));
    const channel = await started(t, ctx);
    const statuses = Buffer.from(JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: emu.displayNumber, phone_number_id: emu.phoneNumberId }, statuses: [{ id: 'wamid.X', status: 'delivered', timestamp: '1', recipient_id: ALICE }] } }] }] }));
    assert.equal((await channel.webhook(post(statuses, signWebhook(statuses, emu.appSecret)))).status, 200);
    const other = Buffer.from(emu.inbound({ from: ALICE, text: 'for the other number' }).body.toString().replace(emu.phoneNumberId, '999999'));
    assert.equal((await channel.webhook(post(other, signWebhook(other, emu.appSecret)))).status, 200);
    assert.deepEqual(ctx.received, []);
  });

  test('whatsapp cloud - a reply quotes the triggering message, in WhatsApp markup; a long one is split at 4,096 with only the first quoting', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    await channel.send({ id: 'r1', group: 'g', address: ALICE, text: 'It is **done**: see [the list](https://example.com/a_b)', replyTo: 'wamid.TRIGGER' });
    assert.deepEqual(emu.sent(ALICE).at(-1), { ...emu.sent(ALICE).at(-1), type: 'text', text: 'It is *done*: see the list (https://example.com/a_b)', replyTo: 'wamid.TRIGGER' });
    const long = Array.from({ length: 12 }, (_, i) => `Paragraph ${i}: ${'words of a long answer '.repeat(30).trim()}`).join('\n\n');
    const before = emu.sent(ALICE).length;
    await channel.send({ id: 'r2', group: 'g', address: ALICE, text: long, replyTo: 'wamid.T2' });
    const pieces = emu.sent(ALICE).slice(before);
    assert.ok(pieces.length >= 2);
    for (const p of pieces) assert.ok(p.text.length <= 4096);
    assert.deepEqual(pieces.map((p) => p.replyTo), ['wamid.T2', ...pieces.slice(1).map(() => undefined)]);
    assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
  });

  test('whatsapp cloud - a 429 throughput error (130429, then 80007) is waited out and the message arrives once', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    emu.rateLimit({ calls: 1, paths: /\/messages$/ });
    emu.rateLimit({ calls: 1, paths: /\/messages$/, code: 80007 });
    await channel.send({ id: 'rate', group: 'g', address: ALICE, text: 'after the rate limit' });
    assert.deepEqual(emu.texts(ALICE).filter((x) => x === 'after the rate limit'), ['after the rate limit']);
  });

  test('whatsapp cloud - a rate limit that does not end fails the send (the host keeps it) and the channel works on', async (t) => {
    const channel = await started(t, chatContext(tmpHome(t)));
    emu.rateLimit({ calls: 4, paths: /\/messages$/ });
    await assert.rejects(channel.send({ id: 'rate2', group: 'g', address: ALICE, text: 'not yet' }), /whatsapp: the message to …5678 was not sent: the Cloud API still asks to slow down/);
    await channel.send({ id: 'rate2', group: 'g', address: ALICE, text: 'not yet' });
    assert.equal(emu.texts(ALICE).filter((x) => x === 'not yet').length, 1);
  });

  test('whatsapp cloud - an image from an allowed sender of a bound chat is downloaded with the token and saved to the inbox; the line names it', async (t) => {
    const home = tmpHome(t);
    const ctx = chatContext(home, { [`whatsapp:${OWNER}`]: 'main' });
    const channel = await started(t, ctx, { home, env: { WHATSAPP_OWNER_NUMBERS: OWNER } });
    const photo = Buffer.concat([TINY_JPEG, Buffer.alloc(2000, 7)]);
    const mediaId = emu.addMedia(photo, 'image/jpeg');
    const m = emu.inbound({ from: OWNER, text: 'what is this?', media: { kind: 'image', id: mediaId, mime: 'image/jpeg' } });
    assert.equal((await channel.webhook(post(m.body, signWebhook(m.body, emu.appSecret)))).status, 200);
    const text = ctx.received[0]!.text;
    const at = /^what is this\?\n\[image: \/workspace\/group\/(inbox\/\d{4}-\d{2}-\d{2}\/image\.jpg) \(image\/jpeg\)\]$/.exec(text);
    assert.ok(at, text);
    assert.deepEqual(fs.readFileSync(path.join(groupPaths(home, 'main').folder, at[1]!)), photo);
  });

  test('whatsapp cloud - the same message with a file delivered again is stored once: its file is neither fetched nor saved again', async (t) => {
    const home = tmpHome(t);
    const ctx = chatContext(home, { [`whatsapp:${OWNER}`]: 'main' });
    const channel = await started(t, ctx, { home, env: { WHATSAPP_OWNER_NUMBERS: OWNER } });
    const mediaId = emu.addMedia(Buffer.concat([TINY_JPEG, Buffer.alloc(500, 3)]), 'image/jpeg');
    const m = emu.inbound({ from: OWNER, text: 'keep this', media: { kind: 'image', id: mediaId, mime: 'image/jpeg' } });
    const signed = post(m.body, signWebhook(m.body, emu.appSecret));
    assert.equal((await channel.webhook(signed)).status, 200);
    const fetches = emu.calls.filter((c) => c.method === 'GET').length;
    assert.equal((await channel.webhook(signed)).status, 200, 'acknowledged again');
    assert.equal(emu.calls.filter((c) => c.method === 'GET').length, fetches, 'the file was not fetched again');
    assert.equal(ctx.received.length, 1);
    const inbox = path.join(groupPaths(home, 'main').folder, 'inbox');
    const files = fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.equal(files.length, 1, 'one file in the inbox');
  });

  test('whatsapp cloud - after a restart, a message delivered again is stored once and the file fetched for it is removed', async (t) => {
    const home = tmpHome(t);
    const ctx = chatContext(home, { [`whatsapp:${OWNER}`]: 'main' });
    const mediaId = emu.addMedia(Buffer.concat([TINY_JPEG, Buffer.alloc(500, 4)]), 'image/jpeg');
    const m = emu.inbound({ from: OWNER, text: 'and this', media: { kind: 'image', id: mediaId, mime: 'image/jpeg' } });
    const signed = post(m.body, signWebhook(m.body, emu.appSecret));
    const first = await started(t, ctx, { home, env: { WHATSAPP_OWNER_NUMBERS: OWNER } });
    assert.equal((await first.webhook(signed)).status, 200);
    await first.stop();
    const second = await started(t, ctx, { home, env: { WHATSAPP_OWNER_NUMBERS: OWNER } });
    assert.equal((await second.webhook(signed)).status, 200);
    assert.equal(ctx.received.length, 1);
    const inbox = path.join(groupPaths(home, 'main').folder, 'inbox');
    assert.equal(fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length, 1, 'the second copy was removed');
  });

  test('whatsapp cloud - a file from an unbound number or a sender who may not engage is never downloaded; one over the limit is not saved', async (t) => {
    const home = tmpHome(t);
    const ctx = chatContext(home, { [`whatsapp:${ALICE}`]: 'sales', [`whatsapp:${OWNER}`]: 'main' });
    const channel = await started(t, ctx, { home, env: { WHATSAPP_OWNER_NUMBERS: OWNER, HAKO_ATTACHMENT_MAX_BYTES: '100' } });
    const before = emu.callsTo(/attachments/).length;
    const downloads = () => emu.callsTo(/attachments/).length - before;
    const mediaId = emu.addMedia(Buffer.alloc(500, 1), 'application/pdf', 'quote.pdf');
    for (const from of ['4930000000', ALICE, OWNER]) {
      const m = emu.inbound({ from, media: { kind: 'document', id: mediaId, mime: 'application/pdf', filename: 'quote.pdf' } });
      assert.equal((await channel.webhook(post(m.body, signWebhook(m.body, emu.appSecret)))).status, 200);
    }
    assert.deepEqual(ctx.received.map((r) => r.text), [
      '[document: not saved]',
      '[document: not saved: the sender may not engage this group]',
      '[document "quote.pdf": not saved: over the 100-byte limit (HAKO_ATTACHMENT_MAX_BYTES)]',
    ]);
    assert.equal(downloads(), 0, 'nothing downloaded');
    assert.ok(!fs.existsSync(path.join(groupPaths(home, 'sales').folder, 'inbox')));
  });

  test('whatsapp cloud - typing marks the chat\'s last message read with the typing indicator; no message, no call', async (t) => {
    const ctx = chatContext(tmpHome(t), { [`whatsapp:${ALICE}`]: 'sales' });
    const channel = await started(t, ctx);
    channel.typing('4930000001')();
    const m = emu.inbound({ from: ALICE, text: 'are you there?' });
    await channel.webhook(post(m.body, signWebhook(m.body, emu.appSecret)));
    const stop = channel.typing(ALICE);
    await emu.waitUntil(() => emu.reads().length >= 1, () => 'a read mark');
    stop();
    assert.deepEqual(emu.reads(), [{ messageId: m.id, typing: true }]);
  });

  test('whatsapp cloud - a file goes out uploaded, as an image or a document, with the text as its caption, quoting', async (t) => {
    const home = tmpHome(t);
    const channel = await started(t, chatContext(home));
    const pic = path.join(home, 'chart.png');
    fs.writeFileSync(pic, TINY_JPEG);
    const doc = path.join(home, 'report.pdf');
    fs.writeFileSync(doc, '%PDF-1.4 report');
    await channel.send({ id: 'f1', group: 'g', address: ALICE, text: 'the **chart**', replyTo: 'wamid.Q', file: { path: pic, name: 'chart.png' } });
    await channel.send({ id: 'f2', group: 'g', address: ALICE, text: 'the report', file: { path: doc, name: 'report.pdf' } });
    const [a, b] = emu.sent(ALICE).slice(-2);
    assert.deepEqual([a!.type, a!.text, a!.replyTo, a!.file!.data], ['image', 'the *chart*', 'wamid.Q', TINY_JPEG]);
    assert.deepEqual([b!.type, b!.text, b!.file!.name, b!.file!.data.toString()], ['document', 'the report', 'report.pdf', '%PDF-1.4 report']);
  });
});

describe('whatsapp cloud channel with a revoked token', { timeout: 60_000 }, () => {
  test('whatsapp cloud - a token revoked while running: one clear error, problem() says it, sends fail fast, signed messages are still stored', async (t) => {
    const emu = await WhatsAppCloudEmulator.start();
    t.after(() => emu.close());
    const log = recordingLog();
    const ctx = chatContext(tmpHome(t), { [`whatsapp:${ALICE}`]: 'sales' });
    const channel = fastChannel(emu, { log });
    await channel.start(ctx);
    t.after(() => channel.stop());
    assert.equal(channel.problem(), undefined);
    emu.revokeToken();
    await assert.rejects(channel.send({ id: 'x', group: 'g', address: ALICE, text: 'hi' }), /the access token was refused .*190/);
    assert.equal(channel.problem(), TOKEN_REFUSED);
    const calls = emu.calls.length;
    await assert.rejects(channel.send({ id: 'y', group: 'g', address: ALICE, text: 'again' }), (err: Error) => err.message === TOKEN_REFUSED);
    assert.equal(emu.calls.length, calls, 'no call with a refused token');
    const m = emu.inbound({ from: ALICE, text: 'still arriving' });
    assert.equal((await channel.webhook(post(m.body, signWebhook(m.body, emu.appSecret)))).status, 200);
    assert.equal(ctx.received.length, 1);
    assert.equal(log.lines.filter((l) => l.includes('access token was refused')).length, 1, 'logged once');
    assert.ok(!log.lines.some((l) => l.includes(emu.token)), 'the token is in no log line');
  });

  test('whatsapp cloud - a token refused at start makes start reject with the clear line', async (t) => {
    const emu = await WhatsAppCloudEmulator.start();
    t.after(() => emu.close());
    emu.revokeToken();
    const channel = fastChannel(emu);
    await assert.rejects(channel.start(chatContext(tmpHome(t))), (err: Error) => err.message === TOKEN_REFUSED);
    assert.equal(channel.problem(), TOKEN_REFUSED);
    await channel.stop();
  });
});
