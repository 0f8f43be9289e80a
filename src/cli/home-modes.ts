// Owner-only HAKO_HOME: `hako start` sets the process umask and tightens what an earlier
// version (or another umask) left readable, before any channel or container starts.
//
// Invariant: after `tightenHome`, no file or folder in HAKO_HOME is readable, writable or
// searchable by group or others, except what a container user other than the owner must
// read (CONTAINER_READABLE) and the contents of the folders a container owns. Links are
// never followed, and folders an agent can write are not entered.

import fs from 'node:fs';
import path from 'node:path';

/**
 * Paths (relative to HAKO_HOME, `*` = one group name) that a container user other than the
 * host user reads, with why. Only when the host runs as root does the container run as
 * another user (1000:1000, see runner.ts containerUser); these are the mount roots and
 * what the host writes into them.
 */
export const CONTAINER_READABLE: readonly { readonly pattern: string; readonly why: string }[] = [
  { pattern: 'global', why: 'mounted at /workspace/global in every container (read-write only in main\'s)' },
  { pattern: 'global/MEMORY.md', why: 'the shared memory file every agent reads' },
  { pattern: 'ipc/*/in', why: 'mounted read-only as the agent\'s inbox' },
  { pattern: 'ipc/*/in/*', why: 'messages the host writes for the agent to read' },
  { pattern: 'run/*', why: 'mounted read-only at /run/hako; the agent connects to proxy.sock inside it' },
];

/** Folders a container owns (uid 1000 under a root host): the folder is owner-only, its contents are the agent's. */
// global/ is written by the main group's agent, so it is not entered either.
export const CONTAINER_OWNED: readonly string[] = ['groups/*', 'ipc/*/out', 'global'];

function matchesPattern(rel: string, pattern: string): boolean {
  const a = rel.split(path.sep);
  const b = pattern.split('/');
  return a.length === b.length && b.every((p, i) => p === '*' || p === a[i]);
}

const readableByContainer = (rel: string) => CONTAINER_READABLE.some((e) => matchesPattern(rel, e.pattern));
const ownedByContainer = (rel: string) => CONTAINER_OWNED.some((p) => matchesPattern(rel, p));

/** Whether the container runs as another user than the host (a root host): only then do the exceptions apply. */
export const containerIsOther = (): boolean => process.getuid?.() === 0;

/**
 * The umask for the host: owner-only, except for a root host, whose containers run as
 * another user and must read what the host creates for them (those paths are given
 * explicit modes; everything else is tightened by `tightenHome`).
 */
export function hostUmask(): number {
  return containerIsOther() ? 0o022 : 0o077;
}

/**
 * Removes group and other bits from everything in `home` except the exceptions above.
 * Contract: throws with the path and a fix when a path cannot be changed; `home` must exist.
 */
export function tightenHome(home: string): void {
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir)) {
      const full = path.join(dir, name);
      const r = rel ? path.join(rel, name) : name;
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) continue;
      const keep = containerIsOther() && readableByContainer(r);
      if (!keep && (st.mode & 0o077) !== 0) chmod(full, st.mode & 0o700);
      if (st.isDirectory() && !ownedByContainer(r)) walk(full, r);
    }
  };
  const st = fs.lstatSync(home);
  if ((st.mode & 0o077) !== 0) chmod(home, st.mode & 0o700);
  walk(home, '');
}

function chmod(file: string, mode: number): void {
  try {
    fs.chmodSync(file, mode);
  } catch (err) {
    throw new Error(`cannot make ${file} owner-only (${(err as NodeJS.ErrnoException).code ?? String(err)}): run chmod go-rwx ${file}, as its owner, and start again`);
  }
}
