// The per-group proxy: an HTTP server on a Unix socket that only that group's container
// can reach (identity = the socket). Origin-form requests to /<provider>/<path> are the
// model route: forwarded to the provider's configured upstream with the container's
// placeholder credentials replaced by the real key, which never enters a container.
// Absolute-form requests and CONNECT are egress, decided by egress.ts against the group's
// allowlist (and audited there); with no egress options every one of them is refused.
//
// Invariants: whatever auth headers the container sent are dropped; the real key is
// added only on the way to that provider's own upstream; error bodies never echo headers.

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import type { ProviderConfig, ProviderName } from './config.ts';
import { endToEnd, handleConnect, handleHttp, type EgressOptions } from './egress.ts';
import type { Logger } from './log.ts';

const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key', 'api-key']);

export interface ProxyOptions {
  readonly group: string;
  readonly socketPath: string;
  readonly providers: Readonly<Record<ProviderName, ProviderConfig>>;
  readonly log: Logger;
  /** Owner of the socket file, so a non-root container user may connect to it. */
  readonly socketOwner?: { uid: number; gid: number };
  /**
   * Contract: told the outcome of every model request (never throws). `ok` is false for
   * an unreachable upstream, 429 and 5xx: the signs of an outage rather than a bad request.
   */
  readonly onUpstream?: (provider: ProviderName, ok: boolean) => void;
  /** The group's egress (allowlist, secrets, audit); undefined refuses all egress. */
  readonly egress?: Omit<EgressOptions, 'signal'>;
}

export interface GroupProxy {
  close(): Promise<void>;
}

function sendError(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { type: 'hako_proxy_error', message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Headers for the upstream request: hop-by-hop and credentials removed, the real key added. */
export function upstreamHeaders(incoming: http.IncomingHttpHeaders, provider: ProviderName, cfg: ProviderConfig, upstreamHost: string): http.OutgoingHttpHeaders {
  const out = endToEnd(incoming);
  for (const k of CREDENTIAL_HEADERS) delete out[k];
  out.host = upstreamHost;
  if (cfg.apiKey) {
    if (provider === 'anthropic') out['x-api-key'] = cfg.apiKey;
    else out.authorization = `Bearer ${cfg.apiKey}`;
  }
  return out;
}

function forwardModel(req: http.IncomingMessage, res: http.ServerResponse, opts: ProxyOptions, provider: ProviderName, rest: string): void {
  const cfg = opts.providers[provider];
  if (!cfg.apiKey && !cfg.keyOptional) {
    sendError(res, 503, `hako has no API key for ${provider}: the owner must set ${provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY'}`);
    return;
  }
  const base = new URL(cfg.baseURL);
  const target = new URL(base.pathname.replace(/\/$/, '') + rest, base);
  const client = target.protocol === 'https:' ? https : http;
  const started = Date.now();
  const upstream = client.request(target, { method: req.method, headers: upstreamHeaders(req.headers, provider, cfg, target.host) }, (up) => {
    const status = up.statusCode ?? 502;
    opts.onUpstream?.(provider, status < 500 && status !== 429);
    res.writeHead(status, endToEnd(up.headers));
    up.pipe(res);
    up.on('end', () => opts.log.debug('model request', { group: opts.group, provider, status: up.statusCode, ms: Date.now() - started }));
  });
  upstream.setTimeout(10 * 60_000, () => upstream.destroy(new Error('upstream timed out')));
  upstream.on('error', (err) => {
    opts.log.warn('model upstream unreachable', { group: opts.group, provider, upstream: target.origin, error: err.message });
    opts.onUpstream?.(provider, false);
    sendError(res, 502, `hako could not reach the ${provider} upstream ${target.origin}: ${err.message}`);
  });
  req.on('aborted', () => upstream.destroy());
  req.pipe(upstream);
}

/** Starts the group's proxy on its socket (replacing a stale socket file). */
export async function startGroupProxy(opts: ProxyOptions): Promise<GroupProxy> {
  const closing = new AbortController();
  const egress: EgressOptions | undefined = opts.egress && { ...opts.egress, signal: closing.signal };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (!url.startsWith('/')) {
      if (egress) return handleHttp(req, res, egress);
      return sendError(res, 403, 'this group has no network access');
    }
    const match = /^\/(anthropic|openai)(\/.*)?$/.exec(url);
    if (!match) {
      sendError(res, 404, `no such route: ${String(req.method)} ${url.slice(0, 200)}`);
      return;
    }
    forwardModel(req, res, opts, match[1] as ProviderName, match[2] ?? '');
  });
  server.on('connect', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
    if (egress) return handleConnect(req, socket, head, egress);
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nthis group has no network access\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await fs.promises.rm(opts.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  await fs.promises.chmod(opts.socketPath, 0o600);
  if (opts.socketOwner) await fs.promises.chown(opts.socketPath, opts.socketOwner.uid, opts.socketOwner.gid);
  return {
    close: () => new Promise<void>((resolve) => {
      closing.abort(); // CONNECT tunnels are not among the server's connections
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
