// A local Telegram Bot API server on 127.0.0.1 for tests: the unmodified grammY client,
// pointed at it by its `apiRoot` option, talks to it over real HTTP exactly as it talks to
// api.telegram.org — `/bot<token>/<method>` with JSON, form-urlencoded, query-string or
// multipart bodies, `{ok:true,result}` or `{ok:false,error_code,description,parameters}`
// answers with the real server's error texts, a real getUpdates long poll (offset
// confirmation, timeout, allowed_updates, 409 when a second poller cuts in), files under
// `/file/bot<token>/<file_path>`. Tests push updates as users would send them, read what
// each chat shows (text after its parse mode or entities), and inject faults: 429 with
// retry_after, a refused call, a dropped connection, a revoked token.
//
// Invariant: nothing here knows hako; it only speaks the Bot API.

import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { checkUrl, parseHtml, parseMarkdown, parseMarkdownV2, type Entity, type Parsed } from './telegram-parse-mode.ts';

export type { Entity } from './telegram-parse-mode.ts';

export interface TgUser { id: number; is_bot: boolean; first_name: string; last_name?: string; username?: string }
export interface TgChat { id: number; type: 'private' | 'group' | 'supergroup' | 'channel'; title?: string; first_name?: string; last_name?: string; username?: string; is_forum?: true }
export type TgMessage = Record<string, unknown> & { message_id: number; chat: TgChat; date: number; from?: TgUser; message_thread_id?: number };

/** A message the bot sent, as the chat shows it. */
export interface SentMessage {
  readonly message_id: number;
  readonly chat_id: number;
  readonly thread_id?: number;
  readonly kind: 'text' | 'photo' | 'document';
  /** What a user sees: the text (or caption) after its parse mode or entities were applied. */
  readonly text: string;
  readonly entities: Entity[];
  readonly reply_to?: number;
  readonly file?: { readonly name: string; readonly data: Buffer };
}

export interface RecordedCall {
  readonly method: string;
  /** How the parameters came: `json`, `form` (urlencoded), `multipart` or `query`. */
  readonly encoding: 'json' | 'form' | 'multipart' | 'query';
  readonly params: Record<string, unknown>;
}

interface StoredFile { id: string; uniqueId: string; path: string; data: Buffer }

const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
const DOWNLOAD_LIMIT = 20 * 1024 * 1024;
const ALLOWED_BY_DEFAULT = (type: string) => !['chat_member', 'message_reaction', 'message_reaction_count'].includes(type);
const ACTIONS = new Set(['typing', 'upload_photo', 'record_video', 'upload_video', 'record_voice', 'upload_voice', 'upload_document', 'choose_sticker', 'find_location', 'record_video_note', 'upload_video_note']);

class ApiError extends Error {
  readonly code: number;
  readonly parameters: Record<string, unknown> | undefined;
  constructor(code: number, description: string, parameters?: Record<string, unknown>) {
    super(description);
    this.code = code;
    this.parameters = parameters;
  }
}
const bad = (description: string) => new ApiError(400, `Bad Request: ${description}`);

/** A token in BotFather's format: the bot id, a colon, 35 characters. */
export function makeToken(botId: number): string {
  return `${botId}:AA${randomBytes(33).toString('base64url').slice(0, 33)}`;
}

export class TelegramEmulator {
  readonly bot: TgUser;
  readonly calls: RecordedCall[] = [];
  #token: string;
  #revoked = false;
  #server: http.Server;
  #port = 0;
  #chats = new Map<number, TgChat>();
  #messages = new Map<number, Map<number, TgMessage>>();
  #nextMessageId = new Map<number, number>();
  #topics = new Map<number, Set<number>>();
  #sent: SentMessage[] = [];
  #actions: { chat_id: number; thread_id?: number; action: string }[] = [];
  #updates: (Record<string, unknown> & { update_id: number })[] = [];
  #nextUpdateId = 100_000_001;
  #allowed: string[] | undefined;
  #poll: { res: http.ServerResponse; wake: () => void } | undefined;
  #files = new Map<string, StoredFile>();
  #filesByPath = new Map<string, StoredFile>();
  #faults: { methods: string[] | undefined; make: () => ApiError | 'drop'; left: number; skip?: number }[] = [];
  #waiters: (() => void)[] = [];
  #nextUserId = 5_000_001;

  private constructor(opts: { token: string; bot: TgUser }) {
    this.#token = opts.token;
    this.bot = opts.bot;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) reply(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${String(err)}` });
        else res.destroy();
      });
    });
  }

  static async start(opts: { username?: string; name?: string; botId?: number } = {}): Promise<TelegramEmulator> {
    const id = opts.botId ?? 7_000_000_000 + Math.floor(Math.random() * 99_999_999);
    const emu = new TelegramEmulator({ token: makeToken(id), bot: { id, is_bot: true, first_name: opts.name ?? 'Hako', username: opts.username ?? 'hako_test_bot' } });
    emu.#server.listen(0, '127.0.0.1');
    await once(emu.#server, 'listening');
    emu.#port = (emu.#server.address() as AddressInfo).port;
    return emu;
  }

  /** What TELEGRAM_API_ROOT is set to (no trailing slash, as grammY wants it). */
  get apiRoot(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The bot's token (what TELEGRAM_BOT_TOKEN is set to). */
  get token(): string {
    return this.#token;
  }

  // --- chats and users ---------------------------------------------------------------

  user(first: string, opts: { last?: string; username?: string; id?: number } = {}): TgUser {
    return { id: opts.id ?? this.#nextUserId++, is_bot: false, first_name: first, ...(opts.last ? { last_name: opts.last } : {}), ...(opts.username ? { username: opts.username } : {}) };
  }

  /** The one-to-one chat of `user` with the bot (its id is the user's id). */
  privateChat(user: TgUser): TgChat {
    return this.#addChat({ id: user.id, type: 'private', first_name: user.first_name, ...(user.last_name ? { last_name: user.last_name } : {}), ...(user.username ? { username: user.username } : {}) });
  }

  /** A basic group (negative id) or, with `supergroup`, a supergroup (-100… id), optionally a forum. */
  group(title: string, opts: { supergroup?: boolean; forum?: boolean; id?: number } = {}): TgChat {
    const supergroup = opts.supergroup || opts.forum;
    const id = opts.id ?? (supergroup ? -1_000_000_000_000 - Math.floor(Math.random() * 999_999_999) : -Math.floor(100_000_000 + Math.random() * 899_999_999));
    return this.#addChat({ id, type: supergroup ? 'supergroup' : 'group', title, ...(opts.forum ? { is_forum: true as const } : {}) });
  }

  /** Creates a forum topic (its service message is pushed as an update); returns its thread id. */
  createTopic(chat: TgChat, name: string, by: TgUser): number {
    if (!chat.is_forum) throw new Error('emulator: topics exist only in forum supergroups');
    const m = this.#store(chat.id, { from: by, forum_topic_created: { name, icon_color: 7322096 } });
    m.message_thread_id = m.message_id;
    m.is_topic_message = true;
    this.#topicsOf(chat.id).add(m.message_id);
    this.pushUpdate({ message: m });
    return m.message_id;
  }

  // --- inbound -----------------------------------------------------------------------

  /**
   * A user writes to the bot: pushes a `message` update and returns the message. `mention`
   * puts `@botname ` in front; `replyTo` makes it a reply (to a message id, e.g. one the bot
   * sent); `thread` posts it in a forum topic; files become photo / document / voice.
   */
  message(m: {
    chat: TgChat; from?: TgUser; text?: string; caption?: string; mention?: boolean; replyTo?: number; thread?: number;
    photo?: Uint8Array; document?: { data: Uint8Array; name: string; mime?: string }; voice?: { data: Uint8Array; duration?: number };
  }): TgMessage {
    const from = m.from ?? (m.chat.type === 'private' ? this.#userOfPrivate(m.chat) : undefined);
    if (!from) throw new Error('emulator: a group message needs `from`');
    const fields: Record<string, unknown> = { from };
    const prefix = m.mention ? `@${this.bot.username} ` : '';
    if (m.text !== undefined) Object.assign(fields, withEntities('text', 'entities', prefix + m.text));
    else if (m.caption !== undefined || m.mention) Object.assign(fields, withEntities('caption', 'caption_entities', prefix + (m.caption ?? '')));
    if (m.photo) {
      const big = this.#addFile(Buffer.from(m.photo), 'photos', 'jpg');
      const small = this.#addFile(Buffer.from(m.photo).subarray(0, Math.min(m.photo.length, 1024)), 'photos', 'jpg');
      fields.photo = [
        { file_id: small.id, file_unique_id: small.uniqueId, width: 90, height: 67, file_size: small.data.length },
        { file_id: big.id, file_unique_id: big.uniqueId, width: 1280, height: 960, file_size: big.data.length },
      ];
    }
    if (m.document) {
      const f = this.#addFile(Buffer.from(m.document.data), 'documents', m.document.name.split('.').pop() ?? 'dat');
      fields.document = { file_id: f.id, file_unique_id: f.uniqueId, file_name: m.document.name, mime_type: m.document.mime ?? 'application/octet-stream', file_size: f.data.length };
    }
    if (m.voice) {
      const f = this.#addFile(Buffer.from(m.voice.data), 'voice', 'oga');
      fields.voice = { file_id: f.id, file_unique_id: f.uniqueId, duration: m.voice.duration ?? 1, mime_type: 'audio/ogg', file_size: f.data.length };
    }
    if (m.thread !== undefined) {
      if (!this.#topicsOf(m.chat.id).has(m.thread)) throw new Error(`emulator: no topic ${m.thread} in chat ${m.chat.id}`);
      fields.message_thread_id = m.thread;
      fields.is_topic_message = true;
    }
    const replyTo = m.replyTo ?? m.thread;
    if (replyTo !== undefined) {
      const target = this.#messages.get(m.chat.id)?.get(replyTo);
      if (!target) throw new Error(`emulator: no message ${replyTo} in chat ${m.chat.id} to reply to`);
      fields.reply_to_message = target;
    }
    const msg = this.#store(m.chat.id, fields);
    this.pushUpdate({ message: msg });
    return msg;
  }

  /** Queues any update (the update_id is assigned) and wakes a waiting getUpdates. */
  pushUpdate(update: Record<string, unknown>): number {
    const update_id = this.#nextUpdateId++;
    this.#updates.push({ update_id, ...update });
    this.#poll?.wake();
    return update_id;
  }

  /** Updates not yet confirmed by a getUpdates with a higher offset. */
  get pendingUpdates(): number {
    return this.#updates.length;
  }

  // --- what the bot did --------------------------------------------------------------

  /** Every message the bot sent to `chatId` (in `thread`, when given), oldest first. */
  sent(chatId: number, thread?: number): SentMessage[] {
    return this.#sent.filter((s) => s.chat_id === chatId && (thread === undefined || s.thread_id === thread));
  }

  texts(chatId: number, thread?: number): string[] {
    return this.sent(chatId, thread).map((s) => s.text);
  }

  /** Chat actions (`typing`, …) the bot sent to `chatId`. */
  actions(chatId: number): string[] {
    return this.#actions.filter((a) => a.chat_id === chatId).map((a) => a.action);
  }

  callsOf(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Resolves with the chat's messages once the bot has sent at least `n` to `chatId`. */
  async waitForSends(chatId: number, n: number, timeoutMs?: number): Promise<SentMessage[]> {
    await this.waitUntil(() => this.sent(chatId).length >= n, () => `${n} messages to chat ${chatId}; it has ${JSON.stringify(this.texts(chatId))}`, timeoutMs);
    return this.sent(chatId);
  }

  /** Resolves once at least `n` calls of `method` have arrived (a long poll counts while it waits). */
  async waitForCalls(method: string, n: number, timeoutMs?: number): Promise<RecordedCall[]> {
    await this.waitUntil(() => this.callsOf(method).length >= n, () => `${n} ${method} calls; there were ${this.callsOf(method).length}`, timeoutMs);
    return this.callsOf(method);
  }

  /** Resolves once `done()` holds, checked again whenever a call arrives or is answered; rejects after `timeoutMs` saying what it waited for. */
  async waitUntil(done: () => boolean, what: () => string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`emulator: waited ${timeoutMs} ms for ${what()}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.#waiters.push(() => { clearTimeout(timer); r(); });
      });
    }
  }

  // --- faults ------------------------------------------------------------------------

  /** The next `calls` calls (of `methods`, or any) answer 429 Too Many Requests with retry_after. */
  rateLimit(opts: { calls: number; retryAfter: number; methods?: string[] }): void {
    const err = () => new ApiError(429, `Too Many Requests: retry after ${opts.retryAfter}`, { retry_after: opts.retryAfter });
    this.#faults.push({ methods: opts.methods, make: err, left: opts.calls });
  }

  /** The next call of `method` is refused with this code and description. */
  refuseNext(method: string, code: number, description: string): void {
    this.#faults.push({ methods: [method], make: () => new ApiError(code, description), left: 1 });
  }

  /** The next `calls` requests (of `methods`, or any; after the first `skip` of them) lose their connection before an answer. */
  dropConnections(opts: { calls: number; methods?: string[]; skip?: number }): void {
    this.#faults.push({ methods: opts.methods, make: () => 'drop', left: opts.calls, skip: opts.skip ?? 0 });
  }

  /** BotFather's /revoke: from now on every call with the token answers 401 Unauthorized. */
  revokeToken(): void {
    this.#revoked = true;
    const poll = this.#poll;
    this.#poll = undefined;
    if (poll) reply(poll.res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
  }

  async close(): Promise<void> {
    const poll = this.#poll;
    this.#poll = undefined;
    poll?.res.destroy();
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
  }

  // --- the server ----------------------------------------------------------------------

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (file) return this.#download(file[1]!, decodeURIComponent(file[2]!), res);
    const m = /^\/bot([^/]*)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!m) return reply(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    const [, token, name] = m;
    const body = await readBody(req);
    if (token !== this.#token || this.#revoked) return reply(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    const method = METHOD_NAMES.get(name!.toLowerCase());
    if (!method) return reply(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    let call: RecordedCall;
    let files: Map<string, { filename: string; data: Buffer }>;
    try {
      ({ call, files } = parseParams(method, req, url, body));
    } catch (err) {
      return reply(res, 400, { ok: false, error_code: 400, description: `Bad Request: ${(err as Error).message}` });
    }
    this.calls.push(call);
    this.#wake();
    const fault = this.#takeFault(method);
    try {
      if (fault === 'drop') {
        res.socket?.destroy();
        return;
      }
      if (fault) throw fault;
      const result = await this.#call(method, call.params, files, res);
      if (result === LONG_POLL_ENDED) return;
      reply(res, 200, { ok: true, result });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      reply(res, err.code, { ok: false, error_code: err.code, description: err.message, ...(err.parameters ? { parameters: err.parameters } : {}) });
    } finally {
      this.#wake();
    }
  }

  #takeFault(method: string): ApiError | 'drop' | undefined {
    const f = this.#faults.find((x) => x.left > 0 && (!x.methods || x.methods.includes(method)));
    if (!f) return undefined;
    if (f.skip) {
      f.skip--;
      return undefined;
    }
    f.left--;
    if (f.left === 0) this.#faults.splice(this.#faults.indexOf(f), 1);
    return f.make();
  }

  async #call(method: string, p: Record<string, unknown>, files: Map<string, { filename: string; data: Buffer }>, res: http.ServerResponse): Promise<unknown> {
    switch (method) {
      case 'getMe':
        return { ...this.bot, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false };
      case 'deleteWebhook':
        if (p.drop_pending_updates === true) this.#updates = [];
        return true;
      case 'getWebhookInfo':
        return { url: '', has_custom_certificate: false, pending_update_count: this.#updates.length };
      case 'getUpdates':
        return this.#getUpdates(p, res);
      case 'sendMessage':
        return this.#sendMessage(p);
      case 'sendChatAction': {
        const chat = this.#chat(p.chat_id);
        if (typeof p.action !== 'string' || !ACTIONS.has(p.action)) throw bad('wrong parameter action in request');
        const thread = this.#thread(chat, p.message_thread_id);
        this.#actions.push({ chat_id: chat.id, action: p.action, ...(thread !== undefined ? { thread_id: thread } : {}) });
        return true;
      }
      case 'getFile': {
        const f = typeof p.file_id === 'string' ? this.#files.get(p.file_id) : undefined;
        if (!f) throw bad('invalid file_id');
        if (f.data.length > DOWNLOAD_LIMIT) throw bad('file is too big');
        return { file_id: f.id, file_unique_id: f.uniqueId, file_size: f.data.length, file_path: f.path };
      }
      case 'sendDocument':
      case 'sendPhoto':
        return this.#sendFile(method === 'sendPhoto' ? 'photo' : 'document', p, files);
    }
    throw new ApiError(404, 'Not Found');
  }

  #getUpdates(p: Record<string, unknown>, res: http.ServerResponse): Promise<unknown> | unknown {
    const offset = toInt(p.offset) ?? 0;
    const limit = Math.min(100, Math.max(1, toInt(p.limit) ?? 100));
    const timeout = Math.max(0, toInt(p.timeout) ?? 0);
    if (Array.isArray(p.allowed_updates)) this.#allowed = p.allowed_updates.map(String);
    if (offset > 0) this.#updates = this.#updates.filter((u) => u.update_id >= offset);
    else if (offset < 0) this.#updates = this.#updates.slice(offset);
    // A second poller cuts in: the first one is told, as Telegram tells it.
    const previous = this.#poll;
    this.#poll = undefined;
    if (previous) reply(previous.res, 409, { ok: false, error_code: 409, description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running' });
    const ready = () => {
      const allowed = this.#allowed;
      this.#updates = this.#updates.filter((u) => {
        const type = Object.keys(u).find((k) => k !== 'update_id') ?? '';
        return allowed && allowed.length > 0 ? allowed.includes(type) : ALLOWED_BY_DEFAULT(type);
      });
      return this.#updates.slice(0, limit);
    };
    const now = ready();
    if (now.length > 0 || timeout === 0) return now;
    return new Promise((resolve) => {
      const done = (value: unknown) => {
        clearTimeout(timer);
        if (this.#poll?.res === res) this.#poll = undefined;
        resolve(value);
      };
      const timer = setTimeout(() => done([]), timeout * 1000);
      res.once('close', () => done(LONG_POLL_ENDED));
      this.#poll = { res, wake: () => { const u = ready(); if (u.length > 0) done(u); } };
      // Answered by someone else (a 409, a revoked token): nothing more to send.
      res.once('finish', () => done(LONG_POLL_ENDED));
    });
  }

  #sendMessage(p: Record<string, unknown>): TgMessage {
    const chat = this.#chat(p.chat_id);
    if (typeof p.text !== 'string' || p.text === '') throw bad('message text is empty');
    const formatted = format(p.text, p.parse_mode, p.entities);
    if (formatted.text.length === 0) throw bad('message text is empty');
    if (formatted.text.length > TEXT_LIMIT) throw bad('message is too long');
    const thread = this.#thread(chat, p.message_thread_id);
    const replyTo = this.#replyTarget(chat, p);
    const m = this.#store(chat.id, {
      from: this.bot, text: formatted.text,
      ...(formatted.entities.length ? { entities: formatted.entities } : {}),
      ...(thread !== undefined ? { message_thread_id: thread, is_topic_message: true } : {}),
      ...(replyTo ? { reply_to_message: replyTo } : {}),
    });
    this.#sent.push({ message_id: m.message_id, chat_id: chat.id, kind: 'text', text: formatted.text, entities: formatted.entities, ...(thread !== undefined ? { thread_id: thread } : {}), ...(replyTo ? { reply_to: replyTo.message_id } : {}) });
    return m;
  }

  #sendFile(kind: 'photo' | 'document', p: Record<string, unknown>, files: Map<string, { filename: string; data: Buffer }>): TgMessage {
    const chat = this.#chat(p.chat_id);
    const ref = p[kind];
    let upload: { filename: string; data: Buffer } | undefined;
    if (typeof ref === 'string' && ref.startsWith('attach://')) upload = files.get(ref.slice('attach://'.length));
    else if (files.has(kind)) upload = files.get(kind);
    else if (typeof ref === 'string' && this.#files.has(ref)) {
      const f = this.#files.get(ref)!;
      upload = { filename: f.path.split('/').pop()!, data: f.data };
    } else if (typeof ref === 'string' && /^https?:\/\//.test(ref)) throw bad('failed to get HTTP URL content');
    if (!upload) throw bad(`there is no ${kind} in the request`);
    if (kind === 'photo' && !isImage(upload.data)) throw bad('IMAGE_PROCESS_FAILED');
    if (upload.data.length > 50 * 1024 * 1024) throw new ApiError(413, 'Request Entity Too Large');
    const caption = typeof p.caption === 'string' && p.caption !== '' ? format(p.caption, p.parse_mode, p.caption_entities) : { text: '', entities: [] };
    if (caption.text.length > CAPTION_LIMIT) throw bad('message caption is too long');
    const thread = this.#thread(chat, p.message_thread_id);
    const replyTo = this.#replyTarget(chat, p);
    const stored = this.#addFile(upload.data, kind === 'photo' ? 'photos' : 'documents', upload.filename.split('.').pop() ?? 'dat');
    const media = kind === 'photo'
      ? { photo: [{ file_id: stored.id, file_unique_id: stored.uniqueId, width: 1280, height: 960, file_size: stored.data.length }] }
      : { document: { file_id: stored.id, file_unique_id: stored.uniqueId, file_name: upload.filename, file_size: stored.data.length } };
    const m = this.#store(chat.id, {
      from: this.bot, ...media,
      ...(caption.text ? { caption: caption.text, ...(caption.entities.length ? { caption_entities: caption.entities } : {}) } : {}),
      ...(thread !== undefined ? { message_thread_id: thread, is_topic_message: true } : {}),
      ...(replyTo ? { reply_to_message: replyTo } : {}),
    });
    this.#sent.push({ message_id: m.message_id, chat_id: chat.id, kind, text: caption.text, entities: caption.entities, file: { name: upload.filename, data: upload.data }, ...(thread !== undefined ? { thread_id: thread } : {}), ...(replyTo ? { reply_to: replyTo.message_id } : {}) });
    return m;
  }

  #download(token: string, filePath: string, res: http.ServerResponse): void {
    if (token !== this.#token || this.#revoked) return reply(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    const f = this.#filesByPath.get(filePath);
    if (!f) return reply(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': f.data.length });
    res.end(f.data);
  }

  #chat(id: unknown): TgChat {
    const n = toInt(id);
    if (id === undefined || id === '') throw bad('chat_id is empty');
    const chat = n === undefined ? undefined : this.#chats.get(n);
    if (!chat) throw bad('chat not found');
    return chat;
  }

  #thread(chat: TgChat, raw: unknown): number | undefined {
    const thread = toInt(raw);
    if (thread === undefined) return undefined;
    if (!this.#topicsOf(chat.id).has(thread)) throw bad('message thread not found');
    return thread;
  }

  #replyTarget(chat: TgChat, p: Record<string, unknown>): TgMessage | undefined {
    const rp = p.reply_parameters as Record<string, unknown> | undefined;
    const id = toInt(rp?.message_id) ?? toInt(p.reply_to_message_id);
    if (id === undefined) return undefined;
    const target = this.#messages.get(chat.id)?.get(id);
    const lenient = rp?.allow_sending_without_reply === true || p.allow_sending_without_reply === true;
    if (!target && !lenient) throw bad('message to be replied not found');
    return target;
  }

  #addChat(chat: TgChat): TgChat {
    this.#chats.set(chat.id, chat);
    return chat;
  }

  #userOfPrivate(chat: TgChat): TgUser {
    return { id: chat.id, is_bot: false, first_name: chat.first_name ?? 'User', ...(chat.last_name ? { last_name: chat.last_name } : {}), ...(chat.username ? { username: chat.username } : {}) };
  }

  #topicsOf(chatId: number): Set<number> {
    let s = this.#topics.get(chatId);
    if (!s) this.#topics.set(chatId, (s = new Set()));
    return s;
  }

  #store(chatId: number, fields: Record<string, unknown>): TgMessage {
    const chat = this.#chats.get(chatId);
    if (!chat) throw new Error(`emulator: unknown chat ${chatId}`);
    const id = this.#nextMessageId.get(chatId) ?? 1;
    this.#nextMessageId.set(chatId, id + 1);
    const m: TgMessage = { message_id: id, date: Math.floor(Date.now() / 1000), chat, ...fields };
    let byId = this.#messages.get(chatId);
    if (!byId) this.#messages.set(chatId, (byId = new Map()));
    byId.set(id, m);
    return m;
  }

  #addFile(data: Buffer, folder: string, ext: string): StoredFile {
    const id = `AgAC${randomBytes(24).toString('base64url')}`;
    const f: StoredFile = { id, uniqueId: `AQAD${randomBytes(8).toString('base64url')}`, path: `${folder}/file_${this.#files.size}.${ext.replace(/[^a-z0-9]/gi, '') || 'dat'}`, data };
    this.#files.set(id, f);
    this.#filesByPath.set(f.path, f);
    return f;
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

const LONG_POLL_ENDED = Symbol('long poll ended');

const METHOD_NAMES = new Map(['getMe', 'getUpdates', 'deleteWebhook', 'getWebhookInfo', 'sendMessage', 'sendChatAction', 'getFile', 'sendDocument', 'sendPhoto'].map((m) => [m.toLowerCase(), m]));

// Parameters that carry JSON when they come as form fields or query strings.
const JSON_FIELDS = new Set(['entities', 'caption_entities', 'reply_parameters', 'allowed_updates', 'reply_markup', 'link_preview_options']);

function parseParams(method: string, req: http.IncomingMessage, url: URL, body: Buffer): { call: RecordedCall; files: Map<string, { filename: string; data: Buffer }> } {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const files = new Map<string, { filename: string; data: Buffer }>();
  let encoding: RecordedCall['encoding'] = 'query';
  let params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  if (body.length > 0 || req.method === 'POST') {
    if (type.startsWith('application/json')) {
      encoding = 'json';
      const parsed: unknown = body.length ? JSON.parse(body.toString('utf8')) : {};
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('parameters must be an object');
      params = { ...params, ...(parsed as Record<string, unknown>) };
    } else if (type.startsWith('application/x-www-form-urlencoded')) {
      encoding = 'form';
      params = { ...params, ...Object.fromEntries(new URLSearchParams(body.toString('utf8'))) };
    } else if (type.startsWith('multipart/form-data')) {
      encoding = 'multipart';
      const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(req.headers['content-type'] ?? '');
      if (!boundary) throw new Error('multipart boundary is missing');
      const parts = parseMultipart(body, boundary[1] ?? boundary[2]!.trim());
      for (const part of parts) {
        if (part.filename !== undefined) files.set(part.name, { filename: part.filename, data: part.data });
        else params[part.name] = part.data.toString('utf8');
      }
    }
  }
  if (encoding !== 'json') {
    for (const [k, v] of Object.entries(params)) {
      if (typeof v === 'string' && JSON_FIELDS.has(k)) {
        try { params[k] = JSON.parse(v); } catch { throw new Error(`can't parse ${k} JSON object`); }
      } else if (v === 'true' || v === 'false') params[k] = v === 'true';
    }
  }
  return { call: { method, encoding, params }, files };
}

/** multipart/form-data as grammY (and curl, and browsers) send it; lenient about header spacing and quoting. */
function parseMultipart(body: Buffer, boundary: string): { name: string; filename?: string; data: Buffer }[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { name: string; filename?: string; data: Buffer }[] = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new Error('multipart body has no closing boundary');
    let part = body.subarray(start, next);
    if (part.subarray(0, 2).toString() === '\r\n') part = part.subarray(2);
    if (part.subarray(-2).toString() === '\r\n') part = part.subarray(0, -2);
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) throw new Error('multipart part has no headers');
    const headers = part.subarray(0, split).toString('utf8').split('\r\n');
    const disposition = headers.find((h) => /^content-disposition\s*:/i.test(h)) ?? '';
    const param = (key: string) => new RegExp(`;\\s*${key}\\s*=\\s*(?:"([^"]*)"|([^;]*))`, 'i').exec(disposition);
    const name = param('name');
    const filename = param('filename');
    if (!name) throw new Error('multipart part has no name');
    parts.push({ name: (name[1] ?? name[2] ?? '').trim(), ...(filename ? { filename: (filename[1] ?? filename[2] ?? '').trim() } : {}), data: part.subarray(split + 4) });
    pos = next;
  }
  return parts;
}

/** Text after its parse mode, or with the entities given (clipped to the text, as Telegram does). */
function format(text: string, parseMode: unknown, entities: unknown): { text: string; entities: Entity[] } {
  let parsed: Parsed;
  if (parseMode === undefined || parseMode === '') parsed = { text, entities: validEntities(entities, text) };
  else if (parseMode === 'MarkdownV2') parsed = parseMarkdownV2(text);
  else if (parseMode === 'Markdown') parsed = parseMarkdown(text);
  else if (parseMode === 'HTML') parsed = parseHtml(text);
  else throw bad('unsupported parse_mode');
  if ('error' in parsed) throw bad(`can't parse entities: ${parsed.error}`);
  return trimmed(parsed.text, parsed.entities);
}

const ENTITY_TYPES = new Set(['mention', 'hashtag', 'cashtag', 'bot_command', 'url', 'email', 'phone_number', 'bold', 'italic', 'underline', 'strikethrough', 'spoiler', 'blockquote', 'expandable_blockquote', 'code', 'pre', 'text_link', 'text_mention', 'custom_emoji']);

function validEntities(raw: unknown, text: string): Entity[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw bad("can't parse entities JSON object");
  const out: Entity[] = [];
  for (const e of raw) {
    if (typeof e !== 'object' || e === null) throw bad("can't parse entities JSON object");
    const { type, offset, length, url, language } = e as Record<string, unknown>;
    if (typeof type !== 'string' || !ENTITY_TYPES.has(type)) throw bad("can't parse MessageEntity: Unsupported type specified");
    if (!Number.isInteger(offset) || !Number.isInteger(length)) throw bad("can't parse MessageEntity: Field \"offset\" must be of type Number");
    const start = Math.max(0, offset as number);
    const end = Math.min(text.length, (offset as number) + (length as number));
    if (end <= start) continue;
    const entity: Entity = { type, offset: start, length: end - start };
    if (type === 'text_link') {
      const checked = typeof url === 'string' ? checkUrl(url) : undefined;
      if (!checked) throw bad("can't parse entities: Wrong HTTP URL");
      entity.url = checked;
    }
    if (type === 'pre' && typeof language === 'string' && language) entity.language = language;
    out.push(entity);
  }
  return out;
}

/** Telegram drops leading and trailing whitespace of a message; entities move with the text. */
function trimmed(text: string, entities: Entity[]): { text: string; entities: Entity[] } {
  const lead = text.length - text.trimStart().length;
  const body = text.trim();
  const kept: Entity[] = [];
  for (const e of entities) {
    const start = Math.max(0, e.offset - lead);
    const end = Math.min(body.length, e.offset + e.length - lead);
    if (end > start) kept.push({ ...e, offset: start, length: end - start });
  }
  return { text: body, entities: kept };
}

/** A text as a user types it: Telegram marks @mentions and a leading /command itself. */
function withEntities(textKey: string, entitiesKey: string, text: string): Record<string, unknown> {
  const entities: Entity[] = [];
  for (const m of text.matchAll(/(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}\b/g)) entities.push({ type: 'mention', offset: m.index, length: m[0].length });
  const cmd = /^\/[A-Za-z0-9_]{1,32}(@[A-Za-z][A-Za-z0-9_]{3,31})?/.exec(text);
  if (cmd) entities.unshift({ type: 'bot_command', offset: 0, length: cmd[0].length });
  return { [textKey]: text, ...(entities.length ? { [entitiesKey]: entities } : {}) };
}

function isImage(data: Buffer): boolean {
  const hex = data.subarray(0, 12).toString('hex');
  return hex.startsWith('ffd8ff') || hex.startsWith('89504e47') || hex.startsWith('47494638') || (hex.startsWith('52494646') && data.subarray(8, 12).toString() === 'WEBP');
}

function toInt(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A tiny valid JPEG (1×1 pixel) for photo tests. */
export const TINY_JPEG = Buffer.from(
  'ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9',
  'hex',
);
