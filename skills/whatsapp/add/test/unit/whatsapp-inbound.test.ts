import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ageProblem, MAX_AGE_S, parsePayload, signatureValid, toInbound, verification } from '../../src/channels/whatsapp/inbound.ts';
import { signWebhook, webhookPayload } from '../support/whatsapp-cloud-emulator.ts';

const PNID = '106540352242922';
const body = (messages: Parameters<typeof webhookPayload>[2]) => Buffer.from(JSON.stringify(webhookPayload(PNID, '15550783881', messages)));

test('whatsapp inbound - the signature is sha256= and the HMAC of the raw bytes; any other byte, secret or form fails', () => {
  const b = body([{ id: 'wamid.A', from: '4915112345678', text: 'hi' }]);
  const sig = signWebhook(b, 'app-secret');
  assert.equal(signatureValid(b, sig, 'app-secret'), true);
  assert.equal(signatureValid(b, sig.toUpperCase().replace('SHA256=', 'sha256='), 'app-secret'), true, 'hex in either case');
  assert.equal(signatureValid(Buffer.concat([b, Buffer.from(' ')]), sig, 'app-secret'), false);
  assert.equal(signatureValid(b, sig, 'other-secret'), false);
  for (const bad of [undefined, '', sig.slice(7), `sha1=${sig.slice(7)}`, `${sig}00`, 'sha256=']) assert.equal(signatureValid(b, bad, 'app-secret'), false, String(bad));
});

test('whatsapp inbound - verification needs hub.mode=subscribe, the verify token and a challenge', () => {
  assert.equal(verification('hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42', 'tok').status, 200);
  assert.equal(verification('hub.mode=subscribe&hub.verify_token=tok2&hub.challenge=42', 'tok').status, 403);
  assert.equal(verification('hub.mode=subscribe&hub.challenge=42', 'tok').status, 403);
  assert.equal(verification('hub.mode=unsubscribe&hub.verify_token=tok&hub.challenge=42', 'tok').status, 400);
});

test('whatsapp inbound - text, image, document, audio and location map to text and media; reactions are no message', () => {
  const parsed = parsePayload(Buffer.from(JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { display_phone_number: '1', phone_number_id: PNID },
      contacts: [{ profile: { name: 'Alice' }, wa_id: '4915112345678' }],
      messages: [
        { from: '4915112345678', id: 'w1', timestamp: '100', type: 'text', text: { body: 'hello' } },
        { from: '4915112345678', id: 'w2', timestamp: '100', type: 'image', image: { id: 'm1', mime_type: 'image/jpeg', caption: 'look' } },
        { from: '4915112345678', id: 'w3', timestamp: '100', type: 'document', document: { id: 'm2', mime_type: 'application/pdf', filename: 'quote.pdf' } },
        { from: '4915112345678', id: 'w4', timestamp: '100', type: 'audio', audio: { id: 'm3', mime_type: 'audio/ogg; codecs=opus', voice: true } },
        { from: '4915112345678', id: 'w5', timestamp: '100', type: 'location', location: { latitude: 52.5, longitude: 13.4, name: 'Office' } },
        { from: '4915112345678', id: 'w6', timestamp: '100', type: 'reaction', reaction: { message_id: 'w1', emoji: '👍' } },
      ],
    } }] }],
  })), PNID);
  assert.deepEqual(parsed.messages.map((m) => [m.id, m.name, m.text, m.media && [m.media.kind, m.media.id, m.media.name]]), [
    ['w1', 'Alice', 'hello', undefined],
    ['w2', 'Alice', 'look', ['image', 'm1', 'image.jpg']],
    ['w3', 'Alice', '', ['document', 'm2', 'quote.pdf']],
    ['w4', 'Alice', '', ['audio', 'm3', 'audio.ogg']],
    ['w5', 'Alice', '[location: 52.5, 13.4 (Office)]', undefined],
  ]);
});

test('whatsapp inbound - a body that is not a WhatsApp notification is refused; another number\'s messages are skipped', () => {
  assert.throws(() => parsePayload(Buffer.from('{"object":"page"}'), PNID));
  assert.throws(() => parsePayload(Buffer.from('not json'), PNID));
  assert.deepEqual(parsePayload(body([{ id: 'w', from: '4915112345678', text: 'x' }]), '999').messages, []);
});

test('whatsapp inbound - a message older than the window, or from the future, is a replay', () => {
  const now = 1_800_000_000;
  const m = (timestamp: number) => ({ id: 'w', from: '1', timestamp, text: '' });
  assert.equal(ageProblem(m(now - MAX_AGE_S + 1), now), undefined);
  assert.match(ageProblem(m(now - MAX_AGE_S - 1), now)!, /hours old/);
  assert.equal(ageProblem(m(now + 60), now), undefined, 'a minute of clock skew');
  assert.match(ageProblem(m(now + 3600), now)!, /future/);
});

test('whatsapp inbound - the chat and sender are the number; trusted only for an owner number; always direct', () => {
  const m = { id: 'wamid.Z', from: '4915112345678', timestamp: 1, text: 'hi' };
  assert.deepEqual(toInbound(m, new Set(), 'hi'), { chat: 'whatsapp:4915112345678', chatTitle: '+4915112345678', sender: '+4915112345678', senderId: 'whatsapp:4915112345678', trusted: false, text: 'hi', direct: true, ref: 'wamid.Z' });
  assert.equal(toInbound(m, new Set(['4915112345678']), 'hi').trusted, true);
});
