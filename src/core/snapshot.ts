// The copy of hako.db taken before a schema migration: an upgrade that goes wrong must
// leave the owner the database as it was. Written with VACUUM INTO (synchronous, one
// consistent read of the open connection) into HAKO_HOME/backups/, owner-only.
//
// Invariants: the copy exists, complete and 0600, before the first migration runs; a
// copy that cannot be made stops the upgrade (the caller throws, nothing is migrated).

import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseSync } from 'node:sqlite';

/** HAKO_HOME/backups, next to hako.db. */
export function backupsDir(dbFile: string): string {
  return path.join(path.dirname(dbFile), 'backups');
}

/**
 * Copies the database open on `db` (file `dbFile`, at schema `version`) to
 * backups/hako-schema<version>-<time>.db and returns that path. Throws, naming the
 * folder, when it cannot (the disk is full, the folder is not writable).
 */
export function copyBeforeMigration(db: DatabaseSync, dbFile: string, version: number, now: Date = new Date()): string {
  const dir = backupsDir(dbFile);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const target = path.join(dir, `hako-schema${version}-${stamp}.db`);
  // Made empty and owner-only first (VACUUM INTO takes an empty file), so the copy is
  // never readable by others, not even for a moment.
  fs.closeSync(fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
  try {
    db.prepare('VACUUM INTO ?').run(target);
  } catch (err) {
    fs.rmSync(target, { force: true });
    throw new Error(`could not copy ${dbFile} to ${dir} before upgrading its schema from version ${version}: ${(err as Error).message} (free some space or fix the folder's permissions, then start again)`, { cause: err });
  }
  return target;
}
