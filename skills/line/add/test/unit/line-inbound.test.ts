// LINE webhooks in: the signature, the age window, the body's shape, and each event mapped
// to hako's chat address, sender and engagement; the channel's settings checked once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { validateSignature } from '@line/bot-sdk';
import { ageProblem, mapMessage, parseBody, signatureHolds, MAX_EVENT_AGE_MS, type LineEvent } from '../../src/channels/line/inbound.ts';
import { lineConfig } from '../../src/channels/line/config.ts';

const SECRET = '0123456789abcdef0123456789abcdef';
const U = `U${'a'.repeat(32)}`;
const C = `C${'b'.repeat(32)}`;
const sign = (body: Buffer, secret = SECRET) => createHmac('sha256', secret).update(body).digest('base64');

function event(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'message', webhookEventId: '01HZZZZZZZZZZZZZZZZZZZZZZZ', timestamp: 1_700_000_000_000, mode: 'active', deliveryContext: { isRedelivery: false }, replyToken: 'r', source: { type: 'user', userId: U }, message: { type: 'text', id: '1', text: 'hi' }, ...over };
}
const parsed = (e: Record<string, unknown>): LineEvent => {
  const r = parseBody(Buffer.from(JSON.stringify({ destination: U, events: [e] })));
  assert.ok('events' in r);
  return r.events[0]!;
};

test('line signature - holds for the body signed with the secret; a changed byte, another secret, a missing or malformed header do not', () => {
  const body = Buffer.from('{"destination":"x","events":[]}');
  assert.equal(signatureHolds(validateSignature, body, SECRET, sign(body)), true);
  assert.equal(signatureHolds(validateSignature, Buffer.from('{"destination":"y","events":[]}'), SECRET, sign(body)), false);
  assert.equal(signatureHolds(validateSignature, body, SECRET, sign(body, 'f'.repeat(32))), false);
  assert.equal(signatureHolds(validateSignature, body, SECRET, undefined), false);
  assert.equal(signatureHolds(validateSignature, body, SECRET, ''), false);
  assert.equal(signatureHolds(validateSignature, body, SECRET, sign(body).slice(0, 20)), false);
});

test('line age - an event older than 10 minutes or as far in the future is outside the window', () => {
  const e = parsed(event());
  assert.equal(ageProblem(e, e.timestamp + MAX_EVENT_AGE_MS), undefined);
  assert.equal(ageProblem(e, e.timestamp + MAX_EVENT_AGE_MS + 1), 'event older than 10 minutes');
  assert.equal(ageProblem(e, e.timestamp - MAX_EVENT_AGE_MS - 1), 'event timestamp in the future');
});

test('line body - not JSON or without events is refused; events of unknown shape are left out', () => {
  assert.deepEqual(parseBody(Buffer.from('nope')), { error: 'the body is not JSON' });
  assert.deepEqual(parseBody(Buffer.from('{"destination":"x"}')), { error: 'the body has no events array' });
  const r = parseBody(Buffer.from(JSON.stringify({ events: [event({ webhookEventId: 5 }), event({ source: { type: 'user', userId: '../x' } }), event()] })));
  assert.ok('events' in r);
  assert.equal(r.events.length, 1);
});

test('line map - a 1:1 text is direct, addressed by the user; a group text by the group, direct only with a mention of the bot itself', () => {
  assert.deepEqual(mapMessage(parsed(event())), { chat: `line:${U}`, senderId: `line:${U}`, userId: U, text: 'hi', direct: true });
  const inGroup = (mention?: unknown) => mapMessage(parsed(event({ source: { type: 'group', groupId: C, userId: U }, message: { type: 'text', id: '2', text: '@hako hi', ...(mention ? { mention } : {}) } })));
  assert.deepEqual([inGroup()!.chat, inGroup()!.direct], [`line:${C}`, false]);
  assert.equal(inGroup({ mentionees: [{ index: 0, length: 5, type: 'user', userId: 'Uother', isSelf: false }] })!.direct, false);
  assert.equal(inGroup({ mentionees: [{ index: 0, length: 4, type: 'all' }] })!.direct, false, '@All is no mention of the bot');
  assert.equal(inGroup({ mentionees: [{ index: 0, length: 5, type: 'user', isSelf: true }] })!.direct, true);
});

test('line map - media become files to fetch, a file keeps its name and size; stickers and content kept elsewhere are named, not fetched', () => {
  assert.deepEqual(mapMessage(parsed(event({ message: { type: 'image', id: '9', contentProvider: { type: 'line' } } })))!.file, { kind: 'image', messageId: '9', name: 'image-9.jpg', mime: 'image/jpeg' });
  assert.deepEqual(mapMessage(parsed(event({ message: { type: 'file', id: '8', fileName: 'q.pdf', fileSize: 12 } })))!.file, { kind: 'file', messageId: '8', name: 'q.pdf', mime: 'application/octet-stream', size: 12 });
  const external = mapMessage(parsed(event({ message: { type: 'video', id: '7', contentProvider: { type: 'external', originalContentUrl: 'https://e.x/v.mp4' } } })))!;
  assert.equal(external.file, undefined);
  assert.equal(external.note, '[video: not saved: it is kept outside LINE at https://e.x/v.mp4]');
  assert.equal(mapMessage(parsed(event({ message: { type: 'sticker', id: '6' } })))!.note, '[sticker]');
});

test('line map - follow, join, postback and standby-mode events are not messages', () => {
  assert.equal(mapMessage(parsed(event({ type: 'follow', message: undefined }))), undefined);
  assert.equal(mapMessage(parsed(event({ mode: 'standby' }))), undefined);
});

test('line config - each setting is checked once, with what to fix', () => {
  const ok = { LINE_CHANNEL_ACCESS_TOKEN: 'a'.repeat(40), LINE_CHANNEL_SECRET: SECRET };
  assert.equal(lineConfig(ok).apiRoot, 'https://api.line.me');
  assert.equal(lineConfig(ok).dataApiRoot, 'https://api-data.line.me');
  assert.throws(() => lineConfig({ ...ok, LINE_CHANNEL_SECRET: 'short' }), /LINE_CHANNEL_SECRET does not look like a channel secret/);
  assert.throws(() => lineConfig({ ...ok, LINE_CHANNEL_SECRET: '' }), /LINE_CHANNEL_SECRET is not set/);
  assert.throws(() => lineConfig({ ...ok, LINE_API_ROOT: 'http://api.example.com' }), /LINE_API_ROOT must use https:\/\//);
  assert.throws(() => lineConfig({ ...ok, LINE_DATA_API_ROOT: 'https://x.y/path' }), /LINE_DATA_API_ROOT must be a plain origin/);
  assert.equal(lineConfig({ ...ok, LINE_API_ROOT: 'http://127.0.0.1:8080/' }).apiRoot, 'http://127.0.0.1:8080');
  assert.deepEqual([...lineConfig({ ...ok, LINE_OWNER_IDS: ` ${U} ,` }).owners], [`line:${U}`]);
  assert.throws(() => lineConfig({ ...ok, LINE_OWNER_IDS: 'alice' }), /LINE_OWNER_IDS names "alice", which is not a LINE user id/);
  assert.throws(() => lineConfig({ ...ok, HAKO_ATTACHMENT_MAX_BYTES: '-1' }), /HAKO_ATTACHMENT_MAX_BYTES must be a positive whole number/);
});
