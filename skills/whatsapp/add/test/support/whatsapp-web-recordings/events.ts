// Recorded Baileys 7 event sequences, in the shapes Baileys emits them: messages built with
// its proto types (WebMessageInfo.fromObject, as its decoder makes them), closes with the
// Boom errors and DisconnectReason codes its socket ends with. Times are WhatsApp's
// seconds; the people: Alice (the owner's other phone), Bob (a stranger), the team group.

import { Boom } from '@hapi/boom';
import { DisconnectReason, proto, type WAMessage } from 'baileys';
import type { Step } from '../whatsapp-web-socket.ts';

export const ALICE = '4917600000002@s.whatsapp.net';
export const ALICE_LID = '188800000002@lid';
export const BOB = '4917600000003@s.whatsapp.net';
export const BOB_LID = '188800000003@lid';
export const TEAM = '120363041234567890@g.us';
export const OWNER_NUMBERS = '4917600000002';
/** The mark the tests start from: messages before it are old history. */
export const T0 = 1_764_500_000;

function info(o: Record<string, unknown>): WAMessage {
  return proto.WebMessageInfo.fromObject(o) as WAMessage;
}

/** A one-to-one text, as Baileys 7 decodes it: the peer's privacy LID with the phone number alongside. */
export function directText(id: string, text: string, ts: number, from = { pn: ALICE, lid: ALICE_LID, name: 'Alice' }): WAMessage {
  const m = info({ key: { remoteJid: from.lid, fromMe: false, id }, messageTimestamp: ts, pushName: from.name, message: { conversation: text } });
  // Baileys adds the alternative address outside the proto (WAMessageKey's extra fields).
  m.key.remoteJidAlt = from.pn;
  m.key.addressingMode = 'lid';
  return m;
}

/** A group text from a participant, optionally mentioning jids (`@<number>` in the text, the jid in contextInfo). */
export function groupText(id: string, text: string, ts: number, o: { from?: { pn: string; lid: string; name: string }; mentions?: string[] } = {}): WAMessage {
  const from = o.from ?? { pn: ALICE, lid: ALICE_LID, name: 'Alice' };
  const message = o.mentions
    ? { extendedTextMessage: { text, contextInfo: { mentionedJid: o.mentions } } }
    : { conversation: text };
  const m = info({ key: { remoteJid: TEAM, fromMe: false, id, participant: from.lid }, messageTimestamp: ts, pushName: from.name, message });
  m.key.participantAlt = from.pn;
  m.key.addressingMode = 'lid';
  return m;
}

export function groupImage(id: string, caption: string, ts: number, fileLength = 2048): WAMessage {
  const m = info({
    key: { remoteJid: TEAM, fromMe: false, id, participant: ALICE_LID }, messageTimestamp: ts, pushName: 'Alice',
    message: {
      imageMessage: {
        url: 'https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m231/recorded.enc', mimetype: 'image/jpeg', caption,
        fileSha256: Buffer.alloc(32, 1), fileLength, height: 640, width: 480, mediaKey: Buffer.alloc(32, 2),
        fileEncSha256: Buffer.alloc(32, 3), directPath: '/o1/v/t62.7118-24/f1/m231/recorded.enc', mediaKeyTimestamp: ts,
      },
    },
  });
  m.key.participantAlt = ALICE;
  return m;
}

/** One of the owner's own messages, sent from the phone. */
export function ownText(id: string, chat: string, text: string, ts: number): WAMessage {
  return info({ key: { remoteJid: chat, fromMe: true, id }, messageTimestamp: ts, message: { conversation: text } });
}

export function statusPost(id: string, ts: number): WAMessage {
  const m = info({ key: { remoteJid: 'status@broadcast', fromMe: false, id, participant: BOB_LID }, messageTimestamp: ts, pushName: 'Bob', message: { conversation: 'my holiday' } });
  m.key.participantAlt = BOB;
  return m;
}

export const open: Step = { event: 'connection.update', data: { connection: 'open' } };
export const connecting: Step = { event: 'connection.update', data: { connection: 'connecting', receivedPendingNotifications: false, qr: undefined } };

export function close(statusCode: number, message: string): Step {
  return { event: 'connection.update', data: { connection: 'close', lastDisconnect: { error: new Boom(message, { statusCode }), date: new Date(T0 * 1000) } } };
}

export const dropped = (): Step => close(DisconnectReason.connectionClosed, 'Connection Terminated');
export const loggedOut = (): Step => close(DisconnectReason.loggedOut, 'Stream Errored (conflict)');
export const restartRequired = (): Step => close(DisconnectReason.restartRequired, 'Stream Errored (restart required)');

export function upsert(type: 'notify' | 'append', ...messages: WAMessage[]): Step {
  return { event: 'messages.upsert', data: { messages, type } };
}

/** A history sync chunk: newest first, as Baileys sets it. */
export function history(...messages: WAMessage[]): Step {
  return {
    event: 'messaging-history.set',
    data: { chats: [], contacts: [], messages: [...messages].sort((a, b) => Number(b.messageTimestamp) - Number(a.messageTimestamp)), isLatest: false, progress: 40, syncType: proto.HistorySync.HistorySyncType.RECENT },
  };
}

/** The first link: a QR code, then (scanned) new credentials and WhatsApp's request to connect again. */
export const pairing: readonly Step[] = [
  connecting,
  { event: 'connection.update', data: { qr: '2@recordedRef0123456789,recordedNoiseKey=,recordedIdentityKey=,recordedAdvSecret=,recordedPlatform' } },
  { event: 'creds.update', data: { me: { id: '4915100000001:7@s.whatsapp.net', name: '~' }, platform: 'android' } },
  { event: 'connection.update', data: { isNewLogin: true, qr: undefined } },
  restartRequired(),
];
