// How a reply keeps its thread. An inbound message's `ref` (kept by the core with the
// message, given back with its reply) is JSON with the headers a reply needs — Message-ID,
// References, Subject and the sender's address — at most 4 KB; the reply goes to that
// sender with `Re: <subject>` (never a second `Re:`), In-Reply-To and References — if that
// sender could engage the agent; the ref records it (fail closed: no record, no reply).
// Outgoing Message-IDs are derived from the stored message's id, so a message sent again
// after a crash carries the same id and mail clients (Gmail too) show it once. Pure.

import { createHash } from 'node:crypto';
import { normalizeAddress } from './address.ts';

export const MAX_REF_CHARS = 4096;
const MAX_REFERENCES = 20;
const MAX_ID_CHARS = 250;
const MAX_SUBJECT_CHARS = 400;

export interface MailRef {
  readonly messageId: string | undefined;
  readonly references: readonly string[];
  readonly subject: string;
  /** The sender's address, lower-case: where the reply goes. */
  readonly from: string;
  /**
   * Whether the message could engage the agent (the owner, or a sender on the group's
   * allowlist) when it was received. Only such a sender is ever written to: a reply whose
   * ref says otherwise goes to the owner (defence in depth — the core should never answer
   * a message that did not engage, but a stranger must never get mail even if it did).
   */
  readonly engaged: boolean;
}

/** A Message-ID as a header carries it (`<local@domain>`), or undefined when it is not one. */
export function cleanMessageId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  const t = id.trim();
  const m = /^<?([^<>\s]{1,246})>?$/.exec(t);
  return m ? `<${m[1]}>` : undefined;
}

/** The Message-IDs of a References header, in order. */
export function parseReferences(value: string | readonly string[] | undefined): string[] {
  const raw = Array.isArray(value) ? value.join(' ') : (value as string | undefined) ?? '';
  return [...raw.matchAll(/<[^<>\s]{1,246}>/g)].map((m) => m[0]);
}

/** The ref of an inbound message, at most MAX_REF_CHARS: older References are dropped first, then the subject is cut. */
export function encodeRef(ref: MailRef): string {
  let references = ref.references.filter((r) => r.length <= MAX_ID_CHARS).slice(-MAX_REFERENCES);
  let subject = ref.subject.slice(0, MAX_SUBJECT_CHARS);
  for (;;) {
    const json = JSON.stringify({ messageId: ref.messageId, references, subject, from: ref.from, engaged: ref.engaged });
    if (json.length <= MAX_REF_CHARS) return json;
    if (references.length > 0) references = references.slice(1);
    else subject = subject.slice(0, Math.floor(subject.length / 2));
  }
}

/** Reads a ref back; undefined when it is not one this channel made. */
export function decodeRef(json: string | undefined): MailRef | undefined {
  if (!json || json.length > MAX_REF_CHARS) return undefined;
  let o: unknown;
  try { o = JSON.parse(json); } catch { return undefined; }
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  const from = typeof r.from === 'string' ? normalizeAddress(r.from) : undefined;
  if (!from) return undefined;
  return {
    messageId: typeof r.messageId === 'string' ? cleanMessageId(r.messageId) : undefined,
    references: Array.isArray(r.references) ? r.references.filter((x): x is string => typeof x === 'string').map((x) => cleanMessageId(x)).filter((x): x is string => !!x) : [],
    subject: typeof r.subject === 'string' ? r.subject : '',
    from,
    engaged: r.engaged === true,
  };
}

/** `Re: <subject>`, once: a subject that already starts with Re: (any case, Re[2]:) is kept. */
export function replySubject(subject: string): string {
  const s = subject.replace(/[\r\n]+/g, ' ').trim();
  if (!s) return 'Re: (no subject)';
  return /^re(\[\d+\])?\s*:/i.test(s) ? s : `Re: ${s}`;
}

/** The headers of a reply to `ref`. */
export function replyHeaders(ref: MailRef): { to: string; subject: string; inReplyTo: string | undefined; references: string[] } {
  const references = [...ref.references];
  if (ref.messageId && !references.includes(ref.messageId)) references.push(ref.messageId);
  return { to: ref.from, subject: replySubject(ref.subject), inReplyTo: ref.messageId, references: references.slice(-MAX_REFERENCES) };
}

/** The Message-ID of piece `part` of stored message `id`, sent from `from`: the same for every attempt. */
export function outgoingMessageId(id: string, part: number, from: string): string {
  const domain = from.slice(from.lastIndexOf('@') + 1);
  const local = /^[A-Za-z0-9._-]{1,100}$/.test(id) ? id : createHash('sha256').update(id).digest('hex').slice(0, 32);
  return `<hako.${local}.${part}@${domain}>`;
}

/** Whether a Message-ID is one this channel made (mail hako sent, back in its own inbox). */
export function isOwnMessageId(id: string | undefined): boolean {
  return !!id && /^<hako\.[A-Za-z0-9._-]+\.\d+@[^<>\s]+>$/.test(id);
}
