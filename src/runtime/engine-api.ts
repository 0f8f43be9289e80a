// A small client for the Docker Engine API (and Podman's compatible socket) on node:http:
// JSON requests over the engine's Unix socket (or plain TCP), and the attach stream with
// stdout and stderr taken apart. No `docker` process per container or per operation.
//
// Why not a library: dockerode brings docker-modem, ssh2 (with an optional native build),
// tar-fs and more for features hako does not use (builds, exec, ssh); the handful of calls
// here are plain HTTP and one upgraded stream.
//
// Invariants: paths are unversioned (the engine serves its own newest version, so a
// Docker 20.10 and a current one both answer); a request never outlives its timeout or
// its AbortSignal; an error names the method, the path and the engine's own message.

import http from 'node:http';
import type { Duplex } from 'node:stream';

/** Where the engine listens: a Unix socket, or a TCP address (plain HTTP: TLS endpoints stay with the docker CLI). */
export type EngineAddress = { readonly socketPath: string } | { readonly host: string; readonly port: number };

/** `unix:///var/run/docker.sock` or `tcp://10.0.0.2:2375` → an address; a string says why it cannot be used. */
export function engineAddress(dockerHost: string, env: { readonly DOCKER_TLS_VERIFY?: string | undefined } = {}): EngineAddress | string {
  if (dockerHost.startsWith('unix://')) {
    const socketPath = dockerHost.slice('unix://'.length);
    return socketPath ? { socketPath } : `${dockerHost} names no socket`;
  }
  if (dockerHost.startsWith('tcp://')) {
    if (env.DOCKER_TLS_VERIFY) return `${dockerHost} with DOCKER_TLS_VERIFY: hako talks to a TLS engine endpoint through the docker CLI`;
    const u = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 2375) };
  }
  return `${dockerHost}: hako talks to this kind of endpoint (ssh://, npipe://) through the docker CLI`;
}

export class EngineError extends Error {
  override name = 'EngineError';
  /** The engine's HTTP status; 0 when it did not answer (the socket is missing, refused, timed out). */
  readonly status: number;
  /** The socket error's code (ENOENT, ECONNREFUSED, EACCES, ETIMEDOUT) when it did not answer. */
  readonly code: string | undefined;
  constructor(message: string, status: number, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly signal?: AbortSignal | undefined;
  /** Default 30 s; a request that waits on the engine by design (wait, stop) sets its own. */
  readonly timeoutMs?: number;
}

/** Demultiplexes the attach stream of a container without a TTY: 8-byte headers (stream, 0, 0, 0, size BE) before each frame. */
export class FrameReader {
  #buf: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  readonly #onFrame: (stream: number, data: Buffer) => void;
  constructor(onFrame: (stream: number, data: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (this.#buf.length >= 8) {
      const size = this.#buf.readUInt32BE(4);
      if (this.#buf.length < 8 + size) return;
      this.#onFrame(this.#buf[0]!, this.#buf.subarray(8, 8 + size));
      this.#buf = this.#buf.subarray(8 + size);
    }
  }
}

export class EngineApi {
  readonly #address: EngineAddress;
  readonly #agent: http.Agent;

  constructor(address: EngineAddress) {
    this.#address = address;
    // Kept-alive connections: a warm turn's calls reuse one socket instead of connecting anew.
    this.#agent = new http.Agent({ keepAlive: true, maxFreeSockets: 8 });
  }

  /** Sends one request; resolves with the status and the parsed JSON (or text) body. Rejects with EngineError when the engine did not answer. */
  request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    return new Promise((resolve, reject) => {
      const req = http.request({
        ...this.#address, method, path, agent: this.#agent, signal: opts.signal,
        headers: { host: 'docker', ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json') && text) {
            try { body = JSON.parse(text); } catch { /* left as text */ }
          }
          resolve({ status: res.statusCode ?? 0, body: body as T });
        });
        res.on('error', (err) => reject(this.#failed(method, path, err)));
      });
      req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(Object.assign(new Error(`no answer within ${(opts.timeoutMs ?? 30_000) / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(this.#failed(method, path, err)));
      req.end(payload);
    });
  }

  /** Like `request`, but a status outside 2xx (and `ok`) rejects with the engine's message. */
  async call<T = unknown>(method: string, path: string, opts: RequestOptions & { readonly ok?: readonly number[] } = {}): Promise<{ status: number; body: T }> {
    const r = await this.request<T>(method, path, opts);
    if ((r.status >= 200 && r.status < 300) || opts.ok?.includes(r.status)) return r;
    throw new EngineError(`${method} ${path.split('?')[0]}: ${engineMessage(r.body)} (HTTP ${r.status})`, r.status);
  }

  /**
   * Attaches to a created container's stdout and stderr (before it is started, so no line
   * is missed). Resolves with the raw stream once the engine upgraded the connection; each
   * frame goes to `onFrame`, and the stream ends when the container's output does.
   */
  attach(id: string, onFrame: (stream: number, data: Buffer) => void, signal?: AbortSignal): Promise<Duplex> {
    const path = `/containers/${encodeURIComponent(id)}/attach?stream=1&stdout=1&stderr=1`;
    return new Promise((resolve, reject) => {
      const req = http.request({
        ...this.#address, method: 'POST', path, signal,
        // Its own connection: an upgraded socket cannot go back to the keep-alive pool.
        agent: false,
        headers: { host: 'docker', connection: 'Upgrade', upgrade: 'tcp' },
      });
      req.on('upgrade', (_res, socket, head) => {
        const reader = new FrameReader(onFrame);
        if (head.length) reader.push(head);
        socket.on('data', (c: Buffer) => reader.push(c));
        resolve(socket);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(new EngineError(`POST /containers/…/attach: ${engineMessage(Buffer.concat(chunks).toString('utf8'))} (HTTP ${res.statusCode})`, res.statusCode ?? 0)));
      });
      req.on('error', (err) => reject(this.#failed('POST', path, err)));
      req.end();
    });
  }

  /** Ends the kept-alive connections (at shutdown). */
  close(): void {
    this.#agent.destroy();
  }

  #failed(method: string, path: string, err: Error): EngineError {
    const code = (err as NodeJS.ErrnoException).code;
    const where = 'socketPath' in this.#address ? `unix://${this.#address.socketPath}` : `tcp://${this.#address.host}:${this.#address.port}`;
    return new EngineError(`${method} ${path.split('?')[0]} to the engine at ${where}: ${err.message}`, 0, code);
  }
}

/** The engine's `{"message": …}`, or the text it sent. */
export function engineMessage(body: unknown): string {
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return String(body ?? '').trim().slice(0, 500) || 'no message';
}
