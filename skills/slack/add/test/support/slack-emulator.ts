// A local stand-in for Slack that the unmodified @slack/bolt clients talk to, with only the
// Web API base URL (SLACK_API_URL) pointed at it: the Web API methods hako calls (form or
// JSON bodies, Bearer tokens, `{ok:false,error}` bodies with HTTP 200, HTTP 429 with
// Retry-After), private file downloads that need the bot token, the external upload flow
// (files.getUploadURLExternal → POST the bytes → files.completeUploadExternal), and a
// Socket Mode WebSocket (apps.connections.open → `hello`, `events_api` envelopes the
// client must ack, `disconnect` with refresh_requested; an unacked envelope is sent again,
// with retry_attempt counted up, on the next connection). For the Events API over HTTP it
// signs requests as Slack does (v0 HMAC over `v0:<timestamp>:<body>`).
//
// Invariants: state is plain data the tests read (messages posted, calls made, envelopes
// acked); every wait is event-driven with a deadline that names what was awaited.

import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SlackUser { readonly id: string; readonly name: string; readonly real_name: string; readonly display_name: string }
export interface SlackConversation { readonly id: string; readonly name?: string; readonly is_im: boolean; readonly is_private: boolean; readonly user?: string }
export interface SlackFile { readonly id: string; readonly name: string; readonly mimetype: string; readonly size: number; readonly url_private_download: string; readonly data: Buffer }
/** A message the bot posted (chat.postMessage) or a file it shared (files.completeUploadExternal). */
export interface PostedMessage {
  readonly channel: string;
  readonly ts: string;
  readonly text: string;
  readonly thread_ts?: string;
  readonly mrkdwn?: boolean;
  readonly file?: { readonly name: string; readonly data: Buffer; readonly title?: string };
}
export interface ApiCall { readonly method: string; readonly params: Record<string, unknown>; readonly status: number }
export interface MessageEvent {
  readonly type: 'message';
  readonly channel: string;
  readonly channel_type: 'channel' | 'group' | 'im' | 'mpim';
  readonly user?: string;
  readonly bot_id?: string;
  readonly subtype?: string;
  readonly text: string;
  readonly ts: string;
  readonly event_ts: string;
  readonly thread_ts?: string;
  readonly files?: readonly Omit<SlackFile, 'data'>[];
  readonly [k: string]: unknown;
}
/** The body Slack posts for an event (Events API) and wraps in an envelope (Socket Mode). */
export interface EventCallback {
  readonly token: string;
  readonly team_id: string;
  readonly api_app_id: string;
  readonly event: MessageEvent | Record<string, unknown>;
  readonly type: 'event_callback';
  readonly event_id: string;
  readonly event_time: number;
}

type Delivery = { readonly kind: 'socket' } | { readonly kind: 'http'; readonly url: string; readonly signingSecret: string };

interface Envelope { readonly envelope_id: string; readonly payload: EventCallback; retry_attempt: number }

const TEAM = 'T0EMULATOR';
const APP = 'A0EMULATOR';

/** Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the signing secret. */
export function signSlackRequest(signingSecret: string, body: string, timestamp: number): Record<string, string> {
  const sig = createHmac('sha256', signingSecret).update(`v0:${timestamp}:${body}`).digest('hex');
  return { 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': `v0=${sig}` };
}

/**
 * What a Slack user sees for a message's mrkdwn text (written apart from the channel's own
 * converter): links show their label, emphasis and code markers are not shown, and the
 * escapes &amp; &lt; &gt; show as the characters.
 */
export function slackShows(mrkdwn: string): string {
  return mrkdwn
    .replace(/```([\s\S]*?)```/g, '$1')
    .replace(/<[^|>]+\|([^>]+)>/g, '$1').replace(/<([^>]+)>/g, '$1')
    .replace(/(?<![\p{L}\p{N}])([*_~`])(?=\S)([^\n]*?\S)\1(?![\p{L}\p{N}])/gu, '$2')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export class SlackEmulator {
  readonly botToken = `xoxb-1000-2000-${randomBytes(12).toString('hex')}`;
  readonly appToken = `xapp-1-${APP}-3000-${randomBytes(16).toString('hex')}`;
  readonly signingSecret = randomBytes(16).toString('hex');
  readonly botUserId: string;
  readonly botId = 'B0HAKOBOT';
  readonly posted: PostedMessage[] = [];
  readonly calls: ApiCall[] = [];
  /** Envelope ids the client acknowledged, in order. */
  readonly acked: string[] = [];
  /** How many Socket Mode connections were opened (a reconnect counts). */
  connections = 0;
  #server: http.Server;
  #wss: WebSocketServer;
  #base = '';
  #users = new Map<string, SlackUser>();
  #conversations = new Map<string, SlackConversation>();
  #files = new Map<string, SlackFile>();
  #uploads = new Map<string, { name: string; length: number; data?: Buffer }>();
  #tickets = new Set<string>();
  #sockets = new Set<WebSocket>();
  #pending: Envelope[] = [];
  #revoked: string | undefined;
  #rate: { method: string; calls: number; retryAfter: number }[] = [];
  #refusals: { method: string; error: string }[] = [];
  #delivery: Delivery = { kind: 'socket' };
  #seq = 0;
  #clock = Math.floor(Date.now() / 1000);
  #waiters = new Set<() => void>();

  private constructor(botUserId: string) {
    this.botUserId = botUserId;
    this.#server = http.createServer((req, res) => void this.#serve(req, res));
    this.#wss = new WebSocketServer({ noServer: true });
    this.#server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const ticket = url.searchParams.get('ticket') ?? '';
      if (url.pathname !== '/link/' || !this.#tickets.delete(ticket)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#connected(ws));
    });
  }

  static async start(opts: { botUserId?: string } = {}): Promise<SlackEmulator> {
    const emu = new SlackEmulator(opts.botUserId ?? 'U0HAKOBOT');
    await new Promise<void>((r) => emu.#server.listen(0, '127.0.0.1', () => r()));
    emu.#base = `http://127.0.0.1:${(emu.#server.address() as AddressInfo).port}`;
    emu.#users.set(emu.botUserId, { id: emu.botUserId, name: 'hako', real_name: 'hako', display_name: 'hako' });
    return emu;
  }

  /** SLACK_API_URL for the client. */
  get apiUrl(): string {
    return `${this.#base}/api/`;
  }

  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  // --- the workspace ---------------------------------------------------------------------

  user(name: string): SlackUser {
    const u = { id: `U${this.#id()}`, name: name.toLowerCase().replace(/\s+/g, '.'), real_name: name, display_name: name.split(' ')[0]! };
    this.#users.set(u.id, u);
    return u;
  }

  channel(name: string, opts: { private?: boolean } = {}): SlackConversation {
    const c = { id: `${opts.private ? 'G' : 'C'}${this.#id()}`, name, is_im: false, is_private: !!opts.private };
    this.#conversations.set(c.id, c);
    return c;
  }

  dm(user: SlackUser): SlackConversation {
    const c = { id: `D${this.#id()}`, is_im: true, is_private: true, user: user.id };
    this.#conversations.set(c.id, c);
    return c;
  }

  /** A file someone shared, served at its url_private_download to the bot token only. */
  file(name: string, data: Buffer, mimetype = 'application/octet-stream'): SlackFile {
    const id = `F${this.#id()}`;
    const f = { id, name, mimetype, size: data.length, url_private_download: `${this.#base}/files-pri/${TEAM}-${id}/download/${encodeURIComponent(name)}`, data };
    this.#files.set(id, f);
    return f;
  }

  // --- events in -------------------------------------------------------------------------

  /** Events go over the Socket Mode connection (the default) or are posted, signed, to `url`. */
  deliverOverHttp(url: string): void {
    this.#delivery = { kind: 'http', url, signingSecret: this.signingSecret };
  }

  /**
   * A user posts in a conversation. Delivered as Slack would: over the socket (queued until a
   * client is connected), or as a signed POST. Returns the event (its ts identifies it).
   */
  message(m: { channel: SlackConversation; user?: SlackUser; text?: string; thread_ts?: string; files?: SlackFile[]; mention?: boolean; extra?: Record<string, unknown> }): MessageEvent {
    const ts = this.#ts();
    const text = `${m.mention ? `<@${this.botUserId}> ` : ''}${m.text ?? ''}`;
    const from = m.user ?? (m.channel.user ? this.#users.get(m.channel.user) : undefined);
    const event: MessageEvent = {
      type: 'message', channel: m.channel.id, channel_type: m.channel.is_im ? 'im' : m.channel.is_private ? 'group' : 'channel',
      ...(from ? { user: from.id } : {}), text, ts, event_ts: ts,
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
      ...(m.files?.length ? { subtype: 'file_share', files: m.files.map(({ data: _data, ...f }) => f) } : {}),
      ...m.extra,
    };
    this.event(event);
    return event;
  }

  /** Any event, wrapped in an event callback and delivered. Returns the callback body. */
  event(event: Record<string, unknown>): EventCallback {
    const body: EventCallback = { token: 'verification-token-unused', team_id: TEAM, api_app_id: APP, event, type: 'event_callback', event_id: `Ev${this.#id()}`, event_time: this.#clock };
    if (this.#delivery.kind === 'socket') {
      this.#pending.push({ envelope_id: randomBytes(16).toString('hex'), payload: body, retry_attempt: 0 });
      this.#flush();
    } else {
      void this.postSigned(body).catch(() => { /* the test sees the missing message */ });
    }
    return body;
  }

  /** Posts a body to the Events API URL signed with the signing secret (or a given one), like Slack. */
  async postSigned(body: unknown, opts: { secret?: string; timestamp?: number; retryNum?: number; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string; headers: Record<string, string> }> {
    if (this.#delivery.kind !== 'http') throw new Error('slack emulator: call deliverOverHttp(url) first');
    const raw = JSON.stringify(body);
    const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json', ...signSlackRequest(opts.secret ?? this.#delivery.signingSecret, raw, ts),
      ...(opts.retryNum ? { 'x-slack-retry-num': String(opts.retryNum), 'x-slack-retry-reason': 'http_timeout' } : {}), ...opts.headers,
    };
    return this.post(raw, headers);
  }

  /** Posts raw bytes with exactly these headers to the Events API URL (a forger, a replay). */
  async post(raw: string, headers: Record<string, string>): Promise<{ status: number; text: string; headers: Record<string, string> }> {
    if (this.#delivery.kind !== 'http') throw new Error('slack emulator: call deliverOverHttp(url) first');
    const res = await fetch(this.#delivery.url, { method: 'POST', headers, body: raw });
    return { status: res.status, text: await res.text(), headers: Object.fromEntries(res.headers) };
  }

  /** Asks the connected clients to reconnect, as Slack does before recycling a server. */
  refreshConnections(): void {
    for (const ws of this.#sockets) ws.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: 'emulator' } }));
  }

  /** Cuts every socket without a close frame (a dropped network). */
  dropConnections(): void {
    for (const ws of this.#sockets) ws.terminate();
  }

  get connected(): number {
    return this.#sockets.size;
  }

  // --- faults ----------------------------------------------------------------------------

  /** Every call with the bot or app token is refused from now on (`token_revoked`, `invalid_auth`, `account_inactive`). */
  revoke(error: 'token_revoked' | 'invalid_auth' | 'account_inactive' = 'token_revoked'): void {
    this.#revoked = error;
    for (const ws of this.#sockets) ws.close(1000, 'token revoked');
  }

  /** The next `calls` calls of `method` are answered HTTP 429 with Retry-After: `retryAfter`. */
  rateLimit(method: string, opts: { calls?: number; retryAfter?: number } = {}): void {
    this.#rate.push({ method, calls: opts.calls ?? 1, retryAfter: opts.retryAfter ?? 1 });
  }

  /** The next call of `method` is answered `{ok:false, error}`. */
  refuseNext(method: string, error = 'channel_not_found'): void {
    this.#refusals.push({ method, error });
  }

  // --- what the bot did ------------------------------------------------------------------

  postedIn(channel: string): PostedMessage[] {
    return this.posted.filter((p) => p.channel === channel);
  }

  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Waits until `cond` holds, re-checked on every call and ack; fails after `ms` saying what it waited for. */
  async waitUntil(cond: () => boolean, what: () => string, ms = 60_000): Promise<void> {
    if (cond()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`slack emulator: waited ${ms} ms for ${what()}`));
      }, ms);
      this.#waiters.add(check);
    });
  }

  // --- the server ------------------------------------------------------------------------

  #id(): string {
    return `0${(++this.#seq).toString(36).toUpperCase().padStart(8, '0')}`;
  }

  /** Message timestamps: seconds and a 6-digit sequence, unique and increasing, as Slack's. */
  #ts(): string {
    return `${this.#clock}.${String(++this.#seq).padStart(6, '0')}`;
  }

  #changed(): void {
    for (const w of [...this.#waiters]) w();
  }

  #connected(ws: WebSocket): void {
    this.connections++;
    this.#sockets.add(ws);
    ws.on('close', () => {
      this.#sockets.delete(ws);
      this.#changed();
    });
    ws.on('message', (data) => {
      let msg: { envelope_id?: unknown };
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (typeof msg.envelope_id !== 'string') return;
      const i = this.#pending.findIndex((e) => e.envelope_id === msg.envelope_id);
      if (i >= 0) this.#pending.splice(i, 1);
      this.acked.push(msg.envelope_id);
      this.#changed();
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: this.#sockets.size, debug_info: { host: 'emulator', approximate_connection_time: 18060 }, connection_info: { app_id: APP } }));
    this.#flush();
    this.#changed();
  }

  #sent = new WeakMap<Envelope, WebSocket>();

  #flush(): void {
    const ws = [...this.#sockets].find((s) => s.readyState === s.OPEN);
    if (!ws) return;
    for (const e of this.#pending) {
      const before = this.#sent.get(e);
      if (before === ws) continue;
      // Sent on an earlier connection and never acked: it comes again, marked as a retry.
      if (before) e.retry_attempt++;
      this.#sent.set(e, ws);
      ws.send(JSON.stringify({ envelope_id: e.envelope_id, payload: e.payload, type: 'events_api', accepts_response_payload: false, retry_attempt: e.retry_attempt, retry_reason: e.retry_attempt ? 'timeout' : '' }));
    }
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', this.#base);
    try {
      if (url.pathname.startsWith('/api/')) return await this.#api(url.pathname.slice(5), req, body, res);
      if (url.pathname.startsWith('/upload/')) return this.#upload(url.pathname.slice(8), req, body, res);
      if (url.pathname.startsWith('/files-pri/')) return this.#download(url.pathname, req, res);
      res.writeHead(404).end();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  }

  async #params(req: http.IncomingMessage, body: Buffer): Promise<Record<string, unknown>> {
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('application/json')) return body.length ? JSON.parse(body.toString()) : {};
    const form = new URLSearchParams(body.toString());
    return Object.fromEntries(form);
  }

  #token(req: http.IncomingMessage, params: Record<string, unknown>): string {
    const auth = req.headers.authorization ?? '';
    return auth.startsWith('Bearer ') ? auth.slice(7) : typeof params.token === 'string' ? params.token : '';
  }

  async #api(method: string, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const params = await this.#params(req, body);
    const answer = (status: number, json: Record<string, unknown>, headers: Record<string, string> = {}) => {
      this.calls.push({ method, params, status });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(json));
      this.#changed();
    };
    const rate = this.#rate.find((r) => r.method === method && r.calls > 0);
    if (rate) {
      rate.calls--;
      return answer(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(rate.retryAfter) });
    }
    const token = this.#token(req, params);
    const wants = method === 'apps.connections.open' ? this.appToken : this.botToken;
    if (!token) return answer(200, { ok: false, error: 'not_authed' });
    if (token !== wants) return answer(200, { ok: false, error: 'invalid_auth' });
    if (this.#revoked) return answer(200, { ok: false, error: this.#revoked });
    const refusal = this.#refusals.findIndex((r) => r.method === method);
    if (refusal >= 0) return answer(200, { ok: false, error: this.#refusals.splice(refusal, 1)[0]!.error });
    const handler = this.#methods[method];
    if (!handler) return answer(200, { ok: false, error: 'unknown_method' });
    const result = handler(params);
    return answer(200, 'error' in result ? { ok: false, ...result } : { ok: true, ...result });
  }

  #methods: Record<string, (p: Record<string, unknown>) => Record<string, unknown>> = {
    'auth.test': () => ({ url: 'https://emulator.slack.com/', team: 'Emulator', user: 'hako', team_id: TEAM, user_id: this.botUserId, bot_id: this.botId, is_enterprise_install: false }),
    'apps.connections.open': () => {
      const ticket = randomBytes(12).toString('hex');
      this.#tickets.add(ticket);
      return { url: `${this.#base.replace(/^http/, 'ws')}/link/?ticket=${ticket}&app_id=${APP}` };
    },
    'users.info': (p) => {
      const u = this.#users.get(String(p.user));
      if (!u) return { error: 'user_not_found' };
      return { user: { id: u.id, team_id: TEAM, name: u.name, real_name: u.real_name, is_bot: u.id === this.botUserId, profile: { real_name: u.real_name, display_name: u.display_name } } };
    },
    'conversations.info': (p) => {
      const c = this.#conversations.get(String(p.channel));
      if (!c) return { error: 'channel_not_found' };
      return { channel: { id: c.id, ...(c.name ? { name: c.name } : {}), is_channel: !c.is_im && !c.is_private, is_group: c.is_private && !c.is_im, is_im: c.is_im, is_private: c.is_private, ...(c.user ? { user: c.user } : {}) } };
    },
    'chat.postMessage': (p) => {
      const channel = String(p.channel ?? '');
      if (!this.#conversations.has(channel)) return { error: 'channel_not_found' };
      const text = typeof p.text === 'string' ? p.text : '';
      if (text === '') return { error: 'no_text' };
      if (text.length > 40_000) return { error: 'msg_too_long' };
      const ts = this.#ts();
      const thread = typeof p.thread_ts === 'string' && p.thread_ts ? p.thread_ts : undefined;
      const mrkdwn = p.mrkdwn === undefined ? undefined : p.mrkdwn === true || p.mrkdwn === 'true';
      this.posted.push({ channel, ts, text, ...(thread ? { thread_ts: thread } : {}), ...(mrkdwn !== undefined ? { mrkdwn } : {}) });
      return { channel, ts, message: { type: 'message', user: this.botUserId, bot_id: this.botId, text, ts, ...(thread ? { thread_ts: thread } : {}) } };
    },
    'files.getUploadURLExternal': (p) => {
      const length = Number(p.length);
      if (!p.filename || !Number.isSafeInteger(length) || length <= 0) return { error: 'invalid_arguments' };
      const id = `F${this.#id()}`;
      this.#uploads.set(id, { name: String(p.filename), length });
      return { upload_url: `${this.#base}/upload/${id}`, file_id: id };
    },
    'files.completeUploadExternal': (p) => {
      const files = JSON.parse(String(p.files ?? '[]')) as { id: string; title?: string }[];
      const channel = typeof p.channel_id === 'string' ? p.channel_id : undefined;
      if (channel && !this.#conversations.has(channel)) return { error: 'channel_not_found' };
      for (const f of files) if (!this.#uploads.get(f.id)?.data) return { error: 'file_not_found' };
      const thread = typeof p.thread_ts === 'string' && p.thread_ts ? p.thread_ts : undefined;
      for (const f of files) {
        const up = this.#uploads.get(f.id)!;
        if (channel) this.posted.push({ channel, ts: this.#ts(), text: typeof p.initial_comment === 'string' ? p.initial_comment : '', ...(thread ? { thread_ts: thread } : {}), file: { name: up.name, data: up.data!, ...(f.title ? { title: f.title } : {}) } });
      }
      return { files: files.map((f) => ({ id: f.id, title: f.title ?? this.#uploads.get(f.id)!.name })) };
    },
  };

  async #upload(id: string, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const up = this.#uploads.get(id);
    if (!up) return void res.writeHead(404).end();
    let data = body;
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Response(new Uint8Array(body), { headers: { 'content-type': type } }).formData();
      const part = [...form.values()].find((v): v is File => typeof v !== 'string');
      data = part ? Buffer.from(await part.arrayBuffer()) : Buffer.alloc(0);
    }
    if (data.length !== up.length) return void res.writeHead(400, { 'content-type': 'text/plain' }).end(`expected ${up.length} bytes, got ${data.length}`);
    up.data = data;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${data.length}`);
  }

  #download(pathname: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const id = /^\/files-pri\/[^/]+-(F[0-9A-Z]+)\//.exec(pathname)?.[1];
    const f = id ? this.#files.get(id) : undefined;
    this.calls.push({ method: 'files-pri', params: { id }, status: 0 });
    // Slack answers a download without the right token with its sign-in page, not an error status.
    if (req.headers.authorization !== `Bearer ${this.botToken}` || this.#revoked) {
      res.writeHead(302, { location: `${this.#base}/?redir=${encodeURIComponent(pathname)}`, 'content-type': 'text/html' }).end('<html>sign in</html>');
      return;
    }
    if (!f) return void res.writeHead(404, { 'content-type': 'text/html' }).end('<html>not found</html>');
    res.writeHead(200, { 'content-type': f.mimetype, 'content-length': String(f.data.length) }).end(f.data);
  }
}
