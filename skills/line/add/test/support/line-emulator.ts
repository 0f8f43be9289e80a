// A local stand-in for LINE's Messaging API that the unmodified @line/bot-sdk talks to
// (only its baseURL pointed here): api.line.me's reply, push, profile, group/room member
// profile, loading animation and bot info, and api-data.line.me's message content, on two
// listeners as LINE has two hosts. It answers with LINE's status codes and error bodies
// (`{"message": …, "details": [...]}`), keeps reply tokens single-use with a time limit,
// honours X-Line-Retry-Key (409 for a key it accepted before), and can rate-limit (429),
// refuse a call or revoke the token. It is also LINE's webhook sender: it builds events as
// LINE does and posts them signed with the channel secret (x-line-signature).

import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LineUser { readonly userId: string; readonly displayName: string }
export interface LineChatRef { readonly type: 'user' | 'group' | 'room'; readonly id: string }
export interface SentMessage { readonly via: 'reply' | 'push'; readonly text: string; readonly type: string; readonly retryKey?: string }
export interface Call { readonly method: string; readonly path: string; readonly headers: http.IncomingHttpHeaders; readonly body: any; readonly status: number }
export interface Delivery { readonly status: number; readonly body: string; readonly event: any }

const RATE_BODY = { message: 'The API rate limit has been exceeded. Try again later.' };
const AUTH_BODY = { message: 'Authentication failed. Confirm that the access token in the authorization header is valid.' };
const NOT_FOUND = { message: 'Not found' };
const ID = /^[UCR][0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const hex32 = () => randomBytes(16).toString('hex');
/** A webhookEventId looks like a ULID: 26 characters of Crockford base32. */
const eventId = () => Array.from(randomBytes(26), (b) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[b % 32]).join('');

export class LineEmulator {
  readonly token = `${randomBytes(96).toString('base64').replace(/[^A-Za-z0-9]/g, '')}=`;
  readonly secret = hex32();
  readonly bot: LineUser;
  /** How long a reply token is taken after its event (LINE: about a minute). */
  replyTokenTtlMs = 60_000;
  /** Where events are posted (hako's webhook URL). */
  webhookUrl = '';
  readonly calls: Call[] = [];
  #api: http.Server;
  #data: http.Server;
  #users = new Map<string, LineUser>();
  #groups = new Map<string, { type: 'group' | 'room'; name: string; members: Set<string> }>();
  #sent = new Map<string, SentMessage[]>();
  #replyTokens = new Map<string, { chat: string; issued: number; used: boolean }>();
  #retryKeys = new Map<string, string>();
  #content = new Map<string, { data: Buffer; type: string }>();
  #revoked = false;
  #limits: { calls: number; paths: string[] }[] = [];
  #refusals: { path: string; status: number; body: object }[] = [];
  #waiters = new Set<() => void>();

  private constructor(api: http.Server, data: http.Server, botName: string) {
    this.#api = api;
    this.#data = data;
    this.bot = { userId: `U${hex32()}`, displayName: botName };
  }

  static async start(opts: { botName?: string } = {}): Promise<LineEmulator> {
    let emu!: LineEmulator;
    const api = http.createServer((req, res) => void emu.#serve('api', req, res));
    const data = http.createServer((req, res) => void emu.#serve('data', req, res));
    emu = new LineEmulator(api, data, opts.botName ?? 'hako');
    await Promise.all([api, data].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))));
    return emu;
  }

  get apiRoot(): string { return `http://127.0.0.1:${(this.#api.address() as AddressInfo).port}`; }
  get dataApiRoot(): string { return `http://127.0.0.1:${(this.#data.address() as AddressInfo).port}`; }

  async close(): Promise<void> {
    for (const s of [this.#api, this.#data]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  // --- the world -------------------------------------------------------------------------

  user(displayName: string): LineUser {
    const u = { userId: `U${hex32()}`, displayName };
    this.#users.set(u.userId, u);
    return u;
  }

  /** A 1:1 chat with a user (its id is the user's id). */
  chatWith(u: LineUser): LineChatRef { return { type: 'user', id: u.userId }; }

  group(name: string, members: LineUser[], type: 'group' | 'room' = 'group'): LineChatRef {
    const id = `${type === 'group' ? 'C' : 'R'}${hex32()}`;
    this.#groups.set(id, { type, name, members: new Set(members.map((m) => m.userId)) });
    return { type, id };
  }

  // --- webhook events, as LINE sends them --------------------------------------------------

  /** A text message event; `mention` puts "@<bot> " in front and marks it as a mention of the bot (isSelf). */
  textEvent(o: { chat: LineChatRef; from: LineUser; text: string; mention?: boolean; timestamp?: number; redelivery?: boolean }): any {
    const prefix = o.mention ? `@${this.bot.displayName} ` : '';
    const message: any = { type: 'text', id: this.#messageId(), quoteToken: randomBytes(16).toString('base64url'), text: prefix + o.text };
    if (o.mention) message.mention = { mentionees: [{ index: 0, length: prefix.length - 1, type: 'user', userId: this.bot.userId, isSelf: true }] };
    return this.#event(o, message);
  }

  /** An image, video, audio or file message whose content the data API serves. */
  mediaEvent(o: { chat: LineChatRef; from: LineUser; kind: 'image' | 'video' | 'audio' | 'file'; data: Buffer; fileName?: string; timestamp?: number }): any {
    const id = this.#messageId();
    const type = { image: 'image/jpeg', video: 'video/mp4', audio: 'audio/x-m4a', file: 'application/octet-stream' }[o.kind];
    this.#content.set(id, { data: o.data, type });
    const message: any = o.kind === 'file'
      ? { type: 'file', id, fileName: o.fileName ?? 'file.bin', fileSize: o.data.length }
      : { type: o.kind, id, contentProvider: { type: 'line' }, ...(o.kind === 'image' ? { quoteToken: randomBytes(16).toString('base64url') } : { duration: 1000 }) };
    return this.#event(o, message);
  }

  #event(o: { chat: LineChatRef; from: LineUser; timestamp?: number; redelivery?: boolean }, message: any): any {
    const replyToken = randomBytes(16).toString('hex');
    const timestamp = o.timestamp ?? Date.now();
    this.#replyTokens.set(replyToken, { chat: o.chat.id, issued: timestamp, used: false });
    const source = o.chat.type === 'user' ? { type: 'user', userId: o.from.userId } : { type: o.chat.type, [`${o.chat.type}Id`]: o.chat.id, userId: o.from.userId };
    return { type: 'message', message, webhookEventId: eventId(), deliveryContext: { isRedelivery: o.redelivery ?? false }, timestamp, source, replyToken, mode: 'active' };
  }

  #messageId(): string { return String(Date.now() * 1000 + Math.floor(Math.random() * 1000)); }

  /** The body LINE posts for these events. */
  body(events: any[]): Buffer { return Buffer.from(JSON.stringify({ destination: this.bot.userId, events })); }

  /** x-line-signature: base64 of HMAC-SHA256 over the raw body with the channel secret. */
  sign(body: Buffer, secret = this.secret): string { return createHmac('sha256', secret).update(body).digest('base64'); }

  /** Posts the events to `webhookUrl` as LINE does; `signature` overrides the header (null: none). */
  async deliver(events: any[], opts: { signature?: string | null; body?: Buffer } = {}): Promise<Delivery> {
    if (!this.webhookUrl) throw new Error('line emulator: set webhookUrl first');
    const body = opts.body ?? this.body(events);
    const signature = opts.signature === undefined ? this.sign(body) : opts.signature;
    const res = await fetch(this.webhookUrl, {
      method: 'POST', body: new Uint8Array(body),
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'LineBotWebhook/2.0', ...(signature !== null ? { 'x-line-signature': signature } : {}) },
    });
    return { status: res.status, body: await res.text(), event: events[0] };
  }

  /** Builds a text event and delivers it. */
  async say(o: Parameters<LineEmulator['textEvent']>[0]): Promise<Delivery> {
    return this.deliver([this.textEvent(o)]);
  }

  // --- what hako sent ------------------------------------------------------------------------

  sent(chatId: string): SentMessage[] { return this.#sent.get(chatId) ?? []; }
  texts(chatId: string): string[] { return this.sent(chatId).map((m) => m.text); }
  callsOf(path: string): Call[] { return this.calls.filter((c) => c.path === path || c.path.startsWith(`${path}/`)); }

  /** Resolves when `pred` holds, re-checked after every call; rejects with `describe()` after 60 s. */
  async waitUntil(pred: () => boolean, describe: () => string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`line emulator: waited ${timeoutMs} ms for ${describe()}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        // Re-checked after every call the emulator answers, and every half second for other changes.
        const timer = setTimeout(done, 500);
        this.#waiters.add(done);
      });
    }
  }

  // --- faults --------------------------------------------------------------------------------

  /** The next `calls` requests to these paths (prefixes) are answered 429. */
  rateLimit(o: { calls: number; paths: string[] }): void { this.#limits.push({ ...o }); }
  /** The next request to `path` is refused with this status and LINE's `{message}` body. */
  refuseNext(path: string, status: number, message: string): void { this.#refusals.push({ path, status, body: { message } }); }
  /** Every request with the token is refused 401 from now on. */
  revokeToken(): void { this.#revoked = true; }

  // --- the HTTP side ---------------------------------------------------------------------

  async #serve(host: 'api' | 'data', req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: any;
    try { body = raw ? JSON.parse(raw) : undefined; } catch { body = raw; }
    const path = (req.url ?? '/').split('?')[0]!;
    const answer = this.#route(host, req.method ?? 'GET', path, req.headers, body);
    this.calls.push({ method: req.method ?? 'GET', path, headers: req.headers, body, status: answer.status });
    const headers: Record<string, string> = { 'x-line-request-id': randomUUID(), ...answer.headers };
    if (Buffer.isBuffer(answer.body)) {
      res.writeHead(answer.status, { ...headers, 'content-length': String(answer.body.length) });
      res.end(answer.body);
    } else {
      const text = JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    }
    for (const w of [...this.#waiters]) w();
  }

  #route(host: 'api' | 'data', method: string, path: string, headers: http.IncomingHttpHeaders, body: any): { status: number; body?: object | Buffer; headers?: Record<string, string> } {
    if (headers.authorization !== `Bearer ${this.token}` || this.#revoked) return { status: 401, body: AUTH_BODY };
    const limit = this.#limits.find((l) => l.calls > 0 && l.paths.some((p) => path.startsWith(p)));
    if (limit) {
      limit.calls--;
      return { status: 429, body: RATE_BODY };
    }
    const refusal = this.#refusals.findIndex((r) => path.startsWith(r.path));
    if (refusal >= 0) return this.#refusals.splice(refusal, 1)[0]!;
    const content = /^\/v2\/bot\/message\/(\d+)\/content$/.exec(path);
    if (host === 'data') {
      const c = content && method === 'GET' ? this.#content.get(content[1]!) : undefined;
      return c ? { status: 200, body: c.data, headers: { 'content-type': c.type } } : { status: 404, body: NOT_FOUND };
    }
    if (method === 'POST' && path === '/v2/bot/message/reply') return this.#reply(body);
    if (method === 'POST' && path === '/v2/bot/message/push') return this.#push(body, headers['x-line-retry-key']);
    if (method === 'POST' && path === '/v2/bot/chat/loading/start') {
      if (!ID.test(body?.chatId ?? '') || !String(body.chatId).startsWith('U')) return badRequest('chatId', 'Invalid chat id');
      if (![5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60].includes(body?.loadingSeconds ?? 20)) return badRequest('loadingSeconds', 'Invalid loadingSeconds');
      return { status: 202, body: {} };
    }
    if (method === 'GET' && path === '/v2/bot/info') {
      return { status: 200, body: { userId: this.bot.userId, basicId: '@123abcde', displayName: this.bot.displayName, chatMode: 'bot', markAsReadMode: 'auto' } };
    }
    const profile = /^\/v2\/bot\/profile\/([^/]+)$/.exec(path);
    if (method === 'GET' && profile) {
      const u = this.#users.get(profile[1]!);
      return u ? { status: 200, body: { userId: u.userId, displayName: u.displayName, language: 'en' } } : { status: 404, body: NOT_FOUND };
    }
    const member = /^\/v2\/bot\/(group|room)\/([^/]+)\/member\/([^/]+)$/.exec(path);
    if (method === 'GET' && member) {
      const g = this.#groups.get(member[2]!);
      const u = this.#users.get(member[3]!);
      return g && u && g.members.has(u.userId) ? { status: 200, body: { userId: u.userId, displayName: u.displayName } } : { status: 404, body: NOT_FOUND };
    }
    return { status: 404, body: NOT_FOUND };
  }

  #reply(body: any): { status: number; body: object } {
    const bad = checkMessages(body?.messages);
    if (bad) return bad;
    const t = this.#replyTokens.get(body?.replyToken);
    if (!t || t.used || Date.now() - t.issued > this.replyTokenTtlMs) return { status: 400, body: { message: 'Invalid reply token' } };
    t.used = true;
    return { status: 200, body: { sentMessages: this.#record(t.chat, 'reply', body.messages) } };
  }

  #push(body: any, retryKey: string | string[] | undefined): { status: number; body: object; headers?: Record<string, string> } {
    const key = typeof retryKey === 'string' ? retryKey : undefined;
    if (retryKey !== undefined && (!key || !UUID.test(key))) return badRequest('X-Line-Retry-Key', 'The retry key is invalid');
    if (key && this.#retryKeys.has(key)) return { status: 409, body: { message: 'The retry key is already accepted' }, headers: { 'x-line-accepted-request-id': this.#retryKeys.get(key)! } };
    if (typeof body?.to !== 'string' || !ID.test(body.to)) return { status: 400, body: { message: "The property, 'to', in the request body is invalid (line: -, column: -)" } };
    const bad = checkMessages(body.messages);
    if (bad) return bad;
    const sentMessages = this.#record(body.to, 'push', body.messages, key);
    if (key) this.#retryKeys.set(key, randomUUID());
    return { status: 200, body: { sentMessages } };
  }

  #record(chat: string, via: 'reply' | 'push', messages: any[], retryKey?: string): { id: string }[] {
    const list = this.#sent.get(chat) ?? [];
    for (const m of messages) list.push({ via, type: m.type, text: m.text ?? '', ...(retryKey ? { retryKey } : {}) });
    this.#sent.set(chat, list);
    return messages.map(() => ({ id: this.#messageId() }));
  }
}

function badRequest(property: string, message: string): { status: number; body: object } {
  return { status: 400, body: { message: 'The request body has 1 error(s)', details: [{ message, property }] } };
}

/** LINE's validation of a messages array: 1 to 5 messages; a text message's text 1 to 5,000 characters. */
function checkMessages(messages: unknown): { status: number; body: object } | undefined {
  if (!Array.isArray(messages) || messages.length < 1 || messages.length > 5) return badRequest('messages', 'Size must be between 1 and 5');
  for (const [i, m] of messages.entries()) {
    if (m?.type !== 'text') return badRequest(`messages[${i}].type`, 'Only text messages are emulated');
    if (typeof m.text !== 'string' || m.text.length < 1) return badRequest(`messages[${i}].text`, 'May not be empty');
    if (m.text.length > 5000) return badRequest(`messages[${i}].text`, 'Length must be between 0 and 5000');
  }
  return undefined;
}
