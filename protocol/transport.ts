// The file transport both ends of the IPC share (host: in/ and out/, agent: its in/ and
// out/ mounts): atomic writes, no-follow reads of one IPC file, and a watched folder.
// Unlike the rest of protocol/ this module does I/O; it imports only node: and protocol/,
// so the agent can use it without importing host code.
//
// Invariants: nothing here follows a symbolic link — a write creates its temporary
// exclusively with O_NOFOLLOW, a read opens O_NOFOLLOW | O_NONBLOCK and accepts only a
// regular file of at most MAX_IPC_FILE_BYTES (a link, folder or FIFO is refused, never
// followed or waited on). A reader never sees a half-written file: writers rename a
// dot-prefixed temporary into place. Durability is each caller's explicit choice (fsync).
//
// A write without an fsync and every read are made with synchronous calls: an IPC file is
// small and was just written (it is in the page cache), so its syscalls take microseconds,
// while each asynchronous call is a thread-pool round trip and a wake-up of the event loop
// — most of what a file hop of a warm turn cost. A write with an fsync stays asynchronous,
// so a disk's flush never blocks the event loop.

import fs from 'node:fs/promises';
import { closeSync, constants, fstatSync, openSync, readSync, renameSync, unlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { MAX_IPC_FILE_BYTES, type Parsed } from './ipc.ts';
import { SafetyPoll, type SafetyPollOptions } from './poll.ts';

export interface WriteOptions {
  /**
   * true: the data is flushed to disk before the rename, so after a machine crash the file
   * is absent or whole. false: rename only — the file survives a kill -9 of the writer (the
   * kernel holds the data), but a machine crash may leave it missing or empty.
   */
  readonly fsync: boolean;
  readonly mode?: number;
}

/** Writes `dir/name` atomically: a dot-prefixed temporary created exclusively, then renamed. */
export async function writeFileAtomic(dir: string, name: string, data: string, o: WriteOptions): Promise<void> {
  const tmp = path.join(dir, `.tmp-${name}`);
  // O_EXCL refuses an existing path, so a planted link is never written through.
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  if (!o.fsync) return writeRenameSync(tmp, path.join(dir, name), flags, data, o.mode ?? 0o644);
  const handle = await fs.open(tmp, flags, o.mode ?? 0o644);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, path.join(dir, name));
  } catch (err) {
    await fs.unlink(tmp).catch(() => { /* already gone */ });
    throw err;
  }
}

function writeRenameSync(tmp: string, target: string, flags: number, data: string, mode: number): void {
  const fd = openSync(tmp, flags, mode);
  try {
    try {
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
}

/** A failed read; `vanished` when the file was gone before it could be opened (someone else took it). */
export type ReadFailure = { readonly ok: false; readonly reason: string; readonly vanished?: true };

/** Reads `dir/name` as one IPC file — a regular file of at most MAX_IPC_FILE_BYTES holding JSON — and validates it with `parse`. */
export async function readIpcFile<T>(dir: string, name: string, parse: (json: unknown) => Parsed<T>): Promise<Parsed<T> | ReadFailure> {
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(path.join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, reason: 'not a regular file' };
    const tooLarge = (size: string) => ({ ok: false as const, reason: `file is ${size} bytes; the limit is ${MAX_IPC_FILE_BYTES}` });
    if (st.size > MAX_IPC_FILE_BYTES) return tooLarge(String(st.size));
    // One byte past the size, so a file grown since the stat is seen; it is then read again
    // up to one byte past the limit and refused if it grew past that (unzeroed buffers:
    // only the bytes read are ever used).
    let buf = Buffer.allocUnsafe(st.size + 1);
    let bytesRead = readSync(fd, buf, 0, buf.length, 0);
    if (bytesRead > st.size) {
      buf = Buffer.allocUnsafe(MAX_IPC_FILE_BYTES + 1);
      bytesRead = readSync(fd, buf, 0, buf.length, 0);
    }
    if (bytesRead > MAX_IPC_FILE_BYTES) return tooLarge(`more than ${MAX_IPC_FILE_BYTES}`);
    text = buf.subarray(0, bytesRead).toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { ok: false, reason: 'is a symbolic link' };
    if (code === 'ENOENT') return { ok: false, reason: 'vanished before it could be read', vanished: true };
    return { ok: false, reason: `unreadable (${code ?? String(err)})` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  return parse(json);
}

export interface DirWatchOptions {
  readonly dir: string;
  /**
   * Contract: an async function making one pass over the folder; it calls `found()` as soon
   * as it sees a new file (that paces the safety poll). It never runs twice at once. A
   * rejection goes to onError and ends this round of passes; the next request starts one.
   */
  readonly pass: (found: () => void) => Promise<void>;
  readonly poll?: SafetyPollOptions;
  /** false: no fs.watch at all, as on a mount without inotify (tests). */
  readonly watch?: boolean;
  /** Contract: told of a watcher that failed or could not start ('watch'; the poll still finds everything) and of a failed pass ('pass'); must not throw. */
  readonly onError: (err: unknown, during: 'watch' | 'pass') => void;
}

/**
 * A folder watched by fs.watch with a safety poll beside it (protocol/poll.ts), running
 * `pass` when either asks. Requests that arrive during a pass coalesce into one more pass,
 * so a file that lands mid-pass is never missed and passes never overlap. scan() runs
 * passes whether or not the folder is watched (the host drains an unwatched out/).
 */
export class DirWatch {
  readonly #o: DirWatchOptions;
  #watcher: FSWatcher | undefined;
  #poll: SafetyPoll | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(o: DirWatchOptions) {
    this.#o = o;
  }

  /** The safety poll's current period, or null while not watching. */
  get pollMs(): number | null {
    return this.#poll?.intervalMs ?? null;
  }

  /** Starts the watcher and a fresh (fast) poll, and runs a pass. Idempotent. */
  start(): void {
    if (this.#poll) return;
    const poll = new SafetyPoll(() => { void this.scan(); }, this.#o.poll);
    this.#poll = poll;
    if (this.#o.watch ?? true) {
      try {
        this.#watcher = watch(this.#o.dir, () => poll.watched());
        this.#watcher.on('error', (err) => { poll.watchFailed(); this.#report(err, 'watch'); });
      } catch (err) {
        this.#report(err, 'watch'); // no inotify: the poll still finds everything
      }
    }
    poll.start();
    void this.scan();
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#poll?.stop();
    this.#poll = undefined;
  }

  /** Runs passes until no request is left; resolves when they are over. Never rejects. */
  scan(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#passes();
    return this.#running;
  }

  async #passes(): Promise<void> {
    try {
      do {
        this.#again = false;
        const poll = this.#poll;
        const by = poll?.scanStarted() ?? null;
        await this.#o.pass(() => { if (by) poll?.found(by); });
      } while (this.#again);
    } catch (err) {
      this.#report(err, 'pass');
    } finally {
      this.#running = undefined; // in the same tick as the last check of #again: no request is lost
    }
  }

  #report(err: unknown, during: 'watch' | 'pass'): void {
    try { this.#o.onError(err, during); } catch { /* a broken reporter must not stop the watch */ }
  }
}
