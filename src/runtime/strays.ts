// Finds and kills the processes a turn left behind in a container, from the host, without
// asking anything inside the container (the agent may be compromised). Linux only: the
// container's processes are read from its cgroup's `cgroup.procs` and `/proc`, which costs
// microseconds per turn instead of an engine call.
//
// Invariants: only the container's init (pid 1 inside) and init's oldest child (the
// container's command, the agent) are kept; a process started later cannot look older.
// Whenever the answer is uncertain (no cgroup, no permission, processes keep appearing)
// the result is null, and the caller recycles the container instead.

import fs from 'node:fs';

export interface ProcInfo {
  /** Host pid. */
  readonly pid: number;
  /** Host pid of the parent. */
  readonly ppid: number;
  /** Pid inside the container's pid namespace. */
  readonly nsPid: number;
  /** Start time in clock ticks since boot. */
  readonly start: number;
  /** Exited, waiting to be reaped: it can do nothing any more. */
  readonly zombie: boolean;
}

/** Host pids to kill: all but init and its oldest child. Null when there is no init (the container is gone). */
export function strayPids(procs: readonly ProcInfo[]): number[] | null {
  const init = procs.find((p) => p.nsPid === 1);
  if (!init) return null;
  const main = procs.filter((p) => p.ppid === init.pid).sort((a, b) => a.start - b.start || a.nsPid - b.nsPid)[0];
  return procs.filter((p) => p !== init && p !== main && !p.zombie).map((p) => p.pid);
}

/** Parses /proc/<pid>/stat and /proc/<pid>/status; undefined unless it is a process inside a pid namespace. */
export function parseProc(pid: number, stat: string, status: string): ProcInfo | undefined {
  // The command name may hold spaces and parentheses: the fields follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const nsPids = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
  const ppid = Number(fields[1]);
  const start = Number(fields[19]);
  // One pid only: the process lives in the host's own namespace, so it is no container's.
  if (nsPids.length < 2 || !Number.isInteger(ppid) || !Number.isInteger(start)) return undefined;
  return { pid, ppid, nsPid: Number(nsPids.at(-1)), start, zombie: fields[0] === 'Z' || fields[0] === 'X' };
}

/**
 * The `cgroup.procs` file of the container whose init has host pid `initPid`, or null.
 * The cgroup path must name the container's id, so a reused pid cannot point elsewhere.
 */
export function cgroupProcsFile(initPid: number, containerId: string, root = '/sys/fs/cgroup'): string | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${initPid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
  const candidates: string[] = [];
  for (const line of text.split('\n')) {
    const [, controllers, where] = /^\d+:([^:]*):(\/.*)$/.exec(line) ?? [];
    if (where === undefined || !where.includes(containerId) || where.includes('..')) continue;
    if (controllers!.split(',').includes('pids')) candidates.unshift(`${root}/pids${where}/cgroup.procs`); // cgroup v1
    if (controllers === '') candidates.push(`${root}${where}/cgroup.procs`, `${root}/unified${where}/cgroup.procs`); // v2, pure or hybrid
  }
  return candidates.find((f) => fs.existsSync(f)) ?? null;
}

function readProcs(procsFile: string): ProcInfo[] | null {
  let pids: number[];
  try {
    pids = fs.readFileSync(procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return null;
  }
  const procs: ProcInfo[] = [];
  for (const pid of pids) {
    try {
      const info = parseProc(pid, fs.readFileSync(`/proc/${pid}/stat`, 'utf8'), fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!info) return null;
      procs.push(info);
    } catch {
      // Exited between the two reads: nothing to kill.
    }
  }
  return procs;
}

/** Rounds of look-and-kill before giving up on a process tree that keeps forking. */
const ROUNDS = 5;
/** How long killed processes may take to die before the container counts as unsure. */
const DEATH_MS = 2000;

function dead(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

/** Resolves true once every pid has died (SIGKILL is delivered asynchronously), false after DEATH_MS. */
async function died(pids: readonly number[]): Promise<boolean> {
  const deadline = Date.now() + DEATH_MS;
  for (;;) {
    if (pids.every(dead)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2)); // Node has no pidfd to wait on
  }
}

/** Kills the strays of the container whose cgroup lists its processes in `procsFile`; how many, or null when unsure. */
export async function killStrays(procsFile: string): Promise<number | null> {
  let killed = 0;
  for (let round = 0; ; round++) {
    const procs = readProcs(procsFile);
    const strays = procs && strayPids(procs);
    if (!strays) return null;
    if (strays.length === 0) return killed;
    if (round === ROUNDS) return null;
    for (const pid of strays) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') return null; // EPERM: not ours to kill (user namespaces)
      }
    }
    if (!(await died(strays))) return null;
  }
}
