// The HTTP under both providers: one POST of JSON to the model route, retried the way the
// vendors' own clients retry, and the answer read whole or as server-sent events.
//
// Why not the vendors' SDKs: all a provider needs is this POST and an SSE reader, and in a
// container the SDKs cost more than the request itself. Loading the OpenAI SDK was about
// 220 ms of CPU in every cold start (some 300 ES modules), and each request spent about
// 3 ms in it against 1.3 ms for the same bytes over node:http (bench/README.md). The wire
// formats stay the vendors': test/unit/model-server.test.ts holds the scripted model server
// to the official SDKs, and test/unit/agent-providers.test.ts holds these clients to it.
//
// Invariants: requests go only to the endpoint (its Unix socket when one is given, where
// the host comes from the socket, not from anything sent); the caller's signal aborts the
// request, a wait between retries and the reading of the body; only connection failures,
// timeouts and retryable statuses are retried, and never once a response body was taken.

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { http } from '../builtins.ts';

/** Where a provider's requests go: a base URL, and in a container the proxy's socket. */
export interface Endpoint {
  /** Kept with its path: `http://127.0.0.1:3128/openai` + `/chat/completions`. */
  readonly baseURL: string;
  /** When set, requests are sent over this socket, with only the URL's path. */
  readonly socketPath?: string;
}

export interface PostOptions {
  readonly signal?: AbortSignal;
  /** Tries after the first (the vendors' clients default to 2). */
  readonly maxRetries: number;
}

/** The upstream answered with a status outside 2xx. */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpStatusError';
    this.status = status;
  }
}

/** No answer: refused, reset, timed out. Always worth another try. */
export class ConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectionError';
  }
}

/** The vendors' clients allow a request ten minutes; a local model on a CPU can be that slow. */
const TIMEOUT_MS = 10 * 60_000;
/** A server's `retry-after` longer than this is ignored in favour of our own backoff. */
const MAX_SERVER_WAIT_MS = 60_000;
const MAX_ERROR_BODY = 4000;

const agent = new http.Agent({ keepAlive: true });

/**
 * POSTs `body` (JSON text) to `endpoint` + `path` and resolves with the 2xx response, its
 * body unread. Rejects with HttpStatusError, ConnectionError, or the abort reason.
 */
export async function postJson(endpoint: Endpoint, path: string, headers: Readonly<Record<string, string>>, body: string, options: PostOptions): Promise<IncomingMessage> {
  const url = new URL(endpoint.baseURL.replace(/\/+$/, '') + path);
  // A setting, not an outage: refused at once instead of after the retries' waits.
  if (url.protocol !== 'http:' && !endpoint.socketPath) throw new Error(`${url.protocol} is not spoken here: the container reaches its model only through the host's proxy (${endpoint.baseURL})`);
  const all = { ...headers, 'content-type': 'application/json', accept: 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  for (let attempt = 0; ; attempt++) {
    const left = options.maxRetries - attempt;
    let res: IncomingMessage;
    try {
      res = await send(endpoint, url, all, body, options.signal);
    } catch (err) {
      if (options.signal?.aborted || !(err instanceof ConnectionError) || left <= 0) throw err;
      await wait(backoff(attempt), options.signal);
      continue;
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readText(res, options.signal).catch(() => '');
    const retry = shouldRetry(status, res.headers['x-should-retry']);
    if (!retry || left <= 0) throw new HttpStatusError(status, errorMessage(status, text));
    await wait(serverWait(res.headers) ?? backoff(attempt), options.signal);
  }
}

function send(endpoint: Endpoint, url: URL, headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = endpoint.socketPath
      ? { socketPath: endpoint.socketPath, path: `${url.pathname}${url.search}` }
      : { host: url.hostname, port: url.port || 80, path: `${url.pathname}${url.search}` };
    const req = http.request({ ...target, method: 'POST', headers, agent, ...(signal ? { signal } : {}) }, resolve);
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new ConnectionError(`no answer within ${TIMEOUT_MS / 60_000} min (timed out)`)));
    req.on('error', (err) => {
      if (signal?.aborted || err instanceof ConnectionError) reject(signal?.aborted ? signal.reason : err);
      else reject(new ConnectionError(`connection failed: ${err.message}`, { cause: err }));
    });
    req.end(body);
  });
}

/** Statuses worth another try: timeout, conflict, rate limit, and the server's own failures. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The vendors' rule: the server's `x-should-retry` wins, else the status decides. */
function shouldRetry(status: number, header: string | string[] | undefined): boolean {
  if (header === 'true') return true;
  if (header === 'false') return false;
  return isRetryableStatus(status);
}

/** `retry-after-ms`, else `retry-after` (seconds or a date), when present and sane. */
export function serverWait(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const ms = Number(headers['retry-after-ms']);
  let wait = Number.isFinite(ms) && headers['retry-after-ms'] !== undefined ? ms : undefined;
  const after = headers['retry-after'];
  if (wait === undefined && typeof after === 'string') {
    const seconds = Number(after);
    wait = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(after) - now;
  }
  if (wait === undefined || Number.isNaN(wait) || wait < 0 || wait > MAX_SERVER_WAIT_MS) return undefined;
  return wait;
}

/** 0.5 s, 1 s, 2 s … at most 8 s, less up to a quarter at random so clients spread out. */
export function backoff(attempt: number, random = Math.random()): number {
  return Math.min(500 * 2 ** attempt, 8000) * (1 - random * 0.25);
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The API's own words when the body has them (both vendors nest them in `error.message`). */
export function errorMessage(status: number, body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const nested = typeof parsed.error === 'object' && parsed.error !== null ? parsed.error.message : parsed.error;
    const message = nested ?? parsed.message;
    if (typeof message === 'string' && message) return message;
  } catch {
    // not JSON: the text itself, below
  }
  return body.trim().slice(0, MAX_ERROR_BODY) || `HTTP ${status} without a body`;
}

/** The whole body as text. */
export async function readText(res: IncomingMessage, signal?: AbortSignal): Promise<string> {
  let text = '';
  res.setEncoding('utf8');
  for await (const chunk of res) {
    if (signal?.aborted) throw signal.reason;
    text += chunk as string;
  }
  return text;
}

/** Folds a streamed reply's events (their `data`) into one result. */
export interface EventFold<T> {
  push(data: string): void;
  result(): T;
}

/**
 * A 2xx reply's body as one result: folded event by event when it is an event stream, else
 * parsed whole as JSON (a server may answer a streamed request with plain JSON). A stream is
 * read to its end, not just to its last event, so the connection can serve the next request.
 */
export async function readReply<T>(res: IncomingMessage, signal: AbortSignal | undefined, whole: (json: unknown) => T, fold: EventFold<T>): Promise<T> {
  if (!(res.headers['content-type'] ?? '').startsWith('text/event-stream')) return whole(JSON.parse(await readText(res, signal)));
  for await (const e of serverSentEvents(res)) fold.push(e.data);
  return fold.result();
}

export interface ServerSentEvent {
  /** `message` when the server named none. */
  readonly event: string;
  readonly data: string;
}

/**
 * The events of a `text/event-stream` body as they arrive (the WHATWG rules: `event:` and
 * `data:` fields, data lines joined with "\n", `:` comments, CR, LF or CRLF line ends).
 */
export async function* serverSentEvents(res: AsyncIterable<string | Buffer>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let pending = '';
  let event = '';
  let data: string[] = [];
  for await (const chunk of res) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const end = lineEnd(pending, start);
      if (end === -1) break;
      const line = pending.slice(start, end);
      start = end + (pending[end] === '\r' && pending[end + 1] === '\n' ? 2 : 1);
      if (line === '') {
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    pending = pending.slice(start);
  }
  // A stream cut off mid-event ends without it, as a browser's EventSource does.
}

/** Index of the next CR or LF at or after `from`; a CR as the last character waits for more. */
function lineEnd(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 10) return i;
    if (c === 13) return i + 1 < s.length ? i : -1;
  }
  return -1;
}
