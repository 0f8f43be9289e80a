// The Telegram channel: grammY's API client (given by register.ts, which imports grammY
// lazily) wired to the long poll (poller.ts), the intake of each update (intake.ts), the
// outbox (outbox.ts) and the typing indicator. States: new → running → stopped, or
// running → refused when Telegram refuses the token (one clear line in the log and in
// `hako status`; sends then fail fast with the same line).

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Api, InputFile } from 'grammy';
import type { MessageEntity } from 'grammy/types';
import type { Channel, ChannelContext, Outbound } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import type { TelegramConfig } from './config.ts';
import { apiSignal } from './api-signal.ts';
import { classify, scrub, TOKEN_REFUSED } from './errors.ts';
import { markdownToTelegram } from './format.ts';
import { parseAddress, parseRef, type BotIdentity } from './inbound.ts';
import { intake } from './intake.ts';
import { Outbox } from './outbox.ts';
import { Poller } from './poller.ts';
import { Typers } from '../typing.ts';

/** Telegram shows "typing…" for 5 s after each chat action. */
const TYPING_EVERY_MS = 4000;
const PHOTO_MAX = 10 * 1024 * 1024;
const CAPTION_LIMIT = 1024;

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'running'; readonly ctx: ChannelContext; readonly poller: Poller; readonly loop: Promise<void> }
  | { readonly kind: 'refused'; readonly loop?: Promise<void> }
  | { readonly kind: 'stopped' };

export interface TelegramChannelOptions {
  readonly config: TelegramConfig;
  readonly api: Api;
  readonly InputFile: typeof InputFile;
  readonly home: string;
  readonly log: Logger;
}

export class TelegramChannel implements Channel {
  readonly name = 'telegram';
  #o: TelegramChannelOptions;
  #state: State = { kind: 'new' };
  #bot: BotIdentity | undefined;
  #abort = new AbortController();
  #outbox: Outbox;
  #typers = new Typers();

  constructor(o: TelegramChannelOptions) {
    this.#o = o;
    this.#outbox = new Outbox({ api: o.api, token: o.config.token, log: o.log, signal: this.#abort.signal, onRefused: () => this.#refused() });
  }

  /** The bot's @username once known (after start). */
  get username(): string | undefined {
    return this.#bot?.username;
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`telegram: the channel cannot start again (it is ${this.#state.kind})`);
    const { config, log } = this.#o;
    try {
      await this.#identify();
    } catch (err) {
      const f = classify(err, config.token);
      if (f.kind === 'unauthorized') {
        this.#state = { kind: 'refused' };
        log.error(TOKEN_REFUSED);
        throw new Error(TOKEN_REFUSED);
      }
      // Not reachable yet (no network at boot): the poller keeps trying and `problem()` says so.
      log.warn('telegram: the Bot API does not answer yet; hako keeps trying', { apiRoot: config.apiRoot, reason: f.text });
    }
    const signal = this.#abort.signal;
    const poller = new Poller({
      api: this.#o.api, token: config.token, apiRoot: config.apiRoot, log, signal,
      identify: () => (this.#bot ? Promise.resolve() : this.#identify()),
      handle: (u) => intake({ api: this.#o.api, token: config.token, apiRoot: config.apiRoot, home: this.#o.home, maxBytes: config.maxBytes, ownerIds: config.ownerIds, log, signal }, ctx, this.#bot!, u),
      onRefused: () => this.#refused(),
    });
    const loop = poller.run().catch((err: unknown) => {
      log.error('telegram: polling ended unexpectedly', { reason: scrub(err instanceof Error ? err.message : String(err), config.token) });
    });
    this.#state = { kind: 'running', ctx, poller, loop };
    if (this.#bot) log.info('telegram: receiving messages', { bot: `@${this.#bot.username}` });
  }

  /** A message, or with a file the agent sent: the file with the text as its caption. */
  async send(m: Outbound): Promise<void> {
    this.#usable();
    if (!m.file) return this.#outbox.send(m);
    const data = await readFile(m.file.path);
    await this.sendFile({ address: m.address, name: m.file.name, data, caption: m.text, ...(m.replyTo ? { replyTo: m.replyTo } : {}) });
  }

  /**
   * A file from the workspace to a chat (a photo when it looks like one, else a document),
   * with an optional caption in Markdown. The caller reads the file (safely: the workspace
   * is agent-writable); this only sends the bytes.
   */
  async sendFile(f: { address: string; name: string; data: Uint8Array; caption?: string; replyTo?: string }): Promise<void> {
    this.#usable();
    const addr = parseAddress(f.address);
    if (!addr) throw new Error(`telegram: ${JSON.stringify(f.address)} is not a Telegram chat address`);
    const reply = f.replyTo !== undefined ? parseRef(f.replyTo) : undefined;
    const thread = addr.thread ?? reply?.thread;
    const caption = f.caption ? markdownToTelegram(f.caption) : undefined;
    const fits = caption !== undefined && caption.text.length <= CAPTION_LIMIT;
    const other = {
      ...(fits && caption.text ? { caption: caption.text, ...(caption.entities.length ? { caption_entities: caption.entities as MessageEntity[] } : {}) } : {}),
      ...(thread !== undefined ? { message_thread_id: thread } : {}),
      ...(reply ? { reply_parameters: { message_id: reply.messageId, allow_sending_without_reply: true } } : {}),
    };
    const file = new this.#o.InputFile(f.data, f.name);
    const photo = /\.(jpe?g|png|webp)$/i.test(f.name) && f.data.length <= PHOTO_MAX;
    try {
      if (photo) await this.#o.api.sendPhoto(addr.chatId, file, other, apiSignal(this.#abort.signal));
      else await this.#o.api.sendDocument(addr.chatId, file, other, apiSignal(this.#abort.signal));
    } catch (err) {
      const fail = classify(err, this.#o.config.token);
      if (fail.kind === 'unauthorized') this.#refused();
      throw new Error(`telegram: the file ${JSON.stringify(f.name)} was not sent to chat ${addr.chatId}: ${fail.text}`);
    }
    // A caption over Telegram's 1,024 characters follows the file as a message of its own.
    if (f.caption && !fits) await this.#outbox.send({ id: randomUUID(), group: '', address: f.address, text: f.caption });
  }

  typing(address: string): () => void {
    const addr = parseAddress(address);
    if (!addr || this.#state.kind !== 'running') return () => {};
    const { api, log, config } = this.#o;
    const tick = (stop: () => void) => {
      if (this.#state.kind !== 'running') return stop();
      api.sendChatAction(addr.chatId, 'typing', addr.thread !== undefined ? { message_thread_id: addr.thread } : {}, apiSignal(this.#abort.signal))
        .catch((err: unknown) => log.debug('telegram: typing indicator failed', { chat: addr.chatId, reason: classify(err, config.token).text }));
    };
    return this.#typers.start(tick, TYPING_EVERY_MS);
  }

  problem(): string | undefined {
    const s = this.#state;
    if (s.kind === 'refused') return TOKEN_REFUSED;
    if (s.kind === 'running') return s.poller.problem();
    return undefined;
  }

  async stop(): Promise<void> {
    const s = this.#state;
    if (s.kind === 'stopped') return;
    this.#state = { kind: 'stopped' };
    this.#typers.stopAll();
    this.#abort.abort();
    if (s.kind === 'running') {
      await s.loop;
      await s.poller.confirm();
    } else if (s.kind === 'refused') await s.loop;
  }

  async #identify(): Promise<void> {
    const me = await this.#o.api.getMe(apiSignal(this.#abort.signal));
    this.#bot = { id: me.id, username: me.username };
  }

  #usable(): void {
    const s = this.#state;
    if (s.kind === 'refused') throw new Error(TOKEN_REFUSED);
    if (s.kind !== 'running') throw new Error(`telegram: the channel is ${s.kind === 'new' ? 'not started' : 'stopped'}`);
  }

  #refused(): void {
    const s = this.#state;
    if (s.kind !== 'running') return;
    // The poller logs the refusal itself; a send that meets it first logs it here, once.
    if (s.poller.state.kind !== 'refused') this.#o.log.error(TOKEN_REFUSED);
    this.#state = { kind: 'refused', loop: s.loop };
    this.#typers.stopAll();
    this.#abort.abort();
  }
}
