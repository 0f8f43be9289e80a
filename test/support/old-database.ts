// A hako.db as an older version left it: the migrations before the one whose SQL holds
// `marker`, and a main group, so a test can open it with today's Store and see the upgrade.

import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { MIGRATIONS } from '../../src/core/store.ts';

export function databaseBefore(file: string, marker: string): void {
  const before = MIGRATIONS.findIndex((m) => m.includes(marker));
  assert.ok(before > 0, `a migration holds ${marker}`);
  const db = new DatabaseSync(file);
  for (let v = 0; v < before; v++) db.exec(MIGRATIONS[v]!);
  db.exec(`PRAGMA user_version = ${before}`);
  db.prepare('INSERT INTO groups (name, is_main, created_at) VALUES (?, 1, ?)').run('main', new Date().toISOString());
  db.close();
}
