// How a Baileys 7 message maps to what hako stores: addresses, wrappers, media names.
// Pure; the messages are built with Baileys' own proto types.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proto, type WAMessage } from 'baileys';
import { addressJid, bareJid, mapMessage, meOf } from '../../src/channels/whatsapp/web/inbound.ts';
import { ME } from '../support/whatsapp-web-socket.ts';
import { ALICE, TEAM } from '../support/whatsapp-web-recordings/events.ts';

const me = meOf(ME);
const owners = new Set(['4917600000002']);
const msg = (o: Record<string, unknown>) => proto.WebMessageInfo.fromObject(o) as WAMessage;

test('whatsapp web - the linked account is known by its phone-number and LID jids, without the device', () => {
  assert.deepEqual(me.jids, ['4915100000001@s.whatsapp.net', '177700000001@lid']);
  assert.equal(bareJid('4915100000001:7@s.whatsapp.net'), '4915100000001@s.whatsapp.net');
});

test('whatsapp web - an outbound address is a jid or a phone number; anything else is refused', () => {
  assert.equal(addressJid(ALICE), ALICE);
  assert.equal(addressJid(TEAM), TEAM);
  assert.equal(addressJid('+4917600000002'), ALICE);
  assert.equal(addressJid('status@broadcast'), undefined);
  assert.equal(addressJid('../etc'), undefined);
});

test('whatsapp web - a disappearing message is unwrapped; a trusted owner writing from a phone-number jid', () => {
  const m = mapMessage(msg({
    key: { remoteJid: ALICE, fromMe: false, id: 'E1' }, messageTimestamp: 1764500001, pushName: 'Alice',
    message: { ephemeralMessage: { message: { extendedTextMessage: { text: 'vanishing' } } } },
  }), me, owners);
  assert.deepEqual(m, { chat: `whatsapp:${ALICE}`, chatTitle: 'Alice', sender: 'Alice', senderId: `whatsapp:${ALICE}`, trusted: true, text: 'vanishing', direct: true, ref: 'E1', ts: 1764500001 });
});

test('whatsapp web - a document keeps the sender\'s file name and its caption is the text', () => {
  const m = mapMessage(msg({
    key: { remoteJid: TEAM, fromMe: false, id: 'D1', participant: '4917600000003@s.whatsapp.net' }, messageTimestamp: 1764500002,
    message: { documentWithCaptionMessage: { message: { documentMessage: { fileName: 'offer.pdf', mimetype: 'application/pdf', caption: 'the offer', fileLength: 1234 } } } },
  }), me, owners);
  assert.equal(m?.text, 'the offer');
  assert.equal(m?.sender, '+4917600000003', 'without a push name the number names the sender');
  assert.equal(m?.trusted, false);
  assert.equal(m?.direct, false);
  assert.deepEqual(m?.media, { kind: 'document', mime: 'application/pdf', name: 'offer.pdf', size: 1234 });
});

test('whatsapp web - a reaction or a protocol message is not taken', () => {
  assert.equal(mapMessage(msg({ key: { remoteJid: ALICE, id: 'R1' }, message: { reactionMessage: { text: '👍' } } }), me, owners), undefined);
  assert.equal(mapMessage(msg({ key: { remoteJid: ALICE, id: 'P1' }, message: { protocolMessage: { type: 0 } } }), me, owners), undefined);
});
