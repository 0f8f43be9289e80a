// The per-group proxy: an HTTP server on a Unix socket that only that group's container
// can reach (identity = the socket). Origin-form requests are the model route: only the few
// method + path pairs a model call needs, for the group's own provider, forwarded to a URL
// built from the configured origin and a fixed path, with the real key added. Absolute-form
// requests and CONNECT are egress, decided by egress.ts against the group's allowlist;
// with no egress options every one of them is refused.
//
// Invariants: nothing a container sends ever becomes part of the upstream URL's origin or
// path (only a route name picked from MODEL_ROUTES); whatever auth headers the container
// sent are dropped; the real key goes only to the configured origin, which is asserted
// right before sending; every model-route decision is reported (audited) before anything
// connects; no request, however malformed, throws out of a handler.

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import { TRANSCRIBE_PATH } from '../../protocol/container.ts';
import type { ProviderConfig, ProviderName, TranscriptionConfig } from './config.ts';
import { endToEnd, handleConnect, handleHttp, type EgressOptions } from './egress.ts';
import type { Logger } from './log.ts';
import { mark } from './trace.ts';
import { usageParser, type Usage } from './usage.ts';
import { streamTextParser } from './stream-text.ts';

const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key', 'api-key']);

/**
 * The only requests the model route forwards, as `METHOD /path` below the provider's base
 * URL (the container asks for `/<provider>/<path>`). Everything else of a provider's API
 * (files, batches, admin) stays out of reach, even though the key would allow it.
 */
export const MODEL_ROUTES: Readonly<Record<ProviderName, readonly string[]>> = {
  anthropic: ['POST /v1/messages', 'GET /v1/models'],
  openai: ['POST /chat/completions', 'GET /models'],
};

/** One model-route decision, for the audit log: plain data, never a key. */
export type ModelDecision =
  | { readonly kind: 'model'; readonly allowed: true; readonly provider: ProviderName; readonly method: string; readonly path: string; readonly host: string; readonly port: number }
  | { readonly kind: 'model'; readonly allowed: false; readonly provider: ProviderName; readonly method: string; readonly path: string; readonly host: string; readonly port: number; readonly reason: string };

export interface ProxyOptions {
  readonly group: string;
  readonly socketPath: string;
  /** The group's own provider; the other provider's route is closed. */
  readonly provider: ProviderName;
  readonly providerConfig: ProviderConfig;
  readonly log: Logger;
  /** Owner of the socket file, so a non-root container user may connect to it. */
  readonly socketOwner?: { uid: number; gid: number };
  /**
   * Contract: told the outcome of every model request (never throws). `ok` is false for
   * an unreachable upstream, 429 and 5xx: the signs of an outage rather than a bad request.
   */
  readonly onUpstream?: (provider: ProviderName, ok: boolean) => void;
  /**
   * Contract: called exactly once per model-route request, before anything connects. Should
   * not throw; if it does, the request is refused with 500 (no model call without a record).
   */
  readonly onModelDecision?: (d: ModelDecision) => void;
  /**
   * Contract: why the group may not call the model now (its daily token budget is used up),
   * or null. Asked before every model request; a throw refuses the request (fail closed).
   */
  readonly budget?: () => string | null;
  /**
   * Contract: told the tokens a model response reported, once per response, when it ended
   * or was cut off (a response that reported none is not told); should not throw.
   */
  readonly onUsage?: (usage: Usage) => void;
  /**
   * Contract: told the text the model has written so far in a streamed response (the whole
   * text, not a delta), as it passes to the container: the first text at once, then at most
   * every TEXT_EVERY_MS, and the final text when the response ends or is cut off. Never told
   * for a non-streamed response or one without text. Should not throw (a throw is logged).
   * Only observes: the bytes reach the container unchanged and undelayed either way.
   */
  readonly onText?: (text: string) => void;
  /** The group's egress (allowlist, secrets, audit); undefined refuses all egress. */
  readonly egress?: Omit<EgressOptions, 'signal'>;
  /** The speech-to-text upstream (TRANSCRIBE_PATH); unset or null: that route is closed. */
  readonly transcription?: TranscriptionConfig | null;
}

export interface GroupProxy {
  close(): Promise<void>;
}

/** The upstream URL for a model-route request, or why it is refused. Pure. */
export function modelTarget(provider: ProviderName, baseURL: string, method: string, target: string): { ok: true; url: URL } | { ok: false; reason: string } {
  const prefix = `/${provider}/`;
  if (!target.startsWith(prefix)) {
    const other = /^\/(anthropic|openai)(\/|$)/.exec(target)?.[1];
    if (other) return { ok: false, reason: `this group's model is served by ${provider}; the ${other} route is closed` };
    return { ok: false, reason: 'no such route' };
  }
  const route = MODEL_ROUTES[provider].find((r) => r === `${method} ${target.slice(prefix.length - 1)}`);
  if (!route) return { ok: false, reason: `the model route allows only ${MODEL_ROUTES[provider].join(', ')} for ${provider}` };
  let base: URL;
  try {
    base = new URL(baseURL);
  } catch {
    return { ok: false, reason: `the configured ${provider} base URL is not a URL` };
  }
  const url = new URL(base.origin);
  url.pathname = base.pathname.replace(/\/+$/, '') + route.slice(route.indexOf(' ') + 1);
  // The path came from MODEL_ROUTES, so this holds by construction; checked anyway because
  // sending the key anywhere else is the one thing this module must never do.
  if (url.origin !== base.origin) return { ok: false, reason: 'the upstream origin changed while building the URL' };
  return { ok: true, url };
}

function sendError(res: http.ServerResponse, status: number, message: string, headers: http.OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { type: 'hako_proxy_error', message } });
  // An answer sent before the request body arrived ends the connection: the client must not reuse it.
  const close = res.req.complete ? {} : { connection: 'close' };
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...close, ...headers });
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

/** The upstream's port, for audit records. */
function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

function forwardModel(req: http.IncomingMessage, res: http.ServerResponse, opts: ProxyOptions): void {
  const { provider, providerConfig: cfg } = opts;
  mark(opts.log, 'proxy_in', { group: opts.group });
  const method = req.method ?? 'GET';
  const path = (req.url ?? '').slice(0, 200);
  const decided = modelTarget(provider, cfg.baseURL, method, req.url ?? '');
  // A refusal is recorded against the configured upstream; an allowed call already has its URL.
  const where = decided.ok ? decided.url : URL.canParse(cfg.baseURL) ? new URL(cfg.baseURL) : undefined;
  const base = { kind: 'model' as const, provider, method, path, host: where?.hostname ?? '', port: where ? portOf(where) : 0 };
  const record = (d: ModelDecision): boolean => {
    try { opts.onModelDecision?.(d); return true; } catch { return false; }
  };
  if (!decided.ok) {
    record({ ...base, allowed: false, reason: decided.reason });
    return sendError(res, 404, `hako refused ${method} ${path}: ${decided.reason}`);
  }
  if (!cfg.apiKey && !cfg.keyOptional) {
    const reason = `hako has no API key for ${provider}: the owner must set ${provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY'}`;
    record({ ...base, allowed: false, reason });
    return sendError(res, 503, reason);
  }
  const spent = budgetRefusal(opts);
  if (spent) {
    record({ ...base, allowed: false, reason: spent });
    // Retrying cannot help before the owner acts or the day ends; the agent's client (and the
    // vendors' SDKs) honour this header.
    return sendError(res, 429, `hako refused the model request: ${spent}`, { 'x-should-retry': 'false' });
  }
  if (!record({ ...base, allowed: true })) return sendError(res, 500, 'hako could not record the model request, so it refused it');
  mark(opts.log, 'proxy_recorded', { group: opts.group });
  const target = decided.url;
  const client = target.protocol === 'https:' ? https : http;
  const started = Date.now();
  const upstream = client.request(target, { method, headers: upstreamHeaders(req.headers, provider, cfg, target.host) }, (up) => {
    const status = up.statusCode ?? 502;
    mark(opts.log, 'proxy_upstream', { group: opts.group });
    opts.onUpstream?.(provider, status < 500 && status !== 429);
    res.writeHead(status, endToEnd(up.headers));
    if (opts.onUsage) tapUsage(up, opts);
    if (opts.onText) tapText(up, opts);
    up.pipe(res);
    up.on('error', () => res.destroy());
    up.on('end', () => {
      mark(opts.log, 'proxy_end', { group: opts.group });
      opts.log.debug('model request', { group: opts.group, provider, status: up.statusCode, ms: Date.now() - started });
    });
  });
  upstream.setTimeout(10 * 60_000, () => upstream.destroy(new Error('upstream timed out')));
  upstream.on('error', (err) => {
    opts.log.warn('model upstream unreachable', { group: opts.group, provider, upstream: target.origin, error: err.message });
    opts.onUpstream?.(provider, false);
    sendError(res, 502, `hako could not reach the ${provider} upstream ${target.origin}: ${err.message}`);
  });
  res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
  req.pipe(upstream);
}

/**
 * The transcription route: only POST TRANSCRIBE_PATH, only to the configured upstream, with
 * the host's key put in; recorded like a model decision (provider "openai": the wire format).
 */
function forwardTranscription(req: http.IncomingMessage, res: http.ServerResponse, opts: ProxyOptions): void {
  const t = opts.transcription;
  const method = req.method ?? 'GET';
  const path = (req.url ?? '').slice(0, 200);
  const target = t ? new URL(`${t.baseURL}/audio/transcriptions`) : undefined;
  const base = { kind: 'model' as const, provider: 'openai' as const, method, path, host: target?.hostname ?? '', port: target ? portOf(target) : 0 };
  const record = (d: ModelDecision): boolean => {
    try { opts.onModelDecision?.(d); return true; } catch { return false; }
  };
  const reason = !t || !target ? 'no transcription service is configured (the owner sets HAKO_TRANSCRIBE_URL)'
    : method !== 'POST' || req.url !== TRANSCRIBE_PATH ? `the transcription route allows only POST ${TRANSCRIBE_PATH}`
    : budgetRefusal(opts);
  if (reason || !t || !target) {
    record({ ...base, allowed: false, reason: reason ?? 'closed' });
    return sendError(res, t ? 404 : 503, `hako refused ${method} ${path}: ${reason}`);
  }
  if (!record({ ...base, allowed: true })) return sendError(res, 500, 'hako could not record the transcription request, so it refused it');
  const headers = upstreamHeaders(req.headers, 'openai', { apiKey: t.apiKey, baseURL: t.baseURL, keyOptional: true }, target.host);
  const upstream = (target.protocol === 'https:' ? https : http).request(target, { method, headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, endToEnd(up.headers));
    up.pipe(res);
    up.on('error', () => res.destroy());
  });
  upstream.setTimeout(10 * 60_000, () => upstream.destroy(new Error('upstream timed out')));
  upstream.on('error', (err) => sendError(res, 502, `hako could not reach the transcription upstream ${target.origin}: ${err.message}`));
  res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
  req.pipe(upstream);
}

/** Why the budget refuses this request, or null; an answer that cannot be had refuses it. */
function budgetRefusal(opts: ProxyOptions): string | null {
  try {
    return opts.budget?.() ?? null;
  } catch (err) {
    opts.log.error('could not check the daily token budget; the model request is refused', { group: opts.group, error: String(err) });
    return 'hako could not check the daily token budget (see the host log)';
  }
}

/**
 * Reads the usage the upstream reports from the bytes as they pass to the container: a
 * second listener on the same stream, so nothing is buffered or delayed on the way. A
 * response cut off early still counts what it reported so far.
 */
function tapUsage(up: http.IncomingMessage, opts: ProxyOptions): void {
  const parser = usageParser(up.headers['content-type']);
  let counted = false;
  const count = () => {
    if (counted) return;
    counted = true;
    const { usage, unreadable } = parser.end();
    if (unreadable) opts.log.warn('a model response was too big to read its token usage; it may be counted short', { group: opts.group, provider: opts.provider });
    if (!usage) return;
    try {
      opts.onUsage?.(usage);
    } catch (err) {
      opts.log.error('could not record token usage', { group: opts.group, error: String(err) });
    }
  };
  up.on('data', (chunk: Buffer) => parser.push(chunk));
  up.on('end', count);
  up.on('close', count);
}

/** The least time between two reports of a response's streamed text after its first. */
export const TEXT_EVERY_MS = 50;

/**
 * Reads the reply's text from a streamed response as it passes to the container (a second
 * listener, like tapUsage) and reports it coalesced: a person sees the first words at once,
 * and a fast model's many small deltas cost one report per TEXT_EVERY_MS, not one each.
 */
function tapText(up: http.IncomingMessage, opts: ProxyOptions): void {
  const parser = streamTextParser(up.headers['content-type']);
  if (!parser.streaming) return;
  let told = '';
  let toldAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const tell = () => {
    timer = undefined;
    if (parser.text === told) return;
    told = parser.text;
    toldAt = Date.now();
    try {
      opts.onText?.(told);
    } catch (err) {
      opts.log.warn('could not pass on the streamed text of a model response', { group: opts.group, error: String(err) });
    }
  };
  up.on('data', (chunk: Buffer) => {
    if (parser.push(chunk) === '' || timer) return;
    const wait = told === '' ? 0 : TEXT_EVERY_MS - (Date.now() - toldAt);
    if (wait <= 0) tell();
    else timer = setTimeout(tell, wait);
  });
  const end = () => {
    if (ended) return;
    ended = true;
    parser.end();
    clearTimeout(timer);
    tell();
  };
  up.on('end', end);
  up.on('close', end);
}

/** Routes one request; answers 400 instead of throwing, whatever the request looks like. */
function route(req: http.IncomingMessage, res: http.ServerResponse, opts: ProxyOptions, egress: EgressOptions | undefined): void {
  req.on('error', () => res.destroy());
  res.on('error', () => req.destroy());
  try {
    if (/^\/transcribe(\/|$)/.test(req.url ?? '')) return forwardTranscription(req, res, opts);
    if ((req.url ?? '').startsWith('/')) return forwardModel(req, res, opts);
    if (egress) return handleHttp(req, res, egress);
    sendError(res, 403, 'this group has no network access');
  } catch (err) {
    opts.log.warn('proxy request refused: it broke a handler', { group: opts.group, error: String(err) });
    sendError(res, 400, 'hako could not handle this request');
  }
}

/** Starts the group's proxy on its socket (replacing a stale socket file). */
export async function startGroupProxy(opts: ProxyOptions): Promise<GroupProxy> {
  const closing = new AbortController();
  const egress: EgressOptions | undefined = opts.egress && { ...opts.egress, signal: closing.signal };
  const server = http.createServer((req, res) => route(req, res, opts, egress));
  server.on('connect', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      if (egress) return handleConnect(req, socket, head, egress);
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nthis group has no network access\n');
    } catch (err) {
      opts.log.warn('proxy tunnel refused: it broke a handler', { group: opts.group, error: String(err) });
      socket.destroy();
    }
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
