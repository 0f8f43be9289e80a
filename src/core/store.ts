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
];

export interface Group {
  readonly name: string;
  readonly isMain: boolean;
  readonly trigger: string | null;
  readonly model: string | null;
  /** Senders whose messages may engage the agent; null = everyone. */
  readonly allowedSenders: readonly string[] | null;
  /** This group's overrides of the host's default limits. */
  readonly limits: Partial<import('./config.ts').Limits>;
  /** Extra host folders as requested; checked against the mount policy at every start. */
  readonly mounts: readonly { readonly hostPath: string; readonly readWrite: boolean }[];
  readonly createdAt: string;
}

/** 'pending': made by a non-main group's agent, waits for the owner's approval; never claimed. */
export type TaskState = 'pending' | 'active' | 'paused' | 'cancelled' | 'completed';

export interface Task {
  readonly id: string;
  readonly group: string;
  readonly prompt: string;
  /** The validated schedule as JSON (see schedule.ts); the store does not interpret it. */
  readonly schedule: string;
  readonly context: 'group' | 'isolated';
  readonly state: TaskState;
  /** Epoch ms of the next run; null when paused, cancelled or completed. */
  readonly nextRun: number | null;
  readonly createdBy: string;
  readonly createdAt: string;
}

export type RunState = 'queued' | 'running' | 'done' | 'failed';

export interface TaskRun {
  readonly id: string;
  readonly taskId: string;
  readonly group: string;
  readonly scheduledFor: number;
  readonly manual: boolean;
  readonly state: RunState;
  readonly attempts: number;
  readonly batchId: string | null;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly error: string | null;
  readonly summary: string | null;
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
  /** Set when the batch runs a scheduled task instead of answering messages. */
  readonly task?: { readonly task: Task; readonly run: TaskRun };
}

export type FailOutcome =
  | { readonly kind: 'answered' } // a reply already reached the user: never re-run
  | { readonly kind: 'retry'; readonly attempts: number }
  | { readonly kind: 'gave_up'; readonly attempts: number };

export interface FailOptions {
  readonly maxAttempts: number;
  readonly retryable: boolean;
  /** The model is unreachable: keep the work waiting past the attempt limit. */
  readonly keepWaiting?: boolean;
}

type Row = Record<string, SQLInputValue>;

function toGroup(r: Row): Group {
  return {
    name: String(r.name), isMain: r.is_main === 1, trigger: r.trigger as string | null, model: r.model as string | null,
    allowedSenders: r.allowed_senders ? JSON.parse(String(r.allowed_senders)) as string[] : null,
    mounts: r.mounts ? JSON.parse(String(r.mounts)) as Group['mounts'] : [], limits: r.limits ? JSON.parse(String(r.limits)) as Group['limits'] : {},
    createdAt: String(r.created_at),
  };
}

function toTask(r: Row): Task {
  return {
    id: String(r.id), group: String(r.group_name), prompt: String(r.prompt), schedule: String(r.schedule),
    context: r.context as Task['context'], state: r.state as TaskState, nextRun: r.next_run === null ? null : Number(r.next_run),
    createdBy: String(r.created_by), createdAt: String(r.created_at),
  };
}

function toRun(r: Row): TaskRun {
  return {
    id: String(r.id), taskId: String(r.task_id), group: String(r.group_name), scheduledFor: Number(r.scheduled_for),
    manual: r.manual === 1, state: r.state as RunState, attempts: Number(r.attempts), batchId: r.batch_id as string | null,
    startedAt: r.started_at as string | null, endedAt: r.ended_at as string | null, error: r.error as string | null, summary: r.summary as string | null,
  };
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
    if (from === MIGRATIONS.length) return;
    // A migration may rebuild a table (SQLite cannot change a CHECK in place); with foreign
    // keys on, dropping the old table would cascade-delete its children. Off while
    // migrating (it cannot change inside a transaction), checked before going back on.
    this.#db.exec('PRAGMA foreign_keys = OFF');
    try {
      for (let v = from; v < MIGRATIONS.length; v++) {
        this.#tx(() => {
          this.#db.exec(MIGRATIONS[v]!);
          const broken = this.#db.prepare('PRAGMA foreign_key_check').all();
          if (broken.length > 0) throw new Error(`migration ${v + 1} broke ${broken.length} foreign key reference(s): restore a backup of hako.db and report this`);
          this.#db.exec(`PRAGMA user_version = ${v + 1}`);
        });
      }
    } finally {
      this.#db.exec('PRAGMA foreign_keys = ON');
    }
  }

  #depth = 0;

  /** Runs `fn` in one transaction; nested calls join the outer one. */
  #tx<T>(fn: () => T): T {
    if (this.#depth > 0) return fn();
    this.#db.exec('BEGIN IMMEDIATE');
    this.#depth++;
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#depth--;
    }
  }

  /** Several store calls as one atomic step (used to apply an agent request exactly once). */
  transaction<T>(fn: () => T): T {
    return this.#tx(fn);
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

  addGroup(g: { name: string; isMain: boolean; trigger: string | null; model: string | null; allowedSenders?: readonly string[] | null; mounts?: Group['mounts'] }): Group {
    if (this.getGroup(g.name)) throw new Error(`group "${g.name}" already exists`);
    if (g.isMain) {
      const main = this.mainGroup();
      if (main) throw new Error(`group "${main.name}" is already the main group: there can be only one`);
    }
    this.#run('INSERT INTO groups (name, is_main, trigger, model, allowed_senders, mounts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      g.name, g.isMain ? 1 : 0, g.trigger, g.model, g.allowedSenders ? JSON.stringify(g.allowedSenders) : null, g.mounts?.length ? JSON.stringify(g.mounts) : null, now());
    return this.getGroup(g.name)!;
  }

  /** Changes a group's settings; undefined fields stay as they are. */
  updateGroup(name: string, g: { trigger?: string | null; model?: string | null; allowedSenders?: readonly string[] | null; mounts?: Group['mounts']; limits?: Group['limits'] }): Group {
    if (!this.getGroup(name)) throw new Error(`unknown group "${name}" (see: hako groups list)`);
    if (g.trigger !== undefined) this.#run('UPDATE groups SET trigger = ? WHERE name = ?', g.trigger, name);
    if (g.model !== undefined) this.#run('UPDATE groups SET model = ? WHERE name = ?', g.model, name);
    if (g.allowedSenders !== undefined) this.#run('UPDATE groups SET allowed_senders = ? WHERE name = ?', g.allowedSenders ? JSON.stringify(g.allowedSenders) : null, name);
    if (g.mounts !== undefined) this.#run('UPDATE groups SET mounts = ? WHERE name = ?', g.mounts.length ? JSON.stringify(g.mounts) : null, name);
    if (g.limits !== undefined) this.#run('UPDATE groups SET limits = ? WHERE name = ?', Object.keys(g.limits).length ? JSON.stringify(g.limits) : null, name);
    return this.getGroup(name)!;
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
    return this.#all("SELECT group_name FROM messages WHERE state = 'pending' UNION SELECT group_name FROM task_runs WHERE state = 'queued'").map((r) => String(r.group_name));
  }

  /**
   * Starts the group's next piece of work as a running batch, in one transaction: its
   * oldest queued task run, or its waiting messages (pending, plus the context before
   * them, up to `maxChars` of text), whichever waited longer. Undefined when idle.
   */
  takeBatch(group: string, maxChars: number): Batch | undefined {
    return this.#tx(() => {
      const run = this.#get("SELECT * FROM task_runs WHERE group_name = ? AND state = 'queued' ORDER BY scheduled_for, rowid LIMIT 1", group);
      const msg = this.#get("SELECT ts FROM messages WHERE group_name = ? AND state = 'pending' ORDER BY seq LIMIT 1", group);
      if (run && (!msg || Number(run.scheduled_for) <= Date.parse(String(msg.ts)))) return this.#startTaskRun(toRun(run));
      return msg ? this.#startMessages(group, maxChars) : undefined;
    });
  }

  #newBatch(group: string, taskRunId: string | null): string {
    const id = randomUUID();
    this.#run("INSERT INTO batches (id, group_name, state, created_at, task_run_id) VALUES (?, ?, 'running', ?, ?)", id, group, now(), taskRunId);
    return id;
  }

  #startTaskRun(run: TaskRun): Batch {
    const task = this.getTask(run.taskId)!;
    const id = this.#newBatch(run.group, run.id);
    this.#run("UPDATE task_runs SET state = 'running', batch_id = ?, started_at = ? WHERE id = ?", id, now(), run.id);
    return { id, group: run.group, messages: [], task: { task, run: this.getRun(run.id)! } };
  }

  #startMessages(group: string, maxChars: number): Batch {
    const rows = this.#all("SELECT * FROM messages WHERE group_name = ? AND state IN ('pending', 'context') ORDER BY seq", group).map(toMessage);
    const lastPending = rows.findLastIndex((m) => m.state === 'pending');
    const picked: StoredMessage[] = [];
    let chars = 0;
    for (const m of rows.slice(0, lastPending + 1)) {
      if (picked.length > 0 && chars + m.text.length > maxChars) break;
      picked.push(m);
      chars += m.text.length;
    }
    const id = this.#newBatch(group, null);
    const mark = this.#db.prepare("UPDATE messages SET state = 'in_batch', batch_id = ? WHERE id = ?");
    for (const m of picked) mark.run(id, m.id);
    return { id, group, messages: picked.map((m) => ({ ...m, state: 'in_batch' as const, batchId: id })) };
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
        "INSERT INTO messages (id, group_name, role, sender, text, ts, state, batch_id, delivery) VALUES (?, ?, 'assistant', ?, ?, ?, 'sent', ?, 'sending')",
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

  getBatch(id: string): { id: string; group: string; state: string; taskRunId: string | null } | undefined {
    const r = this.#get('SELECT id, group_name, state, task_run_id FROM batches WHERE id = ?', id);
    return r && { id: String(r.id), group: String(r.group_name), state: String(r.state), taskRunId: r.task_run_id as string | null };
  }

  /** The replies of a batch, joined and cut short: a task run's output summary. */
  #summary(batchId: string): string | null {
    const texts = this.#all("SELECT text FROM messages WHERE batch_id = ? AND role = 'assistant' ORDER BY seq", batchId).map((r) => String(r.text));
    if (texts.length === 0) return null;
    const all = texts.join('\n');
    return all.length > 300 ? `${all.slice(0, 299)}…` : all;
  }

  /** The batch's messages count as answered (a task run as done). Idempotent. */
  finishBatch(batchId: string): void {
    this.#tx(() => {
      if (this.#run("UPDATE batches SET state = 'done', finished_at = ? WHERE id = ? AND state = 'running'", now(), batchId) === 0) return;
      this.#run("UPDATE messages SET state = 'answered' WHERE batch_id = ? AND state = 'in_batch'", batchId);
      this.#run("UPDATE task_runs SET state = 'done', ended_at = ?, summary = ? WHERE batch_id = ? AND state = 'running'", now(), this.#summary(batchId), batchId);
    });
  }

  /**
   * A batch ended without `done`. If any reply of it reached the user it counts as
   * answered (re-running would answer twice); otherwise its work waits again, or fails
   * for good once it has had `maxAttempts` tries or the error is final.
   */
  failBatch(batchId: string, error: string, opts: FailOptions): FailOutcome {
    return this.#tx(() => {
      const batch = this.getBatch(batchId);
      if (!batch || batch.state !== 'running') return { kind: 'answered' };
      if (this.#get("SELECT 1 FROM messages WHERE batch_id = ? AND role = 'assistant' LIMIT 1", batchId)) {
        this.#run("UPDATE batches SET state = 'done', finished_at = ?, error = ? WHERE id = ?", now(), error, batchId);
        this.#run("UPDATE messages SET state = 'answered' WHERE batch_id = ? AND state = 'in_batch'", batchId);
        this.#run("UPDATE task_runs SET state = 'done', ended_at = ?, error = ?, summary = ? WHERE batch_id = ?", now(), error, this.#summary(batchId), batchId);
        return { kind: 'answered' };
      }
      this.#run("UPDATE batches SET state = 'failed', finished_at = ?, error = ? WHERE id = ?", now(), error, batchId);
      if (batch.taskRunId) return this.#failRun(batch.taskRunId, error, opts);
      this.#run("UPDATE messages SET attempts = attempts + 1 WHERE batch_id = ? AND state = 'in_batch'", batchId);
      const r = this.#get("SELECT MAX(attempts) AS a FROM messages WHERE batch_id = ? AND state = 'in_batch'", batchId);
      const attempts = Number(r?.a ?? 0);
      if (!opts.retryable || (attempts >= opts.maxAttempts && !opts.keepWaiting)) {
        this.#run("UPDATE messages SET state = 'failed' WHERE batch_id = ? AND state = 'in_batch'", batchId);
        return { kind: 'gave_up', attempts };
      }
      this.#run("UPDATE messages SET state = 'pending', batch_id = NULL WHERE batch_id = ? AND state = 'in_batch'", batchId);
      return { kind: 'retry', attempts };
    });
  }

  #failRun(runId: string, error: string, opts: FailOptions): FailOutcome {
    this.#run('UPDATE task_runs SET attempts = attempts + 1, error = ? WHERE id = ?', error, runId);
    const attempts = Number(this.#get('SELECT attempts FROM task_runs WHERE id = ?', runId)?.attempts ?? 0);
    if (!opts.retryable || (attempts >= opts.maxAttempts && !opts.keepWaiting)) {
      this.#run("UPDATE task_runs SET state = 'failed', ended_at = ? WHERE id = ?", now(), runId);
      return { kind: 'gave_up', attempts };
    }
    this.#run("UPDATE task_runs SET state = 'queued', batch_id = NULL WHERE id = ?", runId);
    return { kind: 'retry', attempts };
  }

  /** Batches left running by a previous host process. */
  runningBatches(): { id: string; group: string }[] {
    return this.#all("SELECT id, group_name FROM batches WHERE state = 'running'").map((r) => ({ id: String(r.id), group: String(r.group_name) }));
  }

  /** Adds an assistant notice that is not an agent output (e.g. "could not answer"). */
  addNotice(group: string, text: string, batchId: string | null): StoredMessage {
    const id = randomUUID();
    this.#run("INSERT INTO messages (id, group_name, role, sender, text, ts, state, batch_id, delivery) VALUES (?, ?, 'assistant', 'hako', ?, ?, 'sent', ?, 'sending')", id, group, text, now(), batchId);
    return this.getMessage(id)!;
  }

  // ---- delivery of assistant messages to channels -------------------------------------

  markDelivered(messageId: string): void {
    this.#run("UPDATE messages SET delivery = 'sent' WHERE id = ?", messageId);
  }

  /** Assistant messages stored but not yet confirmed delivered (re-sent after a crash). */
  undelivered(): StoredMessage[] {
    return this.#all("SELECT * FROM messages WHERE delivery = 'sending' ORDER BY seq").map(toMessage);
  }

  // ---- scheduled tasks ---------------------------------------------------------------

  /** Adds a task, active unless `state` says 'pending' (then it has no next run until approved). */
  addTask(t: { group: string; prompt: string; schedule: string; context: Task['context']; nextRun: number | null; createdBy: string; state?: 'active' | 'pending' }): Task {
    const id = `task-${randomUUID().slice(0, 8)}`;
    const pending = t.state === 'pending';
    this.#run(
      'INSERT INTO tasks (id, group_name, prompt, schedule, context, state, next_run, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      id, t.group, t.prompt, t.schedule, t.context, pending ? 'pending' : 'active', pending ? null : t.nextRun, t.createdBy, now(),
    );
    return this.getTask(id)!;
  }

  /** Tasks of `group` that may still run: pending, active or paused. */
  liveTaskCount(group: string): number {
    return Number(this.#get("SELECT COUNT(*) AS n FROM tasks WHERE group_name = ? AND state IN ('pending', 'active', 'paused')", group)?.n ?? 0);
  }

  getTask(id: string): Task | undefined {
    const r = this.#get('SELECT * FROM tasks WHERE id = ?', id);
    return r && toTask(r);
  }

  /** Tasks of one group, or of all groups; cancelled ones only when asked. */
  listTasks(opts: { group?: string; includeCancelled?: boolean } = {}): Task[] {
    const where = [opts.group === undefined ? '1' : 'group_name = ?', opts.includeCancelled ? '1' : "state != 'cancelled'"].join(' AND ');
    const args = opts.group === undefined ? [] : [opts.group];
    return this.#all(`SELECT * FROM tasks WHERE ${where} ORDER BY created_at, id`, ...args).map(toTask);
  }

  setTaskState(id: string, state: TaskState, nextRun: number | null): Task {
    this.#run('UPDATE tasks SET state = ?, next_run = ? WHERE id = ?', state, nextRun, id);
    return this.getTask(id)!;
  }

  /** Active tasks due at `now`, earliest first. */
  dueTasks(nowMs: number): Task[] {
    return this.#all("SELECT * FROM tasks WHERE state = 'active' AND next_run IS NOT NULL AND next_run <= ? ORDER BY next_run", nowMs).map(toTask);
  }

  /** Epoch ms of the earliest next run of an active task, or null. */
  nextDue(): number | null {
    const r = this.#get("SELECT MIN(next_run) AS t FROM tasks WHERE state = 'active' AND next_run IS NOT NULL");
    return r?.t === null || r?.t === undefined ? null : Number(r.t);
  }

  /**
   * Claims the run of `taskId` due at `expectedNextRun` and moves the task on to
   * `newNextRun` (null: it is completed), in one transaction. The compare-and-set on
   * next_run means a run is claimed at most once, whoever asks and however often.
   */
  claimTask(taskId: string, expectedNextRun: number, newNextRun: number | null): TaskRun | undefined {
    return this.#tx(() => {
      const changed = this.#run(
        "UPDATE tasks SET next_run = ?, state = CASE WHEN ? IS NULL THEN 'completed' ELSE state END WHERE id = ? AND state = 'active' AND next_run = ?",
        newNextRun, newNextRun, taskId, expectedNextRun,
      );
      if (changed === 0) return undefined;
      return this.#insertRun(taskId, expectedNextRun, false);
    });
  }

  /** Queues an extra run now (`hako tasks run`), leaving the schedule as it is. */
  queueManualRun(taskId: string, atMs: number): TaskRun {
    return this.#tx(() => this.#insertRun(taskId, atMs, true));
  }

  #insertRun(taskId: string, scheduledFor: number, manual: boolean): TaskRun {
    const task = this.getTask(taskId);
    if (!task) throw new Error(`unknown task "${taskId}"`);
    const id = `run-${randomUUID()}`;
    this.#run("INSERT INTO task_runs (id, task_id, group_name, scheduled_for, manual, state) VALUES (?, ?, ?, ?, ?, 'queued')", id, taskId, task.group, scheduledFor, manual ? 1 : 0);
    return this.getRun(id)!;
  }

  getRun(id: string): TaskRun | undefined {
    const r = this.#get('SELECT * FROM task_runs WHERE id = ?', id);
    return r && toRun(r);
  }

  listRuns(taskId: string, limit = 20): TaskRun[] {
    return this.#all('SELECT * FROM task_runs WHERE task_id = ? ORDER BY scheduled_for DESC, rowid DESC LIMIT ?', taskId, limit).map(toRun);
  }

  /** Failed batches and task runs, newest first (for `hako status`). */
  recentFailures(limit = 5): { group: string; at: string; error: string; task: string | null }[] {
    return this.#all(
      `SELECT b.group_name AS g, b.finished_at AS at, b.error AS error, r.task_id AS task FROM batches b LEFT JOIN task_runs r ON r.id = b.task_run_id
       WHERE b.state = 'failed' ORDER BY b.finished_at DESC LIMIT ?`, limit,
    ).map((r) => ({ group: String(r.g), at: String(r.at), error: String(r.error), task: r.task as string | null }));
  }

  counts(group: string): Record<MessageState, number> {
    const out: Record<string, number> = { context: 0, pending: 0, in_batch: 0, answered: 0, failed: 0, sent: 0 };
    for (const r of this.#all('SELECT state, COUNT(*) AS n FROM messages WHERE group_name = ? GROUP BY state', group)) out[String(r.state)] = Number(r.n);
    return out as Record<MessageState, number>;
  }
}
