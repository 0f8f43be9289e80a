// The local HTTP channel: a JSON API, Server-Sent Events and the web chat page, bound to
// 127.0.0.1. A request must name this server in its Host header (web-auth.ts), and the API
// needs the bearer token or the web chat's session cookie. Every bad request gets a 4xx
// with a reason; a 500 means a hako bug.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { Channel, ChannelContext, OwnerTaskRequest } from '../core/channel.ts';
import { InputError } from '../core/channel.ts';
import type { StoredMessage } from '../core/store-contract.ts';
import type { Logger } from '../core/log.ts';
import { cookieRequestProblem, cookieValue, hostAllowed, sameOrigin, SESSION_MAX_MS, WebAuth } from './web-auth.ts';

const MAX_BODY_BYTES = 256 * 1024;
const PAGE = path.join(import.meta.dirname, 'web', 'index.html');

export interface HttpChannelOptions {
  readonly port: number;
  readonly token: string;
  readonly log: Logger;
  readonly host?: string;
  /** Host names besides 127.0.0.1, localhost and [::1] with the port (HAKO_HTTP_HOSTS). */
  readonly allowedHosts?: readonly string[];
  /** Sign-in codes and sessions; a fresh one by default (tests pass one with a clock). */
  readonly auth?: WebAuth;
}

/** The API's view of a message: no internal states. */
export function publicMessage(m: StoredMessage) {
  return { id: m.id, role: m.role, sender: m.sender, text: m.text, ts: m.ts };
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

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new InputError(415, 'send the body as application/json');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new InputError(413, `request body is ${declared} bytes; the limit is ${MAX_BODY_BYTES}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new InputError(413, `request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new InputError(400, 'request body is not valid JSON');
  }
}

export class HttpChannel implements Channel {
  readonly name = 'http';
  readonly #opts: HttpChannelOptions;
  #server: http.Server | undefined;
  #ctx: ChannelContext | undefined;
  readonly #streams = new Set<http.ServerResponse>();
  readonly #auth: WebAuth;

  constructor(opts: HttpChannelOptions) {
    this.#opts = opts;
    this.#auth = opts.auth ?? new WebAuth();
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
    this.#ctx = ctx;
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
      server.listen(this.#opts.port, this.#opts.host ?? '127.0.0.1', () => resolve());
    });
    this.#opts.log.info('http channel listening', { url: `http://127.0.0.1:${this.port}/` });
  }

  async stop(): Promise<void> {
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
    if (url.pathname === '/' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'", 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
      res.end(await fs.promises.readFile(PAGE));
      return;
    }
    if (!url.pathname.startsWith('/api/')) throw new InputError(404, `no such page: ${url.pathname}`);
    if (url.pathname === '/api/session') return this.#signIn(req, res);
    const bearer = tokenMatches(req.headers.authorization, this.#opts.token);
    if (!bearer) {
      if (!this.#auth.check(cookieValue(req.headers.cookie, this.#cookie))) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new InputError(401, 'missing or wrong bearer token (see HAKO_HOME/http-token or HAKO_HTTP_TOKEN) and no web session (run "hako web" for a sign-in link)');
      }
      const problem = cookieRequestProblem(req);
      if (problem) throw new InputError(403, problem);
    }
    const ctx = this.#ctx!;
    if (url.pathname === '/api/session-codes') {
      if (req.method !== 'POST') throw new InputError(405, 'use POST');
      if (!bearer) throw new InputError(403, 'a sign-in link needs the bearer token (run "hako web")');
      return json(res, 201, this.signInLink());
    }
    if (url.pathname === '/api/status' && ctx.owner) {
      if (req.method !== 'GET') throw new InputError(405, 'use GET');
      return json(res, 200, ctx.owner.status());
    }
    if (url.pathname === '/api/tasks' && ctx.owner) {
      if (req.method === 'POST') return json(res, 201, ctx.owner.addTask(taskRequest(await readJson(req))));
      if (req.method !== 'GET') throw new InputError(405, 'use GET or POST');
      return json(res, 200, { tasks: ctx.owner.tasks() });
    }
    const t = /^\/api\/tasks\/([^/]+)\/(pause|resume|cancel|run|approve|reject)$/.exec(url.pathname);
    if (t && ctx.owner) {
      if (req.method !== 'POST') throw new InputError(405, 'use POST');
      return json(res, 200, ctx.owner.taskAction(decodeURIComponent(t[1]!), t[2] as 'pause' | 'resume' | 'cancel' | 'run' | 'approve' | 'reject'));
    }
    if (url.pathname === '/api/groups') {
      if (req.method !== 'GET') throw new InputError(405, 'use GET');
      return json(res, 200, { groups: ctx.listGroups().map((g) => ({ name: g.name, main: g.isMain, trigger: g.trigger })) });
    }
    const m = /^\/api\/groups\/([^/]+)\/(messages|events)$/.exec(url.pathname);
    if (!m) throw new InputError(404, `no such endpoint: ${url.pathname}`);
    const group = decodeURIComponent(m[1]!);
    if (!ctx.getGroup(group)) throw new InputError(404, `unknown group "${group}"`);
    if (m[2] === 'events') {
      if (req.method !== 'GET') throw new InputError(405, 'use GET');
      return this.#events(group, res);
    }
    if (req.method === 'GET') {
      const after = url.searchParams.get('after') ?? undefined;
      const messages = ctx.listMessages(group, after);
      if (!messages) throw new InputError(404, `no message "${after}" in group "${group}"`);
      return json(res, 200, { messages: messages.map(publicMessage) });
    }
    if (req.method !== 'POST') throw new InputError(405, 'use GET or POST');
    const body = await readJson(req);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InputError(400, 'body must be a JSON object like {"text": "hello", "sender": "alice"}');
    const { text, sender, direct } = body as Record<string, unknown>;
    if (typeof text !== 'string') throw new InputError(400, 'field "text" must be a string');
    if (sender !== undefined && (typeof sender !== 'string' || sender.length === 0 || sender.length > 100)) throw new InputError(400, 'field "sender" must be a string of 1-100 characters');
    if (direct !== undefined && typeof direct !== 'boolean') throw new InputError(400, 'field "direct" must be true or false');
    const accepted = await ctx.accept({ group, sender: (sender as string | undefined) ?? 'user', text, direct: direct === true });
    return json(res, 202, { id: accepted.message.id, engaged: accepted.engaged, ...(accepted.warning ? { warning: accepted.warning } : {}) });
  }

  /** POST /api/session {"code"}: spends a sign-in code and sets the session cookie. */
  async #signIn(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new InputError(405, 'use POST');
    if (!sameOrigin(req.headers.origin, req.headers.host)) throw new InputError(403, 'sign in from the web chat page itself: the Origin header must be this server');
    const body = await readJson(req);
    const code = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).code : undefined;
    if (typeof code !== 'string') throw new InputError(400, 'body must be {"code": "…"} with the code of a sign-in link');
    const r = this.#auth.redeem(code);
    if (!r.ok) throw new InputError(401, `${r.reason}: run "hako web" for a new link`);
    res.setHeader('set-cookie', `${this.#cookie}=${r.session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_MS / 1000}`);
    json(res, 200, { ok: true });
  }

  #events(group: string, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': connected\n\n');
    const unsubscribe = this.#ctx!.subscribe((m) => {
      if (m.group === group) res.write(`id: ${m.id}\nevent: message\ndata: ${JSON.stringify(publicMessage(m))}\n\n`);
    });
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    this.#streams.add(res);
    res.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      this.#streams.delete(res);
    });
  }
}
