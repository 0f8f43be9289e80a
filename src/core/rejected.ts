// Keeps a group's ipc/<g>/rejected/ bounded: the newest rejected files and their reasons
// stay for the owner to inspect, older ones are deleted, so an agent that floods out/ with
// junk cannot fill the host's disk through the one folder it cannot clean itself.
//
// Invariants: rejected/ is host-only (never mounted); entries are named
// `<ms since epoch>-<name>` and `<that>.reason`, so name order is age order. Folders are
// never kept (what they hold is not counted); a link is kept as the link, never followed.

import fs from 'node:fs/promises';
import path from 'node:path';

/** Rejected files kept per group, each with its reason. */
export const REJECTED_KEEP = 300;
/** Bytes kept per group (as lstat counts them); older bodies beyond it go first. */
export const REJECTED_MAX_BYTES = 32 * 1024 * 1024;

export interface RejectedEntry {
  readonly name: string;
  readonly bytes: number;
  readonly folder: boolean;
}

/** Which entries to delete: all but the newest `keep` items, and whatever exceeds `maxBytes` (newest kept first). */
export function rejectedToDrop(entries: readonly RejectedEntry[], keep = REJECTED_KEEP, maxBytes = REJECTED_MAX_BYTES): string[] {
  const base = (name: string) => name.replace(/\.reason$/, '');
  const newestFirst = [...new Set(entries.map((e) => base(e.name)))].sort().reverse();
  const kept = new Set(newestFirst.slice(0, keep));
  const drop: string[] = [];
  let bytes = 0;
  // Reasons before bodies of the same age: a reason is small and says what the body was.
  const order = [...entries].sort((a, b) => (base(a.name) === base(b.name) ? Number(b.name.endsWith('.reason')) - Number(a.name.endsWith('.reason')) : base(a.name) < base(b.name) ? 1 : -1));
  for (const e of order) {
    if (!kept.has(base(e.name)) || e.folder || bytes + e.bytes > maxBytes) drop.push(e.name);
    else bytes += e.bytes;
  }
  return drop;
}

/** Applies `rejectedToDrop` to `dir`; returns how many entries it deleted. */
export async function pruneRejected(dir: string): Promise<number> {
  const entries: RejectedEntry[] = [];
  for (const name of await fs.readdir(dir)) {
    try {
      const st = await fs.lstat(path.join(dir, name));
      entries.push({ name, bytes: st.size, folder: st.isDirectory() });
    } catch {
      // Gone meanwhile.
    }
  }
  const drop = rejectedToDrop(entries);
  // rm never follows a link: a link is removed itself, a folder with what it holds.
  for (const name of drop) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  return drop.length;
}
