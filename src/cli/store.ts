// The CLI's way into hako's state, the one place the CLI names the store implementation;
// commands use what it opens through the interfaces of core/store-contract.ts. Works whether
// or not the host is running (SQLite WAL lets both open the database).

import fs from 'node:fs';
import { homePaths } from '../core/paths.ts';
import { Store } from '../core/store.ts';
import type { BatchStore, GroupStore, MessageStore, TaskStore, Transactional, UsageStore } from '../core/store-contract.ts';

/** Every concern of the store, and `close` for when the command is done with it. */
export type CliStore = GroupStore & MessageStore & BatchStore & TaskStore & UsageStore & Transactional & { close(): void };

/** Opens hako.db in `home`, making `home` (mode 0700) if it is missing. The caller closes it. */
export function openStore(home: string): CliStore {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  return new Store(homePaths(home).db);
}
