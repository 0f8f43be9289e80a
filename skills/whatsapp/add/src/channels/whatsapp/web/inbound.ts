// A WhatsApp Web message as hako sees it: the chat address, who sent it, whether it is
// addressed to the assistant, its text and the media it carries. Pure: the channel
// downloads the media and hands the result to the context.
//
// Addresses: `whatsapp:<jid>` — `<number>@s.whatsapp.net` for a one-to-one chat (the
// phone-number form, also when WhatsApp names the peer by a privacy `@lid`), `<id>@g.us`
// for a group. Invariants: the account's own messages and status broadcasts are never
// taken; `trusted` only for a sender whose phone number is one of the owner's.

import type { proto } from 'baileys';
import type { WAMessage } from './socket.ts';

export type MediaKind = 'image' | 'document' | 'audio' | 'video';

export interface MediaRef {
  readonly kind: MediaKind;
  /** A file name for the workspace (the sender's for documents). */
  readonly name: string;
  readonly mime: string;
  /** As the message declares it; may be missing. */
  readonly size?: number;
}

export interface Mapped {
  readonly chat: string;
  readonly chatTitle?: string;
  readonly sender: string;
  readonly senderId: string;
  readonly trusted: boolean;
  readonly text: string;
  readonly direct: boolean;
  /** The message key's id: the store keeps each (chat, ref) once. */
  readonly ref: string;
  /** Seconds since the epoch (WhatsApp's server clock); 0 when the message has none. */
  readonly ts: number;
  readonly media?: MediaRef;
}

/** The linked account: its user jids in both forms, without a device part. */
export interface Me {
  readonly jids: readonly string[];
}

/** `4915…:12@s.whatsapp.net` → `4915…@s.whatsapp.net` (the device does not name a person). */
export function bareJid(jid: string): string {
  const at = jid.indexOf('@');
  if (at < 0) return jid;
  const user = jid.slice(0, at).split(':')[0]!;
  return `${user}@${jid.slice(at + 1)}`;
}

export function meOf(user: { readonly id?: string; readonly lid?: string } | undefined): Me {
  return { jids: [user?.id, user?.lid].filter((j): j is string => !!j).map(bareJid) };
}

const PN = /^(\d{5,20})@s\.whatsapp\.net$/;

/** An outbound address as a jid: a jid as given, or a bare phone number as its `@s.whatsapp.net` jid. */
export function addressJid(address: string): string | undefined {
  if (/^\+?\d{6,15}$/.test(address)) return `${address.replace(/^\+/, '')}@s.whatsapp.net`;
  if (PN.test(address) || /^[\d-]{5,40}@g\.us$/.test(address) || /^\d{5,20}@lid$/.test(address)) return address;
  return undefined;
}

/** The phone-number form when WhatsApp gives one next to a LID, else the jid itself. */
function preferPhone(jid: string, alt: string | null | undefined): string {
  const j = bareJid(jid);
  if (j.endsWith('@lid') && alt && PN.test(bareJid(alt))) return bareJid(alt);
  return j;
}

type Content = proto.IMessage;

/** The message inside the wrappers WhatsApp puts around disappearing, view-once and captioned documents. */
export function unwrap(m: Content | null | undefined): Content | undefined {
  let c = m ?? undefined;
  for (let i = 0; i < 5 && c; i++) {
    const inner = c.ephemeralMessage?.message ?? c.viewOnceMessage?.message ?? c.viewOnceMessageV2?.message
      ?? c.viewOnceMessageV2Extension?.message ?? c.documentWithCaptionMessage?.message ?? c.editedMessage?.message;
    if (!inner) return c;
    c = inner;
  }
  return c;
}

export function timestamp(ts: WAMessage['messageTimestamp']): number {
  if (ts === null || ts === undefined) return 0;
  const n = typeof ts === 'number' ? ts : Number(ts.toString());
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * Maps one message; undefined for what hako does not take (own messages, status
 * broadcasts, protocol messages, reactions, nothing to show).
 */
export function mapMessage(msg: WAMessage, me: Me, owners: ReadonlySet<string>): Mapped | undefined {
  const key = msg.key;
  const remote = key.remoteJid;
  if (!remote || !key.id || key.fromMe) return undefined;
  if (remote === 'status@broadcast' || remote.endsWith('@broadcast') || remote.endsWith('@newsletter')) return undefined;
  const content = unwrap(msg.message);
  if (!content) return undefined;
  const media = mediaOf(content);
  const text = textOf(content);
  if (text.trim() === '' && !media) return undefined;

  const group = remote.endsWith('@g.us');
  const chatJid = group ? remote : preferPhone(remote, key.remoteJidAlt);
  const senderJid = group ? preferPhone(key.participant ?? '', key.participantAlt) : chatJid;
  if (!senderJid) return undefined;
  const number = PN.exec(senderJid)?.[1];
  const sender = msg.pushName?.trim() || (number ? `+${number}` : senderJid);
  return {
    chat: `whatsapp:${chatJid}`,
    ...(!group && msg.pushName ? { chatTitle: msg.pushName } : {}),
    sender,
    senderId: `whatsapp:${senderJid}`,
    trusted: number !== undefined && owners.has(number),
    text,
    direct: !group || mentionsMe(content, me),
    ref: key.id,
    ts: timestamp(msg.messageTimestamp),
    ...(media ? { media } : {}),
  };
}

function textOf(c: Content): string {
  return c.conversation ?? c.extendedTextMessage?.text ?? c.imageMessage?.caption ?? c.videoMessage?.caption
    ?? c.documentMessage?.caption ?? '';
}

function contextOf(c: Content): proto.IContextInfo | undefined {
  return (c.extendedTextMessage ?? c.imageMessage ?? c.videoMessage ?? c.documentMessage ?? c.audioMessage)?.contextInfo ?? undefined;
}

/** A mention of the linked account (in either jid form). */
function mentionsMe(c: Content, me: Me): boolean {
  const mentioned = contextOf(c)?.mentionedJid ?? [];
  return mentioned.some((j) => me.jids.includes(bareJid(j)));
}

const EXT: Record<string, string> = {
  'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'audio/ogg': 'ogg', 'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a', 'video/mp4': 'mp4', 'application/pdf': 'pdf',
};

function size(n: number | { toString(): string } | null | undefined): number | undefined {
  if (n === null || n === undefined) return undefined;
  const v = Number(n.toString());
  return Number.isFinite(v) && v >= 0 ? v : undefined;
}

function mediaOf(c: Content): MediaRef | undefined {
  const pick = (kind: MediaKind, m: { mimetype?: string | null; fileLength?: number | { toString(): string } | null } | null | undefined, name?: string | null) => {
    if (!m) return undefined;
    const mime = (m.mimetype ?? 'application/octet-stream').split(';')[0]!.trim();
    const bytes = size(m.fileLength);
    return { kind, mime, name: name || `${kind}.${EXT[mime] ?? 'bin'}`, ...(bytes !== undefined ? { size: bytes } : {}) };
  };
  return pick('image', c.imageMessage) ?? pick('document', c.documentMessage, c.documentMessage?.fileName)
    ?? pick('audio', c.audioMessage) ?? pick('video', c.videoMessage);
}
