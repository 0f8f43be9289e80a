// The webhook listener: platforms that push (Slack's Events API, WhatsApp Cloud, LINE) post
// to `/<channel>/…` on a port of its own (HAKO_WEBHOOK_PORT), never on the API's, so no
// request from the internet meets the owner's API, its sign-in or its token check, and a
// request reaches only the channel its first path segment names.
//
// Invariants: the body is read whole and at most MAX_BODY_BYTES before a channel sees it
// (signatures are over the raw bytes); the channel verifies and stores before it answers;
// a refusal is audited through the context (`webhook.refused`); nothing of a request's body
// or headers is logged; a channel that throws is answered 500, and the listener runs on.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Channel, ChannelContext, WebhookReply, WebhookRequest } from '../core/channel.ts';
import type { Logger } from '../core/log.ts';

/** Webhook payloads are events (media are fetched separately): 1 MiB is far above any platform's. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** A platform sends its request at once; a slow sender only holds a connection. */
const REQUEST_TIMEOUT_MS = 15_000;
const HEADERS_TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 256;

export interface WebhookListenerOptions {
  readonly port: number;
  readonly bind: string;
  /** The chat channels that take webhooks, each at `/<its name>/…`. */
  readonly channels: readonly Channel[];
  readonly log: Logger;
}

type State =
  | { readonly kind: 'new' }
  | { readonly kind: 'listening'; readonly server: http.Server }
  | { readonly kind: 'stopped' };

/** The channels among `channels` that take webhooks: with none, hako opens no webhook port. */
export function webhookChannels(channels: readonly Channel[]): Channel[] {
  return channels.filter((c) => typeof c.webhook === 'function');
}

export class WebhookListener implements Channel {
  readonly name = 'webhook';
  #o: WebhookListenerOptions;
  #state: State = { kind: 'new' };
  #routes: ReadonlyMap<string, Channel>;

  constructor(o: WebhookListenerOptions) {
    this.#o = o;
    this.#routes = new Map(webhookChannels(o.channels).map((c) => [c.name, c]));
  }

  /** The port it listens on (the real one when HAKO_WEBHOOK_PORT=0). */
  get port(): number {
    return this.#state.kind === 'listening' ? (this.#state.server.address() as AddressInfo).port : this.#o.port;
  }

  async start(ctx: ChannelContext): Promise<void> {
    if (this.#state.kind !== 'new') throw new Error(`webhook listener: cannot start again (it is ${this.#state.kind})`);
    const server = http.createServer((req, res) => {
      this.#serve(ctx, req, res).catch((err: unknown) => {
        this.#o.log.error('webhook: a request failed', { error: err instanceof Error ? err.message : String(err) });
        res.destroy();
      });
    });
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.maxConnections = MAX_CONNECTIONS;
    const { port, bind } = this.#o;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(
        `the webhook listener cannot listen on ${bind}:${port} (${err.code ?? err.message}): set HAKO_WEBHOOK_PORT to a free port (or HAKO_WEBHOOK_BIND), the one your reverse proxy or tunnel forwards to`,
      )));
      server.listen(port, bind, () => resolve());
    });
    this.#state = { kind: 'listening', server };
    const paths = [...this.#routes.keys()].map((n) => `/${n}/…`).join(', ');
    this.#o.log.info('webhook listener listening', { address: bind, port: this.port, paths });
  }

  async stop(): Promise<void> {
    const s = this.#state;
    this.#state = { kind: 'stopped' };
    if (s.kind !== 'listening') return;
    await new Promise<void>((resolve) => {
      s.server.close(() => resolve());
      s.server.closeAllConnections();
    });
  }

  async #serve(ctx: ChannelContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const remote = req.socket.remoteAddress ?? '';
    const target = route(req.url ?? '/');
    const channel = target && this.#routes.get(target.channel);
    if (!target || !channel?.webhook) return reply(res, { status: 404, body: 'no webhook here\n' }, req);
    if (req.method !== 'POST' && req.method !== 'GET') return reply(res, { status: 405, body: 'POST or GET only\n' }, req);
    const body = await readBody(req);
    if (body === 'too large') {
      this.#o.log.warn('webhook: a request body over the limit was refused', { channel: channel.name, limit: MAX_BODY_BYTES, remote });
      return reply(res, { status: 413, body: 'too large\n' }, req);
    }
    if (body === 'aborted') return;
    const request: WebhookRequest = { method: req.method, path: target.path, query: target.query, headers: headersOf(req), body, remote };
    let answer: WebhookReply;
    try {
      answer = await channel.webhook(request);
    } catch (err) {
      this.#o.log.error('webhook: the channel failed on a request', { channel: channel.name, path: target.path, error: err instanceof Error ? err.message : String(err) });
      answer = { status: 500, body: 'internal error\n' };
    }
    if (answer.refused) ctx.refused(channel.name, answer.refused, { path: target.path, remote });
    this.#o.log.debug('webhook request', { channel: channel.name, method: req.method, path: target.path, status: answer.status });
    reply(res, answer, req);
  }
}

/** `/line/webhook?x=1` → channel `line`, path `/webhook`, query `x=1`; undefined when no channel name leads the path. */
export function route(url: string): { channel: string; path: string; query: string } | undefined {
  const q = url.indexOf('?');
  const pathname = q < 0 ? url : url.slice(0, q);
  const m = /^\/([a-z0-9][a-z0-9-]{0,31})(\/.*)?$/.exec(pathname);
  if (!m) return undefined;
  return { channel: m[1]!, path: m[2] ?? '/', query: q < 0 ? '' : url.slice(q + 1) };
}

function headersOf(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function readBody(req: http.IncomingMessage): Promise<Buffer | 'too large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return Promise.resolve('too large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        resolve('too large');
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('aborted', () => resolve('aborted'));
    req.on('error', () => resolve('aborted'));
  });
}

function reply(res: http.ServerResponse, r: WebhookReply, req: http.IncomingMessage): void {
  if (res.headersSent) return;
  const body = r.body ?? '';
  res.writeHead(r.status, {
    'content-type': r.contentType ?? 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
