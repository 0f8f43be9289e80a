// The SQLite store (node:sqlite, WAL): implements every interface of store-contract.ts
// over hako.db, whose schema and migrations are store-schema.ts.
//
// Invariants: a message is stored before anything else happens to it; a batch id is
// recorded before its file is written; an output id is recorded in the same transaction
// as its effect, so applying an output twice is a no-op. Each public member is typed by
// its interface, so signatures and contracts are written once, in store-contract.ts.

import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { randomUUID } from 'node:crypto';
import { failOutcome } from './store-contract.ts';
import type { Batch, BatchStore, FailOptions, FailOutcome, Group, GroupStore, MessageState, MessageStore, Role, RunState, StoredMessage, Task, TaskRun, TaskState, TaskStore, Transactional, UsageStore } from './store-contract.ts';
import { MIGRATIONS, migrate } from './store-schema.ts';
import { copyBeforeMigration } from './snapshot.ts';

export type * from './store-contract.ts';
export { MIGRATIONS } from './store-schema.ts';

type Row = Record<string, SQLInputValue>;

function toGroup(r: Row): Group {
  return {
    name: String(r.name), isMain: r.is_main === 1, trigger: r.trigger as string | null, model: r.model as string | null,
    allowedSenders: r.allowed_senders ? JSON.parse(String(r.allowed_senders)) as string[] : null,
    mounts: r.mounts ? JSON.parse(String(r.mounts)) as Group['mounts'] : [], limits: r.limits ? JSON.parse(String(r.limits)) as Group['limits'] : {},
    tokensPerDay: r.tokens_per_day === null || r.tokens_per_day === undefined ? null : Number(r.tokens_per_day),
    contextTokens: r.context_tokens === null || r.context_tokens === undefined ? null : Number(r.context_tokens),
    chats: JSON.parse(String(r.chats)) as string[], createdAt: String(r.created_at),
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
    chat: r.chat as string | null, ...(r.file ? { file: String(r.file) } : {}),
    ...(r.role === 'user' && r.engaged !== null && r.engaged !== undefined ? { engaged: r.engaged === 1 } : {}),
  };
}

/**
 * Which of a group's waiting messages (oldest first) one batch takes: always the oldest
 * pending one; then later ones up to `maxChars`, ending on a pending message; then the
 * context before it, newest first, in what is left. So a batch never answers only context
 * (a stranger's long mails cannot crowd out the message that called the agent), and its
 * newest message is one that called the agent: the one its reply goes to.
 */
export function batchWindow(rows: readonly Pick<StoredMessage, 'state' | 'text'>[], maxChars: number): { from: number; to: number } {
  const first = rows.findIndex((m) => m.state === 'pending');
  let chars = rows[first]!.text.length;
  let to = first;
  for (let i = first + 1, sum = chars; i < rows.length; i++) {
    sum += rows[i]!.text.length;
    if (sum > maxChars) break;
    if (rows[i]!.state === 'pending') [to, chars] = [i, sum];
  }
  let from = first;
  while (from > 0 && chars + rows[from - 1]!.text.length <= maxChars) chars += rows[--from]!.text.length;
  return { from, to };
}

/** A group row with its chat addresses, sorted. */
const GROUPS = "SELECT g.*, (SELECT json_group_array(address) FROM (SELECT address FROM chats WHERE group_name = g.name ORDER BY address)) AS chats FROM groups g";

const now = () => new Date().toISOString();

export class Store implements GroupStore, MessageStore, BatchStore, TaskStore, UsageStore, Transactional {
  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  #depth = 0;

  constructor(file: string) {
    this.#db = new DatabaseSync(file);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
    const from = this.schemaVersion;
    // An upgrade keeps the database as it was: a fresh one (0) or a newer one (refused by migrate) needs no copy.
    if (from > 0 && from < MIGRATIONS.length) {
      const copy = copyBeforeMigration(this.#db, file, from);
      process.stderr.write(`hako: upgrading ${file} from schema ${from} to ${MIGRATIONS.length}; the database as it was is in ${copy}\n`);
    }
    migrate(this.#db, from, this.transaction);
  }

  get schemaVersion(): number {
    return Number((this.#db.prepare('PRAGMA user_version').get() as Row).user_version);
  }

  /** One SQLite transaction (BEGIN IMMEDIATE: it takes the write lock at once); nested calls join the outer one. */
  transaction: Transactional['transaction'] = (fn) => {
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
  };

  /**
   * The prepared statement for `sql`, made once per connection: preparing costs ~0.1 ms a
   * statement on the bench machine, more than running most of them, and a warm turn runs
   * about twenty. The SQL texts are fixed strings of this file, so the cache stays small.
   */
  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #all(sql: string, ...args: SQLInputValue[]): Row[] {
    return this.#stmt(sql).all(...args) as Row[];
  }

  #get(sql: string, ...args: SQLInputValue[]): Row | undefined {
    return this.#stmt(sql).get(...args) as Row | undefined;
  }

  /** The first row of `sql`, as a record; undefined when there is none. */
  #one<T>(to: (r: Row) => T, sql: string, ...args: SQLInputValue[]): T | undefined {
    const r = this.#get(sql, ...args);
    return r && to(r);
  }

  #run(sql: string, ...args: SQLInputValue[]): number {
    return Number(this.#stmt(sql).run(...args).changes);
  }

  close(): void {
    this.#db.close();
  }

  // ---- GroupStore ----------------------------------------------------------------------

  addGroup: GroupStore['addGroup'] = (g) => this.transaction(() => {
    if (this.getGroup(g.name)) throw new Error(`group "${g.name}" already exists`);
    if (g.isMain) {
      const main = this.mainGroup();
      if (main) throw new Error(`group "${main.name}" is already the main group: there can be only one`);
    }
    this.#run('INSERT INTO groups (name, is_main, trigger, model, allowed_senders, mounts, tokens_per_day, context_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      g.name, g.isMain ? 1 : 0, g.trigger, g.model, g.allowedSenders ? JSON.stringify(g.allowedSenders) : null, g.mounts?.length ? JSON.stringify(g.mounts) : null, g.tokensPerDay ?? null, g.contextTokens ?? null, now());
    for (const chat of g.chats ?? []) this.#bind(g.name, chat);
    return this.getGroup(g.name)!;
  });

  /** Binds a chat address to a group; binding it to the group it already has changes nothing. */
  #bind(group: string, chat: string): void {
    const owner = this.groupForChat(chat);
    if (owner === group) return;
    if (owner) throw new Error(`chat ${chat} is already bound to group "${owner}" (unbind it first: hako groups set ${owner} --unchat ${chat})`);
    this.#run('INSERT INTO chats (address, group_name, created_at) VALUES (?, ?, ?)', chat, group, now());
    this.#run('DELETE FROM unknown_chats WHERE address = ?', chat);
  }

  groupForChat: GroupStore['groupForChat'] = (chat) => this.#one((r) => String(r.group_name), 'SELECT group_name FROM chats WHERE address = ?', chat);

  noteUnknownChat: GroupStore['noteUnknownChat'] = (chat, title) => this.transaction(() => {
    const seen = this.#run('UPDATE unknown_chats SET last_seen = ?, count = count + 1, title = COALESCE(?, title) WHERE address = ?', now(), title ?? null, chat) > 0;
    if (!seen) this.#run('INSERT INTO unknown_chats (address, title, first_seen, last_seen, count) VALUES (?, ?, ?, ?, 1)', chat, title ?? null, now(), now());
    return !seen;
  });

  updateGroup: GroupStore['updateGroup'] = (name, g) => this.transaction(() => {
    if (!this.getGroup(name)) throw new Error(`unknown group "${name}" (see: hako groups list)`);
    for (const chat of g.unbind ?? []) {
      if (this.#run('DELETE FROM chats WHERE address = ? AND group_name = ?', chat, name) === 0) throw new Error(`group "${name}" is not bound to chat ${chat} (see: hako groups list)`);
    }
    for (const chat of g.bind ?? []) this.#bind(name, chat);
    if (g.trigger !== undefined) this.#run('UPDATE groups SET trigger = ? WHERE name = ?', g.trigger, name);
    if (g.model !== undefined) this.#run('UPDATE groups SET model = ? WHERE name = ?', g.model, name);
    if (g.allowedSenders !== undefined) this.#run('UPDATE groups SET allowed_senders = ? WHERE name = ?', g.allowedSenders ? JSON.stringify(g.allowedSenders) : null, name);
    if (g.mounts !== undefined) this.#run('UPDATE groups SET mounts = ? WHERE name = ?', g.mounts.length ? JSON.stringify(g.mounts) : null, name);
    if (g.limits !== undefined) this.#run('UPDATE groups SET limits = ? WHERE name = ?', Object.keys(g.limits).length ? JSON.stringify(g.limits) : null, name);
    if (g.tokensPerDay !== undefined) this.#run('UPDATE groups SET tokens_per_day = ? WHERE name = ?', g.tokensPerDay, name);
    if (g.contextTokens !== undefined) this.#run('UPDATE groups SET context_tokens = ? WHERE name = ?', g.contextTokens, name);
    return this.getGroup(name)!;
  });

  getGroup: GroupStore['getGroup'] = (name) => this.#one(toGroup, `${GROUPS} WHERE name = ?`, name);
  mainGroup: GroupStore['mainGroup'] = () => this.#one(toGroup, `${GROUPS} WHERE is_main = 1`);
  listGroups: GroupStore['listGroups'] = () => this.#all(`${GROUPS} ORDER BY name`).map(toGroup);

  /** Outputs have no foreign key (an output may name no batch); the rest goes by ON DELETE CASCADE. */
  removeGroup: GroupStore['removeGroup'] = (name) => this.transaction(() => {
    this.#run('DELETE FROM outputs WHERE group_name = ?', name);
    return this.#run('DELETE FROM groups WHERE name = ?', name) > 0;
  });

  // ---- UsageStore ----------------------------------------------------------------------

  addUsage: UsageStore['addUsage'] = (group, day, u) => {
    this.#run(`INSERT INTO usage (day, group_name, input, output, requests) VALUES (?, ?, ?, ?, 1)
      ON CONFLICT (day, group_name) DO UPDATE SET input = input + excluded.input, output = output + excluded.output, requests = requests + 1`, day, group, u.input, u.output);
  };

  usageOn: UsageStore['usageOn'] = (day) => this.#all('SELECT group_name, input, output, requests FROM usage WHERE day = ? ORDER BY group_name', day)
    .map((r) => ({ group: String(r.group_name), input: Number(r.input), output: Number(r.output), requests: Number(r.requests) }));

  // ---- MessageStore --------------------------------------------------------------------

  addUserMessage: MessageStore['addUserMessage'] = (m) => {
    const id = randomUUID();
    this.#durably(() => this.#run(
      'INSERT INTO messages (id, group_name, role, sender, text, ts, state, chat, sender_id, ref, engaged) VALUES (?, ?, \'user\', ?, ?, ?, ?, ?, ?, ?, ?)',
      id, m.group, m.sender, m.text, now(), m.engage ? 'pending' : 'context', m.chat ?? null, m.senderId ?? null, m.ref ?? null, m.engage ? 1 : 0,
    ));
    return this.getMessage(id)!;
  };

  /**
   * Runs `fn` (one commit) with the WAL synced before it returns (synchronous = FULL): an
   * accepted message is acknowledged to its sender, so it must survive a power cut. The
   * other commits keep NORMAL (they survive a crash of the process; a power cut at worst
   * re-runs a turn from the messages kept here). Inside an outer transaction the outer
   * commit decides.
   */
  #durably<T>(fn: () => T): T {
    if (this.#depth > 0) return fn();
    this.#db.exec('PRAGMA synchronous = FULL');
    try {
      return fn();
    } finally {
      this.#db.exec('PRAGMA synchronous = NORMAL');
    }
  }

  messageByRef: MessageStore['messageByRef'] = (chat, ref) => this.#one(toMessage, 'SELECT * FROM messages WHERE chat = ? AND ref = ?', chat, ref);

  getMessage(id: string): StoredMessage | undefined {
    return this.#one(toMessage, 'SELECT * FROM messages WHERE id = ?', id);
  }

  listMessages: MessageStore['listMessages'] = (group, opts = {}) => {
    let afterSeq = 0;
    if (opts.afterId !== undefined) {
      const r = this.#get('SELECT seq FROM messages WHERE id = ? AND group_name = ?', opts.afterId, group);
      if (!r) return undefined;
      afterSeq = Number(r.seq);
    }
    return this.#all('SELECT * FROM messages WHERE group_name = ? AND seq > ? ORDER BY seq LIMIT ?', group, afterSeq, opts.limit ?? 1000).map(toMessage);
  };

  addNotice: MessageStore['addNotice'] = (group, text, batchId) => this.#addAssistant(group, 'hako', text, batchId);

  /** An assistant message and, in the same step, a pending delivery to each chat it goes to (see addNotice's contract). */
  #addAssistant(group: string, sender: string, text: string, batchId: string | null, file?: string): StoredMessage {
    return this.transaction(() => {
      const id = randomUUID();
      this.#run("INSERT INTO messages (id, group_name, role, sender, text, ts, state, batch_id, file) VALUES (?, ?, 'assistant', ?, ?, ?, 'sent', ?, ?)", id, group, sender, text, now(), batchId, file ?? null);
      const newest = batchId === null ? undefined : this.#get("SELECT chat, ref FROM messages WHERE batch_id = ? AND role = 'user' ORDER BY seq DESC LIMIT 1", batchId);
      const targets = newest ? (newest.chat === null ? [] : [{ chat: String(newest.chat), replyTo: newest.ref as string | null }])
        : this.#all('SELECT address FROM chats WHERE group_name = ? ORDER BY address', group).map((r) => ({ chat: String(r.address), replyTo: null }));
      for (const t of targets) this.#run("INSERT INTO deliveries (message_id, chat, reply_to, state) VALUES (?, ?, ?, 'pending')", id, t.chat, t.replyTo);
      return this.getMessage(id)!;
    });
  }

  markDelivered: MessageStore['markDelivered'] = (messageId, chat) => {
    this.#run("UPDATE deliveries SET state = 'sent', attempts = attempts + 1 WHERE message_id = ? AND chat = ?", messageId, chat);
  };

  deliveryFailed: MessageStore['deliveryFailed'] = (messageId, chat, error) => {
    this.#run('UPDATE deliveries SET attempts = attempts + 1, error = ? WHERE message_id = ? AND chat = ?', error.slice(0, 1000), messageId, chat);
  };

  pendingDeliveries: MessageStore['pendingDeliveries'] = (messageId) => this.#all(
    `SELECT m.*, d.chat AS d_chat, d.reply_to, d.attempts AS d_attempts FROM deliveries d JOIN messages m ON m.id = d.message_id
     WHERE d.state = 'pending'${messageId === undefined ? '' : ' AND d.message_id = ?'} ORDER BY m.seq, d.chat`, ...(messageId === undefined ? [] : [messageId]),
  ).map((r) => ({ message: toMessage(r), chat: String(r.d_chat), replyTo: r.reply_to as string | null, attempts: Number(r.d_attempts) }));

  counts: MessageStore['counts'] = (group) => {
    const out: Record<string, number> = { context: 0, pending: 0, in_batch: 0, answered: 0, failed: 0, sent: 0 };
    for (const r of this.#all('SELECT state, COUNT(*) AS n FROM messages WHERE group_name = ? GROUP BY state', group)) out[String(r.state)] = Number(r.n);
    return out as Record<MessageState, number>;
  };

  // ---- BatchStore ----------------------------------------------------------------------

  groupsWithPending: BatchStore['groupsWithPending'] = () =>
    this.#all("SELECT group_name FROM messages WHERE state = 'pending' UNION SELECT group_name FROM task_runs WHERE state = 'queued'").map((r) => String(r.group_name));

  takeBatch: BatchStore['takeBatch'] = (group, maxChars) => this.transaction(() => {
    const run = this.#get("SELECT * FROM task_runs WHERE group_name = ? AND state = 'queued' ORDER BY scheduled_for, rowid LIMIT 1", group);
    const msg = this.#get("SELECT ts FROM messages WHERE group_name = ? AND state = 'pending' ORDER BY seq LIMIT 1", group);
    if (run && (!msg || Number(run.scheduled_for) <= Date.parse(String(msg.ts)))) return this.#startTaskRun(toRun(run));
    return msg ? this.#startMessages(group, maxChars) : undefined;
  });

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
    const { from, to } = batchWindow(rows, maxChars);
    const picked = rows.slice(from, to + 1);
    const id = this.#newBatch(group, null);
    const mark = this.#stmt("UPDATE messages SET state = 'in_batch', batch_id = ? WHERE id = ?");
    for (const m of picked) mark.run(id, m.id);
    return { id, group, messages: picked.map((m) => ({ ...m, state: 'in_batch' as const, batchId: id })) };
  }

  applyAssistantOutput: BatchStore['applyAssistantOutput'] = (o) => this.transaction(() =>
    this.markOutputApplied({ ...o, batchId: o.turnBatch ?? o.batchId }) ? this.#addAssistant(o.group, o.sender, o.text, o.batchId, o.file) : undefined);

  markOutputApplied: BatchStore['markOutputApplied'] = (o) => this.transaction(() => {
    if (this.#get('SELECT 1 FROM outputs WHERE id = ?', o.outputId)) return false;
    this.#run('INSERT INTO outputs (id, group_name, batch_id, type, applied_at) VALUES (?, ?, ?, ?, ?)', o.outputId, o.group, o.batchId, o.type, now());
    return true;
  });

  getBatch: BatchStore['getBatch'] = (id) => this.#one(
    (r) => ({ id: String(r.id), group: String(r.group_name), state: String(r.state), taskRunId: r.task_run_id as string | null }),
    'SELECT id, group_name, state, task_run_id FROM batches WHERE id = ?', id);

  /** The replies of a batch, joined and cut short: a task run's output summary. */
  #summary(batchId: string): string | null {
    const texts = this.#all("SELECT text FROM messages WHERE batch_id = ? AND role = 'assistant' ORDER BY seq", batchId).map((r) => String(r.text));
    if (texts.length === 0) return null;
    const all = texts.join('\n');
    return all.length > 300 ? `${all.slice(0, 299)}…` : all;
  }

  finishBatch: BatchStore['finishBatch'] = (batchId) => this.transaction(() => this.#answer(batchId, null));

  /** A running batch is done, its messages answered, its task run done (an earlier attempt's error kept unless `error` is given). */
  #answer(batchId: string, error: string | null): FailOutcome {
    if (this.#run("UPDATE batches SET state = 'done', finished_at = ?, error = ? WHERE id = ? AND state = 'running'", now(), error, batchId) > 0) {
      this.#run("UPDATE messages SET state = 'answered' WHERE batch_id = ? AND state = 'in_batch'", batchId);
      this.#run("UPDATE task_runs SET state = 'done', ended_at = ?, error = COALESCE(?, error), summary = ? WHERE batch_id = ? AND state = 'running'", now(), error, this.#summary(batchId), batchId);
    }
    return { kind: 'answered' };
  }

  failBatch: BatchStore['failBatch'] = (batchId, error, opts) => this.transaction(() => {
    const batch = this.getBatch(batchId);
    if (!batch || batch.state !== 'running') return { kind: 'answered' };
    // Something of it reached someone (its own chat, or another group's when main wrote there):
    // running it again would say that twice.
    if (this.#get("SELECT 1 FROM messages WHERE batch_id = ? AND role = 'assistant' LIMIT 1", batchId)
      || this.#get("SELECT 1 FROM outputs WHERE batch_id = ? AND type IN ('reply', 'send_message') LIMIT 1", batchId)) return this.#answer(batchId, error);
    this.#run("UPDATE batches SET state = 'failed', finished_at = ?, error = ? WHERE id = ?", now(), error, batchId);
    if (batch.taskRunId) return this.#failRun(batch.taskRunId, error, opts);
    if (opts.counts !== false) this.#run("UPDATE messages SET attempts = attempts + 1 WHERE batch_id = ? AND state = 'in_batch'", batchId);
    const outcome = failOutcome(Number(this.#get("SELECT MAX(attempts) AS a FROM messages WHERE batch_id = ? AND state = 'in_batch'", batchId)?.a ?? 0), opts);
    if (outcome.kind === 'gave_up') this.#run("UPDATE messages SET state = 'failed' WHERE batch_id = ? AND state = 'in_batch'", batchId);
    else this.#run("UPDATE messages SET state = 'pending', batch_id = NULL WHERE batch_id = ? AND state = 'in_batch'", batchId);
    return outcome;
  });

  #failRun(runId: string, error: string, opts: FailOptions): FailOutcome {
    this.#run(`UPDATE task_runs SET ${opts.counts === false ? '' : 'attempts = attempts + 1, '}error = ? WHERE id = ?`, error, runId);
    const outcome = failOutcome(Number(this.#get('SELECT attempts FROM task_runs WHERE id = ?', runId)?.attempts ?? 0), opts);
    if (outcome.kind === 'gave_up') this.#run("UPDATE task_runs SET state = 'failed', ended_at = ? WHERE id = ?", now(), runId);
    else this.#run("UPDATE task_runs SET state = 'queued', batch_id = NULL WHERE id = ?", runId);
    return outcome;
  }

  runningBatches: BatchStore['runningBatches'] = () =>
    this.#all("SELECT id, group_name FROM batches WHERE state = 'running'").map((r) => ({ id: String(r.id), group: String(r.group_name) }));

  recentFailures: BatchStore['recentFailures'] = (limit = 5) => this.#all(
    `SELECT b.group_name AS g, b.finished_at AS at, b.error AS error, r.task_id AS task FROM batches b LEFT JOIN task_runs r ON r.id = b.task_run_id
     WHERE b.state = 'failed' ORDER BY b.finished_at DESC LIMIT ?`, limit,
  ).map((r) => ({ group: String(r.g), at: String(r.at), error: String(r.error), task: r.task as string | null }));

  // ---- TaskStore -----------------------------------------------------------------------

  addTask: TaskStore['addTask'] = (t) => {
    const id = `task-${randomUUID().slice(0, 8)}`;
    const pending = t.state === 'pending';
    this.#run(
      'INSERT INTO tasks (id, group_name, prompt, schedule, context, state, next_run, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      id, t.group, t.prompt, t.schedule, t.context, pending ? 'pending' : 'active', pending ? null : t.nextRun, t.createdBy, now(),
    );
    return this.getTask(id)!;
  };

  liveTaskCount: TaskStore['liveTaskCount'] = (group) =>
    Number(this.#get("SELECT COUNT(*) AS n FROM tasks WHERE group_name = ? AND state IN ('pending', 'active', 'paused')", group)?.n ?? 0);

  getTask: TaskStore['getTask'] = (id) => this.#one(toTask, 'SELECT * FROM tasks WHERE id = ?', id);

  listTasks: TaskStore['listTasks'] = (opts = {}) => {
    const where = [opts.group === undefined ? '1' : 'group_name = ?', opts.includeCancelled ? '1' : "state != 'cancelled'"].join(' AND ');
    const args = opts.group === undefined ? [] : [opts.group];
    return this.#all(`SELECT * FROM tasks WHERE ${where} ORDER BY created_at, id`, ...args).map(toTask);
  };

  setTaskState: TaskStore['setTaskState'] = (id, state, nextRun) => {
    this.#run('UPDATE tasks SET state = ?, next_run = ? WHERE id = ?', state, nextRun, id);
    return this.getTask(id)!;
  };

  dueTasks: TaskStore['dueTasks'] = (nowMs) =>
    this.#all("SELECT * FROM tasks WHERE state = 'active' AND next_run IS NOT NULL AND next_run <= ? ORDER BY next_run", nowMs).map(toTask);

  nextDue: TaskStore['nextDue'] = () => {
    const r = this.#get("SELECT MIN(next_run) AS t FROM tasks WHERE state = 'active' AND next_run IS NOT NULL");
    return r?.t === null || r?.t === undefined ? null : Number(r.t);
  };

  /** The compare-and-set is on next_run, in the UPDATE's WHERE: whoever changes nothing claimed nothing. */
  claimTask: TaskStore['claimTask'] = (taskId, expectedNextRun, newNextRun) => this.transaction(() => {
    const changed = this.#run(
      "UPDATE tasks SET next_run = ?, state = CASE WHEN ? IS NULL THEN 'completed' ELSE state END WHERE id = ? AND state = 'active' AND next_run = ?",
      newNextRun, newNextRun, taskId, expectedNextRun,
    );
    if (changed === 0) return undefined;
    return this.#insertRun(taskId, expectedNextRun, false);
  });

  queueManualRun: TaskStore['queueManualRun'] = (taskId, atMs) => this.transaction(() => this.#insertRun(taskId, atMs, true));

  #insertRun(taskId: string, scheduledFor: number, manual: boolean): TaskRun {
    const task = this.getTask(taskId);
    if (!task) throw new Error(`unknown task "${taskId}"`);
    const id = `run-${randomUUID()}`;
    this.#run("INSERT INTO task_runs (id, task_id, group_name, scheduled_for, manual, state) VALUES (?, ?, ?, ?, ?, 'queued')", id, taskId, task.group, scheduledFor, manual ? 1 : 0);
    return this.getRun(id)!;
  }

  getRun: TaskStore['getRun'] = (id) => this.#one(toRun, 'SELECT * FROM task_runs WHERE id = ?', id);
  listRuns: TaskStore['listRuns'] = (taskId, limit = 20) =>
    this.#all('SELECT * FROM task_runs WHERE task_id = ? ORDER BY scheduled_for DESC, rowid DESC LIMIT ?', taskId, limit).map(toRun);
}
