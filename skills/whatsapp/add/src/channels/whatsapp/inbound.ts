// What arrives at the Cloud API webhook, as pure functions: the GET verification handshake,
// the X-Hub-Signature-256 check over the raw body, the age check against replays, and the
// mapping of a `messages` change to hako's ChatInbound.
// Invariants: every secret comparison is constant-time over equal-length digests; nothing
// is parsed before the signature is verified (the caller's order); a sender is `trusted`
// only when WHATSAPP_OWNER_NUMBERS names it; the Cloud API has 1:1 chats only, so every
// message is direct.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ChatInbound, WebhookReply } from '../../core/channel.ts';

/**
 * How old a signed message may be. Meta retries a delivery it did not get a 200 for during
 * up to 7 days; older, it can only be a replay. Within the window the message id (the
 * ChatInbound `ref`, kept durably with the message) makes a replay store nothing.
 */
export const MAX_AGE_S = 7 * 24 * 60 * 60;
/** A timestamp this far ahead of the host's clock is still taken (clock skew). */
export const MAX_SKEW_S = 5 * 60;

/** Equal-length digests of both sides, so neither length nor content leaks through timing. */
function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/** The answer to Meta's GET verification (`hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`). */
export function verification(query: string, verifyToken: string): WebhookReply {
  const q = new URLSearchParams(query);
  const challenge = q.get('hub.challenge') ?? '';
  if (q.get('hub.mode') !== 'subscribe' || !challenge) return { status: 400, body: 'expected hub.mode=subscribe with a hub.challenge\n', contentType: 'text/plain' };
  if (!sameSecret(q.get('hub.verify_token') ?? '', verifyToken)) return { status: 403, refused: 'webhook verification with a wrong verify token' };
  return { status: 200, body: challenge.slice(0, 200), contentType: 'text/plain' };
}

/** Whether `header` is `sha256=` + the hex HMAC-SHA256 of the raw body with the app secret. */
export function signatureValid(body: Buffer, header: string | undefined, appSecret: string): boolean {
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header?.trim() ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', appSecret).update(body).digest();
  return timingSafeEqual(Buffer.from(m[1]!.toLowerCase(), 'hex'), expected);
}

export type MediaKind = 'image' | 'document' | 'audio' | 'video' | 'sticker';

export interface CloudMessage {
  readonly id: string;
  /** The sender's wa_id: the phone number in international form, digits only. */
  readonly from: string;
  readonly name?: string;
  /** Unix seconds, as Meta sent it. */
  readonly timestamp: number;
  readonly text: string;
  readonly media?: { readonly kind: MediaKind; readonly id: string; readonly mime: string; readonly name: string };
}

export interface Parsed {
  readonly messages: readonly CloudMessage[];
  /** Delivery statuses (sent, delivered, read, failed): acknowledged and ignored. */
  readonly statuses: number;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Obj : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The messages of a verified webhook body for this phone number id; throws on a body that is not Meta's shape. */
export function parsePayload(body: Buffer, phoneNumberId: string): Parsed {
  const root = obj(JSON.parse(body.toString('utf8')));
  if (!root || root.object !== 'whatsapp_business_account') throw new Error('not a whatsapp_business_account notification');
  const messages: CloudMessage[] = [];
  let statuses = 0;
  for (const entry of arr(root.entry)) {
    for (const change of arr(obj(entry)?.changes)) {
      const value = obj(obj(change)?.value);
      if (obj(change)?.field !== 'messages' || !value) continue;
      // One app may serve several numbers: only this one's messages are hako's.
      if (str(obj(value.metadata)?.phone_number_id) !== phoneNumberId) continue;
      statuses += arr(value.statuses).length;
      const names = new Map(arr(value.contacts).map((c) => [str(obj(c)?.wa_id), str(obj(obj(c)?.profile)?.name)]));
      for (const raw of arr(value.messages)) {
        const m = message(obj(raw), names);
        if (m) messages.push(m);
      }
    }
  }
  return { messages, statuses };
}

function message(m: Obj | undefined, names: Map<string | undefined, string | undefined>): CloudMessage | undefined {
  const id = str(m?.id), from = str(m?.from), ts = Number(str(m?.timestamp));
  if (!m || !id || !from || !/^\d{6,20}$/.test(from) || !Number.isFinite(ts)) return undefined;
  const type = str(m.type) ?? 'unknown';
  const name = names.get(from);
  const base = { id, from, timestamp: ts, ...(name ? { name } : {}) };
  const part = obj(m[type]);
  switch (type) {
    case 'text': return { ...base, text: str(part?.body) ?? '' };
    case 'image': case 'document': case 'audio': case 'video': case 'sticker': {
      const mediaId = str(part?.id);
      const mime = str(part?.mime_type) ?? 'application/octet-stream';
      const fileName = str(part?.filename) ?? `${type}${extension(mime)}`;
      const text = str(part?.caption) ?? '';
      return mediaId ? { ...base, text, media: { kind: type, id: mediaId, mime, name: fileName } } : { ...base, text: `[${type}: not received]` };
    }
    case 'location': {
      const where = [str(part?.name), str(part?.address)].filter(Boolean).join(', ');
      return { ...base, text: `[location: ${Number(part?.latitude)}, ${Number(part?.longitude)}${where ? ` (${where})` : ''}]` };
    }
    case 'button': return { ...base, text: str(part?.text) ?? '' };
    case 'interactive': {
      const reply = obj(part?.button_reply) ?? obj(part?.list_reply);
      return { ...base, text: str(reply?.title) ?? '' };
    }
    // A reaction or a system notice is no message to answer.
    case 'reaction': case 'system': case 'ephemeral': return undefined;
    default: return { ...base, text: `[a WhatsApp message of a kind hako does not read: ${type.slice(0, 30)}]` };
  }
}

function extension(mime: string): string {
  const sub = /^[a-z]+\/([a-z0-9.+-]+)/i.exec(mime)?.[1]?.toLowerCase();
  if (!sub) return '';
  return `.${({ jpeg: 'jpg', mpeg: 'mp3', plain: 'txt' } as Record<string, string>)[sub] ?? sub.replace(/[^a-z0-9]/g, '')}`;
}

/** Why a message's age makes its request a replay, or undefined. */
export function ageProblem(m: CloudMessage, nowS: number): string | undefined {
  if (m.timestamp < nowS - MAX_AGE_S) return `a message ${Math.round((nowS - m.timestamp) / 3600)} hours old (the limit is ${MAX_AGE_S / 3600})`;
  if (m.timestamp > nowS + MAX_SKEW_S) return 'a message from the future';
  return undefined;
}

/** The message as hako's core takes it; `text` is the caller's (with its attachment lines). */
export function toInbound(m: CloudMessage, owners: ReadonlySet<string>, text: string): ChatInbound {
  const sender = m.name?.trim() || `+${m.from}`;
  return {
    chat: `whatsapp:${m.from}`, chatTitle: m.name ? `${m.name} (+${m.from})` : `+${m.from}`,
    sender, senderId: `whatsapp:${m.from}`, trusted: owners.has(m.from), text, direct: true, ref: m.id,
  };
}
