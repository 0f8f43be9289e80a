// Agent → host requests (task.*) and their answers. A request is an ordinary out/ file whose
// id is the request id; the host answers with a `response` file in in/ naming that id, and
// main.ts hands every response to `deliver` as soon as it is read — even mid-batch, since
// the running batch is usually the one waiting.
// Invariants: each waiter settles exactly once (its response, its signal, or close); an id
// is forgotten when it settles, so a response nobody waits for (unknown id, too late,
// answered twice) is refused by `deliver` for the caller to log and drop.

import type { ResponseFile } from '../protocol/ipc.ts';
import type { Logger } from './log.ts';
import { newId, type Outbox } from './outbox.ts';
import type { HostRequest } from './tools/types.ts';

interface Waiter {
  readonly resolve: (r: ResponseFile) => void;
  readonly reject: (err: unknown) => void;
}

export class Requests {
  #outbox: Pick<Outbox, 'write'>;
  #log: Logger;
  #pending = new Map<string, Waiter>();

  constructor(outbox: Pick<Outbox, 'write'>, log: Logger) {
    this.#outbox = outbox;
    this.#log = log;
  }

  /** Requests still waiting for their response. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Writes the request and resolves with its response. Rejects when the write fails, when
   * `signal` fires first (its reason), or on close. The waiter is registered before the
   * file exists, so even an instant response finds it.
   */
  send(req: HostRequest, signal: AbortSignal): Promise<ResponseFile> {
    const id = newId();
    return new Promise<ResponseFile>((resolve, reject) => {
      if (signal.aborted) { reject(signal.reason); return; }
      const settle = (): boolean => {
        signal.removeEventListener('abort', onAbort);
        return this.#pending.delete(id);
      };
      const onAbort = (): void => {
        if (settle()) {
          this.#log('request_abandoned', { request: id, type: req.type });
          reject(signal.reason);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (r) => { settle(); resolve(r); },
        reject: (err) => { settle(); reject(err); },
      });
      this.#outbox.write(req, id).then(
        (file) => this.#log('output', { type: req.type, request: id, file }),
        (err: unknown) => { if (settle()) reject(err); },
      );
    });
  }

  /** Settles the waiter for `r.request`; false when nobody waits for it (the caller logs and drops it). */
  deliver(r: ResponseFile): boolean {
    const waiter = this.#pending.get(r.request);
    if (!waiter) return false;
    waiter.resolve(r);
    return true;
  }

  /** Rejects every waiter (shutdown). */
  close(reason: Error = new Error('the agent is shutting down')): void {
    for (const waiter of [...this.#pending.values()]) waiter.reject(reason);
  }
}
