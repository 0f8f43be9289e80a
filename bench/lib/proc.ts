// Linux /proc readings for a process: CPU time (user + system) and resident memory, for the
// host and for the processes it started (with the Engine API, none per container).

import fs from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every common Linux build. */
const CLK_TCK = 100;

/** utime + stime of `pid`, in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** A `kB` field of /proc/<pid>/status in bytes, or 0 when the process is gone. */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident set size of `pid` in bytes (VmRSS), or 0 when the process is gone. */
export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/** Peak resident set size (VmHWM) of `pid` in bytes. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/** Direct children of `pid` (scans /proc: this kernel has no /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Every process below `pid`: its children, theirs, and so on. */
export function descendantPids(pid: number): number[] {
  const out: number[] = [];
  for (let level = childPids(pid); level.length; level = level.flatMap(childPids)) out.push(...level);
  return out;
}

export const MB = 1024 * 1024;

/**
 * Samples RSS of `pid` (and the summed RSS of every process below it) every `everyMs` until stopped.
 * Child scans are costlier, so they run on every `childEvery`-th tick.
 */
export function sampleMemory(pid: number, everyMs = 100, childEvery = 5) {
  const host: number[] = [];
  const withChildren: number[] = [];
  let maxChildren = 0;
  let tick = 0;
  const timer = setInterval(() => {
    const r = rssBytes(pid);
    if (r === 0) return;
    host.push(r);
    if (tick++ % childEvery === 0) {
      const kids = descendantPids(pid);
      maxChildren = Math.max(maxChildren, kids.length);
      withChildren.push(r + kids.reduce((s, k) => s + rssBytes(k), 0));
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { host, withChildren, maxChildren };
    },
  };
}
