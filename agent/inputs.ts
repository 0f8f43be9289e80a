// Routes in/ files as soon as the inbox names them: a `response` goes straight to its
// waiting request (the batch that waits for it is still running, so it must not queue
// behind it), while batches and `close` queue up for the single runner in main.ts.
// Invariants: every file is taken (read, validated, consumed) once, in the inbox's name
// order; next() hands out batches and close in that same order, one per call; a response
// never waits for a batch to finish. Reading a batch ahead of its run is harmless: the host
// sends one batch at a time and clears in/ before a fresh container starts.

import { join } from 'node:path';
import type { BatchFile, CloseFile, HostToAgent, Parsed, ResponseFile } from '../protocol/ipc.ts';
import { AsyncQueue } from './async-queue.ts';
import { takeInput } from './inbox.ts';

export type RunnableInput = BatchFile | CloseFile;

export interface InputsOptions {
  /** Names in order, null once closed (an Inbox). */
  readonly inbox: { next(): Promise<string | null>; close(): void };
  readonly dir: string;
  /** Contract: called at once for each valid response; must not throw. */
  readonly onResponse: (r: ResponseFile) => void;
  /** Contract: called for each file that is not a valid input; must not throw. */
  readonly onRejected: (file: string, reason: string) => void;
  /** Reads and consumes one file; default takeInput (tests may stub it). */
  readonly take?: (path: string) => Promise<Parsed<HostToAgent>>;
}

export class Inputs {
  #o: InputsOptions;
  #take: (path: string) => Promise<Parsed<HostToAgent>>;
  #queue = new AsyncQueue<RunnableInput>();
  #pumping: Promise<void> | null = null;

  constructor(o: InputsOptions) {
    this.#o = o;
    this.#take = o.take ?? takeInput;
  }

  /** Starts reading; the pump runs until the inbox closes. Idempotent. */
  start(): void {
    this.#pumping ??= this.#pump();
  }

  /** The next batch or close in name order, waiting for one; null once closed. */
  next(): Promise<RunnableInput | null> {
    return this.#queue.next();
  }

  /** Stops reading (closes the inbox); a waiting next() resolves null, queued inputs are dropped. */
  close(): void {
    this.#queue.close();
    this.#o.inbox.close();
  }

  async #pump(): Promise<void> {
    for (;;) {
      const name = await this.#o.inbox.next();
      if (name === null) break;
      let input: Parsed<HostToAgent>;
      try {
        input = await this.#take(join(this.#o.dir, name));
      } catch (err) {
        input = { ok: false, reason: err instanceof Error ? err.message : String(err) };
      }
      if (!input.ok) {
        this.#o.onRejected(name, input.reason);
      } else if (input.value.type === 'response') {
        this.#o.onResponse(input.value);
      } else {
        this.#queue.push(input.value);
      }
    }
    // The inbox closed under us (close() or a signal): nothing more will arrive.
    this.#queue.close();
  }
}
