// The turn lifecycle: one turn per group at a time, from the batch taken out of the store to
// its recorded outcome. This is where a turn ends and where a retry is decided.
//
// A turn is `waiting` (its container is being made ready), `running` (the batch is in the
// container), `ending` (its end is decided: the agent's done or error, the host's timeout or
// stop, the container's exit — whichever came first — and the host is cleaning up), then
// `settled` (its outcome is in the store; the turn is gone).
//
// Invariants: a turn ends exactly once (later ends are ignored); only a running turn's
// messages are applied, each counted toward its output limit; a turn's outcome is recorded
// once, by `settle`. A failed batch is retried when `failOutcome` (store-contract.ts) says so
// for its attempts; `settle` decides what it asks (retryable? keep waiting through a model
// outage?) and the backoff (`retryDelay`).

import { modelProblem, type Config, type Limits } from './config.ts';
import type { AuditKind } from './audit.ts';
import type { DiskGuard } from './disk.ts';
import { failpoint } from './failpoint.ts';
import type { Ipc } from './ipc.ts';
import type { Logger } from './log.ts';
import { PolicyError } from './policy.ts';
import type { GroupQueue } from './queue.ts';
import type { Runner } from './runner.ts';
import type { ContainerExit } from './runtime.ts';
import type { Batch, BatchStore, FailOptions, FailOutcome, Group, GroupStore, TaskStore } from './store-contract.ts';
import { mark } from './trace.ts';
import type { BatchFile } from '../../protocol/ipc.ts';

/** Characters of message text one batch may carry (keeps batch files well under the IPC limit). */
const BATCH_CHARS = 48_000;

export type TurnEnd =
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly message: string; readonly retryable: boolean }
  /** The host stopped the turn (a limit, a flood, the disk): the group is told, nothing retried unless kept. */
  | { readonly kind: 'stopped'; readonly message: string; readonly keep?: boolean };

export type TurnState =
  | { readonly kind: 'waiting' }
  | { readonly kind: 'running'; readonly written: number }
  | { readonly kind: 'ending'; readonly end: TurnEnd };

// ---- Decisions: pure functions of the state ---------------------------------------------------

/** The state after `end` arrives: the first end wins. */
export function endState(state: TurnState, end: TurnEnd): TurnState {
  return state.kind === 'ending' ? state : { kind: 'ending', end };
}

/** Whether a message of `chars` characters may be applied, and the state after it. */
export function charge(state: TurnState, chars: number, maxOutput: number): { verdict: 'ok' | 'closed' | 'over'; state: TurnState } {
  if (state.kind !== 'running') return { verdict: 'closed', state };
  if (state.written + chars > maxOutput) return { verdict: 'over', state };
  return { verdict: 'ok', state: { kind: 'running', written: state.written + chars } };
}

/** Exponential backoff for retry number `attempts` (1-based), capped. */
export function retryDelay(attempts: number, config: Pick<Config, 'retryBaseMs' | 'retryMaxMs'>): number {
  return Math.min(config.retryBaseMs * 2 ** (attempts - 1), config.retryMaxMs);
}

/** The end of a turn whose container exited before the turn ended: retried. */
export function exitEnd(exit: ContainerExit): TurnEnd {
  const detail = exit.tail.split('\n').filter(Boolean).slice(-3).join(' | ').slice(0, 500);
  return { kind: 'error', message: `the agent container exited with code ${exit.code}${detail ? `: ${detail}` : ''}`, retryable: true };
}

/** The batch as its container reads it: a scheduled run is one message from "scheduler". */
export function batchFile(batch: Batch): BatchFile {
  if (batch.task) {
    const { task, run } = batch.task;
    return {
      v: 1, id: batch.id, type: 'batch',
      messages: [{ id: run.id, sender: 'scheduler', text: task.prompt, ts: new Date(run.scheduledFor).toISOString() }],
      task: { id: task.id, run: run.id, context: task.context },
    };
  }
  return { v: 1, id: batch.id, type: 'batch', messages: batch.messages.map((m) => ({ id: m.id, sender: m.sender, text: m.text, ts: m.ts })) };
}

// ---- The turns of the host ---------------------------------------------------------------------

interface Turn {
  readonly batch: string;
  readonly maxOutput: number;
  state: TurnState;
  readonly resolve: (end: TurnEnd) => void;
}

export interface TurnsOptions {
  readonly store: Pick<GroupStore, 'getGroup'> & Pick<BatchStore, 'takeBatch' | 'finishBatch' | 'failBatch' | 'runningBatches' | 'groupsWithPending'> & Pick<TaskStore, 'getRun'>;
  readonly config: Config;
  readonly log: Logger;
  readonly runner: Pick<Runner, 'acquire' | 'release' | 'stop'>;
  readonly ipc: Pick<Ipc, 'watch' | 'send' | 'clearInputs' | 'clearTemporaries'>;
  readonly disk: Pick<DiskGuard, 'admit' | 'wake' | 'check'>;
  /** Contract: appends an audit record; never throws. */
  readonly record: (kind: AuditKind, group: string, data: Record<string, unknown>) => void;
  /** Contract: stores and publishes a notice to the group; never throws. */
  readonly tell: (group: string, text: string, batchId: string | null) => void;
  /** Contract: shows that a turn works on `batch` (a typing indicator) until the returned function is called; never throws. */
  readonly working?: (batch: Batch) => () => void;
  /** Contract: whether the provider of `model` is in an outage (its messages keep waiting). */
  readonly modelDown: (model: string | undefined) => boolean;
  readonly queue: Pick<GroupQueue, 'enqueue' | 'enqueueLater'>;
}

/** The model a group's turns use: its own, else the host's. */
export const groupModel = (group: Group, config: Pick<Config, 'model'>): string | undefined => group.model ?? config.model;

/** What a group's container did in its current turn that the host limits. */
interface TurnCounts { rejected: number; decisions: number }

export class Turns {
  readonly #opts: TurnsOptions;
  readonly #byGroup = new Map<string, Turn>();
  /** Groups told, during the current model outage, that their message waits for the model. */
  readonly #toldWaiting = new Set<string>();
  /** Groups already warned that their messages wait for a model to be configured. */
  readonly #warned = new Set<string>();
  /** Files of each group rejected since its current turn began. */
  readonly #counts = new Map<string, TurnCounts>();

  constructor(opts: TurnsOptions) {
    this.#opts = opts;
  }

  /** One turn for the group (the queue's work): take a batch, run it in the group's container, settle it. */
  async serve(groupName: string, signal?: AbortSignal): Promise<void> {
    const { store, config, log } = this.#opts;
    mark(log, 'serve', { group: groupName });
    const group = store.getGroup(groupName);
    if (!group) return;
    const model = groupModel(group, config);
    const problem = modelProblem(config, model);
    if (problem || !model) {
      if (!this.#warned.has(groupName)) log.warn('messages wait: model not ready', { group: groupName, reason: problem });
      this.#warned.add(groupName);
      return;
    }
    // Over its disk limit, or the disk nearly full: the messages wait (whoever must act was told once).
    const refused = await this.#opts.disk.admit(groupName);
    if (refused) return log.info('turn refused for lack of disk space; messages wait', { group: groupName, reason: refused });
    const batch = store.takeBatch(groupName, BATCH_CHARS);
    if (!batch) return;
    mark(log, 'taken', { group: groupName, batch: batch.id, messages: batch.messages.map((m) => m.id) });
    const idle = this.#opts.working?.(batch);
    const end = await this.#run(group, model, batch, signal).finally(idle);
    const retrying = this.settle(groupName, batch.id, end, model);
    if (batch.task) {
      const run = store.getRun(batch.task.run.id);
      this.#opts.record('task.run', groupName, { task: batch.task.task.id, run: batch.task.run.id, state: run?.state ?? 'unknown', ...(end.kind === 'error' ? { error: end.message } : {}) });
    }
    // Messages that came during the turn are served now; after a failure they wait with the
    // failed batch's messages for its backoff (a sooner enqueue, a new message, still runs them).
    if (!retrying && store.groupsWithPending().includes(groupName)) this.#opts.queue.enqueue(groupName);
  }

  async #run(group: Group, model: string, batch: Batch, signal: AbortSignal | undefined): Promise<TurnEnd> {
    const { runner, ipc, disk, log: logger } = this.#opts;
    const log = { group: group.name, batch: batch.id, ...(batch.task ? { task: batch.task.task.id, run: batch.task.run.id } : { messages: batch.messages.length }) };
    try {
      await runner.acquire(group, model, signal ? { signal } : {});
      ipc.watch(group.name);
      mark(logger, 'acquired', { group: group.name, batch: batch.id });
    } catch (err) {
      // A policy refusal will not change by retrying; an engine hiccup may.
      if (err instanceof PolicyError) this.#opts.record('container.refused', group.name, { reason: err.message });
      return { kind: 'error', message: `the container could not start: ${(err as Error).message}`, retryable: !(err instanceof PolicyError) };
    }
    const limits = { ...this.#opts.config.limits, ...group.limits };
    const ended = this.begin(group.name, batch.id, limits);
    disk.wake(); // the group's folder and the free space are checked every few seconds while it runs
    const started = Date.now();
    try {
      await ipc.send(group.name, batchFile(batch));
      mark(logger, 'sent', { group: group.name, batch: batch.id });
      this.handOver(group.name);
      failpoint('batch-sent');
    } catch (err) {
      this.end(group.name, { kind: 'error', message: `could not hand the batch to the container: ${(err as Error).message}`, retryable: true });
    }
    const timer = setTimeout(() => {
      if (!this.end(group.name, { kind: 'error', message: `the turn took longer than ${limits.turnTimeoutSeconds} s`, retryable: true })) return;
      logger.warn('turn timed out; stopping the container', { ...log, seconds: limits.turnTimeoutSeconds });
      runner.stop(group.name);
    }, limits.turnTimeoutSeconds * 1000);
    // Shutdown: the turn ends now (retried at the next start); the host stops the container.
    const onAbort = () => this.end(group.name, { kind: 'error', message: 'the host is shutting down', retryable: true });
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const end = await ended;
    mark(logger, 'ended', { group: group.name, batch: batch.id });
    signal?.removeEventListener('abort', onAbort);
    clearTimeout(timer);
    // Over its limit now: the group is told and its next turn refused. A failed check must not
    // skip what follows, or the container would stay busy and the group never be served again.
    await disk.check(group.name).catch((err: unknown) => logger.error('could not measure the group\'s folder after its turn', { ...log, error: String(err) }));
    this.close(group.name);
    await ipc.clearInputs(group.name); // the batch and the responses of this turn
    // Nothing the turn started may outlive it: leftover processes are killed (or the
    // container recycled), then its leftover temporaries are moved out of out/.
    const killed = await runner.release(group.name);
    if (killed) {
      logger.warn('killed processes the turn left running', { ...log, killed });
      this.#opts.record('container.strays', group.name, { batch: batch.id, killed });
    }
    if (killed !== null) await ipc.clearTemporaries(group.name);
    mark(logger, 'released', { group: group.name, batch: batch.id });
    logger.info('turn ended', { ...log, outcome: end.kind, ms: Date.now() - started, ...(end.kind === 'error' ? { error: end.message } : {}) });
    return end;
  }

  /**
   * Counts one of the group's rejected files, or one egress or model-route decision of its
   * container, since its current turn began; returns that count (the host's flood limits).
   */
  counted(group: string, what: keyof TurnCounts): number {
    const counts = this.#counts.get(group) ?? { rejected: 0, decisions: 0 };
    counts[what]++;
    this.#counts.set(group, counts);
    return counts[what];
  }

  /** Opens the group's turn for `batch` (waiting for its container); its end is the returned promise, which never rejects. */
  begin(group: string, batch: string, limits: Pick<Limits, 'maxOutputChars'>, state: TurnState = { kind: 'waiting' }): Promise<TurnEnd> {
    this.#counts.delete(group);
    const { promise, resolve } = Promise.withResolvers<TurnEnd>();
    this.#byGroup.set(group, { batch, maxOutput: limits.maxOutputChars, state, resolve });
    return promise;
  }

  /** The batch is in the container: its messages count from now. */
  handOver(group: string): void {
    const t = this.#byGroup.get(group);
    if (t?.state.kind === 'waiting') t.state = { kind: 'running', written: 0 };
  }

  /** Ends the group's turn (or only the turn of `batch`); false when it had already ended or is not there. */
  end(group: string, end: TurnEnd, batch?: string): boolean {
    const t = this.#byGroup.get(group);
    if (!t || (batch !== undefined && t.batch !== batch) || t.state.kind === 'ending') return false;
    t.state = endState(t.state, end);
    t.resolve(end);
    return true;
  }

  /** Charges a message of `batch` to the group's turn; the verdict says whether it may be applied. */
  charge(group: string, batch: string, chars: number): { verdict: 'ok' | 'closed' | 'over'; maxOutput: number } {
    const t = this.#byGroup.get(group);
    if (!t || t.batch !== batch) return { verdict: 'closed', maxOutput: 0 };
    const r = charge(t.state, chars, t.maxOutput);
    t.state = r.state;
    return { verdict: r.verdict, maxOutput: t.maxOutput };
  }

  /** The group's turn is running (a request may be taken). */
  running(group: string): boolean {
    return this.#byGroup.get(group)?.state.kind === 'running';
  }

  /** Groups with an open turn (not yet settled). */
  groups(): ReadonlySet<string> {
    return new Set(this.#byGroup.keys());
  }

  /** Closes the group's turn: its outputs are no longer applied. */
  close(group: string): void {
    this.#byGroup.delete(group);
  }

  /** A model upstream is back: the next outage tells each group again. */
  modelBack(): void {
    this.#toldWaiting.clear();
  }

  /**
   * Records the outcome of a turn that ended with `end`: done finishes the batch; an error is
   * retried with backoff or given up (the group told); a stop was settled where it was decided
   * and is only told. Contract: the only place a turn's outcome is recorded. Returns true
   * when the batch is retried later, after its backoff.
   */
  settle(group: string, batchId: string, end: TurnEnd, model: string | undefined): boolean {
    if (end.kind === 'done') {
      this.#opts.store.finishBatch(batchId);
      return false;
    }
    if (end.kind === 'stopped') {
      // A stop that keeps the messages (the budget, the disk) was no failure of theirs: not a try.
      const keep = end.keep === true;
      this.#fail(group, batchId, end.message, { retryable: keep, keepWaiting: keep, counts: !keep });
      this.#opts.tell(group, `I stopped this turn: ${end.message}.`, null);
      return false;
    }
    const modelDown = end.retryable && this.#opts.modelDown(model);
    const outcome = this.#fail(group, batchId, end.message, { retryable: end.retryable, keepWaiting: modelDown });
    if (!outcome) return false;
    const { config, log } = this.#opts;
    if (outcome.kind === 'retry') {
      const delay = retryDelay(outcome.attempts, config);
      log.warn('turn failed; will retry', { group, batch: batchId, attempt: outcome.attempts, retryInMs: delay, modelDown, error: end.message });
      if (modelDown && outcome.attempts >= config.maxAttempts && !this.#toldWaiting.has(group)) {
        this.#toldWaiting.add(group);
        this.#opts.tell(group, `The model is not reachable right now (${end.message}). Your message is kept and will be answered when it is back.`, null);
      }
      this.#opts.queue.enqueueLater(group, delay);
      return true;
    }
    if (outcome.kind === 'gave_up') {
      log.error('turn failed; giving up', { group, batch: batchId, attempts: outcome.attempts, error: end.message });
      this.#opts.tell(group, `Sorry, I could not answer: ${end.message}`, batchId);
    }
    return false;
  }

  #fail(group: string, batchId: string, message: string, how: Omit<FailOptions, 'maxAttempts'>): FailOutcome | undefined {
    try {
      return this.#opts.store.failBatch(batchId, message, { maxAttempts: this.#opts.config.maxAttempts, ...how });
    } catch (err) {
      this.#opts.log.error('could not settle a turn; the next start settles it', { group, batch: batchId, error: String(err) });
      return undefined;
    }
  }

  /**
   * After a restart: the batches the previous process left running are opened as running turns,
   * so that their leftover outputs apply (within their limit) while `drain` runs; then each is
   * settled by what it wrote, or failed as interrupted.
   */
  async recover(drain: () => Promise<void>): Promise<void> {
    const left = this.#opts.store.runningBatches();
    for (const b of left) {
      const limits = { ...this.#opts.config.limits, ...this.#opts.store.getGroup(b.group)?.limits };
      void this.begin(b.group, b.id, limits, { kind: 'running', written: 0 });
    }
    await drain();
    for (const b of left) {
      // Only the newest of a group's left batches could take outputs: an older one is interrupted.
      const t = this.#byGroup.get(b.group);
      if (t?.batch === b.id) this.close(b.group);
      const end: TurnEnd = t?.batch === b.id && t.state.kind === 'ending' ? t.state.end : { kind: 'error', message: 'the host stopped during this turn', retryable: true };
      this.#opts.log.info('recovered interrupted batch', { group: b.group, batch: b.id, end: end.kind });
      this.settle(b.group, b.id, end, undefined);
    }
    this.#counts.clear();
  }
}
