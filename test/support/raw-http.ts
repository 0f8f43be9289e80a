// Raw HTTP for attack tests. rawRequest sends any bytes over a Unix socket at all (malformed request lines included) and
// returns what came back before the answer was complete, the socket closed or the time ran out.
// With `halfClose` (the default) the client ends its side right after the bytes, as a client
// that sends one request and hangs up would: Node's server then aborts a request it has not
// answered yet, so a proxied request needs `halfClose: false`.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export function rawRequest(socketPath: string, bytes: string | Buffer, opts: { timeoutMs?: number; halfClose?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let got = '';
    const done = () => { clearTimeout(timer); s.destroy(); resolve(got); };
    const timer = setTimeout(done, opts.timeoutMs ?? 5000);
    s.on('data', (c) => {
      got += c.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = /content-length: (\d+)/i.exec(got.slice(0, end))?.[1];
      if (len !== undefined && got.length >= end + 4 + Number(len)) done();
    });
    s.on('error', done);
    s.on('close', done);
    if (opts.halfClose ?? true) s.end(bytes);
    else s.write(bytes);
  });
}

export interface RecordingServer {
  readonly port: number;
  /** `METHOD target headers-as-JSON` of every request that reached it. */
  readonly seen: string[];
  close(): Promise<void>;
}

/** An HTTP server standing for a place nothing should reach (an attacker's host, a host service): it records every request. */
export async function startRecordingServer(opts: { host?: string; port?: number } = {}): Promise<RecordingServer> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => { seen.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)}`); res.end('reached'); });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port, seen,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
