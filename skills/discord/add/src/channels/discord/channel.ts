// The Discord channel: a discord.js Client (gateway + REST, its base URL from
// DISCORD_API_ROOT) whose MESSAGE_CREATE events are taken in one at a time (`intake`),
// and its REST client for replies, files and typing. States: new → running → stopped, or
// running → refused when Discord refuses the token (REST 401 or gateway close 4004) or the
// Message Content intent (close 4014): one clear line in the log and in `hako status`, and
// no reconnecting; sends then fail fast with the same line. Dropped gateway connections are resumed by discord.js itself (op 6,
// the missed events replayed); a login that cannot reach Discord is tried again with
// backoff.
//
// Catch-up: a new gateway session (READY, not RESUMED, which replays by itself) carries only
// new events, so on each READY the messages written in every bound Discord channel after the
// newest one already taken in (kept in state.ts) are fetched over REST, oldest first, 100 a
// page, and go through the same intake as live ones — before any live message of that
// session. A channel with no kept id yet (the first start) replays nothing: its newest
// message is only kept as the starting point.

import { readFile } from 'node:fs/promises';
import type { Client, Message } from 'discord.js';
import { InputError, type Channel, type ChannelContext, type Outbound } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { saveAttachment } from '../attachments.ts';
import { splitText } from '../split.ts';
import type { DiscordConfig } from './config.ts';
import { backoff, classify, INTENTS_REFUSED, scrub, TOKEN_REFUSED, type Failure } from './errors.ts';
import { fetchAttachment, TooBig } from './files.ts';
import { DiscordState } from './state.ts';
import { composeText, mapMessage, parseAddress, parseRef, type DiscordMessage, type DiscordUser, type Mapped } from './inbound.ts';
import { Typers } from '../typing.ts';

export const TEXT_LIMIT = 2000;
/** Discord shows "typing…" for 10 s after each call. */
const TYPING_EVERY_MS = 8000;
/** A rate limit longer than this fails the send (the host sends it again later) instead of holding the chat. */
const MAX_RATE_WAIT_MS = 60_000;
/** Storing a message that failed (a full disk) is tried again this often before it is given up. */
const STORE_TRIES = 5;
/** Messages partly delivered, remembered this long at most. */
const MEMORY = 500;
/** Discord's largest page of GET /channels/{id}/messages. */
const PAGE = 100;

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'running'; readonly ctx: ChannelContext; readonly client: Client }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'stopped' };

export interface DiscordChannelOptions {
  readonly config: DiscordConfig;
  readonly home: string;
  readonly log: Logger;
}

export class DiscordChannel implements Channel {
  readonly name = 'discord';
  #o: DiscordChannelOptions;
  #state: State = { kind: 'new' };
  #bot: DiscordUser | undefined;
  #abort = new AbortController();
  /** Why the gateway is not connected now, while discord.js reconnects. */
  #down: string | undefined;
  #intake: Promise<void> = Promise.resolve();
  #typers = new Typers();
  /** Outbound id → pieces already delivered. */
  #delivered = new Map<string, number>();
  #kept: DiscordState | undefined;
  /**
   * Discord channel id → the newest message id taken in (this run or an earlier one). A
   * message at or below it is skipped: catch-up fetched it, and the same message arriving
   * live afterwards must not be taken twice. The starting point of a first start is not in
   * here: a message written just after READY is newer than nothing taken.
   */
  #taken = new Map<string, bigint>();

  constructor(o: DiscordChannelOptions) {
    this.#o = o;
  }

  /** The bot user once known (after start). */
  get bot(): DiscordUser | undefined {
    return this.#bot;
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`discord: the channel cannot start again (it is ${this.#state.kind})`);
    this.#kept = DiscordState.load({ home: this.#o.home, warn: (m) => this.#o.log.warn(m) });
    for (const [channel, id] of this.#kept.entries()) this.#taken.set(channel, BigInt(id));
    const client = await this.#client();
    this.#state = { kind: 'running', ctx, client };
    try {
      await client.login(this.#o.config.token);
    } catch (err) {
      const f = classify(err, this.#o.config.token);
      if (f.kind === 'unauthorized' || f.kind === 'intents') {
        const reason = f.kind === 'intents' ? INTENTS_REFUSED : TOKEN_REFUSED;
        this.#refuse(reason);
        throw new Error(reason);
      }
      if (this.#state.kind !== 'running') throw new Error('discord: the channel stopped while logging in');
      // The host does not wait for Discord at boot: start resolves, the login goes on with backoff and `problem()` says so.
      this.#down = `discord: cannot reach Discord at ${this.#o.config.apiRoot} (${f.text}); trying again (check the network, or DISCORD_API_ROOT)`;
      this.#o.log.warn(this.#down);
      void this.#retryLogin(client);
      return;
    }
    this.#identified(client);
  }

  /** Contract: never rejects; ends when logged in, refused or stopped. Each try has a fresh client (a failed login leaves discord.js's half-made). */
  async #retryLogin(failed: Client): Promise<void> {
    await failed.destroy().catch(() => undefined);
    for (let failures = 1; this.#state.kind === 'running'; failures++) {
      await wait(backoff(failures), this.#abort.signal).catch(() => undefined);
      const client = await this.#client();
      const s = this.#state;
      if (s.kind !== 'running') return;
      this.#state = { ...s, client };
      try {
        await client.login(this.#o.config.token);
        this.#identified(client);
        return;
      } catch (err) {
        const f = classify(err, this.#o.config.token);
        if (f.kind === 'unauthorized') return this.#refuse(TOKEN_REFUSED);
        if (f.kind === 'intents') return this.#refuse(INTENTS_REFUSED);
        this.#o.log.debug('discord: login failed again', { failures, reason: f.text });
        await client.destroy().catch(() => undefined);
      }
    }
  }

  #identified(client: Client): void {
    const u = client.user!;
    this.#bot = { id: u.id, username: u.username, globalName: u.globalName, bot: true };
    this.#down = undefined;
    this.#o.log.info('discord: receiving messages', { bot: u.username, id: u.id });
  }

  async #client(): Promise<Client> {
    const { Client, Events, GatewayIntentBits, Partials } = await import('discord.js');
    const client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.DirectMessages, GatewayIntentBits.MessageContent],
      // DM channels are not in the cache until a message creates them.
      partials: [Partials.Channel],
      allowedMentions: { parse: [] },
      rest: { api: this.#o.config.apiRoot, rejectOnRateLimit: (r) => r.retryAfter > MAX_RATE_WAIT_MS },
    });
    const log = this.#o.log;
    client.on(Events.MessageCreate, (m) => this.#take(m));
    // The raw READY, not ShardReady: ShardReady waits for the guilds, and a live message
    // taken before the catch-up would be out of order.
    client.on(Events.Raw, (p: { t?: string | null }) => {
      if (p.t === 'READY') this.#newSession(client);
    });
    client.on(Events.ShardDisconnect, (ev) => {
      if (ev.code === 4004) return this.#refuse(TOKEN_REFUSED);
      if (ev.code === 4014) return this.#refuse(INTENTS_REFUSED);
      this.#down = `discord: the gateway closed (${ev.code}) and will not reconnect: restart hako`;
      log.error(this.#down);
    });
    client.on(Events.ShardReconnecting, () => {
      // Said once per outage: while Discord is unreachable this fires at every attempt.
      if (this.#state.kind !== 'running' || this.#down !== undefined) return;
      this.#down = 'discord: the gateway connection dropped; reconnecting';
      log.info('discord: the gateway connection dropped; reconnecting');
    });
    client.on(Events.ShardResume, (_id, replayed) => {
      this.#down = undefined;
      log.info('discord: the gateway session resumed', { replayed });
    });
    client.on(Events.ShardReady, () => { this.#down = undefined; });
    client.on(Events.ShardError, (err) => log.debug('discord: gateway error', { reason: scrub(err.message, this.#o.config.token) }));
    client.on(Events.Error, (err) => log.warn('discord: client error', { reason: scrub(err.message, this.#o.config.token) }));
    return client;
  }

  /** Messages are taken one at a time, in the order the gateway gave them. */
  #take(m: Message): void {
    const s = this.#state;
    const me = m.client.user;
    if (s.kind !== 'running') return;
    // The identity READY gave, even before login() has resolved.
    const bot: DiscordUser = { id: me.id, username: me.username, globalName: me.globalName, bot: true };
    const plain = toPlain(m);
    this.#intake = this.#intake.then(() => this.#handle(s.ctx, bot, plain)).catch((err: unknown) => {
      this.#o.log.error('discord: a message could not be taken in', { channel: plain.channelId, reason: scrub(String(err), this.#o.config.token) });
    });
  }

  /** One message, live or caught up: taken once, then kept as the channel's newest. */
  async #handle(ctx: ChannelContext, bot: DiscordUser, msg: DiscordMessage): Promise<void> {
    const taken = this.#taken.get(msg.channelId);
    if (taken !== undefined && BigInt(msg.id) <= taken) return;
    await this.#store(ctx, bot, msg);
    // Kept even when it was not stored (a bot's message, a refused one): fetching it again would change nothing.
    if (ctx.groupFor(`discord:${msg.channelId}`) === undefined) return;
    this.#taken.set(msg.channelId, BigInt(msg.id));
    this.#keep(msg.channelId, msg.id);
  }

  #keep(channelId: string, messageId: string): void {
    const kept = this.#kept;
    if (!kept || !kept.advance(channelId, messageId)) return;
    try {
      kept.save();
    } catch (err) {
      // The message is stored; only the catch-up after a restart may miss what follows it.
      this.#o.log.warn('discord: the newest message id could not be kept; messages written while hako is stopped may not be fetched', { file: kept.file, reason: err instanceof Error ? err.message : String(err), hint: 'check that HAKO_HOME/channels/discord is writable and not full' });
    }
  }

  /** READY of a new session: the catch-up goes into the intake queue ahead of the session's live messages. */
  #newSession(client: Client): void {
    const s = this.#state;
    if (s.kind !== 'running') return;
    this.#intake = this.#intake.then(() => this.#catchUp(s.ctx, client)).catch((err: unknown) => {
      this.#o.log.error('discord: catching up failed', { reason: scrub(String(err), this.#o.config.token) });
    });
  }

  async #catchUp(ctx: ChannelContext, client: Client): Promise<void> {
    const bound = ctx.listGroups().flatMap((g) => g.chats).filter((c) => c.startsWith('discord:')).map((c) => c.slice('discord:'.length));
    for (const id of bound) {
      if (this.#state.kind !== 'running') return;
      if (!parseAddress(id)) continue;
      try {
        await this.#catchUpChannel(ctx, client, id);
      } catch (err) {
        const f = classify(err, this.#o.config.token);
        this.#o.log.warn('discord: messages written while hako was stopped could not be fetched', { channel: id, reason: describe(f), hint: 'give the bot the View Channel and Read Message History permissions there; what follows is taken live' });
      }
    }
  }

  async #catchUpChannel(ctx: ChannelContext, client: Client, id: string): Promise<void> {
    const channel = await client.channels.fetch(id);
    if (!channel?.isTextBased()) throw new Error(`channel ${id} is not a text channel`);
    const kept = this.#kept?.last(id);
    if (kept === undefined) {
      // A first start replays no history: the newest message (none: "0") is where catching up starts next time.
      const newest = await channel.messages.fetch({ limit: 1 });
      this.#keep(id, newest.first()?.id ?? '0');
      return;
    }
    let after = kept;
    let fetched = 0;
    for (;;) {
      const page = await channel.messages.fetch({ after, limit: PAGE });
      // Discord gives a page newest first.
      const ordered = [...page.values()].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
      for (const m of ordered) {
        if (this.#state.kind !== 'running') return;
        const me = m.client.user;
        await this.#handle(ctx, { id: me.id, username: me.username, globalName: me.globalName, bot: true }, toPlain(m));
      }
      fetched += ordered.length;
      if (ordered.length < PAGE) break;
      after = ordered.at(-1)!.id;
    }
    if (fetched > 0) this.#o.log.info('discord: caught up with messages written while hako was away', { channel: id, messages: fetched });
  }

  async #store(ctx: ChannelContext, bot: DiscordUser, msg: DiscordMessage): Promise<void> {
    const m = mapMessage(msg, bot, this.#o.config.ownerIds, (chat) => ctx.groupFor(chat) !== undefined);
    if (!m) return;
    const lines = await this.#files(ctx, m);
    const text = composeText(m.text, lines);
    for (let tries = 1; ; tries++) {
      try {
        const r = await ctx.receive({ chat: m.chat, chatTitle: m.chatTitle, sender: m.sender, senderId: m.senderId, trusted: m.trusted, text, direct: m.direct, ref: m.ref });
        this.#o.log.debug('discord: message in', { chat: m.chat, kind: r.kind, ...(r.kind === 'stored' ? { engaged: r.engaged } : {}) });
        return;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if ((err instanceof InputError && err.status !== 507) || tries >= STORE_TRIES || this.#state.kind !== 'running') {
          this.#o.log.warn('discord: a message was refused and is dropped', { chat: m.chat, reason });
          return;
        }
        this.#o.log.warn('discord: a message could not be stored; trying again', { chat: m.chat, reason });
        await wait(backoff(tries), this.#abort.signal).catch(() => undefined);
      }
    }
  }

  /** Downloads attachments only for a bound chat and a sender who may engage it: a stranger's file is never fetched. */
  async #files(ctx: ChannelContext, m: Mapped): Promise<string[]> {
    if (m.attachments.length === 0) return [];
    const group = ctx.groupFor(m.chat);
    if (!group) return m.attachments.map((a) => `[file "${a.name}": not saved]`);
    const allow = ctx.getGroup(group)?.allowedSenders;
    if (allow ? !allow.includes(m.senderId) : !m.trusted) return m.attachments.map((a) => `[file "${a.name}": not saved: the sender may not engage this group]`);
    const lines: string[] = [];
    for (const a of m.attachments) {
      try {
        const data = await fetchAttachment({ url: a.url, size: a.size, maxBytes: this.#o.config.maxBytes, signal: this.#abort.signal });
        const saved = saveAttachment(this.#o.home, group, a.name, data, this.#o.config.maxBytes);
        lines.push(`[file: ${saved.agentPath}${a.contentType ? ` (${a.contentType})` : ''}]`);
        this.#o.log.info('discord: attachment saved', { group, bytes: saved.bytes });
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        lines.push(`[file "${a.name}": not saved: ${reason}]`);
        if (!(err instanceof TooBig)) this.#o.log.warn('discord: an attachment was not saved', { group, reason });
      }
    }
    return lines;
  }

  /** Discord markdown as written, cut at 2,000 characters on paragraphs; the first piece (with the file, if any) replies to the message. */
  async send(m: Outbound): Promise<void> {
    const client = this.#usable();
    const address = parseAddress(m.address);
    if (!address) throw new Error(`discord: ${JSON.stringify(m.address)} is not a Discord channel address (a channel, thread or DM channel id)`);
    const reply = m.replyTo !== undefined ? parseRef(m.replyTo) : undefined;
    const target = reply?.thread ?? address;
    const pieces = m.text.trim() === '' && m.file ? [''] : splitText(m.text, TEXT_LIMIT);
    const file = m.file ? { name: m.file.name, data: await readFile(m.file.path) } : undefined;
    for (let k = this.#delivered.get(m.id) ?? 0; k < pieces.length; k++) {
      await this.#piece(client, target, pieces[k]!, k === 0 ? { ...(reply ? { replyTo: reply.messageId } : {}), ...(file ? { file } : {}) } : {});
      this.#remember(m.id, k + 1);
    }
    this.#delivered.delete(m.id);
  }

  async #piece(client: Client, channelId: string, content: string, at: { replyTo?: string; file?: { name: string; data: Buffer } }): Promise<void> {
    const { Routes } = await import('discord.js');
    const body = {
      content,
      // Nothing the agent writes pings anyone (@everyone, @here, roles, users) but the person it answers.
      allowed_mentions: { parse: [], replied_user: true },
      ...(at.replyTo ? { message_reference: { message_id: at.replyTo, fail_if_not_exists: false } } : {}),
    };
    try {
      await client.rest.post(Routes.channelMessages(channelId), { body, ...(at.file ? { files: [{ name: at.file.name, data: at.file.data }] } : {}), signal: this.#abort.signal });
    } catch (err) {
      const f = classify(err, this.#o.config.token);
      if (f.kind === 'unauthorized') this.#refuse(TOKEN_REFUSED);
      throw new Error(`discord: the message to channel ${channelId} was not sent: ${describe(f)}`);
    }
  }

  typing(address: string): () => void {
    const s = this.#state;
    const id = parseAddress(address);
    if (!id || s.kind !== 'running') return () => {};
    const tick = (stop: () => void) => {
      if (this.#state.kind !== 'running') return stop();
      void import('discord.js')
        .then(({ Routes }) => s.client.rest.post(Routes.channelTyping(id), { signal: this.#abort.signal }))
        .catch((err: unknown) => this.#o.log.debug('discord: typing indicator failed', { channel: id, reason: classify(err, this.#o.config.token).text }));
    };
    return this.#typers.start(tick, TYPING_EVERY_MS);
  }

  problem(): string | undefined {
    if (this.#state.kind === 'refused') return this.#state.reason;
    if (this.#state.kind === 'running') return this.#down;
    return undefined;
  }

  async stop(): Promise<void> {
    const s = this.#state;
    if (s.kind === 'stopped') return;
    this.#state = { kind: 'stopped' };
    await this.#halt(s);
    await this.#intake;
  }

  #usable(): Client {
    const s = this.#state;
    if (s.kind === 'refused') throw new Error(s.reason);
    if (s.kind !== 'running') throw new Error(`discord: the channel is ${s.kind === 'new' ? 'not started' : 'stopped'}`);
    return s.client;
  }

  /** The token or an intent was refused: logged once, the client destroyed (no reconnecting), sends fail with the line. */
  #refuse(reason: string): void {
    const s = this.#state;
    if (s.kind !== 'running') return;
    this.#o.log.error(reason);
    this.#state = { kind: 'refused', reason };
    void this.#halt(s);
  }

  /**
   * Contract: never rejects. Known limit of @discordjs/ws 1.2.3: a destroy that falls into
   * its 500 ms wait between a dropped connection and the next attempt does not cancel that
   * attempt, so a channel stopped while Discord is unreachable may keep trying to connect.
   */
  async #halt(s: State): Promise<void> {
    this.#typers.stopAll();
    this.#abort.abort();
    if (s.kind !== 'running') return;
    await s.client.destroy().catch((err: unknown) => this.#o.log.debug('discord: destroying the client failed', { reason: String(err) }));
  }

  #remember(id: string, pieces: number): void {
    this.#delivered.delete(id);
    this.#delivered.set(id, pieces);
    if (this.#delivered.size > MEMORY) this.#delivered.delete(this.#delivered.keys().next().value!);
  }
}

/** The fields of a discord.js Message the mapping reads. */
function toPlain(m: Message): DiscordMessage {
  const ch = m.channel;
  const guild = m.guild?.name ?? 'a server';
  const place: DiscordMessage['place'] = ch.isDMBased() ? { kind: 'dm' }
    : ch.isThread() ? { kind: 'thread', name: ch.name, parentId: ch.parentId ?? ch.id, guild }
    : { kind: 'channel', name: ch.name, guild };
  const user = (u: { id: string; username: string; globalName: string | null; bot: boolean }): DiscordUser => ({ id: u.id, username: u.username, globalName: u.globalName, bot: u.bot });
  return {
    id: m.id, channelId: m.channelId, place, author: user(m.author), nickname: m.member?.nickname ?? null, content: m.content,
    mentions: [...m.mentions.users.values()].map(user), repliesTo: m.mentions.repliedUser?.id ?? null,
    attachments: [...m.attachments.values()].map((a) => ({ url: a.url, name: a.name, size: a.size, contentType: a.contentType })),
    webhookId: m.webhookId, system: m.system,
  };
}

function describe(f: Failure): string {
  switch (f.kind) {
    case 'unauthorized': return 'the bot token was refused (401)';
    case 'aborted': return 'the channel stopped';
    case 'refused': return f.status === 403 ? `${f.text} (give the bot the View Channel and Send Messages permissions there)` : f.text;
    default: return f.text;
  }
}

/** Waits `ms`; rejects when the signal aborts. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('discord: the channel stopped'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('discord: the channel stopped'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
