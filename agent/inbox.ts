// Watches ipc/in/ and hands out input file names one at a time in name order, each at most
// once. fs.watch moves work; a safety poll (protocol/poll.ts) is the fallback because
// gVisor and some Docker Desktop mounts deliver no inotify events. Reading a file consumes
// it: it is unlinked, and where in/ is mounted read-only (the host removes inputs itself)
// the seen set alone keeps it from being handed out twice — a name leaves that set only
// once it left the directory.

import { constants, watch, type FSWatcher } from 'node:fs';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import { isIpcFileName, MAX_IPC_FILE_BYTES, parseHostInput, type HostToAgent, type Parsed } from '../protocol/ipc.ts';
import { SafetyPoll, type SafetyPollOptions } from '../protocol/poll.ts';
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
  #watch: boolean;
  #onError: (err: unknown) => void;
  /** Names already queued or handed out; pruned once a name has left the directory. */
  #seen = new Set<string>();
  #pending = new AsyncQueue<string>({ order: (a, b) => (a < b ? -1 : a > b ? 1 : 0) });
  #scanning = false;
  #rescan = false;
  #watcher: FSWatcher | null = null;
  #poll: SafetyPoll;

  constructor(o: InboxOptions) {
    this.#dir = o.dir;
    this.#watch = o.watch ?? true;
    this.#onError = o.onError;
    this.#poll = new SafetyPoll(() => this.#scan(), o.poll);
  }

  /** The safety poll's current period (fast until watch events are seen to arrive). */
  get pollMs(): number {
    return this.#poll.intervalMs;
  }

  start(): void {
    if (this.#watch) {
      try {
        this.#watcher = watch(this.#dir, () => this.#poll.watched());
        this.#watcher.on('error', (err) => { this.#poll.watchFailed(); this.#report(err); });
      } catch (err) {
        this.#report(err); // no inotify: the poll below still finds everything
      }
    }
    this.#poll.start();
    this.#scan();
  }

  /** The next file name in order, waiting for one; null once the inbox is closed. */
  next(): Promise<string | null> {
    return this.#pending.next();
  }

  close(): void {
    this.#pending.close();
    this.#watcher?.close();
    this.#poll.stop();
  }

  #report(err: unknown): void {
    try { this.#onError(err); } catch { /* a broken reporter must not stop the inbox */ }
  }

  /** Scans are serialized; a request during a scan runs one more scan afterwards. */
  #scan(): void {
    if (this.#pending.closed) return;
    if (this.#scanning) { this.#rescan = true; return; }
    this.#scanning = true;
    this.#scanLoop()
      .catch((err: unknown) => this.#report(err))
      .finally(() => { this.#scanning = false; });
  }

  async #scanLoop(): Promise<void> {
    do {
      this.#rescan = false;
      const by = this.#poll.scanStarted();
      let names: string[];
      try {
        names = await readdir(this.#dir);
      } catch (err) {
        this.#report(err);
        return;
      }
      const present = new Set(names);
      for (const n of this.#seen) if (!present.has(n)) this.#seen.delete(n);
      const fresh = names.filter((n) => isIpcFileName(n) && !this.#seen.has(n));
      if (fresh.length === 0) continue;
      for (const n of fresh) this.#seen.add(n);
      this.#pending.push(...fresh);
      if (by) this.#poll.found(by);
    } while (this.#rescan && !this.#pending.closed);
  }
}

/**
 * Reads, validates and then unlinks one input file. Refuses anything that is not a regular
 * file (symlinks included, even if swapped in after the lstat) or is larger than the limit.
 */
export async function takeInput(path: string): Promise<Parsed<HostToAgent>> {
  try {
    const st = await lstat(path);
    if (!st.isFile()) return { ok: false, reason: 'not a regular file' };
    if (st.size > MAX_IPC_FILE_BYTES) return { ok: false, reason: `larger than ${MAX_IPC_FILE_BYTES} bytes` };
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    let text: string;
    try {
      const buf = Buffer.alloc(MAX_IPC_FILE_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_IPC_FILE_BYTES) return { ok: false, reason: `larger than ${MAX_IPC_FILE_BYTES} bytes` };
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
    let json: unknown;
    try { json = JSON.parse(text); } catch (err) { return { ok: false, reason: `invalid JSON: ${(err as Error).message}` }; }
    return parseHostInput(json);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    await unlink(path).catch(() => { /* read-only in/, already gone, or a directory: the seen set covers it */ });
  }
}
