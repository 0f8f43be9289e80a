// The host process: wires store, router, queue, runner, IPC, scheduler and channels,
// recovers what a previous process left, and shuts down gracefully.
//
// Invariants: a message is marked answered only by its batch's `done` (or, when the
// container died, by a reply that already reached the user); a batch that failed with no
// reply is retried with exponential backoff and, after the limit, the user is told —
// while the model upstream is down the work keeps waiting instead of failing.

import fs from 'node:fs';
import { modelProblem, parseModel, type Config, type ProviderName } from './config.ts';
import { InputError, type Channel, type ChannelContext } from './channel.ts';
import { failpoint } from './failpoint.ts';
import { AuditLog, type AuditKind } from './audit.ts';
import { DiskGuard, parseSize } from './disk.ts';
import { Ipc } from './ipc.ts';
import type { Logger } from './log.ts';
import { homePaths } from './paths.ts';
import { GroupQueue } from './queue.ts';
import { createRouter, type Router } from './router.ts';
import { PolicyError } from './policy.ts';
import { Runner, prepareGroupDirs } from './runner.ts';
import type { ContainerExit, Runtime } from './runtime.ts';
import { Scheduler, systemClock, type Clock } from './scheduler.ts';
import { Store, type Batch, type Group, type StoredMessage } from './store.ts';
import { approvalNotice, createTaskService, ownerTaskAction, TaskError, type Actor, type TaskService, type TaskView } from './tasks.ts';
import type { AgentToHost, BatchFile, HostRequest } from '../../protocol/ipc.ts';
import { groupNameProblem } from '../../protocol/names.ts';

/** Characters of message text one batch may carry (keeps batch files well under the IPC limit). */
const BATCH_CHARS = 48_000;
/** Rejected out/ files per group and turn past which its container is stopped as a flood. */
const MAX_REJECTED_PER_TURN = 1000;

type BatchEnd =
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly message: string; readonly retryable: boolean }
  /** The host stopped a runaway turn (a limit); the group is always told, nothing retried. */
  | { readonly kind: 'stopped'; readonly message: string };

export interface HostOptions {
  readonly config: Config;
  readonly runtime: Runtime;
  readonly image: string;
  readonly log: Logger;
  readonly channels: readonly Channel[];
  readonly clock?: Clock;
  /** Masks secret values out of audit records (the logger's masker). */
  readonly redact?: (s: string) => string;
}

export class Host {
  readonly config: Config;
  readonly store: Store;
  readonly router: Router;
  readonly queue: GroupQueue;
  readonly runner: Runner;
  readonly ipc: Ipc;
  readonly scheduler: Scheduler;
  readonly tasks: TaskService;
  readonly audit: AuditLog;
  readonly disk: DiskGuard;
  readonly startedAt = new Date();
  readonly #log: Logger;
  readonly #channels: readonly Channel[];
  readonly #clock: Clock;
  readonly #subscribers = new Set<(m: StoredMessage) => void>();
  /** Batches whose outcome a turn is waiting for, with the characters of messages they wrote. */
  readonly #waiting = new Map<string, { group: string; resolve: (end: BatchEnd) => void; written: number; maxOutput: number }>();
  readonly #warned = new Set<string>();
  /** Providers whose last model request failed like an outage (unreachable, 429, 5xx). */
  readonly #modelDown = new Set<ProviderName>();
  /** Groups already told, during this outage, that their message waits for the model. */
  readonly #toldWaiting = new Set<string>();
  /** Batches ended by the host (timed out) but not yet settled: their outputs are refused. */
  readonly #ending = new Set<string>();
  /** Response files written into a group's in/ during its current turn (removed after it). */
  readonly #responses = new Map<string, string[]>();
  /** Files of each group rejected since its current turn began. */
  readonly #rejections = new Map<string, number>();

  constructor(opts: HostOptions) {
    this.config = opts.config;
    this.#log = opts.log;
    this.#channels = opts.channels;
    this.#clock = opts.clock ?? systemClock;
    fs.mkdirSync(opts.config.home, { recursive: true, mode: 0o700 });
    this.store = new Store(homePaths(opts.config.home).db);
    this.audit = new AuditLog(homePaths(opts.config.home).db, opts.redact ? { redact: opts.redact } : {});
    this.ipc = new Ipc({
      home: opts.config.home, log: opts.log,
      onOutput: async (g, o) => {
        await this.#applyOutput(g, o);
        this.#record('ipc.apply', g, { type: o.type, id: o.id, ...('batch' in o && o.batch ? { batch: o.batch } : {}) });
      },
      onRejected: (g, file, reason) => this.#rejected(g, file, reason),
    });
    this.runner = new Runner({
      config: opts.config, runtime: opts.runtime, image: opts.image, log: opts.log,
      onStart: (g, args) => this.#record('container.start', g, { args: [...args] }),
      groups: () => this.store.listGroups(),
      onExit: (g, exit) => {
        this.#record('container.exit', g, { code: exit.code });
        this.#containerExited(g, exit);
      },
      onUpstream: (provider, ok) => this.#upstream(provider, ok),
      onEgress: (g, d) => {
        this.#record('egress', g, { ...d });
        const fields = { group: g, host: d.host, port: d.port, kind: d.kind, ...(d.allowed ? {} : { reason: d.reason }) };
        if (d.kind !== 'model') this.#log.info(d.allowed ? 'egress allowed' : 'egress refused', fields);
        else if (d.allowed) this.#log.debug('model route allowed', { ...fields, path: d.path });
        else this.#log.warn('model route refused', { ...fields, method: d.method, path: d.path });
      },
    });
    this.queue = new GroupQueue({
      maxContainers: opts.config.maxContainers,
      containers: this.runner,
      work: (g) => this.#serve(g),
      onError: (g, err) => this.#log.error('turn crashed', { group: g, error: String(err) }),
    });
    this.scheduler = new Scheduler({
      store: this.store, clock: this.#clock, tz: opts.config.tz, log: opts.log,
      onRun: (run) => this.queue.enqueue(run.group),
    });
    this.tasks = createTaskService({
      store: this.store, tz: opts.config.tz, now: () => this.#clock.now(), maxTasks: opts.config.limits.maxTasks,
      changed: () => this.scheduler.poke(),
      queued: (g) => this.queue.enqueue(g),
    });
    this.router = createRouter({
      store: this.store,
      assistantName: opts.config.assistantName,
      maxChars: opts.config.maxMessageChars,
      onStored: (m) => this.#publish(m),
      enqueue: (g) => this.queue.enqueue(g),
      modelProblem: (g) => modelProblem(this.config, this.#model(g)),
    });
    this.disk = new DiskGuard({
      home: opts.config.home, reserve: opts.config.diskReserve, log: opts.log,
      limit: (g) => { const group = this.store.getGroup(g); return group && parseSize(group.limits.disk ?? this.config.limits.disk); },
      active: () => {
        const turns = new Set([...this.#waiting.values()].map((w) => w.group));
        return new Map([...this.runner.slotHolders()].map((g) => [g, turns.has(g) ? 'turn' : 'warm'] as const));
      },
      onOver: (g, problem) => this.#diskOver(g, problem),
      onUnder: (g) => {
        this.#log.info('group is under its disk limit again; its messages are served', { group: g });
        this.queue.enqueue(g);
      },
      onLow: (problem) => this.#diskLow(problem),
      onSpace: () => {
        this.#log.info('disk space is back; waiting work resumes', { free: this.disk.status().free });
        this.#record('disk', null, { event: 'space' });
        this.#tellMain('There is room on the disk again: waiting messages are being answered.');
        for (const g of this.store.groupsWithPending()) this.queue.enqueue(g);
      },
    });
  }

  get context(): ChannelContext {
    return {
      accept: (m) => this.router.accept(m),
      listMessages: (g, after) => this.store.listMessages(g, after === undefined ? {} : { afterId: after }),
      listGroups: () => this.store.listGroups(),
      getGroup: (name) => this.store.getGroup(name),
      subscribe: (fn) => {
        this.#subscribers.add(fn);
        return () => this.#subscribers.delete(fn);
      },
      owner: {
        status: () => this.status(),
        tasks: () => this.tasks.list({ kind: 'owner' }),
        taskAction: (id, action) => {
          const record = { by: 'owner', action: `task.${action}`, task: id };
          const group = this.store.getTask(id)?.group ?? null;
          try {
            const result = ownerTaskAction(this.tasks, action, id);
            this.#record('policy.change', group, { ...record, ok: true, state: result.task.state });
            return result;
          } catch (err) {
            if (!(err instanceof TaskError)) throw err;
            this.#record('policy.change', group, { ...record, ok: false, error: err.message });
            throw new InputError(err.message.startsWith('no task') ? 404 : 409, err.message);
          }
        },
      },
    };
  }

  /** Recovers leftovers of a previous process, then starts channels, queued work and the scheduler. */
  async start(): Promise<void> {
    await this.runner.reapOrphans();
    // Outputs written before the crash are applied first, as outputs of the turns the
    // previous process left running (and within their limit); no other output may speak.
    const left = this.store.runningBatches();
    for (const b of left) {
      const limits = { ...this.config.limits, ...this.store.getGroup(b.group)?.limits };
      this.#waiting.set(b.id, { group: b.group, written: 0, maxOutput: limits.maxOutputChars, resolve: (end) => {
        this.#waiting.delete(b.id);
        if (end.kind === 'done') this.store.finishBatch(b.id);
        else if (end.kind === 'error') this.#settleFailure(b.group, b.id, end.message, end.retryable, undefined);
        else this.#tell(b.group, `I stopped this turn: ${end.message}.`);
      } });
    }
    for (const g of this.store.listGroups()) {
      prepareGroupDirs(this.config.home, g.name);
      await this.ipc.clearInputs(g.name);
      await this.ipc.clearTemporaries(g.name); // no container runs now: a temporary is junk
    }
    for (const b of left) this.#waiting.delete(b.id);
    this.#rejections.clear();
    for (const b of this.store.runningBatches()) {
      const outcome = this.store.failBatch(b.id, 'the host stopped during this turn', { maxAttempts: this.config.maxAttempts, retryable: true });
      this.#log.info('recovered interrupted batch', { group: b.group, batch: b.id, outcome: outcome.kind });
      if (outcome.kind === 'gave_up') this.#notice(b.group, b.id, 'the host stopped during this turn');
    }
    for (const c of this.#channels) await c.start(this.context);
    for (const m of this.store.undelivered()) this.#deliver(m);
    for (const g of this.store.groupsWithPending()) this.queue.enqueue(g);
    this.scheduler.start();
    const main = this.store.mainGroup();
    const problem = modelProblem(this.config, main ? this.#model(main) : this.config.model);
    if (problem) this.#log.warn(`model not ready: ${problem}`);
  }

  /** Stops taking work, lets running turns end (bounded), stops containers and channels. */
  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    this.scheduler.stop();
    this.queue.close();
    const grace = new Promise((r) => setTimeout(r, opts.graceMs ?? 10_000).unref());
    await Promise.race([this.queue.idle(), grace]);
    await this.runner.stopAll();
    this.disk.close();
    this.ipc.close();
    for (const c of this.#channels) await c.stop().catch((err: unknown) => this.#log.warn('channel stop failed', { channel: c.name, error: String(err) }));
    this.audit.close();
    this.store.close();
  }

  /** Appends an audit record; a failing audit write is logged, never fatal to the turn. */
  #record(kind: AuditKind, group: string | null, data: Record<string, unknown>): void {
    try {
      this.audit.append(kind, group, data);
    } catch (err) {
      this.#log.error('audit append failed', { kind, group, error: String(err) });
    }
  }

  #model(group: Group): string | undefined {
    return group.model ?? this.config.model;
  }

  #upstream(provider: ProviderName, ok: boolean): void {
    if (ok) {
      if (this.#modelDown.delete(provider)) this.#log.info('model upstream is back', { provider });
      this.#toldWaiting.clear();
    } else if (!this.#modelDown.has(provider)) {
      this.#modelDown.add(provider);
      this.#log.warn('model upstream failing', { provider });
    }
  }

  #publish(m: StoredMessage): void {
    for (const fn of this.#subscribers) {
      try { fn(m); } catch (err) { this.#log.warn('subscriber failed', { error: String(err) }); }
    }
    if (m.role === 'assistant') this.#deliver(m);
  }

  /** Hands an assistant message to every channel, then records it delivered. */
  #deliver(m: StoredMessage): void {
    failpoint('before-delivery');
    Promise.allSettled(this.#channels.map((c) => c.deliver(m))).then((results) => {
      const failed = results.filter((r) => r.status === 'rejected');
      for (const f of failed) this.#log.warn('delivery failed', { group: m.group, message: m.id, error: String((f as PromiseRejectedResult).reason) });
      if (failed.length === 0) this.store.markDelivered(m.id);
    }).catch((err: unknown) => this.#log.error('could not record a delivery; it is re-sent at the next start', { group: m.group, message: m.id, error: String(err) }));
  }

  #notice(group: string, batchId: string | null, reason: string): void {
    this.#publish(this.store.addNotice(group, `Sorry, I could not answer: ${reason}`, batchId));
  }

  /** One turn for the group: take a batch, run it in the group's container, settle it. */
  async #serve(groupName: string): Promise<void> {
    const group = this.store.getGroup(groupName);
    if (!group) return;
    const model = this.#model(group);
    const problem = modelProblem(this.config, model);
    if (problem || !model) {
      if (!this.#warned.has(groupName)) this.#log.warn('messages wait: model not ready', { group: groupName, reason: problem });
      this.#warned.add(groupName);
      return;
    }
    // Over its disk limit, or the disk nearly full: the messages wait (whoever must act was told once).
    const refused = await this.disk.admit(groupName);
    if (refused) return this.#log.info('turn refused for lack of disk space; messages wait', { group: groupName, reason: refused });
    const batch = this.store.takeBatch(groupName, BATCH_CHARS);
    if (!batch) return;
    const end = await this.#runBatch(group, model, batch);
    if (end.kind === 'done') this.store.finishBatch(batch.id);
    else if (end.kind === 'error') this.#settleFailure(groupName, batch.id, end.message, end.retryable, model);
    else this.#publish(this.store.addNotice(groupName, `I stopped this turn: ${end.message}.`, null)); // already settled when stopped
    this.#ending.delete(batch.id);
    if (batch.task) {
      const run = this.store.getRun(batch.task.run.id);
      this.#record('task.run', groupName, { task: batch.task.task.id, run: batch.task.run.id, state: run?.state ?? 'unknown', ...(end.kind === 'error' ? { error: end.message } : {}) });
    }
    if (this.store.groupsWithPending().includes(groupName)) this.queue.enqueue(groupName);
  }

  #batchFile(batch: Batch): BatchFile {
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

  async #runBatch(group: Group, model: string, batch: Batch): Promise<BatchEnd> {
    const log = { group: group.name, batch: batch.id, ...(batch.task ? { task: batch.task.task.id, run: batch.task.run.id } : { messages: batch.messages.length }) };
    try {
      await this.runner.acquire(group, model);
      this.ipc.watch(group.name);
    } catch (err) {
      // A policy refusal will not change by retrying; an engine hiccup may.
      if (err instanceof PolicyError) this.#record('container.refused', group.name, { reason: err.message });
      return { kind: 'error', message: `the container could not start: ${(err as Error).message}`, retryable: !(err instanceof PolicyError) };
    }
    const limits = { ...this.config.limits, ...group.limits };
    const ended = new Promise<BatchEnd>((resolve) => this.#waiting.set(batch.id, { group: group.name, resolve, written: 0, maxOutput: limits.maxOutputChars }));
    this.#rejections.delete(group.name);
    this.disk.wake(); // the group's folder and the free space are checked every few seconds while it runs
    const started = Date.now();
    let inputName: string | undefined;
    try {
      inputName = await this.ipc.send(group.name, this.#batchFile(batch));
      failpoint('batch-sent');
    } catch (err) {
      this.#waiting.get(batch.id)?.resolve({ kind: 'error', message: `could not hand the batch to the container: ${(err as Error).message}`, retryable: true });
    }
    const timer = setTimeout(() => {
      this.#log.warn('turn timed out; stopping the container', { ...log, seconds: limits.turnTimeoutSeconds });
      this.#ending.add(batch.id);
      this.#waiting.get(batch.id)?.resolve({ kind: 'error', message: `the turn took longer than ${limits.turnTimeoutSeconds} s`, retryable: true });
      void this.runner.stop(group.name);
    }, limits.turnTimeoutSeconds * 1000);
    const end = await ended;
    clearTimeout(timer);
    this.#waiting.delete(batch.id);
    await this.disk.check(group.name); // over its limit now: the group is told and its next turn refused
    for (const name of [...(inputName ? [inputName] : []), ...(this.#responses.get(group.name) ?? [])]) await this.ipc.removeInput(group.name, name);
    this.#responses.delete(group.name);
    // Nothing the turn started may outlive it: leftover processes are killed (or the
    // container recycled), then its leftover temporaries are moved out of out/.
    const killed = await this.runner.release(group.name);
    if (killed) {
      this.#log.warn('killed processes the turn left running', { ...log, killed });
      this.#record('container.strays', group.name, { batch: batch.id, killed });
    }
    if (killed !== null) await this.ipc.clearTemporaries(group.name);
    this.#log.info('turn ended', { ...log, outcome: end.kind, ms: Date.now() - started, ...(end.kind === 'error' ? { error: end.message } : {}) });
    return end;
  }

  /** Ends the group's running turn now: its batch is settled (kept waiting or failed), the group is told, the container killed. */
  #stopTurn(group: string, message: string, keep: boolean): void {
    for (const [id, w] of this.#waiting) {
      if (w.group !== group) continue;
      this.#ending.add(id);
      try {
        this.store.failBatch(id, message, { maxAttempts: this.config.maxAttempts, retryable: keep, keepWaiting: keep });
      } catch (err) {
        this.#log.error('could not settle a stopped turn; the next start settles it', { group, batch: id, error: String(err) });
      }
      w.resolve({ kind: 'stopped', message });
    }
    void this.runner.stop(group, 0); // no grace: it may be writing as fast as it can
  }

  /** Counts a group's rejected files: past MAX_REJECTED_PER_TURN in one turn its container is stopped as a flood. */
  #rejected(group: string, file: string, reason: string): void {
    this.#record('ipc.reject', group, { file, reason });
    const n = (this.#rejections.get(group) ?? 0) + 1;
    this.#rejections.set(group, n);
    if (n !== MAX_REJECTED_PER_TURN + 1) return;
    const message = `its container wrote more than ${MAX_REJECTED_PER_TURN} files that were rejected (see ipc/${group}/rejected/)`;
    this.#log.warn('ipc flood: stopping the container', { group, rejected: n });
    this.#record('ipc.flood', group, { rejected: n, limit: MAX_REJECTED_PER_TURN });
    if ([...this.#waiting.values()].some((w) => w.group === group)) this.#stopTurn(group, message, false);
    else {
      void this.runner.stop(group, 0);
      this.#tell(group, `I stopped this group's container: ${message}.`);
    }
  }

  /** A notice stored and published; a disk too full for it is logged, never fatal. */
  #tell(group: string, text: string): void {
    try {
      this.#publish(this.store.addNotice(group, text, null));
    } catch (err) {
      this.#log.error('could not store a notice', { group, error: String(err) });
    }
  }

  #tellMain(text: string): void {
    const main = this.store.mainGroup();
    if (main) this.#tell(main.name, text);
  }

  #diskOver(group: string, problem: string): void {
    const text = `${problem}: ask the owner to free space in it or to raise the limit (hako groups set ${group} --disk SIZE); until then your messages wait`;
    this.#log.warn('group over its disk limit: its turns stop until it is under', { group, problem });
    this.#record('disk', group, { event: 'over', problem });
    if ([...this.#waiting.values()].some((w) => w.group === group)) this.#stopTurn(group, text, false);
    else {
      void this.runner.stop(group, 0);
      this.#tell(group, `I cannot take new turns: ${text}.`);
    }
  }

  #diskLow(problem: string): void {
    const text = `${problem}; your message is kept and will be answered when there is room again`;
    this.#log.warn('disk nearly full: turns stopped, no container starts until there is room', { problem, home: this.config.home });
    this.#record('disk', null, { event: 'low', problem });
    for (const g of new Set([...this.#waiting.values()].map((w) => w.group))) this.#stopTurn(g, text, true);
    for (const g of this.runner.slotHolders()) void this.runner.stop(g, 0);
    this.#tellMain(`${problem}. I stopped running turns and start no containers until there is room again; messages are kept. Free space on the disk of ${this.config.home}, or lower HAKO_DISK_RESERVE.`);
  }

  #settleFailure(group: string, batchId: string, message: string, retryable: boolean, model: string | undefined): void {
    const parsed = model ? parseModel(model) : undefined;
    const modelDown = retryable && typeof parsed === 'object' && this.#modelDown.has(parsed.provider);
    const outcome = this.store.failBatch(batchId, message, { maxAttempts: this.config.maxAttempts, retryable, keepWaiting: modelDown });
    if (outcome.kind === 'retry') {
      const delay = Math.min(this.config.retryBaseMs * 2 ** (outcome.attempts - 1), this.config.retryMaxMs);
      this.#log.warn('turn failed; will retry', { group, batch: batchId, attempt: outcome.attempts, retryInMs: delay, modelDown, error: message });
      if (modelDown && outcome.attempts >= this.config.maxAttempts && !this.#toldWaiting.has(group)) {
        this.#toldWaiting.add(group);
        this.#publish(this.store.addNotice(group, `The model is not reachable right now (${message}). Your message is kept and will be answered when it is back.`, null));
      }
      this.queue.enqueueLater(group, delay);
    } else if (outcome.kind === 'gave_up') {
      this.#log.error('turn failed; giving up', { group, batch: batchId, attempts: outcome.attempts, error: message });
      this.#notice(group, batchId, message);
    }
  }

  async #applyOutput(group: string, o: AgentToHost): Promise<void> {
    switch (o.type) {
      case 'reply':
      case 'send_message': {
        if (o.type === 'send_message' && o.group !== undefined && o.group !== group) {
          // Acting on another group is main's privilege; the target must exist.
          const self = this.store.getGroup(group);
          if (!self?.isMain) throw new Error(`group "${group}" may not message group "${o.group}" (only the main group may)`);
          if (!this.store.getGroup(o.group)) throw new Error(`no group "${o.group}"`);
        }
        // Every message belongs to the group's running turn and counts toward its limit: a
        // turn that was stopped, timed out or settled, a process that outlived its turn and a
        // forged file speak no more.
        if (o.batch === undefined) throw new Error(`group "${group}": a ${o.type} without a batch is refused: every message must belong to the group's running turn`);
        const batch = o.batch;
        const turn = this.#waiting.get(batch);
        if (!turn || turn.group !== group || this.#ending.has(batch) || this.store.getBatch(batch)?.state !== 'running') {
          throw new Error(`group "${group}": batch ${batch} is not this group's running turn (it has ended, or is another group's)`);
        }
        // A runaway turn (a chat flood) is stopped at its output limit; other groups go on.
        if (turn.written + o.text.length > turn.maxOutput) {
          const message = `it wrote more than ${turn.maxOutput} characters of messages`;
          this.store.failBatch(batch, message, { maxAttempts: 1, retryable: false });
          turn.resolve({ kind: 'stopped', message });
          void this.runner.stop(group);
          throw new Error(`over the output limit of ${turn.maxOutput} characters for one turn`);
        }
        turn.written += o.text.length;
        const target = o.type === 'send_message' && o.group ? o.group : group;
        const stored = this.store.applyAssistantOutput({ outputId: o.id, group: target, batchId: target === group ? batch : null, type: o.type, text: o.text, sender: this.config.assistantName });
        failpoint('output-applied');
        if (stored) this.#publish(stored);
        return;
      }
      case 'done':
      case 'error': {
        failpoint('before-done');
        const batch = this.store.getBatch(o.batch);
        if (!batch || batch.group !== group) throw new Error(`batch ${o.batch} does not belong to group "${group}"`);
        if (!this.store.markOutputApplied({ outputId: o.id, group, batchId: o.batch, type: o.type })) return;
        const waiter = this.#waiting.get(o.batch);
        const end: BatchEnd = o.type === 'done' ? { kind: 'done' } : { kind: 'error', message: o.message, retryable: o.retryable };
        if (waiter) waiter.resolve(end);
        else if (batch.state === 'running') {
          // Nobody waits (a previous process started it): settle it here.
          if (end.kind === 'done') this.store.finishBatch(o.batch);
          else this.#settleFailure(group, o.batch, end.message, end.retryable, undefined);
        }
        return;
      }
      default:
        return this.#hostRequest(group, o);
    }
  }

  /** Applies a request (tasks, group registration) from a group's agent and answers it in its in/. */
  async #hostRequest(group: string, o: HostRequest): Promise<void> {
    const self = this.store.getGroup(group);
    if (!self) throw new Error(`unknown group "${group}"`);
    // Requests carry no batch; they are taken only while the group's turn runs.
    if (![...this.#waiting].some(([id, w]) => w.group === group && !this.#ending.has(id))) {
      throw new Error(`group "${group}" has no running turn: its ${o.type} request is refused (requests are taken only during a turn)`);
    }
    const actor: Actor = { kind: 'group', group, isMain: self.isMain };
    // The effect and the "applied" record commit together: a replayed file changes nothing.
    const outcome = this.store.transaction(() => {
      if (!this.store.markOutputApplied({ outputId: o.id, group, batchId: null, type: o.type })) return undefined;
      try {
        const result = this.#hostAction(actor, o) as { task?: TaskView } | undefined;
        // The owner hears of a task that waits for approval once: the notice commits with the task.
        return { result, error: undefined, notice: result?.task?.state === 'pending' && o.type === 'task.schedule' ? this.#askApproval(result.task) : undefined };
      } catch (err) {
        if (!(err instanceof TaskError)) throw err;
        return { result: undefined, error: err.message, notice: undefined };
      }
    });
    if (!outcome) return;
    const { result, error, notice } = outcome;
    if (notice) this.#publish(notice);
    const task = result?.task ? { task: result.task.id, state: result.task.state } : {};
    this.#log.info('task request', { group, type: o.type, ok: error === undefined, ...task, ...(error ? { error } : {}) });
    this.#record('policy.change', group, { request: o.type, id: o.id, ok: error === undefined, ...task, ...(error ? { error } : {}) });
    const name = await this.ipc.send(group, { v: 1, id: this.ipc.newId(), type: 'response', request: o.id, ok: error === undefined, ...(error === undefined ? { result } : { error }) });
    this.#responses.set(group, [...(this.#responses.get(group) ?? []), name]);
  }

  /** Stores the notice in main that a task waits for the owner's approval. */
  #askApproval(task: TaskView): StoredMessage | undefined {
    const main = this.store.mainGroup();
    if (!main) {
      this.#log.warn('a task waits for approval but there is no main group to tell (see: hako tasks list)', { group: task.group, task: task.id });
      return undefined;
    }
    return this.store.addNotice(main.name, approvalNotice(task), null);
  }

  #hostAction(actor: Actor, o: HostRequest): unknown {
    switch (o.type) {
      case 'group.register': {
        // Registering groups is the owner's power: only the main group holds it.
        if (actor.kind !== 'group' || !actor.isMain) throw new TaskError('only the main group may register groups');
        const problem = groupNameProblem(o.name);
        if (problem) throw new TaskError(problem);
        if (this.store.getGroup(o.name)) throw new TaskError(`group "${o.name}" already exists`);
        const g = this.store.addGroup({ name: o.name, isMain: false, trigger: o.trigger ?? null, model: null });
        prepareGroupDirs(this.config.home, g.name);
        return { group: { name: g.name, trigger: g.trigger ?? `@${this.config.assistantName}` } };
      }
      case 'task.schedule':
        return { task: this.tasks.schedule(actor, { prompt: o.prompt, cron: o.cron, every_seconds: o.every_seconds, at: o.at, ...(o.context ? { context: o.context } : {}), ...(o.group ? { group: o.group } : {}) }) };
      case 'task.list':
        return { tasks: this.tasks.list(actor) };
      case 'task.pause':
        return { task: this.tasks.pause(actor, o.task) };
      case 'task.resume':
        return { task: this.tasks.resume(actor, o.task) };
      case 'task.cancel':
        return { task: this.tasks.cancel(actor, o.task) };
    }
  }

  #containerExited(group: string, exit: ContainerExit): void {
    // Outputs written just before the exit are applied before the batch is judged; its
    // temporaries can no longer be finished.
    void this.ipc.clearTemporaries(group).then(() => {
      // Only groups with a container are watched: idle groups cost nothing (no polling).
      if (!this.runner.state(group)) this.ipc.unwatch(group);
      for (const [id, w] of this.#waiting) {
        if (w.group !== group) continue;
        const detail = exit.tail.split('\n').filter(Boolean).slice(-3).join(' | ').slice(0, 500);
        w.resolve({ kind: 'error', message: `the agent container exited with code ${exit.code}${detail ? `: ${detail}` : ''}`, retryable: true });
        this.#waiting.delete(id);
      }
      this.queue.pump();
    });
  }

  /** A snapshot for `hako status`: plain data. */
  status() {
    const now = Date.now();
    const groups = this.store.listGroups().map((g) => {
      const s = this.runner.state(g.name);
      const counts = this.store.counts(g.name);
      return {
        name: g.name, main: g.isMain,
        container: s ? { state: s.kind, ...('name' in s ? { name: s.name } : {}), ...(s.kind === 'warm' ? { idleSeconds: Math.round((now - s.since) / 1000) } : {}) } : null,
        waiting: counts.pending + counts.in_batch, answered: counts.answered, failed: counts.failed,
      };
    });
    const nextRuns = this.store.listTasks().filter((t) => t.state === 'active' && t.nextRun !== null)
      .sort((a, b) => a.nextRun! - b.nextRun!).slice(0, 10)
      .map((t) => ({ id: t.id, group: t.group, nextRun: new Date(t.nextRun!).toISOString(), prompt: t.prompt.slice(0, 60) }));
    return {
      startedAt: this.startedAt.toISOString(),
      model: this.config.model ?? null,
      modelDown: [...this.#modelDown],
      maxContainers: this.config.maxContainers,
      queue: { running: [...this.queue.active], waiting: [...this.queue.waiting] },
      groups, nextRuns,
      recentFailures: this.store.recentFailures(5),
      disk: this.disk.status(),
    };
  }
}
