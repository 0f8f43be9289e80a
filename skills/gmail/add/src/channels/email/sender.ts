// Sends the assistant's messages over SMTP (nodemailer). A reply goes to the sender of the
// message it answers, in its thread (reply.ts), when that sender could engage the agent; a
// message that answers nothing (a scheduled task's), or answers someone who could not, goes
// to the owner's addresses with the subject "hako: <group>": a stranger never gets mail. It is sent from
// the address the group is bound to when that is the mailbox's own or a plus-address of it,
// so the owner's answer comes back to the same group. A text over MAX_BODY_CHARS is sent
// as several messages, each a reply in the same thread, cut at paragraphs (splitText).
// Every message says it was sent by a program (Auto-Submitted, RFC 3834), so well-behaved
// auto-responders do not answer it, and its Message-ID is derived from the stored
// message's id, so a message sent again after a crash is the same message to the recipient.

import nodemailer from 'nodemailer';
import type { Outbound } from '../../core/channel.ts';
import { splitText } from '../split.ts';
import type { EmailConfig } from './config.ts';
import { fromAddressFor, normalizeAddress } from './address.ts';
import { decodeRef, outgoingMessageId, replyHeaders } from './reply.ts';

/** The most characters in one e-mail body; longer texts become several messages. */
export const MAX_BODY_CHARS = 100_000;
const SECRETS_HINT = '~/.config/hako/secrets.env';

type Transport = ReturnType<typeof nodemailer.createTransport>;

export function smtpOptions(config: EmailConfig) {
  const { host, port, security } = config.smtp;
  return {
    host, port,
    secure: security === 'tls',
    // STARTTLS required when asked for; plain (loopback only) never tries it.
    requireTLS: security === 'starttls',
    ignoreTLS: security === 'plain',
    auth: config.auth.kind === 'password'
      ? { user: config.user, pass: config.auth.password }
      : { type: 'OAuth2' as const, user: config.user, accessToken: config.auth.token },
    tls: { minVersion: 'TLSv1.2' as const, rejectUnauthorized: true },
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 120_000,
    logger: false,
  };
}

/** One clear line for an SMTP failure: what the server said, and what to check. */
export function smtpProblem(err: unknown, config: EmailConfig, to?: string): string {
  const e = err as { code?: string; responseCode?: number; response?: string; message?: string };
  const where = `${config.smtp.host}:${config.smtp.port}`;
  const said = (e.response ?? e.message ?? String(err)).replace(/\s+/g, ' ').trim();
  if (e.code === 'EAUTH') {
    const secret = config.auth.kind === 'password' ? 'HAKO_EMAIL_PASSWORD (for Gmail: an app password)' : 'HAKO_EMAIL_OAUTH_TOKEN (it may have expired)';
    return `email: the SMTP server ${where} refused the login of ${config.user} (${said}): check HAKO_EMAIL_USER and ${secret} in ${SECRETS_HINT}`;
  }
  if (e.code === 'ETLS' || /certificate|TLS|SSL/i.test(said)) return `email: TLS with the SMTP server ${where} failed (${said}): check HAKO_EMAIL_SMTP`;
  if (e.code === 'ECONNECTION' || e.code === 'ETIMEDOUT' || e.code === 'ESOCKET' || e.code === 'EDNS') return `email: cannot reach the SMTP server ${where} (${said})`;
  return `email: the SMTP server ${where} refused the message${to ? ` to ${to}` : ''} (${said})`;
}

export class MailSender {
  readonly #config: EmailConfig;
  readonly #fromName: string;
  readonly #onRedirect: ((m: Outbound, from: string) => void) | undefined;
  #transport: Transport | undefined;

  /** `onRedirect`: told when a reply to a sender who could not engage the agent goes to the owner instead. */
  constructor(opts: { config: EmailConfig; assistantName: string; onRedirect?: (m: Outbound, from: string) => void }) {
    this.#config = opts.config;
    this.#fromName = opts.assistantName;
    this.#onRedirect = opts.onRedirect;
    this.#transport = nodemailer.createTransport(smtpOptions(opts.config));
  }

  /** Checks that the server answers and takes the login (nodemailer verify); the problem, or undefined. */
  async verify(): Promise<string | undefined> {
    try {
      await this.#transport!.verify();
      return undefined;
    } catch (err) {
      return smtpProblem(err, this.#config);
    }
  }

  async send(m: Outbound): Promise<void> {
    const transport = this.#transport;
    if (!transport) throw new Error('email: the channel is stopped; the message is sent after the next start');
    const config = this.#config;
    const bound = normalizeAddress(m.address);
    const from = fromAddressFor(m.address, config.address);
    const ref = m.replyTo !== undefined ? decodeRef(m.replyTo) : undefined;
    if (m.replyTo !== undefined && !ref) throw new Error(`email: message ${m.id} answers a message whose reference cannot be read; it is not sent`);
    // Only a sender who could engage the agent is ever written to; anything else goes to the owner.
    const thread = ref?.engaged ? replyHeaders(ref) : undefined;
    if (ref && !ref.engaged) this.#onRedirect?.(m, ref.from);
    const to = thread ? [thread.to] : [...config.owners];
    const subject = thread ? thread.subject : `${this.#fromName}: ${m.group}`;
    const pieces = splitText(m.text, MAX_BODY_CHARS);
    for (const [i, text] of pieces.entries()) {
      try {
        await transport.sendMail({
          from: { name: this.#fromName, address: from },
          to,
          // A group bound to an address that is not the mailbox's own: answers still reach it.
          ...(bound && bound !== from ? { replyTo: bound } : {}),
          subject: pieces.length > 1 ? `${subject} (${i + 1}/${pieces.length})` : subject,
          text,
          messageId: outgoingMessageId(m.id, i, from),
          ...(thread?.inReplyTo ? { inReplyTo: thread.inReplyTo } : {}),
          ...(thread && thread.references.length ? { references: thread.references } : {}),
          headers: { 'Auto-Submitted': thread ? 'auto-replied' : 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
        });
      } catch (err) {
        throw new Error(`${smtpProblem(err, config, to.join(', '))}${pieces.length > 1 ? ` (part ${i + 1} of ${pieces.length})` : ''}`, { cause: err });
      }
    }
  }

  close(): void {
    this.#transport?.close();
    this.#transport = undefined;
  }
}
