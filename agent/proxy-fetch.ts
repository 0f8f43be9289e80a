// A `fetch` for the model SDKs that speaks HTTP straight to the group proxy's Unix socket
// (/run/hako/proxy.sock), instead of through the in-container TCP forwarder: the forwarder
// runs in the agent's own process, so every model request and every streamed chunk crossed
// this event loop twice more and a loopback TCP connection (~0.8 ms a request on the bench
// machine). Policy is unchanged: the proxy answers this socket exactly as it answers the
// forwarder's connections; the forwarder stays for tools (curl, git, npm).
//
// Invariants: only the URL's path and query are sent (the host comes from the socket, so a
// request cannot name another destination); the request's abort signal aborts the request
// and the response's body; connections are kept alive between a turn's requests.

import http from 'node:http';
import { Readable } from 'node:stream';

/** Status codes whose responses have no body (the Response constructor refuses one). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

export function socketFetch(socketPath: string): typeof fetch {
  const agent = new http.Agent({ keepAlive: true });
  return (input, init = {}) => new Promise<Response>((resolve, reject) => {
    if (input instanceof Request) {
      reject(new TypeError('socketFetch takes a URL and RequestInit, not a Request object'));
      return;
    }
    const url = new URL(String(input));
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => { headers[key] = value; });
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      reject(new TypeError('socketFetch sends only string bodies (the SDKs send JSON text)'));
      return;
    }
    const method = init.method ?? 'GET';
    const req = http.request({ socketPath, agent, path: `${url.pathname}${url.search}`, method, headers, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
      const out = new Headers();
      for (const [key, value] of Object.entries(res.headers)) {
        for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) out.append(key, v);
      }
      const status = res.statusCode ?? 502;
      const empty = NO_BODY.has(status) || method === 'HEAD';
      if (empty) res.resume();
      resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: out }));
    });
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}
