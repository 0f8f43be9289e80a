// One parsed e-mail → the ChatInbound the core stores. Decides where it goes (routeMessage),
// whether its sender is the owner (From is an owner's address, vouched for by the receiving
// server when HAKO_EMAIL_AUTHSERV_ID is set, and not sent by a program), and what the model
// sees: who wrote, to whom, the subject and date, the plain text (HTML converted by
// mailparser, quoted history and signature trimmed) and the attachments. Attachments are
// saved into the workspace only when the message will engage the agent (the owner, or a
// sender on the group's allowlist): a stranger's files reach no folder. The text stays
// within the core's 16,000 characters; a longer body is cut with a note, and kept whole as
// a file when the message engages. Mail hako itself sent is recognised and skipped.
// No I/O of its own: saving goes through the `save` callback (saveAttachment).

import type { AddressObject, ParsedMail } from 'mailparser';
import type { ChatInbound } from '../../core/channel.ts';
import type { Group } from '../../core/store-contract.ts';
import type { SavedAttachment } from '../attachments.ts';
import type { EmailConfig } from './config.ts';
import { normalizeAddress, routeMessage, splitTag } from './address.ts';
import { cleanMessageId, encodeRef, isOwnMessageId, parseReferences } from './reply.ts';
import { isAutomated, senderVerified } from './sender-auth.ts';
import { trimReply } from './trim.ts';

/** The core refuses longer texts (config maxMessageChars). */
export const MAX_TEXT_CHARS = 16_000;

export interface MailAttachment {
  readonly filename: string;
  readonly contentType: string;
  readonly content: Uint8Array;
}

/** What the channel reads from one message, independent of the MIME library. */
export interface MailFacts {
  readonly messageId: string | undefined;
  /** References, then In-Reply-To: the thread this message continues. */
  readonly references: readonly string[];
  readonly subject: string;
  readonly from: { readonly address: string; readonly name: string } | undefined;
  /** Delivered-To and X-Original-To (the envelope), then To, then Cc. */
  readonly recipients: readonly string[];
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly date: Date | undefined;
  /** The plain text (from HTML when there is no text part). */
  readonly body: string;
  readonly autoSubmitted: string | undefined;
  readonly precedence: string | undefined;
  /** Authentication-Results values, topmost first. */
  readonly authResults: readonly string[];
  readonly attachments: readonly MailAttachment[];
  /** Set when the message was too big to download: its size in bytes (only the headers were read). */
  readonly oversize?: number;
}

function addresses(o: AddressObject | AddressObject[] | undefined): { address: string; name: string }[] {
  const out: { address: string; name: string }[] = [];
  const walk = (list: readonly { name: string; address?: string; group?: { name: string; address?: string }[] }[]) => {
    for (const a of list) {
      if (a.group) walk(a.group);
      const n = normalizeAddress(a.address);
      if (n) out.push({ address: n, name: a.name?.trim() ?? '' });
    }
  };
  for (const obj of Array.isArray(o) ? o : o ? [o] : []) walk(obj.value);
  return out;
}

/** Header values by name, topmost first, unfolded. */
function headerValues(parsed: ParsedMail, name: string): string[] {
  return parsed.headerLines.filter((h) => h.key === name).map((h) => h.line.slice(h.line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim());
}

/** Reads the facts from mailparser's result. */
export function mailFacts(parsed: ParsedMail, oversize?: number): MailFacts {
  const from = addresses(parsed.from)[0];
  const to = addresses(parsed.to).map((a) => a.address);
  const cc = addresses(parsed.cc).map((a) => a.address);
  const envelope = [...headerValues(parsed, 'delivered-to'), ...headerValues(parsed, 'x-original-to')]
    .map((v) => normalizeAddress(v)).filter((v): v is string => !!v);
  const references = parseReferences(parsed.references);
  const inReplyTo = cleanMessageId(parsed.inReplyTo);
  if (inReplyTo && !references.includes(inReplyTo)) references.push(inReplyTo);
  return {
    messageId: cleanMessageId(parsed.messageId),
    references,
    subject: (parsed.subject ?? '').replace(/[\r\n]+/g, ' ').trim(),
    from,
    recipients: [...envelope, ...to, ...cc],
    to, cc,
    date: parsed.date,
    body: parsed.text ?? '',
    autoSubmitted: headerValues(parsed, 'auto-submitted')[0],
    precedence: headerValues(parsed, 'precedence')[0],
    authResults: headerValues(parsed, 'authentication-results'),
    // Images the HTML shows inline (logos, signatures) are decoration, not the sender's files.
    attachments: parsed.attachments.filter((a) => !a.related).map((a, i) => ({
      filename: a.filename || `attachment-${i + 1}${a.contentType === 'message/rfc822' ? '.eml' : ''}`,
      contentType: a.contentType,
      content: a.content,
    })),
    ...(oversize !== undefined ? { oversize } : {}),
  };
}

export interface InboundEnv {
  readonly config: Pick<EmailConfig, 'address' | 'owners' | 'authservId' | 'attachmentMaxBytes'>;
  readonly groupFor: (chat: string) => string | undefined;
  readonly getGroup: (name: string) => Group | undefined;
  readonly mainGroup: () => Group | undefined;
  /** Saves a file into a group's workspace (saveAttachment); may throw. */
  readonly save: (group: string, filename: string, data: Uint8Array) => SavedAttachment;
}

export type InboundResult =
  | { readonly kind: 'inbound'; readonly inbound: ChatInbound; readonly saved: readonly SavedAttachment[] }
  /** Mail this channel sent itself (a message to the owner when the owner is the mailbox). */
  | { readonly kind: 'own' };

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** At most ten addresses: a list's hundreds would crowd out the message. */
function list(addresses: readonly string[]): string {
  return addresses.length <= 10 ? addresses.join(', ') : `${addresses.slice(0, 10).join(', ')} and ${addresses.length - 10} more`;
}

export function toInbound(f: MailFacts, env: InboundEnv): InboundResult {
  const own = env.config.address;
  const fromAddress = f.from?.address;
  if (fromAddress && splitTag(fromAddress).base === splitTag(own).base && isOwnMessageId(f.messageId)) return { kind: 'own' };

  const fromDomain = fromAddress ? fromAddress.slice(fromAddress.lastIndexOf('@') + 1) : '';
  const verified = !!fromAddress && senderVerified({ authResults: f.authResults, fromDomain, authservId: env.config.authservId });
  const automated = isAutomated({ autoSubmitted: f.autoSubmitted, precedence: f.precedence });
  const trusted = verified && !automated && env.config.owners.includes(fromAddress!);
  // An address the receiving server did not vouch for must not match an allowlist entry either.
  const senderId = !fromAddress ? 'email:unknown' : verified ? `email:${fromAddress}` : `email-unverified:${fromAddress}`;
  const route = routeMessage({ recipients: f.recipients, own, trusted, groupFor: env.groupFor });
  const bound = env.groupFor(route.chat);
  const group = bound !== undefined ? env.getGroup(bound) : route.mainIfUnbound ? env.mainGroup() : undefined;
  const engages = group !== undefined && (group.allowedSenders ? group.allowedSenders.includes(senderId) : trusted);

  const saved: SavedAttachment[] = [];
  const listed: string[] = [];
  const keep = (filename: string, data: Uint8Array, what: string): string | undefined => {
    if (!engages || !group) return undefined;
    if (data.length > env.config.attachmentMaxBytes) { listed.push(`- ${what} — not saved: over the ${size(env.config.attachmentMaxBytes)} limit`); return undefined; }
    try {
      const s = env.save(group.name, filename, data);
      saved.push(s);
      return s.agentPath;
    } catch (err) {
      listed.push(`- ${what} — not saved: ${(err as Error).message}`);
      return undefined;
    }
  };
  for (const a of f.attachments) {
    const what = `${a.filename} (${a.contentType}, ${size(a.content.length)})`;
    if (!engages) { listed.push(`- ${what} — not saved: ${group ? 'the sender may not engage the assistant' : 'no group takes this address'}`); continue; }
    const at = keep(a.filename, a.content, what);
    if (at) listed.push(`- ${at} (${a.contentType}, ${size(a.content.length)})`);
  }

  if (listed.length > 50) listed.splice(50, listed.length - 50, `- … and ${listed.length - 50} more`);
  const sender = f.from ? (f.from.name ? `${f.from.name} <${f.from.address}>` : f.from.address) : 'unknown sender';
  const head = [
    `E-mail from ${sender}${verified || !fromAddress ? '' : ' (the sender address is not verified)'}`,
    f.to.length ? `To: ${list(f.to)}` : undefined,
    f.cc.length ? `Cc: ${list(f.cc)}` : undefined,
    `Subject: ${f.subject || '(no subject)'}`,
    f.date && !Number.isNaN(f.date.getTime()) ? `Date: ${f.date.toISOString()}` : undefined,
  ].filter((l): l is string => l !== undefined).join('\n');
  const trimmed = trimReply(f.body, f.subject);
  const notes: string[] = [];
  if (f.oversize !== undefined) notes.push(`[This message is ${size(f.oversize)}, over the size hako downloads; only its headers were read. It is in the mailbox.]`);
  if (trimmed.quotedLines > 0) notes.push(`[${trimmed.quotedLines} lines of quoted earlier messages left out]`);
  const tailOf = () => [...notes, ...(listed.length ? [`Attachments:\n${listed.join('\n')}`] : [])].join('\n\n');

  let body = trimmed.text;
  // Room for one more attachment line: the whole text, saved when the body is cut.
  const budget = Math.max(1000, MAX_TEXT_CHARS - head.length - tailOf().length - 800);
  if (body.length > budget) {
    const cut = body.length - budget;
    const whole = keep(`${f.subject || 'message'}.txt`, Buffer.from(f.body, 'utf8'), 'the whole text');
    body = `${body.slice(0, budget)}\n[… ${cut} more characters cut${whole ? `; the whole text is in ${whole}` : ''}]`;
  }
  const tail = tailOf();
  const text = [head, body || '(no text)', tail].filter(Boolean).join('\n\n');

  const inbound: ChatInbound = {
    chat: route.chat,
    ...(route.title !== undefined ? { chatTitle: route.title } : {}),
    sender,
    senderId,
    trusted,
    text,
    // Every e-mail is addressed to the assistant: no trigger word is needed.
    direct: true,
    ...(fromAddress ? { ref: encodeRef({ messageId: f.messageId, references: f.references, subject: f.subject, from: fromAddress, engaged: engages }) } : {}),
    ...(route.mainIfUnbound ? { mainIfUnbound: true } : {}),
  };
  return { kind: 'inbound', inbound, saved };
}

/** The dedup key of a message: its Message-ID, or a hash of what identifies it when it has none. */
export function mailKey(messageId: string | undefined, fallback: () => string): string {
  return messageId ? `id:${messageId}` : `h:${fallback()}`;
}
