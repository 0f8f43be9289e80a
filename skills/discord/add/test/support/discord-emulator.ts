// A local Discord on 127.0.0.1 for tests: the unmodified discord.js, pointed at it by its
// `rest.api` option, talks to it exactly as it talks to discord.com — REST under
// `/api/v10` (Bot token in Authorization; JSON or multipart bodies; Discord's error bodies
// `{message, code, errors?}`; X-RateLimit-* headers; 429 with `{message, retry_after,
// global}` and Retry-After) and the gateway WebSocket whose URL GET /gateway/bot gives:
// op 10 Hello, op 2 Identify → READY + GUILD_CREATE, op 1 → op 11, sequence numbers, op 6
// Resume → the missed dispatches replayed then RESUMED, op 7 Reconnect, op 9 Invalid
// Session, close 4004 for a refused token. Plain JSON, no compression (discord.js asks for
// zlib-stream only when zlib-sync is installed; the emulator refuses `compress` so that a
// change there is seen). Attachments are served under `/attachments/…` (the CDN path).
// GET /channels/{id}/messages pages a channel's history as Discord does: `limit` 1–100
// (default 50), `after` → the oldest messages after that id, `before` or neither → the
// newest before it; either way the page is newest first.
//
// Invariant: nothing here knows hako; it only speaks Discord's wire format.

import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface DcUser { id: string; username: string; global_name: string | null; discriminator: '0'; avatar: null; bot?: boolean }
export interface DcChannel { id: string; type: 0 | 1 | 11; name?: string; guild_id?: string; parent_id?: string; recipients?: DcUser[] }
export type DcMessage = Record<string, unknown> & { id: string; channel_id: string; content: string; author: DcUser };

/** A message the bot sent, as the channel shows it. */
export interface SentMessage {
  readonly id: string;
  readonly channel_id: string;
  readonly content: string;
  /** The message it replies to (message_reference.message_id). */
  readonly reply_to?: string;
  readonly allowed_mentions?: unknown;
  readonly files: readonly { readonly name: string; readonly data: Buffer }[];
  /** How it came: JSON or multipart. */
  readonly encoding: 'json' | 'multipart';
}

export interface RecordedCall { readonly method: string; readonly route: string; /** The query string without `?` ('' when none). */ readonly query: string }

const API = '/api/v10';
const CONTENT_LIMIT = 2000;
const EPOCH = 1420070400000n;
const INTENTS = { Guilds: 1, GuildMessages: 1 << 9, DirectMessages: 1 << 12, MessageContent: 1 << 15 };

class ApiError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, body: Record<string, unknown>) {
    super(String(body.message));
    this.status = status;
    this.body = body;
  }
}

/** A token in the Developer Portal's shape: the bot id in base64, a timestamp part, an HMAC part. */
export function makeToken(botId: string): string {
  return `${Buffer.from(botId).toString('base64url')}.${randomBytes(4).toString('base64url')}.${randomBytes(27).toString('base64url')}`;
}

interface Session {
  readonly id: string;
  seq: number;
  /** Every dispatch of the session, to replay after a Resume. */
  readonly events: { s: number; t: string; d: unknown }[];
  ws: WebSocket | undefined;
  /** Whether dispatches go out now (false between a drop and a Resume). */
  live: boolean;
}

export class DiscordEmulator {
  readonly bot: DcUser;
  readonly guild = { id: '', name: 'Test Guild' };
  readonly calls: RecordedCall[] = [];
  /** Gateway opcodes received from the client, in order. */
  readonly ops: number[] = [];
  #token: string;
  #revoked = false;
  #server: http.Server;
  #wss = new WebSocketServer({ noServer: true });
  #port = 0;
  #heartbeatMs: number;
  #nextId = 0n;
  #users = new Map<string, DcUser>();
  #channels = new Map<string, DcChannel>();
  #messages = new Map<string, DcMessage>();
  #files = new Map<string, Buffer>();
  #sent: SentMessage[] = [];
  #typing: string[] = [];
  #sessions = new Map<string, Session>();
  #messageContent = true;
  #rate: { calls: number; retryAfter: number; global: boolean } | undefined;
  #refuse: { status: number; code: number; message: string } | undefined;
  #waiters: (() => void)[] = [];

  private constructor(server: http.Server, opts: { username: string; heartbeatMs: number; token?: string }) {
    this.#server = server;
    this.#heartbeatMs = opts.heartbeatMs;
    this.bot = this.user(opts.username, { bot: true });
    this.#token = opts.token ?? makeToken(this.bot.id);
    this.guild.id = this.#snowflake();
  }

  /** `port` and `token`: to stand in for a Discord that was down (the same address and bot). */
  static async start(opts: { username?: string; heartbeatMs?: number; port?: number; token?: string } = {}): Promise<DiscordEmulator> {
    const server = http.createServer();
    const emu = new DiscordEmulator(server, { username: opts.username ?? 'hako', heartbeatMs: opts.heartbeatMs ?? 41_250, ...(opts.token ? { token: opts.token } : {}) });
    server.on('request', (req, res) => void emu.#handle(req, res));
    server.on('upgrade', (req, socket, head) => emu.#upgrade(req, socket, head));
    server.listen(opts.port ?? 0, '127.0.0.1');
    await once(server, 'listening');
    emu.#port = (server.address() as AddressInfo).port;
    return emu;
  }

  get token(): string { return this.#token; }
  /** What DISCORD_API_ROOT is set to (discord.js adds `/v10`). */
  get apiRoot(): string { return `http://127.0.0.1:${this.#port}/api`; }
  get gatewayUrl(): string { return `ws://127.0.0.1:${this.#port}/gateway`; }

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  // --- the world -------------------------------------------------------------------------

  user(name: string, opts: { globalName?: string | null; bot?: boolean } = {}): DcUser {
    const u: DcUser = { id: this.#snowflake(), username: name.toLowerCase().replace(/[^a-z0-9_.]/g, ''), global_name: opts.globalName === undefined ? name : opts.globalName, discriminator: '0', avatar: null, ...(opts.bot ? { bot: true } : {}) };
    this.#users.set(u.id, u);
    return u;
  }

  /** A text channel in the guild (announced with CHANNEL_CREATE to a connected client). */
  textChannel(name: string): DcChannel {
    const c: DcChannel = { id: this.#snowflake(), type: 0, name, guild_id: this.guild.id };
    this.#channels.set(c.id, c);
    this.#dispatchAll('CHANNEL_CREATE', this.#channelPayload(c));
    return c;
  }

  /** A public thread under a text channel (announced with THREAD_CREATE). */
  thread(parent: DcChannel, name: string): DcChannel {
    const c: DcChannel = { id: this.#snowflake(), type: 11, name, guild_id: this.guild.id, parent_id: parent.id };
    this.#channels.set(c.id, c);
    this.#dispatchAll('THREAD_CREATE', { ...this.#channelPayload(c), newly_created: true });
    return c;
  }

  /** The DM channel between the bot and a user (Discord announces none). */
  dm(user: DcUser): DcChannel {
    const c: DcChannel = { id: this.#snowflake(), type: 1, recipients: [user] };
    this.#channels.set(c.id, c);
    return c;
  }

  /** A user writes: MESSAGE_CREATE to every session (kept for a Resume when none is connected). */
  message(o: { channel: DcChannel; from?: DcUser; text?: string; mention?: boolean; replyTo?: string; attachments?: { name: string; data: Buffer; contentType?: string; size?: number }[]; webhook?: boolean }): DcMessage {
    const from = o.from ?? o.channel.recipients?.[0] ?? this.user('someone');
    const content = `${o.mention ? `<@${this.bot.id}> ` : ''}${o.text ?? ''}`;
    const id = this.#snowflake();
    const attachments = (o.attachments ?? []).map((a) => {
      const aid = this.#snowflake();
      const path = `/attachments/${o.channel.id}/${aid}/${encodeURIComponent(a.name)}`;
      this.#files.set(path, a.data);
      const url = `http://127.0.0.1:${this.#port}${path}?ex=${Date.now().toString(16)}&is=0&hm=${randomBytes(8).toString('hex')}`;
      return { id: aid, filename: a.name, size: a.size ?? a.data.length, url, proxy_url: url, content_type: a.contentType ?? 'application/octet-stream' };
    });
    const replied = o.replyTo ? this.#messages.get(o.replyTo) : undefined;
    const mentions = [...(o.mention ? [this.bot] : []), ...(replied ? [replied.author] : [])];
    const m: DcMessage = {
      id, channel_id: o.channel.id, author: from, content, timestamp: new Date().toISOString(), edited_timestamp: null, tts: false,
      mention_everyone: false, mentions, mention_roles: [], attachments, embeds: [], pinned: false, type: replied ? 19 : 0, flags: 0,
      channel_type: o.channel.type,
      ...(o.channel.guild_id ? { guild_id: o.channel.guild_id, member: { nick: null, roles: [], joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0 } } : {}),
      ...(replied ? { message_reference: { type: 0, message_id: replied.id, channel_id: replied.channel_id }, referenced_message: replied } : {}),
      ...(o.webhook ? { webhook_id: this.#snowflake() } : {}),
    };
    this.#messages.set(id, m);
    this.#dispatchAll('MESSAGE_CREATE', m);
    return m;
  }

  /** What the bot sent to a channel, oldest first. */
  sent(channelId: string): SentMessage[] { return this.#sent.filter((s) => s.channel_id === channelId); }
  texts(channelId: string): string[] { return this.sent(channelId).map((s) => s.content); }
  typings(channelId: string): number { return this.#typing.filter((c) => c === channelId).length; }
  callsOf(method: string, route: RegExp): RecordedCall[] { return this.calls.filter((c) => c.method === method && route.test(c.route)); }
  /** How many gateway connections are open now. */
  get connections(): number { return [...this.#wss.clients].filter((ws) => ws.readyState === ws.OPEN).length; }

  /** Resolves once `done()` holds, checked again on every request, gateway frame and send; rejects after `timeoutMs` saying what it waited for. */
  async waitUntil(done: () => boolean, what: () => string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`discord emulator: waited ${timeoutMs} ms for ${what()}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.#waiters.push(() => { clearTimeout(timer); r(); });
      });
    }
  }

  // --- faults ------------------------------------------------------------------------------

  /** The next `calls` message sends are answered 429 with `retry_after` seconds. */
  rateLimit(o: { calls: number; retryAfter: number; global?: boolean }): void { this.#rate = { calls: o.calls, retryAfter: o.retryAfter, global: o.global ?? false }; }

  /** The next message send is refused (default: 404 Unknown Channel, code 10003). */
  refuseNext(status = 404, code = 10003, message = 'Unknown Channel'): void { this.#refuse = { status, code, message }; }

  /** Cuts every gateway connection without a close frame (1006); the session stays resumable. */
  dropConnections(): void {
    for (const s of this.#sessions.values()) s.live = false;
    for (const ws of this.#wss.clients) ws.terminate();
  }

  /** Asks every connected client to reconnect (op 7). */
  requestReconnect(): void {
    for (const s of this.#sessions.values()) {
      if (!s.ws) continue;
      s.live = false;
      s.ws.send(JSON.stringify({ op: 7, d: null, s: null, t: null }));
    }
  }

  /** Ends every session (op 9, not resumable): clients must identify again. */
  invalidateSessions(): void {
    for (const s of this.#sessions.values()) s.ws?.send(JSON.stringify({ op: 9, d: false, s: null, t: null }));
    this.#sessions.clear();
  }

  /** The bot's Message Content intent is off in the Developer Portal: an Identify asking for it is closed with 4014. */
  disallowMessageContent(): void { this.#messageContent = false; }

  /** The owner reset the token: REST answers 401 and the gateway closes with 4004. */
  revokeToken(): void {
    this.#revoked = true;
    this.#sessions.clear();
    for (const ws of this.#wss.clients) ws.close(4004, 'Authentication failed.');
    this.#wake();
  }

  // --- REST ----------------------------------------------------------------------------------

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = await readBody(req);
    try {
      if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) return this.#download(url.pathname, res);
      if (!url.pathname.startsWith(API + '/')) throw new ApiError(404, { message: '404: Not Found', code: 0 });
      const route = url.pathname.slice(API.length);
      this.calls.push({ method: req.method ?? '', route, query: url.search.slice(1) });
      if (req.headers.authorization !== `Bot ${this.#token}` || this.#revoked) throw new ApiError(401, { message: '401: Unauthorized', code: 0 });
      const result = await this.#route(req.method ?? '', route, req, body, url.searchParams);
      if (result === undefined) {
        res.writeHead(204, this.#rateHeaders()).end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json', ...this.#rateHeaders() }).end(JSON.stringify(result));
      }
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, { message: '500: Internal Server Error', code: 0 });
      const extra = e.status === 429 ? this.#limitedHeaders(Number(e.body.retry_after), Boolean(e.body.global)) : this.#rateHeaders();
      res.writeHead(e.status, { 'content-type': 'application/json', ...extra }).end(JSON.stringify(e.body));
    } finally {
      this.#wake();
    }
  }

  async #route(method: string, route: string, req: http.IncomingMessage, body: Buffer, query: URLSearchParams): Promise<unknown> {
    if (method === 'GET' && route === '/gateway/bot') {
      return { url: this.gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 } };
    }
    if (method === 'GET' && route === '/users/@me') return this.bot;
    if (method === 'GET' && route === '/applications/@me') {
      return { id: this.bot.id, name: this.bot.username, bot_public: false, bot_require_code_grant: false, verify_key: 'a'.repeat(64), flags: this.#messageContent ? 1 << 19 : 0, bot: this.bot };
    }
    let m = /^\/channels\/(\d+)$/.exec(route);
    if (m && method === 'GET') return this.#channelPayload(this.#channel(m[1]!));
    m = /^\/channels\/(\d+)\/typing$/.exec(route);
    if (m && method === 'POST') {
      this.#channel(m[1]!);
      this.#typing.push(m[1]!);
      return undefined;
    }
    m = /^\/channels\/(\d+)\/messages$/.exec(route);
    if (m && method === 'POST') return this.#createMessage(this.#channel(m[1]!), req, body);
    if (m && method === 'GET') return this.#history(this.#channel(m[1]!), query);
    throw new ApiError(404, { message: '404: Not Found', code: 0 });
  }

  #channel(id: string): DcChannel {
    const c = this.#channels.get(id);
    if (!c) throw new ApiError(404, { message: 'Unknown Channel', code: 10003 });
    return c;
  }

  async #createMessage(channel: DcChannel, req: http.IncomingMessage, body: Buffer): Promise<DcMessage> {
    if (this.#rate && this.#rate.calls > 0) {
      this.#rate.calls--;
      throw new ApiError(429, { message: 'You are being rate limited.', retry_after: this.#rate.retryAfter, global: this.#rate.global });
    }
    if (this.#refuse) {
      const r = this.#refuse;
      this.#refuse = undefined;
      throw new ApiError(r.status, { message: r.message, code: r.code });
    }
    const { payload, files, encoding } = await parsePayload(req, body);
    const content = typeof payload.content === 'string' ? payload.content : '';
    if (content.length > CONTENT_LIMIT) {
      throw new ApiError(400, { message: 'Invalid Form Body', code: 50035, errors: { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${CONTENT_LIMIT} or fewer in length.` }] } } });
    }
    if (content === '' && files.length === 0) throw new ApiError(400, { message: 'Cannot send an empty message', code: 50006 });
    const ref = payload.message_reference as { message_id?: string; fail_if_not_exists?: boolean } | undefined;
    if (ref?.message_id && !this.#messages.has(ref.message_id) && ref.fail_if_not_exists !== false) {
      throw new ApiError(400, { message: 'Invalid Form Body', code: 50035, errors: { message_reference: { _errors: [{ code: 'REPLIES_UNKNOWN_MESSAGE', message: 'Unknown message' }] } } });
    }
    const id = this.#snowflake();
    const replyTo = ref?.message_id && this.#messages.has(ref.message_id) ? ref.message_id : undefined;
    this.#sent.push({ id, channel_id: channel.id, content, ...(replyTo ? { reply_to: replyTo } : {}), ...(payload.allowed_mentions ? { allowed_mentions: payload.allowed_mentions } : {}), files, encoding });
    const message: DcMessage = {
      id, channel_id: channel.id, author: this.bot, content, timestamp: new Date().toISOString(), edited_timestamp: null, tts: false,
      mention_everyone: false, mentions: [], mention_roles: [], embeds: [], pinned: false, type: replyTo ? 19 : 0, flags: 0,
      attachments: files.map((f) => ({ id: this.#snowflake(), filename: f.name, size: f.data.length, url: `http://127.0.0.1:${this.#port}/attachments/${channel.id}/${id}/${f.name}` })),
      ...(replyTo ? { message_reference: { type: 0, message_id: replyTo, channel_id: channel.id } } : {}),
    };
    this.#messages.set(id, message);
    // Discord echoes the bot's own message over the gateway as well.
    this.#dispatchAll('MESSAGE_CREATE', { ...message, ...(channel.guild_id ? { guild_id: channel.guild_id } : {}), channel_type: channel.type });
    return message;
  }

  #history(channel: DcChannel, query: URLSearchParams): DcMessage[] {
    const limit = Number(query.get('limit') ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new ApiError(400, { message: 'Invalid Form Body', code: 50035, errors: { limit: { _errors: [{ code: 'NUMBER_TYPE_MAX', message: 'int value should be less than or equal to 100.' }] } } });
    }
    const after = query.get('after');
    const before = query.get('before');
    const all = [...this.#messages.values()].filter((x) => x.channel_id === channel.id).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    const page = after !== null
      ? all.filter((x) => BigInt(x.id) > BigInt(after)).slice(0, limit)
      : all.filter((x) => before === null || BigInt(x.id) < BigInt(before)).slice(-limit);
    return page.reverse();
  }

  #download(pathname: string, res: http.ServerResponse): void {
    const data = this.#files.get(pathname);
    if (!data) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }).end(data);
  }

  #rateHeaders(): Record<string, string> {
    const reset = Date.now() / 1000 + 5;
    return { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': reset.toFixed(3), 'x-ratelimit-reset-after': '5.000', 'x-ratelimit-bucket': 'a1b2c3d4e5f6' };
  }

  #limitedHeaders(retryAfter: number, global: boolean): Record<string, string> {
    const headers: Record<string, string> = { 'retry-after': String(Math.ceil(retryAfter)), 'x-ratelimit-scope': global ? 'global' : 'user' };
    if (global) return { ...headers, 'x-ratelimit-global': 'true' };
    return { ...headers, 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': (Date.now() / 1000 + retryAfter).toFixed(3), 'x-ratelimit-reset-after': retryAfter.toFixed(3), 'x-ratelimit-bucket': 'a1b2c3d4e5f6' };
  }

  // --- the gateway -------------------------------------------------------------------------

  #upgrade(req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/gateway' && url.pathname !== '/gateway/') return void socket.destroy();
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      if (url.searchParams.get('v') !== '10') return ws.close(4012, 'Invalid API version');
      if (url.searchParams.get('encoding') !== 'json' || url.searchParams.has('compress')) return ws.close(4002, 'Error while decoding payload.');
      let session: Session | undefined;
      ws.on('message', (raw) => {
        let p: { op?: number; d?: any };
        try {
          p = JSON.parse(String(raw));
        } catch {
          return ws.close(4002, 'Error while decoding payload.');
        }
        this.ops.push(p.op ?? -1);
        this.#wake();
        if (p.op === 1) return ws.send(JSON.stringify({ op: 11, d: null, s: null, t: null }));
        if (p.op === 2) session = this.#identify(ws, p.d);
        else if (p.op === 6) session = this.#resume(ws, p.d);
        else if (!session) ws.close(4003, 'Not authenticated.');
      });
      ws.on('close', () => {
        if (session && session.ws === ws) {
          session.ws = undefined;
          session.live = false;
        }
        this.#wake();
      });
      ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: this.#heartbeatMs }, s: null, t: null }));
    });
  }

  #identify(ws: WebSocket, d: { token?: string; intents?: number }): Session | undefined {
    if (d?.token !== this.#token || this.#revoked) return void ws.close(4004, 'Authentication failed.');
    const intents = Number(d.intents);
    const needed = INTENTS.Guilds | INTENTS.GuildMessages | INTENTS.DirectMessages;
    if (!Number.isInteger(intents) || (intents & needed) !== needed) return void ws.close(4013, 'Invalid intent(s).');
    if (!this.#messageContent && (intents & INTENTS.MessageContent)) return void ws.close(4014, 'Disallowed intent(s).');
    const s: Session = { id: randomBytes(16).toString('hex'), seq: 0, events: [], ws, live: true };
    this.#sessions.set(s.id, s);
    this.#dispatch(s, 'READY', {
      v: 10, user: { ...this.bot, verified: true, flags: 0, mfa_enabled: false }, guilds: [{ id: this.guild.id, unavailable: true }], session_id: s.id,
      resume_gateway_url: this.gatewayUrl, shard: [0, 1], application: { id: this.bot.id, flags: 0 }, private_channels: [], relationships: [],
    });
    this.#dispatch(s, 'GUILD_CREATE', this.#guildPayload());
    return s;
  }

  #resume(ws: WebSocket, d: { token?: string; session_id?: string; seq?: number }): Session | undefined {
    if (d?.token !== this.#token || this.#revoked) return void ws.close(4004, 'Authentication failed.');
    const s = d.session_id ? this.#sessions.get(d.session_id) : undefined;
    if (!s) {
      ws.send(JSON.stringify({ op: 9, d: false, s: null, t: null }));
      return undefined;
    }
    s.ws?.terminate();
    s.ws = ws;
    for (const e of s.events.filter((e) => e.s > Number(d.seq ?? 0))) ws.send(JSON.stringify({ op: 0, ...e }));
    s.live = true;
    this.#dispatch(s, 'RESUMED', null);
    return s;
  }

  #dispatchAll(t: string, d: unknown): void {
    for (const s of this.#sessions.values()) this.#dispatch(s, t, d);
    this.#wake();
  }

  #dispatch(s: Session, t: string, d: unknown): void {
    const e = { s: ++s.seq, t, d };
    s.events.push(e);
    if (s.live && s.ws?.readyState === s.ws?.OPEN) s.ws!.send(JSON.stringify({ op: 0, ...e }));
  }

  #guildPayload(): Record<string, unknown> {
    const channels = [...this.#channels.values()];
    return {
      id: this.guild.id, name: this.guild.name, icon: null, owner_id: this.bot.id, unavailable: false, member_count: 2, large: false,
      joined_at: new Date(0).toISOString(), features: [], verification_level: 0, default_message_notifications: 0, explicit_content_filter: 0,
      mfa_level: 0, premium_tier: 0, system_channel_flags: 0, preferred_locale: 'en-US', nsfw_level: 0, afk_timeout: 300,
      roles: [{ id: this.guild.id, name: '@everyone', permissions: '1071698660929', position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
      emojis: [], stickers: [], members: [], presences: [], voice_states: [], stage_instances: [], guild_scheduled_events: [], soundboard_sounds: [],
      channels: channels.filter((c) => c.type === 0).map((c) => this.#channelPayload(c)),
      threads: channels.filter((c) => c.type === 11).map((c) => this.#channelPayload(c)),
    };
  }

  #channelPayload(c: DcChannel): Record<string, unknown> {
    if (c.type === 1) return { id: c.id, type: 1, recipients: c.recipients, last_message_id: null, flags: 0 };
    const base = { id: c.id, type: c.type, name: c.name, guild_id: c.guild_id, flags: 0, last_message_id: null, rate_limit_per_user: 0, nsfw: false };
    if (c.type === 11) return { ...base, parent_id: c.parent_id, owner_id: this.bot.id, message_count: 0, member_count: 1, thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false } };
    return { ...base, position: 0, permission_overwrites: [], topic: null, parent_id: null };
  }

  #snowflake(): string {
    return String(((BigInt(Date.now()) - EPOCH) << 22n) + (this.#nextId++ % 4096n));
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A message body as JSON, or multipart with `payload_json` and `files[n]` parts. */
async function parsePayload(req: http.IncomingMessage, body: Buffer): Promise<{ payload: Record<string, unknown>; files: { name: string; data: Buffer }[]; encoding: 'json' | 'multipart' }> {
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(body) }).formData();
    const raw = form.get('payload_json');
    const payload = typeof raw === 'string' ? JSON.parse(raw) as Record<string, unknown> : {};
    const files: { name: string; data: Buffer }[] = [];
    for (const [key, value] of form.entries()) {
      if (/^files\[\d+\]$/.test(key) && typeof value !== 'string') files.push({ name: value.name, data: Buffer.from(await value.arrayBuffer()) });
    }
    return { payload, files, encoding: 'multipart' };
  }
  try {
    return { payload: JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>, files: [], encoding: 'json' };
  } catch {
    throw new ApiError(400, { message: '400: Bad Request', code: 0 });
  }
}
