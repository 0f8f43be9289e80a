// SQLite state (node:sqlite, WAL): groups, messages, batches and applied agent outputs.
//
// Invariants: a message is stored before anything else happens to it; a batch id is
// recorded before its file is written; an output id is recorded in the same transaction
// as its effect, so applying an output twice is a no-op. Schema changes are versioned
// migrations keyed on PRAGMA user_version and never edited once released.

import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { randomUUID } from 'node:crypto';

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
];

export interface Group {
  readonly name: string;
  readonly isMain: boolean;
  readonly trigger: string | null;
  readonly model: string | null;
  readonly createdAt: string;
}

export type Role = 'user' | 'assistant';
export type MessageState = 'context' | 'pending' | 'in_batch' | 'answered' | 'failed' | 'sent';

export interface StoredMessage {
  readonly id: string;
  readonly group: string;
  readonly role: Role;
  readonly sender: string;
  readonly text: string;
  readonly ts: string;
  readonly state: MessageState;
  readonly batchId: string | null;
  readonly attempts: number;
}

export interface Batch {
  readonly id: string;
  readonly group: string;
  readonly messages: readonly StoredMessage[];
}

export type FailOutcome =
  | { readonly kind: 'answered' } // a reply already reached the user: never re-run
  | { readonly kind: 'retry'; readonly attempts: number }
  | { readonly kind: 'gave_up'; readonly attempts: number };

type Row = Record<string, SQLInputValue>;

function toGroup(r: Row): Group {
  return { name: String(r.name), isMain: r.is_main === 1, trigger: r.trigger as string | null, model: r.model as string | null, createdAt: String(r.created_at) };
}

function toMessage(r: Row): StoredMessage {
  return {
    id: String(r.id), group: String(r.group_name), role: r.role as Role, sender: String(r.sender), text: String(r.text),
    ts: String(r.ts), state: r.state as MessageState, batchId: r.batch_id as string | null, attempts: Number(r.attempts),
  };
}

const now = () => new Date().toISOString();

export class Store {
  readonly #db: DatabaseSync;

  constructor(file: string) {
    this.#db = new DatabaseSync(file);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
    this.#migrate();
  }

  get schemaVersion(): number {
    return Number((this.#db.prepare('PRAGMA user_version').get() as Row).user_version);
  }

  #migrate(): void {
    const from = this.schemaVersion;
    if (from > MIGRATIONS.length) {
      throw new Error(`database schema version ${from} is newer than this hako (${MIGRATIONS.length}): upgrade hako or restore a matching backup`);
    }
    for (let v = from; v < MIGRATIONS.length; v++) {
      this.#tx(() => {
        this.#db.exec(MIGRATIONS[v]!);
        this.#db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  #tx<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #all(sql: string, ...args: SQLInputValue[]): Row[] {
    return this.#db.prepare(sql).all(...args) as Row[];
  }

  #get(sql: string, ...args: SQLInputValue[]): Row | undefined {
    return this.#db.prepare(sql).get(...args) as Row | undefined;
  }

  #run(sql: string, ...args: SQLInputValue[]): number {
    return Number(this.#db.prepare(sql).run(...args).changes);
  }

  close(): void {
    this.#db.close();
  }

  // ---- groups ------------------------------------------------------------------------

  addGroup(g: { name: string; isMain: boolean; trigger: string | null; model: string | null }): Group {
    if (this.getGroup(g.name)) throw new Error(`group "${g.name}" already exists`);
    if (g.isMain) {
      const main = this.mainGroup();
      if (main) throw new Error(`group "${main.name}" is already the main group: there can be only one`);
    }
    this.#run('INSERT INTO groups (name, is_main, trigger, model, created_at) VALUES (?, ?, ?, ?, ?)', g.name, g.isMain ? 1 : 0, g.trigger, g.model, now());
    return this.getGroup(g.name)!;
  }

  getGroup(name: string): Group | undefined {
    const r = this.#get('SELECT * FROM groups WHERE name = ?', name);
    return r && toGroup(r);
  }

  mainGroup(): Group | undefined {
    const r = this.#get('SELECT * FROM groups WHERE is_main = 1');
    return r && toGroup(r);
  }

  listGroups(): Group[] {
    return this.#all('SELECT * FROM groups ORDER BY name').map(toGroup);
  }

  removeGroup(name: string): boolean {
    return this.#tx(() => {
      this.#run('DELETE FROM outputs WHERE group_name = ?', name);
      return this.#run('DELETE FROM groups WHERE name = ?', name) > 0;
    });
  }

  // ---- messages ----------------------------------------------------------------------

  /** Stores an inbound message. `engage` false keeps it as context for the next turn. */
  addUserMessage(m: { group: string; sender: string; text: string; engage: boolean }): StoredMessage {
    const id = randomUUID();
    this.#run(
      'INSERT INTO messages (id, group_name, role, sender, text, ts, state) VALUES (?, ?, \'user\', ?, ?, ?, ?)',
      id, m.group, m.sender, m.text, now(), m.engage ? 'pending' : 'context',
    );
    return this.getMessage(id)!;
  }

  getMessage(id: string): StoredMessage | undefined {
    const r = this.#get('SELECT * FROM messages WHERE id = ?', id);
    return r && toMessage(r);
  }

  /** The conversation after message `afterId` (all of it when omitted), oldest first. */
  listMessages(group: string, opts: { afterId?: string; limit?: number } = {}): StoredMessage[] | undefined {
    let afterSeq = 0;
    if (opts.afterId !== undefined) {
      const r = this.#get('SELECT seq FROM messages WHERE id = ? AND group_name = ?', opts.afterId, group);
      if (!r) return undefined;
      afterSeq = Number(r.seq);
    }
    return this.#all('SELECT * FROM messages WHERE group_name = ? AND seq > ? ORDER BY seq LIMIT ?', group, afterSeq, opts.limit ?? 1000).map(toMessage);
  }

  /** Groups that have messages waiting for the agent. */
  groupsWithPending(): string[] {
    return this.#all("SELECT DISTINCT group_name FROM messages WHERE state = 'pending'").map((r) => String(r.group_name));
  }

  /**
   * Moves the group's waiting messages (pending, plus the context before them) into a new
   * running batch, in one transaction, up to `maxChars` of text. Returns undefined when
   * nothing is pending.
   */
  takeBatch(group: string, maxChars: number): Batch | undefined {
    return this.#tx(() => {
      const rows = this.#all("SELECT * FROM messages WHERE group_name = ? AND state IN ('pending', 'context') ORDER BY seq", group).map(toMessage);
      const lastPending = rows.findLastIndex((m) => m.state === 'pending');
      if (lastPending < 0) return undefined;
      const picked: StoredMessage[] = [];
      let chars = 0;
      for (const m of rows.slice(0, lastPending + 1)) {
        if (picked.length > 0 && chars + m.text.length > maxChars) break;
        picked.push(m);
        chars += m.text.length;
      }
      const id = randomUUID();
      this.#run("INSERT INTO batches (id, group_name, state, created_at) VALUES (?, ?, 'running', ?)", id, group, now());
      const mark = this.#db.prepare("UPDATE messages SET state = 'in_batch', batch_id = ? WHERE id = ?");
      for (const m of picked) mark.run(id, m.id);
      return { id, group, messages: picked.map((m) => ({ ...m, state: 'in_batch' as const, batchId: id })) };
    });
  }

  /**
   * Records an assistant message produced by agent output `outputId`, exactly once.
   * Returns the new message, or undefined if this output was applied before.
   */
  applyAssistantOutput(o: { outputId: string; group: string; batchId: string | null; type: string; text: string; sender: string }): StoredMessage | undefined {
    return this.#tx(() => {
      if (this.#get('SELECT 1 FROM outputs WHERE id = ?', o.outputId)) return undefined;
      this.#run('INSERT INTO outputs (id, group_name, batch_id, type, applied_at) VALUES (?, ?, ?, ?, ?)', o.outputId, o.group, o.batchId, o.type, now());
      const id = randomUUID();
      this.#run(
        "INSERT INTO messages (id, group_name, role, sender, text, ts, state, batch_id) VALUES (?, ?, 'assistant', ?, ?, ?, 'sent', ?)",
        id, o.group, o.sender, o.text, now(), o.batchId,
      );
      return this.getMessage(id);
    });
  }

  /** Records a non-message output (done, error) as applied; false if it already was. */
  markOutputApplied(o: { outputId: string; group: string; batchId: string | null; type: string }): boolean {
    return this.#tx(() => {
      if (this.#get('SELECT 1 FROM outputs WHERE id = ?', o.outputId)) return false;
      this.#run('INSERT INTO outputs (id, group_name, batch_id, type, applied_at) VALUES (?, ?, ?, ?, ?)', o.outputId, o.group, o.batchId, o.type, now());
      return true;
    });
  }

  getBatch(id: string): { id: string; group: string; state: string } | undefined {
    const r = this.#get('SELECT id, group_name, state FROM batches WHERE id = ?', id);
    return r && { id: String(r.id), group: String(r.group_name), state: String(r.state) };
  }

  /** The batch's messages count as answered. Idempotent. */
  finishBatch(batchId: string): void {
    this.#tx(() => {
      this.#run("UPDATE batches SET state = 'done', finished_at = ? WHERE id = ? AND state = 'running'", now(), batchId);
      this.#run("UPDATE messages SET state = 'answered' WHERE batch_id = ? AND state = 'in_batch'", batchId);
    });
  }

  /**
   * A batch ended without `done`. If any reply of it reached the user it counts as
   * answered (re-running would answer twice); otherwise its messages wait again, or fail
   * for good once they have had `maxAttempts` tries or the error is final.
   */
  failBatch(batchId: string, error: string, opts: { maxAttempts: number; retryable: boolean }): FailOutcome {
    return this.#tx(() => {
      const replied = this.#get("SELECT 1 FROM messages WHERE batch_id = ? AND role = 'assistant' LIMIT 1", batchId);
      if (replied) {
        this.#run("UPDATE batches SET state = 'done', finished_at = ?, error = ? WHERE id = ?", now(), error, batchId);
        this.#run("UPDATE messages SET state = 'answered' WHERE batch_id = ? AND state = 'in_batch'", batchId);
        return { kind: 'answered' };
      }
      this.#run("UPDATE batches SET state = 'failed', finished_at = ?, error = ? WHERE id = ?", now(), error, batchId);
      this.#run("UPDATE messages SET attempts = attempts + 1 WHERE batch_id = ? AND state = 'in_batch'", batchId);
      const r = this.#get("SELECT MAX(attempts) AS a FROM messages WHERE batch_id = ? AND state = 'in_batch'", batchId);
      const attempts = Number(r?.a ?? 0);
      if (!opts.retryable || attempts >= opts.maxAttempts) {
        this.#run("UPDATE messages SET state = 'failed' WHERE batch_id = ? AND state = 'in_batch'", batchId);
        return { kind: 'gave_up', attempts };
      }
      this.#run("UPDATE messages SET state = 'pending', batch_id = NULL WHERE batch_id = ? AND state = 'in_batch'", batchId);
      return { kind: 'retry', attempts };
    });
  }

  /** Batches left running by a previous host process. */
  runningBatches(): { id: string; group: string }[] {
    return this.#all("SELECT id, group_name FROM batches WHERE state = 'running'").map((r) => ({ id: String(r.id), group: String(r.group_name) }));
  }

  /** Adds an assistant notice that is not an agent output (e.g. "could not answer"). */
  addNotice(group: string, text: string, batchId: string | null): StoredMessage {
    const id = randomUUID();
    this.#run("INSERT INTO messages (id, group_name, role, sender, text, ts, state, batch_id) VALUES (?, ?, 'assistant', 'hako', ?, ?, 'sent', ?)", id, group, text, now(), batchId);
    return this.getMessage(id)!;
  }

  counts(group: string): Record<MessageState, number> {
    const out: Record<string, number> = { context: 0, pending: 0, in_batch: 0, answered: 0, failed: 0, sent: 0 };
    for (const r of this.#all('SELECT state, COUNT(*) AS n FROM messages WHERE group_name = ? GROUP BY state', group)) out[String(r.state)] = Number(r.n);
    return out as Record<MessageState, number>;
  }
}
