// The e-mail channel: the IMAP watcher brings each new message, mailparser reads it,
// inbound.ts turns it into a ChatInbound for ctx.receive, and the SMTP sender sends the
// assistant's messages. Loaded only when the channel is made (register.ts imports it
// lazily), so a hako without e-mail loads none of imapflow, nodemailer or mailparser.

import { simpleParser } from 'mailparser';
import type { Channel, ChannelContext, ChannelDeps, Outbound } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { saveAttachment } from '../attachments.ts';
import type { EmailConfig } from './config.ts';
import { mailFacts, toInbound } from './inbound.ts';
import { MailSender } from './sender.ts';
import { MailState } from './state.ts';
import { MailWatcher, type FetchedMail, type Via } from './watcher.ts';

export class EmailChannel implements Channel {
  readonly name = 'email';
  readonly #config: EmailConfig;
  readonly #home: string;
  readonly #log: Logger;
  readonly #sender: MailSender;
  #ctx: ChannelContext | undefined;
  #watcher: MailWatcher | undefined;
  #stopped = false;

  constructor(opts: { config: EmailConfig; deps: ChannelDeps }) {
    this.#config = opts.config;
    this.#home = opts.deps.home;
    this.#log = opts.deps.log;
    this.#sender = new MailSender({
      config: opts.config, assistantName: opts.deps.assistantName,
      onRedirect: (m, from) => this.#log.warn('email: a reply answers a sender who may not engage the assistant; it goes to the owner instead', { group: m.group, message: m.id, sender: from }),
    });
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#stopped) throw new Error('email: the channel was stopped; make a new one');
    this.#ctx = ctx;
    const state = MailState.load({ home: this.#home, mailbox: `${this.#config.user}@${this.#config.imap.host}:${this.#config.imap.port}/${this.#config.mailbox}`, warn: (m) => this.#log.warn(m) });
    this.#watcher = new MailWatcher({ config: this.#config, state, log: this.#log, handle: (mail, via) => this.#handle(mail, via) });
    await this.#watcher.start();
  }

  async #handle(mail: FetchedMail, via: Via): Promise<void> {
    const ctx = this.#ctx;
    if (!ctx) throw new Error('email: the channel is stopped');
    const parsed = await simpleParser(mail.source, { skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true, keepCidLinks: true, maxHtmlLengthToParse: 4 * 1024 * 1024 });
    const result = toInbound(mailFacts(parsed, mail.oversize), {
      config: this.#config,
      groupFor: (chat) => ctx.groupFor(chat),
      getGroup: (name) => ctx.getGroup(name),
      mainGroup: () => ctx.listGroups().find((g) => g.isMain),
      save: (group, filename, data) => saveAttachment(this.#home, group, filename, data, this.#config.attachmentMaxBytes),
    });
    if (result.kind === 'own') {
      this.#log.debug('email: skipped a message hako sent itself', { uid: mail.uid });
      return;
    }
    const r = await ctx.receive(result.inbound);
    this.#log.info('email: message received', {
      uid: mail.uid, via, chat: result.inbound.chat, trusted: result.inbound.trusted,
      ...(r.kind === 'stored' ? { group: r.message.group, engaged: r.engaged } : { unbound: true }),
      attachments: result.saved.length,
    });
  }

  async send(m: Outbound): Promise<void> {
    if (this.#stopped) throw new Error('email: the channel is stopped; the message is sent after the next start');
    await this.#sender.send(m);
  }

  problem(): string | undefined {
    return this.#watcher?.problem();
  }

  /** What `hako doctor` says: the IMAP login and the SMTP login, each checked. */
  async check(): Promise<string | undefined> {
    return checkEmail(this.#config, this.#sender);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#sender.close();
    await this.#watcher?.stop();
    this.#ctx = undefined;
  }
}

/** Logs in to IMAP (and opens the folder) and verifies SMTP; every failure, each in one line, or undefined. */
export async function checkEmail(config: EmailConfig, sender: MailSender): Promise<string | undefined> {
  const { ImapFlow } = await import('imapflow');
  const { imapOptions, imapProblem } = await import('./watcher.ts');
  const problems: string[] = [];
  const client = new ImapFlow(imapOptions(config));
  client.on('error', () => { /* reported through connect's rejection */ });
  try {
    await client.connect();
    await client.mailboxOpen(config.mailbox, { readOnly: true });
  } catch (err) {
    problems.push(imapProblem(err, config).text.replace(/; retrying$/, ''));
  } finally {
    await client.logout().catch(() => client.close());
  }
  const smtp = await sender.verify();
  if (smtp) problems.push(smtp);
  return problems.length ? problems.join('\n') : undefined;
}
