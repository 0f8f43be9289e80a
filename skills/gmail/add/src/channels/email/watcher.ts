// Watches the mailbox over IMAP (imapflow) and hands each new message to `handle`, exactly
// once. New mail is noticed by IDLE (the server pushes EXISTS; imapflow re-enters IDLE after
// every command) and, as a fallback for servers and networks that drop IDLE silently, by a
// poll every HAKO_EMAIL_POLL_SECONDS.
//
// Per message, in this order: fetch (BODY.PEEK: the server does not mark it read) →
// `handle` (parse + ctx.receive, which stores it) → its key into state.json (fsynced) →
// \Seen on the server. A crash before `handle` resolved leaves it unread and unrecorded: it
// is taken again. A crash after leaves its key recorded: it is recognised (never stored
// twice) and only flagged. The UID cursor skips what was handled; after a new UIDVALIDITY
// (the server renumbered the folder) only unread mail is taken again, and the keys keep
// what was stored from being stored twice. A message whose handling keeps failing is
// skipped after a few tries and left unread (it stays in the mailbox; the log says so).
//
// Connection trouble reconnects with backoff; a refused login is one clear problem() line
// and a retry every half hour, never a crash loop. `start` never rejects: e-mail being
// down must not keep hako's other channels from starting.

import { createHash } from 'node:crypto';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { Logger } from '../../core/log.ts';
import { failpoint } from '../../core/failpoint.ts';
import type { EmailConfig } from './config.ts';
import { mailKey } from './inbound.ts';
import { cleanMessageId } from './reply.ts';
import type { MailState } from './state.ts';

const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000];
const AUTH_RETRY_MS = 30 * 60_000;
const START_WAIT_MS = 5_000;
const STOP_GRACE_MS = 5_000;
/** Tries before a message that cannot be stored is skipped (left unread). */
const MAX_TRIES = 3;
const SECRETS_HINT = '~/.config/hako/secrets.env';

export interface FetchedMail {
  readonly uid: number;
  /** The whole message, or only its headers when it is over messageMaxBytes. */
  readonly source: Buffer;
  /** Set when only the headers were fetched: the message's size. */
  readonly oversize: number | undefined;
}

/** What woke the watcher: the first look after connecting, the server's IDLE push, or the poll. */
export type Via = 'connect' | 'idle' | 'poll';

export interface WatcherOptions {
  readonly config: EmailConfig;
  readonly state: MailState;
  readonly log: Logger;
  /**
   * Contract: resolves once the message is stored (or deliberately not stored: unbound,
   * hako's own mail); rejects when it could not be handled now (it is tried again later).
   */
  readonly handle: (mail: FetchedMail, via: Via) => Promise<void>;
}

/** One clear line for what went wrong with the IMAP connection. */
export function imapProblem(err: unknown, config: EmailConfig): { text: string; auth: boolean } {
  const e = err as { message?: string; code?: string; authenticationFailed?: boolean; tlsFailed?: boolean; responseText?: string; serverResponseCode?: string; mailboxMissing?: boolean };
  const where = `${config.imap.host}:${config.imap.port}`;
  if (e.authenticationFailed) {
    const secret = config.auth.kind === 'password' ? 'HAKO_EMAIL_PASSWORD (for Gmail: an app password)' : 'HAKO_EMAIL_OAUTH_TOKEN (it may have expired)';
    const said = e.responseText || e.serverResponseCode || e.message || 'refused';
    return { text: `email: the IMAP server ${where} refused the login of ${config.user} (${said}): check HAKO_EMAIL_USER and ${secret} in ${SECRETS_HINT}`, auth: true };
  }
  if (e.mailboxMissing) return { text: `email: the mailbox has no folder "${config.mailbox}": check HAKO_EMAIL_MAILBOX`, auth: false };
  if (e.tlsFailed || /certificate|TLS|SSL/i.test(`${e.code ?? ''} ${e.message ?? ''}`)) {
    return { text: `email: TLS with the IMAP server ${where} failed (${e.message ?? e.code}): check HAKO_EMAIL_IMAP`, auth: false };
  }
  return { text: `email: cannot reach the IMAP server ${where} (${e.code ?? e.message ?? String(err)}); retrying`, auth: false };
}

export function imapOptions(config: EmailConfig): ImapFlowOptions {
  const { host, port, security } = config.imap;
  return {
    host, port,
    secure: security === 'tls',
    // Required when asked for, never opportunistic: a downgrade must fail, not go plain.
    doSTARTTLS: security === 'starttls' ? true : security === 'plain' ? false : undefined,
    auth: config.auth.kind === 'password' ? { user: config.user, pass: config.auth.password } : { user: config.user, accessToken: config.auth.token },
    tls: { minVersion: 'TLSv1.2', rejectUnauthorized: true },
    logger: false,
    clientInfo: { name: 'hako', vendor: false, 'support-url': false },
    // IDLE right after each look, so a new message is pushed within moments.
    autoIdleDelay: 100,
    // Renewed every few minutes: NATs and servers drop a silent connection.
    maxIdleTime: 4 * 60_000,
    maxLiteralSize: config.messageMaxBytes + 1024 * 1024,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
  };
}

export class MailWatcher {
  readonly #opts: WatcherOptions;
  #client: ImapFlow | undefined;
  #stopped = false;
  #problem: string | undefined;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #again: Via | undefined;
  #tries = new Map<string, number>();

  constructor(opts: WatcherOptions) {
    this.#opts = opts;
  }

  /**
   * Connects once (success or not: a failure keeps retrying in the background) and starts
   * the poll. Waits at most START_WAIT_MS: an unreachable server must not hold up hako's start.
   */
  async start(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#connect(), new Promise<void>((r) => { timer = setTimeout(r, START_WAIT_MS); })]);
    clearTimeout(timer);
    this.#pollTimer = setInterval(() => this.#kick('poll'), this.#opts.config.pollMs);
    this.#pollTimer.unref();
  }

  problem(): string | undefined {
    return this.#problem;
  }

  /**
   * Lets the look in progress finish (a few seconds at most: a hung server must not hold up
   * hako's shutdown; a message cut off between storing and flagging is recognised at the
   * next start), then logs out.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#pollTimer);
    const client = this.#client;
    this.#client = undefined;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => { timer = setTimeout(r, STOP_GRACE_MS); });
    if (this.#sweeping) await Promise.race([this.#sweeping, grace]);
    if (client?.usable) {
      const closed = new Promise<void>((r) => client.once('close', () => r()));
      await Promise.race([client.logout().catch(() => client.close()), grace]);
      client.close();
      await closed;
    } else {
      client?.close();
    }
    clearTimeout(timer);
    await this.#sweeping; // ends once its commands fail on the closed connection
  }

  /** One log line per new problem (a retry that fails the same way says nothing new). */
  #report(problem: string | undefined): void {
    if (problem === undefined) this.#opts.log.info(`email: connected to ${this.#opts.config.imap.host}:${this.#opts.config.imap.port}, watching ${this.#opts.config.mailbox}`);
    else if (problem !== this.#problem) this.#opts.log.error(problem);
    this.#problem = problem;
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const { config, log } = this.#opts;
    const client = new ImapFlow(imapOptions(config));
    client.on('error', (err: Error) => log.debug('email: IMAP connection error', { error: err.message }));
    // Looked at once imapflow has finished handling the response that told of the new mail.
    client.on('exists', (e: { path: string }) => { if (e.path === config.mailbox) setImmediate(() => this.#kick('idle')); });
    client.on('close', () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      if (!this.#stopped) {
        log.warn('email: the IMAP connection closed; reconnecting');
        this.#retry(false);
      }
    });
    try {
      await client.connect();
      await client.mailboxOpen(config.mailbox);
    } catch (err) {
      client.close();
      const p = imapProblem(err, config);
      this.#report(p.text);
      this.#retry(p.auth);
      return;
    }
    if (this.#stopped) { client.close(); return; }
    this.#client = client;
    this.#report(undefined);
    this.#kick('connect');
  }

  #retry(auth: boolean): void {
    if (this.#stopped) return;
    const log = this.#opts.log;
    const delay = auth ? AUTH_RETRY_MS : BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)]!;
    this.#attempt++;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#connect().catch((err: unknown) => log.error('email: reconnecting failed', { error: String(err) }));
    }, delay);
    this.#reconnectTimer.unref();
  }

  /** Looks for new mail now, or again right after the look in progress. */
  #kick(via: Via): void {
    if (this.#stopped || !this.#client) return;
    if (this.#sweeping) { this.#again ??= via; return; }
    this.#sweeping = (async () => {
      let next: Via | undefined = via;
      while (next && this.#client && !this.#stopped) {
        this.#again = undefined;
        try {
          await this.#sweep(this.#client, next);
          // Backoff starts over only once a connection did real work (not one the server drops at once).
          this.#attempt = 0;
        } catch (err) {
          // The connection's own failures reconnect through 'close'; this is the rest.
          this.#opts.log.warn('email: looking for new mail failed; trying again at the next change or poll', { error: String((err as Error).message ?? err) });
          break;
        }
        next = this.#again;
      }
    })().finally(() => { this.#sweeping = undefined; });
  }

  async #sweep(client: ImapFlow, via: Via): Promise<void> {
    const { config, state } = this.#opts;
    const lock = await client.getMailboxLock(config.mailbox);
    try {
      const mailbox = client.mailbox;
      if (!mailbox) throw new Error(`email: folder ${config.mailbox} is not open`);
      const validity = mailbox.uidValidity.toString();
      // A lower bound of the next UID (it may be stale): the cursor never passes a message not yet looked at.
      const nextAtStart = mailbox.uidNext;
      const fresh = state.uidValidity !== validity;
      if (fresh && state.uidValidity !== null) {
        this.#opts.log.warn('email: the server renumbered the mailbox (new UIDVALIDITY); unread mail is looked at again, and what was stored is recognised by its Message-ID', { folder: config.mailbox });
      }
      let uids: number[];
      if (fresh) uids = (await client.search({ seen: false }, { uid: true })) || [];
      // Always asked: the UIDNEXT imapflow keeps is the one SELECT reported, not updated by EXISTS.
      else uids = ((await client.search({ uid: `${state.lastUid + 1}:*` }, { uid: true })) || []).filter((u) => u > state.lastUid);
      uids.sort((a, b) => a - b);
      try {
        for (const uid of uids) {
          await this.#one(client, uid, via);
          if (!fresh) state.setCursor(validity, uid);
        }
        if (fresh) state.setCursor(validity, Math.max(uids.at(-1) ?? 0, nextAtStart - 1));
      } finally {
        if (uids.length > 0 || fresh) state.save();
      }
    } finally {
      lock.release();
    }
  }

  async #one(client: ImapFlow, uid: number, via: Via): Promise<void> {
    const { config, state, log } = this.#opts;
    const range = String(uid);
    const meta = await client.fetchOne(range, { uid: true, envelope: true, size: true, internalDate: true }, { uid: true });
    if (!meta) return; // expunged meanwhile
    const key = mailKey(cleanMessageId(meta.envelope?.messageId), () => createHash('sha256')
      .update(JSON.stringify([String(meta.internalDate ?? ''), meta.size ?? 0, meta.envelope?.subject ?? '', meta.envelope?.from?.map((a) => a.address) ?? []]))
      .digest('hex'));
    if (!state.has(key)) {
      const size = meta.size ?? 0;
      const oversize = size > config.messageMaxBytes ? size : undefined;
      const body = await client.fetchOne(range, oversize === undefined ? { uid: true, source: true } : { uid: true, headers: true }, { uid: true });
      const source = body ? (oversize === undefined ? body.source : body.headers) : undefined;
      if (!source) throw new Error(`email: the server sent no content for message ${uid}`);
      failpoint('email-fetched');
      try {
        await this.#opts.handle({ uid, source, oversize }, via);
      } catch (err) {
        const tries = (this.#tries.get(key) ?? 0) + 1;
        this.#tries.set(key, tries);
        if (tries < MAX_TRIES || (err as { status?: number }).status === 507) throw err;
        this.#tries.delete(key);
        log.error('email: a message could not be stored after several tries; it is skipped and left unread in the mailbox', { uid, error: String((err as Error).message ?? err) });
        return;
      }
      this.#tries.delete(key);
      state.addKey(key);
      state.save();
      failpoint('email-stored');
    }
    await client.messageFlagsAdd(range, ['\\Seen'], { uid: true });
  }
}
