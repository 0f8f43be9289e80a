// Host side of the filesystem IPC: writes inputs into a group's in/ (read-only for the
// agent) and watches its out/ (agent-writable) with fs.watch plus a safety poll, in case
// a mount delivers no inotify events — through the transport the agent uses too
// (protocol/transport.ts: atomic writes, no-follow reads, the watched folder).
//
// Invariants: the group is the directory a file was found in, never a field of it; each
// out/ file is handled once, serially per group, in name order, and then removed; a file
// that is not a valid output is moved to rejected/ with a reason beside it, and
// rejected/ is pruned to its newest entries (rejected.ts). Temporaries (dot files) are
// left alone while a writer may still finish them, and moved aside when asked to.

import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { isIpcFileName, ipcFileName, parseAgentOutput, MAX_IPC_FILE_BYTES, type AgentToHost, type HostToAgent } from '../../protocol/ipc.ts';
import type { SafetyPollOptions } from '../../protocol/poll.ts';
import { DirWatch, readIpcFile, writeFileAtomic } from '../../protocol/transport.ts';
import { groupPaths } from './paths.ts';
import { pruneRejected } from './rejected.ts';
import type { Logger } from './log.ts';
import { mark } from './trace.ts';

/**
 * Contract: called once per valid output file, serially per group. It may throw; the
 * file is then moved to rejected/ so a poison file cannot loop. It must be idempotent by
 * output id, because after a crash a file may be seen again.
 */
export type OutputHandler = (group: string, output: AgentToHost) => Promise<void>;

export interface IpcOptions {
  readonly home: string;
  readonly onOutput: OutputHandler;
  readonly onRejected?: (group: string, file: string, reason: string) => void;
  readonly log: Logger;
  readonly poll?: SafetyPollOptions;
}

/** Files moved to rejected/ between two prunings of it. */
const PRUNE_EVERY = 50;

export class Ipc {
  readonly #opts: IpcOptions;
  /** Per group: its out/ folder's watch and coalesced drain passes (kept while the host runs). */
  readonly #outs = new Map<string, DirWatch>();
  /** Per group: temporaries older than this time (ms) are moved aside by the next pass; no one can still write them. */
  readonly #staleTemps = new Map<string, number>();
  /** Per group: files moved to rejected/ since it was last pruned (absent: never pruned). */
  readonly #sincePrune = new Map<string, number>();

  constructor(opts: IpcOptions) {
    this.#opts = opts;
  }

  /** Writes a host → agent file into the group's in/. Returns the file name. */
  async send(group: string, message: HostToAgent): Promise<string> {
    const name = ipcFileName(message.id);
    // Not fsynced: the rename alone survives a kill -9 of the host or the container, and a
    // power cut loses nothing an fsync would keep. The batch and its messages are committed
    // in SQLite before this file is written; a turn the machine's crash interrupted is
    // re-run from there at the next start, into a fresh container whose in/ is cleared
    // first. An fsync (1–2.5 ms on the bench machine) bought nothing on every warm turn.
    await writeFileAtomic(groupPaths(this.#opts.home, group).ipcIn, name, JSON.stringify(message), { fsync: false });
    return name;
  }

  newId(): string {
    return randomUUID();
  }

  /** Removes every pending input (before a fresh container starts, nothing stale is read). */
  async clearInputs(group: string): Promise<void> {
    const dir = groupPaths(this.#opts.home, group).ipcIn;
    for (const name of listSorted(dir)) fs.rmSync(`${dir}/${name}`, { force: true, recursive: true });
  }

  #out(group: string): DirWatch {
    let out = this.#outs.get(group);
    if (!out) {
      out = new DirWatch({
        dir: groupPaths(this.#opts.home, group).ipcOut,
        pass: (found) => this.#pass(group, found),
        poll: { unref: true, ...this.#opts.poll },
        onError: (err, during) => {
          if (during === 'pass') this.#opts.log.error('ipc drain failed', { group, error: String(err) });
          else this.#opts.log.warn('ipc watch failed; polling only', { group, error: String(err) });
        },
      });
      this.#outs.set(group, out);
    }
    return out;
  }

  /** Starts watching the group's out/. Idempotent. */
  watch(group: string): void {
    this.#out(group).start();
  }

  /** The group's safety-poll period, or null when out/ is not watched. */
  pollMs(group: string): number | null {
    return this.#outs.get(group)?.pollMs ?? null;
  }

  unwatch(group: string): void {
    this.#outs.get(group)?.stop();
  }

  close(): void {
    for (const out of this.#outs.values()) out.stop();
  }

  /**
   * Drains out/ and moves every temporary still there to rejected/. Call only when no
   * process can still be writing one: the container is gone, or its turn is over and
   * its leftover processes were killed.
   */
  clearTemporaries(group: string): Promise<void> {
    this.#staleTemps.set(group, Date.now());
    return this.drain(group);
  }

  /** Handles every file now in out/; concurrent calls coalesce into one more pass. */
  drain(group: string): Promise<void> {
    return this.#out(group).scan();
  }

  /** One pass over out/; `found` is told when it holds anything but temporaries. */
  async #pass(group: string, found: () => void): Promise<void> {
    const paths = groupPaths(this.#opts.home, group);
    const staleBefore = this.#staleTemps.get(group);
    this.#staleTemps.delete(group);
    mark(this.#opts.log, 'pass', { group });
    for (const name of listSorted(paths.ipcOut)) {
      if (name.startsWith('.')) {
        // A newer one belongs to a container started since (the pass may run late).
        const st = staleBefore === undefined ? undefined : await fs.promises.lstat(`${paths.ipcOut}/${name}`).catch(() => undefined);
        if (st && Math.floor(st.mtimeMs) <= staleBefore!) await this.#reject(group, name, 'a temporary file left behind after its turn ended');
        continue; // else: a temporary still being written
      }
      found();
      if (!isIpcFileName(name)) {
        await this.#reject(group, name, 'file name does not follow the IPC naming rule');
        continue;
      }
      const read = await readIpcFile(paths.ipcOut, name, parseAgentOutput);
      if (!read.ok) {
        if (!('vanished' in read)) await this.#reject(group, name, read.reason);
        continue;
      }
      mark(this.#opts.log, 'read', { group, type: read.value.type, id: read.value.id });
      try {
        await this.#opts.onOutput(group, read.value);
      } catch (err) {
        await this.#reject(group, name, `could not be applied: ${String(err)}`);
        continue;
      }
      fs.rmSync(`${paths.ipcOut}/${name}`, { force: true });
      mark(this.#opts.log, 'removed', { group, type: read.value.type, id: read.value.id });
    }
  }

  async #reject(group: string, name: string, reason: string): Promise<void> {
    const paths = groupPaths(this.#opts.home, group);
    const target = `${Date.now()}-${name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120) || 'unnamed'}`;
    try {
      // The reason is written first, so a file has left out/ only once its reason is there.
      await writeFileAtomic(paths.ipcRejected, `${target}.reason`, `${reason}\n`, { fsync: true, mode: 0o600 });
      // The entry itself (file, link or folder) is renamed out of the agent's reach, never followed.
      await fs.promises.rename(`${paths.ipcOut}/${name}`, `${paths.ipcRejected}/${target}`).catch(async (err: unknown) => {
        await fs.promises.rm(`${paths.ipcRejected}/${target}.reason`, { force: true });
        throw err;
      });
      // Pruned every PRUNE_EVERY files, and at once for anything that may be large (a
      // folder, an oversized file), so the folder never holds much more than its limits.
      const st = await fs.promises.lstat(`${paths.ipcRejected}/${target}`);
      const since = this.#sincePrune.get(group);
      if (since === undefined || since + 1 >= PRUNE_EVERY || st.isDirectory() || st.size > MAX_IPC_FILE_BYTES) {
        this.#sincePrune.set(group, 0);
        await pruneRejected(paths.ipcRejected);
      } else this.#sincePrune.set(group, since + 1);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#opts.log.error('could not move rejected ipc file', { group, file: name, error: String(err) });
    }
    this.#opts.log.warn('ipc file rejected', { group, file: name, reason });
    this.#opts.onRejected?.(group, name, reason);
  }
}

/** Entry names sorted; a missing folder is empty. Synchronous, like the transport's reads (see protocol/transport.ts). */
function listSorted(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
