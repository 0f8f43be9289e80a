// What hako keeps, and the contract any store honours: the records (groups, messages,
// batches, tasks and their runs) and one narrow interface per concern. Consumers take the
// narrowest one they need; src/core/store.ts implements them all over SQLite, and a second
// implementation (PostgreSQL for several hosts, an in-memory fake) implements the same.
//
// Contract shared by every method: synchronous; when it returns, its effect is committed
// (a crash of the process loses none of it), and a call that throws changed nothing. It
// throws for the broken precondition its contract names, or when the database cannot be
// used (disk full, locked past the busy timeout); "nothing there" is undefined, null or [],
// never a throw. The store makes the ids of messages, batches, tasks and runs. A networked
// database would make these calls promises: the contracts (atomicity, compare-and-set,
// exactly-once outputs) carry over unchanged.

import type { TaskState } from '../../protocol/results.ts';
import type { Limits } from './config.ts';

export interface Group {
  readonly name: string;
  readonly isMain: boolean;
  readonly trigger: string | null;
  readonly model: string | null;
  /** Senders whose messages may engage the agent; null = everyone. */
  readonly allowedSenders: readonly string[] | null;
  /** This group's overrides of the host's default limits. */
  readonly limits: Partial<Limits>;
  /** Model tokens (input + output) the group may use per day; null: only HAKO_TOKENS_PER_DAY applies. */
  readonly tokensPerDay: number | null;
  /** Tokens one model request of this group may use; null: HAKO_CONTEXT_TOKENS or the model's default. */
  readonly contextTokens: number | null;
  /** Extra host folders as requested; checked against the mount policy at every start. */
  readonly mounts: readonly { readonly hostPath: string; readonly readWrite: boolean }[];
  /** Chat addresses bound to the group (`<channel>:<address>`), sorted; each belongs to this group only. */
  readonly chats: readonly string[];
  readonly createdAt: string;
}

/** 'pending': made by a non-main group's agent, waits for the owner's approval; never claimed. (Agents see it: protocol/results.ts.) */
export type { TaskState };

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
  /** A user message: the chat it came from (`<channel>:<address>`); null for the local channels and for assistant messages. */
  readonly chat: string | null;
  /** An assistant message: the host's copy of the file sent with it (HAKO_HOME/files/…), if any. */
  readonly file?: string;
  /** A user message: whether it called the agent (false: kept as context only). */
  readonly engaged?: boolean;
}

/** An assistant message still to be sent to one chat. */
export interface Delivery {
  readonly message: StoredMessage;
  readonly chat: string;
  /** The channel's `ref` of the message it answers, if it answers one. */
  readonly replyTo: string | null;
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
  /** False for a stop that was no failure of the work (its budget used up, the disk full): not a try. */
  readonly counts?: boolean;
}

/** Failed work waits again unless the error is final or it had its tries (and need not keep waiting). */
export function failOutcome(attempts: number, opts: FailOptions): FailOutcome {
  return !opts.retryable || (attempts >= opts.maxAttempts && !opts.keepWaiting) ? { kind: 'gave_up', attempts } : { kind: 'retry', attempts };
}

export interface Transactional {
  /**
   * Contract: runs `fn` as one atomic step across every concern of this store: all its
   * writes commit together, or, if `fn` throws, none does and the error is rethrown. A
   * nested call joins the outer step. `fn` is synchronous (the step must not span an await).
   */
  transaction<T>(fn: () => T): T;
}

/** Groups and their settings: trigger, model, sender allowlist, mounts, limits. */
export interface GroupStore {
  /** Contract: throws when the name is taken, `isMain` is asked while a main group exists (one at most), or a chat is bound to another group; nothing is stored then. */
  addGroup(g: { name: string; isMain: boolean; trigger: string | null; model: string | null; allowedSenders?: readonly string[] | null; mounts?: Group['mounts']; chats?: readonly string[]; tokensPerDay?: number | null; contextTokens?: number | null }): Group;
  /**
   * Contract: changes the given fields in one step (undefined ones stay); `bind` adds chat
   * addresses, `unbind` removes them. Throws for an unknown group, a chat bound to another
   * group, or unbinding a chat the group does not have; nothing changes then.
   */
  updateGroup(name: string, g: { trigger?: string | null; model?: string | null; allowedSenders?: readonly string[] | null; mounts?: Group['mounts']; limits?: Group['limits']; tokensPerDay?: number | null; contextTokens?: number | null; bind?: readonly string[]; unbind?: readonly string[] }): Group;
  getGroup(name: string): Group | undefined;
  /** Contract: the group a chat address is bound to. */
  groupForChat(chat: string): string | undefined;
  /** Contract: records that an unbound chat wrote; true only the first time for that address. */
  noteUnknownChat(chat: string, title: string | undefined): boolean;
  mainGroup(): Group | undefined;
  /** Contract: by name. */
  listGroups(): Group[];
  /** Contract: removes the group with its messages, batches, tasks and applied outputs in one step; false when unknown. */
  removeGroup(name: string): boolean;
}

/** Model tokens used, per group and day (`YYYY-MM-DD` in the owner's time zone). */
export interface UsageStore {
  /** Contract: adds one model response's tokens to the group's count for `day` (made on first use). */
  addUsage(group: string, day: string, usage: { input: number; output: number }): void;
  /** Contract: every group's count for `day` (also of groups since removed), by group name; [] when none. */
  usageOn(day: string): { group: string; input: number; output: number; requests: number }[];
}

/** The conversation: messages as stored, and the delivery state of assistant messages. */
export interface MessageStore {
  /**
   * Contract: stores an inbound message, 'pending' when it engages the agent, else 'context'
   * (given with the next turn). Throws when a message with the same chat and ref is stored
   * (`messageByRef` finds it first).
   */
  addUserMessage(m: { group: string; sender: string; text: string; engage: boolean; chat?: string; senderId?: string; ref?: string }): StoredMessage;
  /** Contract: the message a chat channel handed in with this chat and ref, if stored. */
  messageByRef(chat: string, ref: string): StoredMessage | undefined;
  /** Contract: oldest first, at most `limit` (1000); undefined when `afterId` is not a message of the group. */
  listMessages(group: string, opts?: { afterId?: string; limit?: number }): StoredMessage[] | undefined;
  /**
   * Contract: stores an assistant notice that is no agent output (e.g. "could not answer"),
   * with its deliveries, in one step. Every assistant message is to be sent to the chat of
   * the newest user message of its batch, or, when that came from a local channel, to no
   * chat; with no batch or a task's batch, to every chat bound to its group.
   */
  addNotice(group: string, text: string, batchId: string | null): StoredMessage;
  /** Contract: the message reached that chat: never sent there again. */
  markDelivered(messageId: string, chat: string): void;
  /** Contract: a send to that chat failed; it stays to be sent (attempts counted, error kept). */
  deliveryFailed(messageId: string, chat: string, error: string): void;
  /** Contract: deliveries not yet sent, oldest message first; of one message when given. */
  pendingDeliveries(messageId?: string): Delivery[];
  /** Contract: the group's messages per state; 0 for a state it has none in. */
  counts(group: string): Record<MessageState, number>;
}

/**
 * Work units: a batch is a group's waiting messages or one queued task run, taken to run
 * as one turn, and the outputs the agent wrote for it, each applied exactly once.
 */
export interface BatchStore {
  /** Contract: groups with pending messages or queued task runs. */
  groupsWithPending(): string[];
  /**
   * Contract: in one step, records a running batch and moves its work into it: the group's
   * oldest queued task run, or its pending messages with the context before them (at
   * least one message, then up to `maxChars` of text), whichever waited longer.
   * Undefined when the group has no work. The batch exists before the caller hands it on.
   */
  takeBatch(group: string, maxChars: number): Batch | undefined;
  /**
   * Contract: records output `outputId` as applied and stores its text as an assistant
   * message with its deliveries (as `addNotice`), all in one step; undefined, changing nothing, when that
   * output was applied before. Joins an enclosing transaction. `batchId` is the message's own
   * (null in another group's conversation); `turnBatch`, when it differs, the batch whose turn
   * wrote it: that batch then counts as having reached someone (failBatch does not run it again).
   */
  applyAssistantOutput(o: { outputId: string; group: string; batchId: string | null; turnBatch?: string; type: string; text: string; sender: string; file?: string }): StoredMessage | undefined;
  /** Contract: records an output with no message (done, error, a request) as applied; false when it already was. Run it in the transaction of the output's effect. */
  markOutputApplied(o: { outputId: string; group: string; batchId: string | null; type: string }): boolean;
  getBatch(id: string): { id: string; group: string; state: string; taskRunId: string | null } | undefined;
  /** Contract: a running batch's messages become answered (its task run done, with a summary of its replies), in one step; otherwise a no-op. */
  finishBatch(batchId: string): void;
  /**
   * Contract: a batch ended without `done`, in one step. If any reply of it reached the
   * user it counts as answered (re-running would answer twice); otherwise its work waits
   * again ('retry') or fails for good ('gave_up', after `maxAttempts` tries or a final
   * error). A batch that is not running: 'answered', nothing changed.
   */
  failBatch(batchId: string, error: string, opts: FailOptions): FailOutcome;
  /** Contract: batches still running (after a restart: those the previous process left). */
  runningBatches(): { id: string; group: string }[];
  /** Contract: failed batches and task runs, newest first. */
  recentFailures(limit?: number): { group: string; at: string; error: string; task: string | null }[];
}

/** Scheduled tasks and their runs (the scheduler's SchedulerStore is a subset). */
export interface TaskStore {
  /** Contract: a new task, active unless `state` says 'pending' (then with no next run until approved); throws for an unknown group. */
  addTask(t: { group: string; prompt: string; schedule: string; context: Task['context']; nextRun: number | null; createdBy: string; state?: 'active' | 'pending' }): Task;
  /** Contract: tasks of `group` that may still run: pending, active or paused. */
  liveTaskCount(group: string): number;
  getTask(id: string): Task | undefined;
  /** Contract: of one group or all, oldest first; cancelled ones only when asked. */
  listTasks(opts?: { group?: string; includeCancelled?: boolean }): Task[];
  /** Contract: sets state and next run as given (the caller decides the transition); returns the task. */
  setTaskState(id: string, state: TaskState, nextRun: number | null): Task;
  /** Contract: active tasks with a next run at or before `nowMs`, earliest first. */
  dueTasks(nowMs: number): Task[];
  /** Contract: the earliest next run of an active task, or null. */
  nextDue(): number | null;
  /**
   * Contract: compare-and-set, in one step. If the task is active and its next run is
   * still `expectedNextRun`, records a queued run for that time and moves the next run to
   * `newNextRun` (null: the task is completed); otherwise changes nothing and returns
   * undefined. So a run is claimed at most once, however many hosts ask.
   */
  claimTask(taskId: string, expectedNextRun: number, newNextRun: number | null): TaskRun | undefined;
  /** Contract: queues an extra run at `atMs`, the schedule unchanged; throws for an unknown task. */
  queueManualRun(taskId: string, atMs: number): TaskRun;
  getRun(id: string): TaskRun | undefined;
  /** Contract: the task's newest runs first, at most `limit` (20). */
  listRuns(taskId: string, limit?: number): TaskRun[];
}
