// Disk use: how much a group's folder and IPC out/ occupy, how much room HAKO_HOME's file
// system has left, and the guard that acts on both. A group over its size limit is stopped
// and refused until it is under again; free space below the reserve stops every turn and
// starts no container, so agents cannot eat the room the database needs for accepted
// messages.
//
// Invariants: the walk never follows a link (folders are opened O_NOFOLLOW and, on Linux,
// read through their descriptor, so a folder swapped for a link mid-walk is not entered);
// it counts allocated blocks (a sparse file costs what it occupies) and a hard-linked file
// once; it is bounded, and a walk that hits a bound or an unreadable folder counts as over
// the limit (fail closed).
// The guard only wakes while a group has a container, is over its limit, or space is low.

import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.ts';
import { groupPaths } from './paths.ts';

/** Entries and folder depth one walk may visit; beyond them a folder counts as over its limit. */
export const MAX_ENTRIES = 250_000;
export const MAX_DEPTH = 64;

const SIZE = /^(\d+(?:\.\d+)?)([kmg])$/i;

/** Bytes of a size like `512m` or `1.5g` (binary units, as the engine reads memory sizes). */
export function parseSize(s: string): number {
  const m = SIZE.exec(s);
  if (!m) throw new Error(`not a size: ${JSON.stringify(s)} (expected e.g. 512m or 2g)`);
  return Math.round(Number(m[1]) * 1024 ** ('kmg'.indexOf(m[2]!.toLowerCase()) + 1));
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${Math.round(n / 2 ** 20)} MiB`;
  return `${Math.ceil(n / 1024)} KiB`;
}

/** Checks a HAKO_DISK_RESERVE value: a size (`512m`) or a share of the file system (`5%`). */
export function reserveProblem(s: string): string | null {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (pct) return Number(pct[1]) > 0 && Number(pct[1]) <= 50 ? null : 'a percentage must be above 0 and at most 50';
  return SIZE.test(s) ? null : 'expected a size like 512m or 1g, or a share like 5%';
}

/** The reserve in bytes for a file system of `total` bytes. */
export function reserveBytes(s: string, total: number): number {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  return pct ? Math.round(total * Number(pct[1]) / 100) : parseSize(s);
}

/** Whether space counts as low; once low, it must climb a quarter above the reserve to recover (no flapping). */
export function isLow(wasLow: boolean, free: number, reserve: number): boolean {
  return free < (wasLow ? reserve * 1.25 : reserve);
}

export interface Usage {
  readonly bytes: number;
  readonly entries: number;
  /** Why the walk could not see everything (a bound, an unreadable folder), or null. */
  readonly incomplete: string | null;
}

/** What is wrong with a group's usage under `limit` bytes, or null. Addressed to the group. */
export function usageProblem(u: Usage, limit: number): string | null {
  if (u.incomplete) return `your folder cannot be measured: it has ${u.incomplete}`;
  if (u.bytes > limit) return `your folder uses ${formatBytes(u.bytes)} of its ${formatBytes(limit)} limit`;
  return null;
}

export type Pace = 'turn' | 'warm' | 'over';

/** How long after a walk the group is walked again: a few seconds in a turn, never more than ~5% of the time spent walking. */
export function walkDelay(pace: Pace, lastWalkMs: number): number {
  return Math.max(pace === 'turn' ? 2000 : pace === 'warm' ? 10_000 : 30_000, 20 * lastWalkMs);
}

/** How often the guard wakes: free space is read every tick (one statfs), walks when due. Null: sleep. */
export function tickDelay(s: { turn: boolean; warm: boolean; low: boolean; over: boolean }): number | null {
  if (s.turn) return 1000;
  if (s.low) return 5000;
  if (s.warm) return 10_000;
  return s.over ? 30_000 : null;
}

/** Whether `err` says the disk is full (SQLite's SQLITE_FULL, or ENOSPC from a plain write). */
export function isDiskFull(err: unknown): boolean {
  const e = err as { errcode?: unknown; code?: unknown } | null;
  return (typeof e?.errcode === 'number' && (e.errcode & 0xff) === 13) || e?.code === 'ENOSPC';
}

const PROC_FD = process.platform === 'linux' && fs.existsSync('/proc/self/fd');
const DIR_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

/**
 * Adds up what `roots` occupy, without following links. Synchronous calls in slices with
 * a yield between them: faster than one promise per entry, and the host keeps serving.
 */
export async function measureUsage(roots: readonly string[], limits: { maxEntries?: number; maxDepth?: number } = {}): Promise<Usage> {
  const maxEntries = limits.maxEntries ?? MAX_ENTRIES;
  const maxDepth = limits.maxDepth ?? MAX_DEPTH;
  const seen = new Set<string>();
  let bytes = 0, entries = 0, sinceYield = 0;
  let incomplete: string | null = null;
  const count = (st: fs.Stats): void => {
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    bytes += st.blocks * 512;
  };
  const walk = async (dir: string, depth: number): Promise<void> => {
    let fd: number;
    try {
      fd = fs.openSync(dir, DIR_FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Vanished, or turned into a link or a file: nothing to enter. Anything else
      // (a folder made unreadable) would hide what is inside it.
      if (code !== 'ENOENT' && code !== 'ELOOP' && code !== 'ENOTDIR') incomplete = `a folder hako cannot read (${code})`;
      return;
    }
    try {
      count(fs.fstatSync(fd));
      // Through the descriptor, every name below is looked up in the folder that was opened.
      const base = PROC_FD ? `/proc/self/fd/${fd}` : dir;
      for (const name of fs.readdirSync(base)) {
        if (++entries > maxEntries) { incomplete = `more than ${maxEntries} files`; return; }
        if (++sinceYield >= 500) { sinceYield = 0; await new Promise((r) => setImmediate(r)); }
        const st = fs.lstatSync(`${base}/${name}`, { throwIfNoEntry: false });
        if (!st) continue;
        if (!st.isDirectory()) { count(st); continue; }
        if (depth + 1 > maxDepth) { incomplete = `folders nested deeper than ${maxDepth}`; return; }
        await walk(`${base}/${name}`, depth + 1);
        if (incomplete) return;
      }
    } catch (err) {
      // A folder that cannot be listed, or an entry that cannot be looked at (modes the
      // agent chose), would hide what is behind it.
      incomplete ??= `a folder hako cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    } finally {
      fs.closeSync(fd);
    }
  };
  for (const root of roots) if (!incomplete) await walk(root, 0);
  return { bytes, entries, incomplete };
}

export interface Space { readonly free: number; readonly total: number }

/** Free space (for unprivileged writers) and size of the file system holding `dir`. */
/** statfs(2) is one quick system call: asked before every turn, a thread-pool round trip cost more. */
export async function statSpace(dir: string): Promise<Space> {
  const s = fs.statfsSync(dir);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

export interface DiskGuardOptions {
  readonly home: string;
  /** HAKO_DISK_RESERVE, already validated. */
  readonly reserve: string;
  readonly log: Logger;
  /** Contract: the group's size limit in bytes, or undefined when the group is gone. Must not throw. */
  readonly limit: (group: string) => number | undefined;
  /** Contract: the groups that have a container now, and whether a turn runs in it. Must not throw. */
  readonly active: () => ReadonlyMap<string, 'turn' | 'warm'>;
  /** Called once when a group goes over its limit (again only after it was under). May throw (logged). */
  readonly onOver: (group: string, problem: string) => void;
  /** Called when a group that was over its limit is under it again. */
  readonly onUnder: (group: string) => void;
  /** Called once when free space falls below the reserve. */
  readonly onLow: (problem: string) => void;
  /** Called when free space is back above the reserve (with a margin). */
  readonly onSpace: () => void;
  /** Replaces statfs (tests). */
  readonly statSpace?: (dir: string) => Promise<Space>;
}

export class DiskGuard {
  readonly #opts: DiskGuardOptions;
  #space: (Space & { reserve: number }) | undefined;
  #low: string | null = null;
  /** Groups over their limit, with the problem as they were told it. */
  readonly #over = new Map<string, string>();
  readonly #walked = new Map<string, { at: number; ms: number; bytes: number }>();
  readonly #walking = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #closed = false;

  constructor(opts: DiskGuardOptions) {
    this.#opts = opts;
  }

  /** Why containers may not run now (free space below the reserve), or null. */
  get low(): string | null {
    return this.#low;
  }

  /**
   * Whether a turn of `group` may start: null when it may, else the reason (the group or
   * the owner was already told). Reads free space, and walks the group when it was over
   * its limit or has not been measured by this process yet.
   */
  async admit(group: string): Promise<string | null> {
    await this.#checkSpace();
    if (!this.#low && (this.#over.has(group) || !this.#walked.has(group))) await this.#checkGroup(group);
    // A refusal found here must be watched until it clears, even when no container runs:
    // the kept messages are served only when the guard reports the space or the group back.
    this.#arm();
    return this.#low ?? this.#over.get(group) ?? null;
  }

  /** Measures the group now (the end of a turn); returns its problem, if any. */
  async check(group: string): Promise<string | null> {
    await this.#checkGroup(group);
    this.#arm();
    return this.#over.get(group) ?? null;
  }

  /** A turn started: checks follow at the turn's pace from now on. */
  wake(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#arm();
  }

  status() {
    return {
      free: this.#space?.free ?? null, reserve: this.#space?.reserve ?? null, low: this.#low,
      groups: Object.fromEntries([...this.#walked].map(([g, w]) => [g, { bytes: w.bytes, over: this.#over.get(g) ?? null }])),
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #call(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#opts.log.error('disk guard: handler failed', { what, error: String(err) });
    }
  }

  async #checkSpace(): Promise<void> {
    let problem: string | null;
    try {
      const space = await (this.#opts.statSpace ?? statSpace)(this.#opts.home);
      const reserve = reserveBytes(this.#opts.reserve, space.total);
      this.#space = { ...space, reserve };
      problem = isLow(this.#low !== null, space.free, reserve)
        ? `the disk that holds hako's data has ${formatBytes(space.free)} free, less than its reserve of ${formatBytes(reserve)}`
        : null;
    } catch (err) {
      problem = `the free space of ${this.#opts.home} cannot be read (${String(err)})`; // fail closed
    }
    if (problem && !this.#low) {
      this.#low = problem;
      this.#call('low', () => this.#opts.onLow(problem));
    } else if (problem) {
      this.#low = problem;
    } else if (this.#low) {
      this.#low = null;
      this.#call('space', () => this.#opts.onSpace());
    }
  }

  /** One walk per group at a time; a caller arriving meanwhile gets that walk's result. */
  #checkGroup(group: string): Promise<void> {
    const running = this.#walking.get(group);
    if (running) return running;
    const walk = this.#walk(group).finally(() => this.#walking.delete(group));
    this.#walking.set(group, walk);
    return walk;
  }

  async #walk(group: string): Promise<void> {
    const limit = this.#opts.limit(group);
    if (limit === undefined) {
      this.#over.delete(group);
      this.#walked.delete(group);
      return;
    }
    const p = groupPaths(this.#opts.home, group);
    const started = performance.now();
    const usage = await measureUsage([p.folder, p.ipcOut]).catch((err: unknown): Usage => ({ bytes: 0, entries: 0, incomplete: `a folder hako cannot read (${String(err)})` }));
    this.#walked.set(group, { at: Date.now(), ms: performance.now() - started, bytes: usage.bytes });
    const problem = usageProblem(usage, limit);
    const was = this.#over.get(group);
    if (problem) this.#over.set(group, problem);
    else this.#over.delete(group);
    if (problem && !was) this.#call('over', () => this.#opts.onOver(group, problem));
    else if (!problem && was) this.#call('under', () => this.#opts.onUnder(group));
  }

  #arm(): void {
    if (this.#closed || this.#timer || this.#ticking) return;
    const kinds = [...this.#opts.active().values()];
    const delay = tickDelay({ turn: kinds.includes('turn'), warm: kinds.includes('warm'), low: this.#low !== null, over: this.#over.size > 0 });
    if (delay === null) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#ticking = true;
      this.#tick().catch((err: unknown) => this.#opts.log.error('disk check failed', { error: String(err) })).finally(() => {
        this.#ticking = false;
        this.#arm();
      });
    }, delay);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    await this.#checkSpace();
    const now = Date.now();
    const paces = new Map<string, Pace>(this.#opts.active());
    for (const g of this.#over.keys()) if (!paces.has(g)) paces.set(g, 'over');
    for (const [g, pace] of paces) {
      const w = this.#walked.get(g);
      if (!w || now - w.at >= walkDelay(pace, w.ms)) await this.#checkGroup(g);
    }
  }
}
