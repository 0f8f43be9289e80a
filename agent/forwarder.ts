// The in-container network forwarder: a TCP server on 127.0.0.1 that pipes every connection
// to the host proxy's Unix socket, both directions. It adds no policy: the proxy decides.
// Invariant: when either side fails, both are destroyed; nothing is left half-open forever.

import { connect, createServer, type Socket } from 'node:net';

export interface ForwarderOptions {
  readonly port: number;
  readonly socketPath: string;
  /** Contract: told about per-connection failures; must not throw. */
  readonly onError: (err: unknown) => void;
}

export interface Forwarder {
  /** The port actually bound (differs from the option when it was 0). */
  readonly port: number;
  close(): Promise<void>;
}

export function startForwarder(o: ForwarderOptions): Promise<Forwarder> {
  const open = new Set<Socket>();
  // allowHalfOpen on both ends so a client's FIN travels on instead of cutting the answer short.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ path: o.socketPath, allowHalfOpen: true });
    open.add(client);
    open.add(upstream);
    const destroyBoth = (err?: unknown): void => {
      if (err) o.onError(err);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', destroyBoth);
    upstream.on('error', destroyBoth);
    client.on('close', () => { open.delete(client); upstream.destroy(); });
    upstream.on('close', () => { open.delete(upstream); client.destroy(); });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => {
      server.off('error', reject);
      server.on('error', o.onError);
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : o.port;
      resolve({
        port,
        close: () => new Promise<void>((done) => {
          for (const s of open) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}
