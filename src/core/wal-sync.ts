// Makes a SQLite database's commits survive a power cut without holding up the event loop:
// the commits themselves run with `synchronous = NORMAL` (no fsync), and a sync is an
// fdatasync of the write-ahead log in libuv's thread pool, so the host goes on (e.g. hands
// a batch to its container) while the disk confirms.
//
// Invariants: a sync covers every commit made before it was asked for (an fdatasync flushes
// the file, whichever descriptor wrote it); callers that ask while one runs share one more
// after it, never the one already running, which may have started before their commit. The
// WAL is opened by path for each sync, without following a symlink, so a recreated WAL is
// never missed; its folder is synced too the first time a WAL file is seen, because a new
// file's name must reach the disk with it. With no WAL (rollback-journal mode, or every
// commit already checkpointed and the WAL removed) the database file itself is synced.

import fs from 'node:fs';
import path from 'node:path';

export class WalSync {
  readonly #db: string;
  readonly #wal: boolean;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  /** The WAL file (device:inode) whose folder entry is known to be on disk. */
  #namedOnDisk: string | undefined;

  /** `db`: the database file; `wal`: whether it is in WAL mode. */
  constructor(db: string, wal: boolean) {
    this.#db = db;
    this.#wal = wal;
  }

  /** Resolves once every commit made before the call is on disk; rejects with the disk's error. */
  sync(): Promise<void> {
    if (this.#next) return this.#next;
    if (!this.#running) return this.#start();
    const next = this.#running.catch(() => {}).then(() => {
      this.#next = undefined;
      return this.#start();
    });
    this.#next = next;
    return next;
  }

  /** Resolves when every sync asked for so far has ended, failed ones included; asks for none. */
  settled(): Promise<void> {
    return (this.#next ?? this.#running ?? Promise.resolve()).catch(() => {});
  }

  #start(): Promise<void> {
    const running = this.#once().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }

  async #once(): Promise<void> {
    const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
    const wal = this.#wal ? await fs.promises.open(`${this.#db}-wal`, flags).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    }) : undefined;
    const file = wal ?? await fs.promises.open(this.#db, flags);
    try {
      await file.datasync();
      if (!wal) return;
      const st = await file.stat();
      const id = `${st.dev}:${st.ino}`;
      if (this.#namedOnDisk === id) return;
      const dir = await fs.promises.open(path.dirname(this.#db), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      this.#namedOnDisk = id;
    } finally {
      await file.close();
    }
  }
}
