// A real SMTP server on loopback for the e-mail tests (the `smtp-server` package): it speaks
// the protocol to nodemailer exactly as a mail provider's submission server would, records
// every message it accepts (raw, and parsed by mailparser, with the envelope and the
// authenticated user), can require AUTH (PLAIN/LOGIN with a password, XOAUTH2 with a token)
// and can refuse the next message with a final 5xx.

import { once, EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface ReceivedMail {
  readonly raw: string;
  readonly parsed: ParsedMail;
  readonly mailFrom: string | undefined;
  readonly rcptTo: readonly string[];
  /** The user the client authenticated as, if it did. */
  readonly user: string | undefined;
  readonly authMethod: string | undefined;
}

export interface SmtpPeerOptions {
  /** user → password (PLAIN, LOGIN); when set or `tokens` is, AUTH is required. */
  readonly users?: Readonly<Record<string, string>>;
  /** user → OAuth access token (XOAUTH2). */
  readonly tokens?: Readonly<Record<string, string>>;
}

export class SmtpPeer {
  readonly port: number;
  readonly mails: ReceivedMail[] = [];
  readonly #server: SMTPServer;
  readonly #events: EventEmitter;
  readonly #refusals: { code: number; message: string }[];

  private constructor(init: { port: number; server: SMTPServer; events: EventEmitter; refusals: { code: number; message: string }[] }) {
    this.port = init.port;
    this.#server = init.server;
    this.#events = init.events;
    this.#refusals = init.refusals;
  }

  static async start(opts: SmtpPeerOptions = {}): Promise<SmtpPeer> {
    const mails: ReceivedMail[] = [];
    const events = new EventEmitter();
    const refusals: { code: number; message: string }[] = [];
    const authRequired = Boolean(opts.users || opts.tokens);
    const methods = new Map<string, string>(); // session id → the AUTH method it used
    const server = new SMTPServer({
      name: 'smtp-peer.test',
      logger: false,
      disableReverseLookup: true,
      // Plain text on loopback: the channel allows it only there (the TLS rule).
      disabledCommands: authRequired ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      allowInsecureAuth: true,
      authOptional: !authRequired,
      authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'],
      size: 50 * 1024 * 1024,
      onAuth(auth, session, callback) {
        const user = auth.username ?? '';
        const ok = auth.method === 'XOAUTH2'
          ? opts.tokens?.[user] !== undefined && auth.accessToken === opts.tokens[user]
          : opts.users?.[user] !== undefined && auth.password === opts.users[user];
        if (!ok) {
          if (auth.method === 'XOAUTH2') return callback(null, { data: { status: '401', schemes: 'bearer' } });
          return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
        }
        methods.set(session.id, auth.method);
        callback(null, { user });
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const refusal = refusals.shift();
          if (refusal) return callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
          const raw = Buffer.concat(chunks).toString('utf8');
          simpleParser(raw).then((parsed) => {
            mails.push({
              raw, parsed,
              mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              user: session.user as string | undefined,
              authMethod: methods.get(session.id),
            });
            events.emit('mail');
            callback();
          }, (err: unknown) => callback(err as Error));
        });
      },
    });
    server.on('error', () => { /* a client's broken connection is not the peer's failure */ });
    server.listen(0, '127.0.0.1');
    await once(server.server, 'listening');
    const port = (server.server.address() as AddressInfo).port;
    const peer = new SmtpPeer({ port, server, events, refusals });
    (peer as { mails: ReceivedMail[] }).mails = mails;
    return peer;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** The next message is refused after its data with this final reply. */
  refuseNext(code = 550, message = '5.7.1 Message refused by the test peer'): void {
    this.#refusals.push({ code, message });
  }

  /** Resolves once at least `n` messages were accepted; returns them all. */
  async waitFor(n: number): Promise<ReceivedMail[]> {
    while (this.mails.length < n) await once(this.#events, 'mail');
    return this.mails;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
