// hako.db's schema: versioned migrations keyed on PRAGMA user_version, never edited once
// released (a change is a new migration), and the one function that applies them.

import type { DatabaseSync } from 'node:sqlite';

export const MIGRATIONS: readonly string[] = [
  // 1: groups, messages, batches, outputs
  `CREATE TABLE groups (
     name TEXT PRIMARY KEY,
     is_main INTEGER NOT NULL DEFAULT 0,
     trigger TEXT,
     model TEXT,
     created_at TEXT NOT NULL
   ) STRICT;
   CREATE UNIQUE INDEX groups_one_main ON groups(is_main) WHERE is_main = 1;
   CREATE TABLE messages (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
     sender TEXT NOT NULL,
     text TEXT NOT NULL,
     ts TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('context', 'pending', 'in_batch', 'answered', 'failed', 'sent')),
     batch_id TEXT,
     attempts INTEGER NOT NULL DEFAULT 0
   ) STRICT;
   CREATE INDEX messages_by_group ON messages(group_name, seq);
   CREATE INDEX messages_open ON messages(state, group_name) WHERE state IN ('pending', 'in_batch');
   CREATE TABLE batches (
     id TEXT PRIMARY KEY,
     group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
     created_at TEXT NOT NULL,
     finished_at TEXT,
     error TEXT
   ) STRICT;
   CREATE TABLE outputs (
     id TEXT PRIMARY KEY,
     group_name TEXT NOT NULL,
     batch_id TEXT,
     type TEXT NOT NULL,
     applied_at TEXT NOT NULL
   ) STRICT;`,
  // 2: scheduled tasks and their runs, sender allowlists, delivery state of replies
  `CREATE TABLE tasks (
     id TEXT PRIMARY KEY,
     group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     prompt TEXT NOT NULL,
     schedule TEXT NOT NULL,
     context TEXT NOT NULL CHECK (context IN ('group', 'isolated')),
     state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'cancelled', 'completed')),
     next_run INTEGER,
     created_by TEXT NOT NULL,
     created_at TEXT NOT NULL
   ) STRICT;
   CREATE INDEX tasks_due ON tasks(state, next_run);
   CREATE TABLE task_runs (
     id TEXT PRIMARY KEY,
     task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
     group_name TEXT NOT NULL,
     scheduled_for INTEGER NOT NULL,
     manual INTEGER NOT NULL DEFAULT 0,
     state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     batch_id TEXT,
     started_at TEXT,
     ended_at TEXT,
     error TEXT,
     summary TEXT
   ) STRICT;
   CREATE INDEX task_runs_by_task ON task_runs(task_id, scheduled_for);
   CREATE INDEX task_runs_open ON task_runs(state, group_name) WHERE state IN ('queued', 'running');
   ALTER TABLE batches ADD COLUMN task_run_id TEXT;
   ALTER TABLE groups ADD COLUMN allowed_senders TEXT;
   ALTER TABLE messages ADD COLUMN delivery TEXT;`,
  // 3: the hash-chained audit log (append-only), per-group mounts and limits
  `CREATE TABLE audit (
     seq INTEGER PRIMARY KEY,
     ts TEXT NOT NULL,
     kind TEXT NOT NULL,
     group_name TEXT,
     data TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   ) STRICT;
   CREATE INDEX audit_by_group ON audit(group_name, seq);
   CREATE INDEX audit_by_kind ON audit(kind, seq);
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   ALTER TABLE groups ADD COLUMN mounts TEXT;
   ALTER TABLE groups ADD COLUMN limits TEXT;`,
  // 4: a task a non-main agent made is 'pending' until the owner approves it; tasks that
  // non-main agents made before this version (not yet cancelled or completed) wait too.
  `CREATE TABLE tasks_v4 (
     id TEXT PRIMARY KEY,
     group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     prompt TEXT NOT NULL,
     schedule TEXT NOT NULL,
     context TEXT NOT NULL CHECK (context IN ('group', 'isolated')),
     state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'paused', 'cancelled', 'completed')),
     next_run INTEGER,
     created_by TEXT NOT NULL,
     created_at TEXT NOT NULL
   ) STRICT;
   INSERT INTO tasks_v4 SELECT id, group_name, prompt, schedule, context, state, next_run, created_by, created_at FROM tasks;
   DROP TABLE tasks;
   ALTER TABLE tasks_v4 RENAME TO tasks;
   CREATE INDEX tasks_due ON tasks(state, next_run);
   UPDATE tasks SET state = 'pending', next_run = NULL
     WHERE state IN ('active', 'paused') AND created_by LIKE 'group:%'
       AND substr(created_by, 7) NOT IN (SELECT name FROM groups WHERE is_main = 1);`,
  // 5: chat bindings (an address belongs to at most one group), where a message came from,
  // and delivery state per (message, chat). Before this version no channel sent anything
  // (the local channels read the store), so the old all-channels flag is dropped.
  `CREATE TABLE chats (
     address TEXT PRIMARY KEY,
     group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     created_at TEXT NOT NULL
   ) STRICT;
   CREATE INDEX chats_by_group ON chats(group_name);
   CREATE TABLE unknown_chats (
     address TEXT PRIMARY KEY,
     title TEXT,
     first_seen TEXT NOT NULL,
     last_seen TEXT NOT NULL,
     count INTEGER NOT NULL
   ) STRICT;
   ALTER TABLE messages ADD COLUMN chat TEXT;
   ALTER TABLE messages ADD COLUMN sender_id TEXT;
   ALTER TABLE messages ADD COLUMN ref TEXT;
   ALTER TABLE messages ADD COLUMN file TEXT;
   CREATE UNIQUE INDEX messages_by_ref ON messages(chat, ref) WHERE ref IS NOT NULL;
   ALTER TABLE messages DROP COLUMN delivery;
   CREATE TABLE deliveries (
     message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
     chat TEXT NOT NULL,
     reply_to TEXT,
     state TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
     attempts INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     PRIMARY KEY (message_id, chat)
   ) STRICT;
   CREATE INDEX deliveries_pending ON deliveries(state) WHERE state = 'pending';`,
  // 6: model tokens used per group and day (the owner's time zone), a group's own daily
  // token budget, and whether a user message engaged the agent. No foreign key: a removed group's tokens still count toward today's total.
  `CREATE TABLE usage (
     day TEXT NOT NULL,
     group_name TEXT NOT NULL,
     input INTEGER NOT NULL DEFAULT 0,
     output INTEGER NOT NULL DEFAULT 0,
     requests INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (day, group_name)
   ) STRICT;
   ALTER TABLE groups ADD COLUMN tokens_per_day INTEGER;
   -- Whether a user message called the agent, kept after a later batch takes it as context.
   -- Rows from before are judged by their state, which is all that is known of them.
   ALTER TABLE messages ADD COLUMN engaged INTEGER;
   UPDATE messages SET engaged = (state != 'context') WHERE role = 'user';`,
  // 7: a group's own context budget (tokens per model request); NULL: HAKO_CONTEXT_TOKENS or the model's default.
  `ALTER TABLE groups ADD COLUMN context_tokens INTEGER;`,
];

/**
 * Brings a database at schema version `from` up to the latest, one migration per
 * transaction (`atomic`). Throws for a database from a newer hako, and when a migration
 * would leave a broken foreign key (that migration is rolled back).
 */
export function migrate(db: DatabaseSync, from: number, atomic: <T>(fn: () => T) => T): void {
  if (from > MIGRATIONS.length) {
    throw new Error(`database schema version ${from} is newer than this hako (${MIGRATIONS.length}): upgrade hako or restore a matching backup`);
  }
  if (from === MIGRATIONS.length) return;
  // A migration may rebuild a table (SQLite cannot change a CHECK in place); with foreign
  // keys on, dropping the old table would cascade-delete its children. Off while
  // migrating (it cannot change inside a transaction), checked before going back on.
  db.exec('PRAGMA foreign_keys = OFF');
  try {
    for (let v = from; v < MIGRATIONS.length; v++) {
      atomic(() => {
        db.exec(MIGRATIONS[v]!);
        const broken = db.prepare('PRAGMA foreign_key_check').all();
        if (broken.length > 0) throw new Error(`migration ${v + 1} broke ${broken.length} foreign key reference(s): restore a backup of hako.db and report this`);
        db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  } finally {
    db.exec('PRAGMA foreign_keys = ON');
  }
}
