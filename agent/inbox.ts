// Watches ipc/in/ and hands out input file names one at a time in name order, each at most
// once. The folder watch (fs.watch plus a safety poll, because gVisor and some Docker
// Desktop mounts deliver no inotify events) and the no-follow read are the transport the
// host uses too (protocol/transport.ts). Reading a file consumes it: it is unlinked, and
// where in/ is mounted read-only (the host removes inputs itself) the seen set alone keeps
// it from being handed out twice — a name leaves that set only once it left the directory.

import { readdirSync, unlinkSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isIpcFileName, parseHostInput, type HostToAgent, type Parsed } from '../protocol/ipc.ts';
import type { SafetyPollOptions } from '../protocol/poll.ts';
import { DirWatch, readIpcFile } from '../protocol/transport.ts';
import { AsyncQueue } from './async-queue.ts';

export interface InboxOptions {
  readonly dir: string;
  readonly poll?: SafetyPollOptions;
  /** false: no fs.watch at all, as on a mount without inotify (tests). */
  readonly watch?: boolean;
  /** Contract: called for watch/readdir failures; must not throw. The inbox keeps polling. */
  readonly onError: (err: unknown) => void;
}

export class Inbox {
  #dir: string;
  /** Names already queued or handed out; pruned once a name has left the directory. */
  #seen = new Set<string>();
  #pending = new AsyncQueue<string>({ order: (a, b) => (a < b ? -1 : a > b ? 1 : 0) });
  #watch: DirWatch;

  constructor(o: InboxOptions) {
    this.#dir = o.dir;
    this.#watch = new DirWatch({ dir: o.dir, poll: o.poll, watch: o.watch, onError: (err) => o.onError(err), pass: (found) => this.#pass(found) });
  }

  /** The safety poll's current period (fast until watch events are seen to arrive); null before start. */
  get pollMs(): number | null {
    return this.#watch.pollMs;
  }

  start(): void {
    this.#watch.start();
  }

  /** The next file name in order, waiting for one; null once the inbox is closed. */
  next(): Promise<string | null> {
    return this.#pending.next();
  }

  close(): void {
    this.#pending.close();
    this.#watch.stop();
  }

  async #pass(found: () => void): Promise<void> {
    if (this.#pending.closed) return;
    const names = readdirSync(this.#dir); // synchronous like the transport's reads: no thread-pool round trip on the wake-up
    const present = new Set(names);
    for (const n of this.#seen) if (!present.has(n)) this.#seen.delete(n);
    const fresh = names.filter((n) => isIpcFileName(n) && !this.#seen.has(n));
    if (fresh.length === 0) return;
    for (const n of fresh) this.#seen.add(n);
    this.#pending.push(...fresh);
    found();
  }
}

/**
 * Reads, validates and then unlinks one input file. Refuses anything that is not a regular
 * file of at most MAX_IPC_FILE_BYTES (a symlink, even one swapped in late, is never followed).
 */
export async function takeInput(path: string): Promise<Parsed<HostToAgent>> {
  try {
    const read = await readIpcFile(dirname(path), basename(path), parseHostInput);
    return read.ok ? read : { ok: false, reason: read.reason };
  } finally {
    try { unlinkSync(path); } catch { /* read-only in/, already gone, or a directory: the seen set covers it */ }
  }
}
