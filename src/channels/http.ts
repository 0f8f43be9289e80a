// The local HTTP channel: a JSON API, Server-Sent Events and the web chat page, bound to
// 127.0.0.1 unless the owner says TLS terminates in front (config.ts bindProblem). A request
// must name this server in its Host header (web-auth.ts), and the API needs the bearer
// token or the web chat's session cookie. Every endpoint is one row of HttpChannel.routes,
// which docs/API.md documents exactly (test/unit/api-doc.test.ts). Every bad request gets
// a 4xx with a reason; a 500 means a hako bug.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Channel, ChannelContext, OwnerTaskRequest } from '../core/channel.ts';
import { InputError } from '../core/channel.ts';
import type { StoredMessage } from '../core/store-contract.ts';
import type { Logger } from '../core/log.ts';
import { bindProblem, type HttpExposure } from '../core/config.ts';
import { OWNER_TASK_ACTIONS } from '../core/tasks.ts';
import { cookieRequestProblem, cookieValue, hostAllowed, sameOrigin, SESSION_MAX_MS, WebAuth } from './web-auth.ts';
import { attachmentLimits, MAX_ATTACHMENTS, removeSaved, saveWithMessage, sizeProblem, type AttachmentLimits, type IncomingFile, type SavedAttachment } from './attachments.ts';

const MAX_BODY_BYTES = 256 * 1024;
const PAGE = path.join(import.meta.dirname, 'web', 'index.html');

export interface HttpChannelOptions {
  readonly port: number;
  readonly token: string;
  readonly log: Logger;
  /** The address to listen on (HAKO_HTTP_BIND); 127.0.0.1 by default. */
  readonly host?: string;
  /** What protects a non-loopback `host` (HAKO_HTTP_BEHIND_TLS / HAKO_HTTP_ALLOW_INSECURE); 'loopback' by default. */
  readonly exposure?: HttpExposure;
  /** Host names besides 127.0.0.1, localhost and [::1] with the port (HAKO_HTTP_HOSTS). */
  readonly allowedHosts?: readonly string[];
  /** Sign-in codes and sessions; a fresh one by default (tests pass one with a clock). */
  readonly auth?: WebAuth;
  /** HAKO_HOME, where attachments are saved; without it a message with attachments is refused. */
  readonly home?: string;
  /** Attachment sizes (HAKO_ATTACHMENT_MAX_BYTES, HAKO_ATTACHMENT_TOTAL_BYTES); the defaults when absent. */
  readonly attachments?: AttachmentLimits;
}

/** A message's body may carry its attachments base64-encoded (4 characters per 3 bytes) besides the text. */
function messageBodyLimit(limits: AttachmentLimits): number {
  return MAX_BODY_BYTES + Math.ceil(limits.total / 3) * 4 + MAX_ATTACHMENTS * 1024;
}

/**
 * The API's view of a message: no internal states. A user message also says whether the
 * owner sent it through a local channel (`owner`) and whether it engaged the agent
 * (`engaged` false: stored as context only, e.g. no trigger word; it stays false after a
 * later message that called the agent took it into its batch as context).
 */
export function publicMessage(m: StoredMessage) {
  const user = m.role === 'user' ? { owner: m.chat === null, engaged: m.engaged ?? m.state !== 'context' } : {};
  return { id: m.id, role: m.role, sender: m.sender, text: m.text, ts: m.ts, ...user };
}

/**
 * The web chat page's headers. Its one script and style carry a fresh nonce, so nothing
 * else runs: no inline handler, no injected <script>, no javascript: URL; Trusted Types
 * make any HTML-parsing sink (innerHTML and kin) throw, so message text can only become text.
 */
function pageHeaders(nonce: string): http.OutgoingHttpHeaders {
  const csp = [
    "default-src 'none'", `script-src 'nonce-${nonce}'`, `style-src 'nonce-${nonce}'`, "connect-src 'self'", "img-src 'self'",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "require-trusted-types-for 'script'", "trusted-types 'none'",
  ].join('; ');
  return { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': csp, 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', 'x-content-type-options': 'nosniff' };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data), 'cache-control': 'no-store' });
  res.end(data);
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * POST /api/tasks body: {"group", "prompt", one of "cron" | "every_seconds" | "at", "context"?}.
 * Only the shape is checked here; the schedule and the rest are the task service's to judge.
 */
function taskRequest(body: unknown): OwnerTaskRequest {
  const example = 'body must be a JSON object like {"group": "main", "prompt": "summarise my inbox", "cron": "0 9 * * 1-5"}';
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InputError(400, example);
  const { group, prompt, cron, every_seconds, at, context } = body as Record<string, unknown>;
  if (typeof group !== 'string' || group === '') throw new InputError(400, `field "group" must be a group's name; ${example}`);
  if (typeof prompt !== 'string') throw new InputError(400, `field "prompt" must be a string; ${example}`);
  if (context !== undefined && context !== 'group' && context !== 'isolated') throw new InputError(400, 'field "context" must be "group" or "isolated"');
  return { group, prompt, cron, every_seconds, at, ...(context === undefined ? {} : { context }) };
}

async function readJson(req: http.IncomingMessage, limit = MAX_BODY_BYTES, hint = ''): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new InputError(415, 'send the body as application/json');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new InputError(413, `request body is ${declared} bytes; the limit is ${limit}${hint}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new InputError(413, `request body is larger than ${limit} bytes${hint}`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new InputError(400, 'request body is not valid JSON');
  }
}

/**
 * Who may call a route: 'none' (anyone naming this server in Host: the page, signing in),
 * 'session' (the bearer token, or the web chat's session cookie from the page's own
 * origin), 'token' (the bearer token only).
 */
export type RouteAuth = 'none' | 'session' | 'token';

/** One request as a handler sees it; the caller has already passed the route's auth. */
export interface Call {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
  /** The path's `:name` segments, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly ctx: ChannelContext;
}

export interface Route {
  readonly method: 'GET' | 'POST';
  /** Literal segments and `:param` segments, as docs/API.md writes them: /api/groups/:name/messages. */
  readonly path: string;
  readonly auth: RouteAuth;
  /** Served only when the host hands this channel the owner's controls (ctx.owner). */
  readonly owner?: boolean;
  readonly handle: (ch: HttpChannel, call: Call) => Promise<void> | void;
}

/** The path's parameters when `pathname` fits `pattern`, else null. */
function matchPath(pattern: string, pathname: string): Record<string, string> | null {
  const want = pattern.split('/');
  const got = pathname.split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (const [i, w] of want.entries()) {
    const g = got[i]!;
    if (!w.startsWith(':')) {
      if (w !== g) return null;
      continue;
    }
    if (g === '') return null;
    try {
      params[w.slice(1)] = decodeURIComponent(g);
    } catch {
      throw new InputError(400, `the path segment "${g}" is not valid percent-encoding`);
    }
  }
  return params;
}

/** The group named in the path; 404 when there is none by that name. */
function groupOf(c: Call): string {
  const group = c.params.name!;
  if (!c.ctx.getGroup(group)) throw new InputError(404, `unknown group "${group}"`);
  return group;
}

/** The owner's controls; the dispatcher serves owner routes only when they exist. */
function ownerOf(c: Call): NonNullable<ChannelContext['owner']> {
  return c.ctx.owner!;
}

/** Standard base64 with padding. A plain character class: a grouped repetition overflows V8's regex stack on a file of tens of MB. */
const isBase64 = (s: string) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
const MIME = /^[\w.+-]{1,100}\/[\w.+-]{1,100}$/;

/**
 * The body's "attachments": [{name, mime, data (base64)}], decoded; 400 for a bad entry,
 * 413 (naming the limit) when too big — checked from the base64 length, before decoding.
 * Exported for its unit test.
 */
export function attachmentsOf(raw: unknown, limits: AttachmentLimits): IncomingFile[] {
  if (raw === undefined) return [];
  const example = '"attachments" must be a list like [{"name": "quote.pdf", "mime": "application/pdf", "data": "<base64>"}]';
  if (!Array.isArray(raw)) throw new InputError(400, example);
  if (raw.length > MAX_ATTACHMENTS) throw new InputError(413, `${raw.length} attachments; the limit is ${MAX_ATTACHMENTS} per message`);
  const entries = raw.map((a: unknown, i) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new InputError(400, `attachment ${i + 1}: ${example}`);
    const { name, mime, data } = a as Record<string, unknown>;
    if (typeof name !== 'string' || name.trim() === '' || name.length > 255) throw new InputError(400, `attachment ${i + 1}: field "name" must be the file's name (1-255 characters)`);
    if (mime !== undefined && (typeof mime !== 'string' || !MIME.test(mime))) throw new InputError(400, `attachment "${name}": field "mime" must be a media type like "application/pdf"`);
    if (typeof data !== 'string') throw new InputError(400, `attachment "${name}": field "data" must be the file's bytes in standard base64 (with = padding, no line breaks)`);
    return { name, mime: (mime as string | undefined) ?? 'application/octet-stream', data };
  });
  // Sizes first: a file over the limit is refused without reading its data.
  const problem = sizeProblem(entries.map((e) => ({ name: e.name, bytes: Math.floor(e.data.length / 4) * 3 - (e.data.endsWith('==') ? 2 : e.data.endsWith('=') ? 1 : 0) })), limits);
  if (problem) throw new InputError(413, problem);
  for (const e of entries) {
    if (!isBase64(e.data)) throw new InputError(400, `attachment "${e.name}": field "data" must be the file's bytes in standard base64 (with = padding, no line breaks)`);
  }
  return entries.map((e) => ({ name: e.name, mime: e.mime, data: Buffer.from(e.data, 'base64') }));
}

async function postMessage(ch: HttpChannel, c: Call): Promise<void> {
  const group = groupOf(c);
  const limits = ch.attachmentLimits;
  const body = await readJson(c.req, messageBodyLimit(limits), ` (it grows with HAKO_ATTACHMENT_TOTAL_BYTES, now ${limits.total} bytes of attachments)`);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InputError(400, 'body must be a JSON object like {"text": "hello", "sender": "alice"}');
  const { text, sender, direct, attachments } = body as Record<string, unknown>;
  if (typeof text !== 'string') throw new InputError(400, 'field "text" must be a string');
  if (sender !== undefined && (typeof sender !== 'string' || sender.length === 0 || sender.length > 100)) throw new InputError(400, 'field "sender" must be a string of 1-100 characters');
  if (direct !== undefined && typeof direct !== 'boolean') throw new InputError(400, 'field "direct" must be true or false');
  const files = attachmentsOf(attachments, limits);
  const saved = files.length === 0 ? { text, saved: [] } : ch.saveAttachments(group, text, files);
  let accepted;
  try {
    accepted = await c.ctx.accept({ group, sender: (sender as string | undefined) ?? 'user', text: saved.text, direct: direct === true });
  } catch (err) {
    // Refused after all (text too long with its file lines, disk full): keep no orphan files.
    ch.removeAttachments(group, saved.saved);
    throw err;
  }
  json(c.res, 202, { id: accepted.message.id, engaged: accepted.engaged, ...(accepted.warning ? { warning: accepted.warning } : {}) });
}

function listMessages(c: Call): void {
  const group = groupOf(c);
  const after = c.url.searchParams.get('after') ?? undefined;
  const messages = c.ctx.listMessages(group, after);
  if (!messages) throw new InputError(404, `no message "${after}" in group "${group}"`);
  json(c.res, 200, { messages: messages.map(publicMessage) });
}

export class HttpChannel implements Channel {
  /** Every endpoint there is; docs/API.md has a heading for each (test/unit/api-doc.test.ts). */
  static readonly routes: readonly Route[] = [
    { method: 'GET', path: '/', auth: 'none', handle: (ch, c) => ch.#page(c.res) },
    { method: 'POST', path: '/api/session', auth: 'none', handle: (ch, c) => ch.#signIn(c.req, c.res) },
    { method: 'POST', path: '/api/session-codes', auth: 'token', handle: (ch, c) => json(c.res, 201, ch.signInLink()) },
    { method: 'GET', path: '/api/status', auth: 'session', owner: true, handle: (_, c) => json(c.res, 200, ownerOf(c).status()) },
    { method: 'GET', path: '/api/tasks', auth: 'session', owner: true, handle: (_, c) => json(c.res, 200, { tasks: ownerOf(c).tasks() }) },
    { method: 'POST', path: '/api/tasks', auth: 'session', owner: true, handle: async (_, c) => json(c.res, 201, ownerOf(c).addTask(taskRequest(await readJson(c.req)))) },
    ...OWNER_TASK_ACTIONS.map((action): Route => ({
      method: 'POST', path: `/api/tasks/:id/${action}`, auth: 'session', owner: true, handle: (_, c) => json(c.res, 200, ownerOf(c).taskAction(c.params.id!, action)),
    })),
    { method: 'GET', path: '/api/groups', auth: 'session', handle: (_, c) => json(c.res, 200, { groups: c.ctx.listGroups().map((g) => ({ name: g.name, main: g.isMain, trigger: g.trigger })) }) },
    { method: 'GET', path: '/api/groups/:name/messages', auth: 'session', handle: (_, c) => listMessages(c) },
    { method: 'POST', path: '/api/groups/:name/messages', auth: 'session', handle: (ch, c) => postMessage(ch, c) },
    { method: 'GET', path: '/api/groups/:name/events', auth: 'session', handle: (ch, c) => ch.#events(groupOf(c), c.res) },
  ];

  readonly name = 'http';
  readonly #opts: HttpChannelOptions;
  #server: http.Server | undefined;
  #ctx: ChannelContext | undefined;
  readonly #streams = new Set<http.ServerResponse>();
  readonly #auth: WebAuth;
  /** Groups whose turn runs now: a page that connects mid-turn is told at once. */
  readonly #working = new Set<string>();
  /** The streamed text so far of each running turn that has some, for a page that connects mid-reply. */
  readonly #partial = new Map<string, string>();
  #unwatch: (() => void) | undefined;

  constructor(opts: HttpChannelOptions) {
    this.#opts = opts;
    this.#auth = opts.auth ?? new WebAuth();
  }

  get attachmentLimits(): AttachmentLimits {
    return this.#opts.attachments ?? attachmentLimits({});
  }

  /** Saves a message's files into the group's inbox/ and returns its text with their lines. */
  saveAttachments(group: string, text: string, files: readonly IncomingFile[]): { text: string; saved: SavedAttachment[] } {
    if (this.#opts.home === undefined) throw new InputError(400, 'this server takes no attachments (it was started without a HAKO_HOME to save them in)');
    try {
      const r = saveWithMessage(this.#opts.home, group, text, files, this.attachmentLimits);
      this.#opts.log.info('attachments saved', { group, files: r.saved.length, bytes: r.saved.reduce((n, s) => n + s.bytes, 0) });
      return r;
    } catch (err) {
      // A link planted in the workspace is the group's problem, not a hako bug.
      if (err instanceof Error && /not a plain folder|files named like/.test(err.message)) throw new InputError(409, err.message);
      throw err;
    }
  }

  removeAttachments(group: string, saved: readonly SavedAttachment[]): void {
    if (this.#opts.home !== undefined && saved.length > 0) removeSaved(this.#opts.home, group, saved);
  }

  /** A web chat link with a fresh one-time sign-in code (no long-lived secret in it). */
  signInLink(): { url: string; expiresAt: string } {
    const { code, expiresAt } = this.#auth.issueCode();
    return { url: `http://127.0.0.1:${this.port}/#code=${code}`, expiresAt: new Date(expiresAt).toISOString() };
  }

  // Cookies are shared by every port of a host: the port in the name keeps two hakos apart.
  get #cookie(): string {
    return `hako_session_${this.port}`;
  }

  /** The address and port actually bound (useful with port 0). */
  get address(): { address: string; port: number } {
    const a = this.#server?.address();
    return typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: '', port: this.#opts.port };
  }

  get port(): number {
    return this.address.port;
  }

  async start(ctx: ChannelContext): Promise<void> {
    // Checked here too, not only in loadConfig: whoever builds this channel, it fails closed.
    const bind = this.#opts.host ?? '127.0.0.1';
    const refused = bindProblem(bind, this.#opts.exposure ?? 'loopback');
    if (refused) throw new Error(refused);
    this.#ctx = ctx;
    this.#unwatch = ctx.watchTurns((g, working, text) => {
      if (!working) {
        this.#working.delete(g);
        this.#partial.delete(g);
        return;
      }
      this.#working.add(g);
      if (text !== undefined) this.#partial.set(g, text);
    });
    const server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (err instanceof InputError) return json(res, err.status, { error: err.message });
        this.#opts.log.error('http handler failed', { url: req.url, error: String(err) });
        if (!res.headersSent) json(res, 500, { error: 'internal error (see the hako log)' });
        else res.destroy();
      });
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(
        err.code === 'EADDRINUSE' ? new Error(`port ${this.#opts.port} is in use: is hako already running? (set HAKO_HTTP_PORT to use another port)`) : err,
      ));
      server.listen(this.#opts.port, bind, () => resolve());
    });
    this.#opts.log.info('http channel listening', { address: this.address.address, port: this.port, exposure: this.#opts.exposure ?? 'loopback' });
  }

  async stop(): Promise<void> {
    this.#unwatch?.();
    for (const s of this.#streams) s.end();
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Before any route, the page and the event stream included: a DNS-rebinding page
    // reaches this server under its own name and must get nothing.
    if (!hostAllowed(req.headers.host, this.port, this.#opts.allowedHosts)) {
      res.setHeader('connection', 'close');
      throw new InputError(421, `this server answers only to 127.0.0.1:${this.port}, localhost:${this.port} and [::1]:${this.port} (add other names to HAKO_HTTP_HOSTS)`);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const api = url.pathname.startsWith('/api/');
    const matched = HttpChannel.routes.flatMap((route) => {
      const params = matchPath(route.path, url.pathname);
      return params ? [{ route, params }] : [];
    });
    const hit = matched.find((m) => m.route.method === req.method);
    // Authenticate before saying 404 or 405 about an API path: callers without
    // credentials learn nothing but "sign in".
    const open = hit ? hit.route.auth === 'none' : !api || matched.some((m) => m.route.auth === 'none');
    const bearer = open ? false : this.#authenticate(req, res);
    if (!hit) {
      if (matched.length) throw new InputError(405, `use ${[...new Set(matched.map((m) => m.route.method))].join(' or ')}`);
      throw new InputError(404, api ? `no such endpoint: ${url.pathname}` : `no such page: ${url.pathname}`);
    }
    const ctx = this.#ctx!;
    if (hit.route.owner && !ctx.owner) throw new InputError(404, `no such endpoint: ${url.pathname}`);
    if (hit.route.auth === 'token' && !bearer) throw new InputError(403, `${req.method} ${hit.route.path} needs the bearer token, not the web session (run "hako web" for a sign-in link)`);
    await hit.route.handle(this, { req, res, url, params: hit.params, ctx });
  }

  /** Whether the bearer token came (else a valid, same-origin web session did); throws 401/403. */
  #authenticate(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (tokenMatches(req.headers.authorization, this.#opts.token)) return true;
    if (!this.#auth.check(cookieValue(req.headers.cookie, this.#cookie))) {
      res.setHeader('www-authenticate', 'Bearer');
      throw new InputError(401, 'missing or wrong bearer token (see HAKO_HOME/http-token or HAKO_HTTP_TOKEN) and no web session (run "hako web" for a sign-in link)');
    }
    const problem = cookieRequestProblem(req);
    if (problem) throw new InputError(403, problem);
    return false;
  }

  async #page(res: http.ServerResponse): Promise<void> {
    const nonce = randomBytes(16).toString('base64');
    res.writeHead(200, pageHeaders(nonce));
    res.end((await fs.promises.readFile(PAGE, 'utf8')).replaceAll('__NONCE__', nonce));
  }

  /** POST /api/session {"code"}: spends a sign-in code and sets the session cookie. */
  async #signIn(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!sameOrigin(req.headers.origin, req.headers.host)) throw new InputError(403, 'sign in from the web chat page itself: the Origin header must be this server');
    const body = await readJson(req);
    const code = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).code : undefined;
    if (typeof code !== 'string') throw new InputError(400, 'body must be {"code": "…"} with the code of a sign-in link');
    const r = this.#auth.redeem(code);
    if (!r.ok) throw new InputError(401, `${r.reason}: run "hako web" for a new link`);
    // Behind a TLS proxy the browser must never send the cookie over plain HTTP.
    const secure = this.#opts.exposure === 'behind-tls' ? '; Secure' : '';
    res.setHeader('set-cookie', `${this.#cookie}=${r.session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_MS / 1000}${secure}`);
    json(res, 200, { ok: true });
  }

  #events(group: string, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    // Node corks a response's socket on each write until the next tick, and an event is
    // usually published from the middle of an IPC pass that goes on synchronously for a few
    // milliseconds more (its audit record, the next file): uncorking sends the event now.
    const send = (event: string): void => {
      res.write(event);
      res.socket?.uncork();
    };
    send(': connected\n\n');
    const unsubscribe = this.#ctx!.subscribe((m) => {
      if (m.group === group) send(`id: ${m.id}\nevent: message\ndata: ${JSON.stringify(publicMessage(m))}\n\n`);
    });
    // "working": a turn of the group started (true) or ended (false).
    const working = (on: boolean) => send(`event: working\ndata: ${JSON.stringify({ working: on })}\n\n`);
    // "partial": the model's text so far in the turn's current response; never stored, the
    // committed reply follows as a "message". Only this group's stream gets it, like the rest.
    const partial = (text: string) => send(`event: partial\ndata: ${JSON.stringify({ group, text })}\n\n`);
    if (this.#working.has(group)) working(true);
    const shown = this.#partial.get(group);
    if (shown !== undefined) partial(shown);
    const unwatch = this.#ctx!.watchTurns((g, on, text) => {
      if (g !== group) return;
      if (text === undefined) working(on);
      else partial(text);
    });
    const ping = setInterval(() => send(': ping\n\n'), 25_000);
    this.#streams.add(res);
    res.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      unwatch();
      this.#streams.delete(res);
    });
  }
}
