// The host process: wires store, router, queue, runner, IPC, turns, outputs, scheduler,
// disk guard and channels; recovers what a previous process left; shuts down gracefully.
// What happens in a turn is turn.ts; what an agent's output may do is outputs.ts.
//
// Invariants: a message is marked answered only by its batch's `done` (or, when the
// container died, by a reply that already reached the user); a batch that failed with no
// reply is retried with exponential backoff and, after the limit, the user is told —
// while the model upstream is down the work keeps waiting instead of failing.

import fs from 'node:fs';
import path from 'node:path';
import { modelProblem, type Config, type ProviderName } from './config.ts';
import { parseModel } from '../../protocol/model.ts';
import { InputError, parseChat, type Channel, type ChannelContext } from './channel.ts';
import { failpoint } from './failpoint.ts';
import { AuditLog, type AuditKind } from './audit.ts';
import { DiskGuard, parseSize } from './disk.ts';
import { Ipc } from './ipc.ts';
import type { Logger } from './log.ts';
import { probeModel } from './model-probe.ts';
import { createOutputs } from './outputs.ts';
import { homePaths } from './paths.ts';
import { GroupQueue } from './queue.ts';
import { createRouter, unknownChatNotice, type Router } from './router.ts';
import { Runner, prepareGroupDirs } from './runner.ts';
import type { ContainerExit, Runtime } from './runtime.ts';
import { Scheduler, systemClock, type Clock } from './scheduler.ts';
import { Store, type Delivery, type StoredMessage } from './store.ts';
import { groupNameProblem } from '../../protocol/names.ts';
import { createTaskService, ownerTaskAction, TaskError, type TaskService } from './tasks.ts';
import { exitEnd, groupModel, Turns } from './turn.ts';
import { budgetProblem, dayIn, type Usage } from './usage.ts';
import { perMinute, type MinuteBudget } from './per-minute.ts';

/**
 * Refused webhook requests per channel and minute that are logged and audited; anyone can send
 * them, so past this the rest of the minute's are only counted at debug (one webhook.flood record).
 */
export const REFUSALS_AUDITED_PER_MINUTE = 30;
/**
 * Egress and model-route decisions per group and turn past which its container is stopped as a
 * flood: each is an audit record, which nothing prunes. A turn of a big job (a package install,
 * a swarm of sub-agents) makes a few hundred.
 */
export const MAX_DECISIONS_PER_TURN = 5000;
/** Rejected out/ files per group and turn past which its container is stopped as a flood. */
const MAX_REJECTED_PER_TURN = 1000;
/** Waits before sending a failed delivery again in this process; after the last, it waits for the next start. */
const RESEND_MS = [2_000, 10_000, 60_000];
/** How often the budget of a group whose messages wait for it is checked again (raised by the owner, or a new day). */
const BUDGET_RECHECK_MS = 5_000;

export interface HostOptions {
  readonly config: Config;
  readonly runtime: Runtime;
  readonly image: string;
  readonly log: Logger;
  readonly channels: readonly Channel[];
  readonly clock?: Clock;
  /** Masks secret values out of audit records (the logger's masker). */
  readonly redact?: (s: string) => string;
  /** Names in secrets.env the host's chat channels read: never a container's. */
  readonly hostSecrets?: readonly string[];
}

export class Host {
  readonly config: Config;
  readonly store: Store;
  readonly router: Router;
  readonly queue: GroupQueue;
  readonly runner: Runner;
  readonly ipc: Ipc;
  readonly turns: Turns;
  readonly scheduler: Scheduler;
  readonly tasks: TaskService;
  readonly audit: AuditLog;
  readonly disk: DiskGuard;
  readonly startedAt = new Date();
  readonly #log: Logger;
  readonly #channels: readonly Channel[];
  /** Chat channels by name: they are sent what is addressed to their chats. */
  readonly #chatChannels = new Map<string, Channel>();
  /** Per chat, the send in flight: one chat gets its messages one at a time, in order. */
  readonly #sending = new Map<string, Promise<void>>();
  /** Deliveries being sent or waiting to be sent again (`<message id> <chat>`). */
  readonly #inFlight = new Set<string>();
  /** Channels already reported missing for a waiting delivery. */
  readonly #missingChannels = new Set<string>();
  /** Chat channels that could not start, with why (shown by status). */
  readonly #channelErrors = new Map<string, string>();
  #stopped = false;
  /** Why the model cannot be used (not configured, key refused), until a model call succeeds. */
  #modelProblem: string | null = null;
  /** Tokens model responses used that could not be written yet, by `<day> <group>` (#used). */
  readonly #unrecorded = new Map<string, { readonly day: string; readonly group: string; readonly tokens: Usage }>();
  /** Per channel: refused webhook requests this minute (#refused). */
  readonly #refusalBudgets = new Map<string, MinuteBudget>();
  readonly #clock: Clock;
  readonly #subscribers = new Set<(m: StoredMessage) => void>();
  readonly #turnWatchers = new Set<(group: string, working: boolean, text?: string) => void>();
  /** Groups whose turn runs now: only their streamed text is passed on (not a summary's after the turn). */
  readonly #turning = new Set<string>();
  /** Providers whose last model request failed like an outage (unreachable, 429, 5xx). */
  readonly #modelDown = new Set<ProviderName>();
  /** Groups whose messages wait for a used-up token budget, with the day they were told on. */
  readonly #budgetHeld = new Map<string, string>();
  #budgetTimer: NodeJS.Timeout | undefined;

  constructor(opts: HostOptions) {
    this.config = opts.config;
    this.#log = opts.log;
    this.#channels = opts.channels;
    for (const c of opts.channels) if (c.send) this.#chatChannels.set(c.name, c);
    this.#clock = opts.clock ?? systemClock;
    fs.mkdirSync(opts.config.home, { recursive: true, mode: 0o700 });
    this.store = new Store(homePaths(opts.config.home).db);
    this.audit = new AuditLog(homePaths(opts.config.home).db, opts.redact ? { redact: opts.redact } : {});
    const record = this.#record.bind(this);
    this.ipc = new Ipc({
      home: opts.config.home, log: opts.log,
      onOutput: async (g, o) => {
        await apply(g, o);
        record('ipc.apply', g, { type: o.type, id: o.id, ...('batch' in o && o.batch ? { batch: o.batch } : {}) });
      },
      onRejected: (g, file, reason) => this.#rejected(g, file, reason),
    });
    this.runner = new Runner({
      config: opts.config, runtime: opts.runtime, image: opts.image, log: opts.log, ...(opts.hostSecrets ? { hostSecrets: opts.hostSecrets } : {}),
      onStart: (g, args) => {
        // No container starts without its record (the runner then refuses the start; the turn is retried).
        if (!record('container.start', g, { args: [...args] })) throw new Error('its audit record could not be written (see the host log)');
      },
      groups: () => this.store.listGroups(),
      onExit: (g, exit) => {
        record('container.exit', g, { code: exit.code });
        this.#containerExited(g, exit);
      },
      onUpstream: (provider, ok) => this.#upstream(provider, ok),
      budget: (g) => this.#budgetRefusal(g),
      onUsage: (g, u) => this.#used(g, u),
      onText: (g, text) => this.#streamed(g, text),
      onEgress: (g, d) => {
        // The proxy refuses a request whose decision is not on record: no egress and no model call without one.
        if (!record('egress', g, { ...d })) throw new Error('the audit record of the decision could not be written');
        this.#decided(g);
        const fields = { group: g, host: d.host, port: d.port, kind: d.kind, ...(d.allowed ? {} : { reason: d.reason }) };
        if (d.kind !== 'model') this.#log.info(d.allowed ? 'egress allowed' : 'egress refused', fields);
        else if (d.allowed) this.#log.debug('model route allowed', { ...fields, path: d.path });
        else this.#log.warn('model route refused', { ...fields, method: d.method, path: d.path });
      },
    });
    this.queue = new GroupQueue({
      maxContainers: opts.config.maxContainers,
      containers: this.runner,
      // A used-up token budget holds the group's messages before a turn starts (no container, no model call).
      work: (g, signal) => this.#budgetRefusal(g) ? Promise.resolve() : this.turns.serve(g, signal),
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
      modelProblem: (g) => modelProblem(this.config, groupModel(g, this.config)),
      unknownChat: (m) => {
        this.#log.info('a chat no group is bound to wrote; main is told', { chat: m.chat });
        this.#record('chat.unknown', null, { chat: m.chat });
        this.#tellMain(unknownChatNotice(m, (title) => {
          const name = title.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
          return groupNameProblem(name) || this.store.getGroup(name) ? undefined : name;
        }));
      },
    });
    this.disk = new DiskGuard({
      home: opts.config.home, reserve: opts.config.diskReserve, log: opts.log,
      limit: (g) => { const group = this.store.getGroup(g); return group && parseSize(group.limits.disk ?? this.config.limits.disk); },
      active: () => {
        const turns = this.turns.groups();
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
        record('disk', null, { event: 'space' });
        this.#tellMain('There is room on the disk again: waiting messages are being answered.');
        for (const g of this.store.groupsWithPending()) this.queue.enqueue(g);
      },
    });
    this.turns = new Turns({
      store: this.store, config: opts.config, log: opts.log, runner: this.runner, ipc: this.ipc, disk: this.disk, queue: this.queue, record,
      tell: (g, text, batchId) => this.#tell(g, text, batchId),
      working: (batch) => this.#working(batch.group, batch.messages.findLast((m) => m.role === 'user')?.chat ?? null),
      modelDown: (model) => {
        const parsed = parseModel(model);
        return parsed.ok && this.#modelDown.has(parsed.value.provider);
      },
    });
    const apply = createOutputs({
      store: this.store, tasks: this.tasks, turns: this.turns, config: opts.config, log: opts.log, record,
      publish: (m) => this.#publish(m),
      runner: this.runner, ipc: this.ipc,
    });
  }

  get context(): ChannelContext {
    return {
      accept: (m) => this.router.accept(m),
      receive: (m) => this.router.receive(m),
      groupFor: (chat) => this.store.groupForChat(chat),
      listMessages: (g, after) => this.store.listMessages(g, after === undefined ? {} : { afterId: after }),
      listGroups: () => this.store.listGroups(),
      getGroup: (name) => this.store.getGroup(name),
      subscribe: (fn) => {
        this.#subscribers.add(fn);
        return () => this.#subscribers.delete(fn);
      },
      watchTurns: (fn) => {
        this.#turnWatchers.add(fn);
        return () => this.#turnWatchers.delete(fn);
      },
      refused: (channel, reason, detail) => this.#refused(channel, reason, detail),
      owner: {
        status: () => this.status(),
        tasks: () => this.tasks.list({ kind: 'owner' }),
        addTask: (req) => {
          const record = { by: 'owner', action: 'task.schedule', group: req.group };
          try {
            const task = this.tasks.schedule({ kind: 'owner' }, req);
            this.#record('policy.change', req.group, { ...record, ok: true, task: task.id, state: task.state, schedule: task.schedule, context: task.context });
            return { task };
          } catch (err) {
            if (!(err instanceof TaskError)) throw err;
            this.#record('policy.refused', this.store.getGroup(req.group) ? req.group : null, { ...record, ok: false, error: err.message });
            throw new InputError(400, err.message);
          }
        },
        taskAction: (id, action) => {
          const record = { by: 'owner', action: `task.${action}`, task: id };
          const group = this.store.getTask(id)?.group ?? null;
          try {
            const result = ownerTaskAction(this.tasks, action, id);
            this.#record('policy.change', group, { ...record, ok: true, state: result.task.state });
            return result;
          } catch (err) {
            if (!(err instanceof TaskError)) throw err;
            this.#record('policy.refused', group, { ...record, ok: false, error: err.message });
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
    await this.turns.recover(async () => {
      for (const g of this.store.listGroups()) {
        prepareGroupDirs(this.config.home, g.name);
        await this.ipc.clearInputs(g.name);
        await this.ipc.clearTemporaries(g.name); // no container runs now: a temporary is junk
      }
    });
    for (const c of this.#channels) {
      try {
        await c.start(this.context);
      } catch (err) {
        // The local channels are the owner's way in: without them hako must not run. A chat
        // platform that refuses (a revoked token) is reported, and the rest works on.
        if (!c.send) throw err;
        this.#channelErrors.set(c.name, (err as Error).message);
        this.#log.error(`the ${c.name} channel could not start; its messages wait (see: hako status)`, { error: (err as Error).message });
      }
    }
    this.#deliver();
    for (const g of this.store.groupsWithPending()) this.queue.enqueue(g);
    this.scheduler.start();
    this.#probeModel();
  }

  /** Asks the main group's model server once, so status tells a missing key or a server that is not there before any turn fails. */
  #probeModel(): void {
    const main = this.store.mainGroup();
    const model = main ? groupModel(main, this.config) : this.config.model;
    probeModel(this.config, model).then((p) => {
      if (p.kind === 'ok') return;
      this.#log.warn(`model not ready: ${p.problem}`);
      const parsed = model === undefined ? undefined : parseModel(model);
      if (p.kind === 'unreachable' && parsed?.ok) this.#upstream(parsed.value.provider, false);
      else if (p.kind !== 'no-model') this.#modelProblem = p.problem;
    }).catch((err: unknown) => this.#log.warn('could not ask the model server', { error: String(err) }));
  }

  /**
   * Stops taking work, lets running turns end (bounded), stops containers and channels.
   * Returns what it did, for the console: the turns cut short by the grace (retried at the
   * next start) and the containers it stopped.
   */
  async stop(opts: { graceMs?: number } = {}): Promise<{ interrupted: number; containers: number }> {
    this.#stopped = true;
    this.scheduler.stop();
    clearInterval(this.#budgetTimer);
    this.queue.close();
    const grace = new Promise((r) => setTimeout(r, opts.graceMs ?? 10_000).unref());
    await Promise.race([this.queue.idle(), grace]);
    const interrupted = this.queue.active.size;
    this.queue.close({ abort: true }); // turns still running end now and are retried at the next start
    const containers = this.runner.slotHolders().size;
    await this.runner.stopAll();
    await this.queue.idle();
    this.disk.close();
    this.ipc.close();
    for (const c of this.#channels) await c.stop().catch((err: unknown) => this.#log.warn('channel stop failed', { channel: c.name, error: String(err) }));
    this.audit.close();
    this.store.close();
    return { interrupted, containers };
  }

  /** Appends an audit record; a failing audit write is logged, never fatal to the turn. */
  /** Appends an audit record; false (and an error in the log) when it could not be written. */
  #record(kind: AuditKind, group: string | null, data: Record<string, unknown>): boolean {
    try {
      this.audit.append(kind, group, data);
      return true;
    } catch (err) {
      this.#log.error('audit append failed', { kind, group, error: String(err) });
      return false;
    }
  }

  #upstream(provider: ProviderName, ok: boolean): void {
    if (ok) {
      this.#modelProblem = null;
      if (this.#modelDown.delete(provider)) this.#log.info('model upstream is back', { provider });
      this.turns.modelBack();
    } else if (!this.#modelDown.has(provider)) {
      this.#modelDown.add(provider);
      this.#log.warn('model upstream failing', { provider });
    }
  }

  /**
   * Adds a model response's tokens to the group's count for today (the owner's day). Tokens
   * that cannot be written (a locked or full database) are kept here, count toward the
   * budget all the same, and are written with the next response's: never lost, so never
   * understated.
   */
  #used(group: string, u: Usage): void {
    const day = dayIn(this.config.tz, this.#clock.now());
    const key = `${day} ${group}`;
    const held = this.#unrecorded.get(key)?.tokens;
    this.#unrecorded.set(key, { day, group, tokens: held ? { input: held.input + u.input, output: held.output + u.output } : u });
    // Everything held is written now, earlier days' included, or stays held for the next try.
    for (const [k, h] of this.#unrecorded) {
      try {
        this.store.addUsage(h.group, h.day, h.tokens);
        this.#unrecorded.delete(k);
      } catch (err) {
        this.#log.error('could not record token usage; it is kept in memory, counted toward the budget, and written with the next', { group: h.group, input: h.tokens.input, output: h.tokens.output, error: String(err) });
        return;
      }
    }
  }


  /** Tokens used today, per group and in all (those not yet written included), and the day (the owner's). */
  #usageToday(): { day: string; byGroup: Map<string, number>; total: number } {
    const day = dayIn(this.config.tz, this.#clock.now());
    const byGroup = new Map(this.store.usageOn(day).map((u) => [u.group, u.input + u.output] as const));
    for (const h of this.#unrecorded.values()) {
      if (h.day === day) byGroup.set(h.group, (byGroup.get(h.group) ?? 0) + h.tokens.input + h.tokens.output);
    }
    return { day, byGroup, total: [...byGroup.values()].reduce((a, b) => a + b, 0) };
  }

  #budgetProblem(group: string) {
    const groupBudget = this.store.getGroup(group)?.tokensPerDay ?? null;
    // Asked before every model request: with no budget at all, today's usage is not read.
    if (groupBudget === null && this.config.tokensPerDay === null) return null;
    const today = this.#usageToday();
    return budgetProblem({
      group, groupBudget, globalBudget: this.config.tokensPerDay,
      groupUsed: today.byGroup.get(group) ?? 0, totalUsed: today.total, tz: this.config.tz,
    });
  }

  /**
   * Why the group may not use the model now, or null. When its budget is used up, its open
   * turn is stopped (the messages kept), the group is told once a day, and the budget is
   * checked again every few seconds until the owner raises it or the day ends.
   */
  #budgetRefusal(group: string): string | null {
    const problem = this.#budgetProblem(group);
    if (!problem) return null;
    const day = dayIn(this.config.tz, this.#clock.now());
    const told = this.#budgetHeld.get(group) === day;
    this.#budgetHeld.set(group, day);
    this.#budgetTimer ??= setInterval(() => this.#recheckBudgets(), BUDGET_RECHECK_MS).unref();
    if (this.turns.end(group, { kind: 'stopped', message: problem.text, keep: true })) {
      this.runner.stop(group, 0); // its agent would only be refused again
    } else if (!told) {
      this.#tell(group, `Your message waits: ${problem.text}.`);
    }
    if (told) this.#log.debug('token budget still used up: no model use for the group', { group });
    else this.#log.warn('token budget used up: the group\'s messages wait', { group, budget: problem.which, problem: problem.text });
    return problem.text;
  }

  /** Serves the held groups whose budget allows them again (raised with hako groups set, a new day, or HAKO_TOKENS_PER_DAY). */
  #recheckBudgets(): void {
    for (const group of [...this.#budgetHeld.keys()]) {
      try {
        if (this.store.getGroup(group) && this.#budgetProblem(group)) continue;
      } catch (err) {
        this.#log.error('could not check a token budget; trying again', { group, error: String(err) });
        continue;
      }
      this.#budgetHeld.delete(group);
      this.#log.info('token budget available again: waiting messages are answered', { group });
      this.queue.enqueue(group);
    }
    if (this.#budgetHeld.size > 0) return;
    clearInterval(this.#budgetTimer);
    this.#budgetTimer = undefined;
  }

  #publish(m: StoredMessage): void {
    for (const fn of this.#subscribers) {
      try { fn(m); } catch (err) { this.#log.warn('subscriber failed', { error: String(err) }); }
    }
    if (m.role === 'assistant') this.#deliver(m.id);
  }

  /** Sends the pending deliveries (of one message, or all) to their chats' channels. */
  #deliver(messageId?: string): void {
    if (messageId !== undefined) failpoint('before-delivery');
    let pending: Delivery[];
    try {
      pending = this.store.pendingDeliveries(messageId);
    } catch (err) {
      return this.#log.error('could not read the deliveries; they are sent at the next start', { error: String(err) });
    }
    for (const d of pending) this.#send(d);
  }

  /**
   * One delivery: queued behind the chat's previous send, marked delivered once its channel
   * took it. A failure is recorded and sent again after a while (RESEND_MS), still in the
   * chat's queue so later messages do not overtake it, then at the next start; a channel that
   * is off keeps its deliveries waiting. Never throws.
   */
  #send(d: Delivery): void {
    const key = `${d.message.id} ${d.chat}`;
    if (this.#stopped || this.#inFlight.has(key)) return;
    const chat = parseChat(d.chat);
    const channel = chat && this.#chatChannels.get(chat.channel);
    if (!chat || !channel?.send || this.#channelErrors.has(chat.channel)) {
      const name = chat?.channel ?? d.chat;
      if (!this.#missingChannels.has(name)) this.#log.warn(`messages for ${name} chats wait: the ${name} channel is not on (see: hako doctor)`, { chat: d.chat });
      this.#missingChannels.add(name);
      return;
    }
    this.#inFlight.add(key);
    const send = channel.send.bind(channel);
    const previous = this.#sending.get(d.chat) ?? Promise.resolve();
    const file = d.message.file ? { file: { path: d.message.file, name: path.basename(d.message.file) } } : {};
    const deliver = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          await send({ id: d.message.id, group: d.message.group, address: chat.address, text: d.message.text, ...(d.replyTo ? { replyTo: d.replyTo } : {}), ...file });
        } catch (err) {
          const error = String(err instanceof Error ? err.message : err);
          this.store.deliveryFailed(d.message.id, d.chat, error);
          const wait = RESEND_MS[attempt];
          this.#log.warn(wait === undefined ? 'a message could not be sent; it is sent again at the next start' : 'a message could not be sent; trying again', { group: d.message.group, chat: d.chat, message: d.message.id, error, ...(wait ? { inSeconds: wait / 1000 } : {}) });
          if (wait === undefined) return;
          await new Promise((r) => setTimeout(r, wait).unref());
          if (this.#stopped) return;
          continue;
        }
        this.store.markDelivered(d.message.id, d.chat);
        return;
      }
    };
    const done = previous.then(deliver).catch((err: unknown) => {
      this.#log.error('could not record a delivery; it is sent again at the next start', { chat: d.chat, message: d.message.id, error: String(err) });
    }).finally(() => {
      this.#inFlight.delete(key);
      if (this.#sending.get(d.chat) === done) this.#sending.delete(d.chat);
    });
    this.#sending.set(d.chat, done);
  }

  /** Tells the local channels that a turn of the group runs, and the chat it answers (typing); the returned function ends both. */
  #working(group: string, chat: string | null): () => void {
    const tell = (working: boolean) => {
      if (working) this.#turning.add(group);
      else this.#turning.delete(group);
      this.#tellWatchers(group, working);
    };
    const stopTyping = this.#typing(chat);
    tell(true);
    return () => { stopTyping(); tell(false); };
  }

  /**
   * The model's text so far in a streamed response of the group's running turn, for the local
   * channels only: it is never stored and never sent to a chat, so what is stored and sent
   * exactly once stays the committed reply alone.
   */
  #streamed(group: string, text: string): void {
    if (this.#turning.has(group)) this.#tellWatchers(group, true, text);
  }

  #tellWatchers(group: string, working: boolean, text?: string): void {
    for (const fn of this.#turnWatchers) {
      try {
        if (text === undefined) fn(group, working);
        else fn(group, working, text);
      } catch (err) {
        this.#log.warn('turn watcher failed', { group, error: String(err) });
      }
    }
  }

  /** Shows in the chat a turn answers that the agent works on it; the returned function ends that. */
  #typing(chat: string | null): () => void {
    const parsed = chat === null ? undefined : parseChat(chat);
    const channel = parsed && this.#chatChannels.get(parsed.channel);
    if (!parsed || !channel?.typing) return () => {};
    try {
      return channel.typing(parsed.address);
    } catch (err) {
      this.#log.warn('typing indicator failed', { chat, error: String(err) });
      return () => {};
    }
  }

  /** A notice stored and published; a disk too full for it is logged, never fatal. */
  #tell(group: string, text: string, batchId: string | null = null): void {
    try {
      this.#publish(this.store.addNotice(group, text, batchId));
    } catch (err) {
      this.#log.error('could not store a notice', { group, error: String(err) });
    }
  }

  #tellMain(text: string): void {
    const main = this.store.mainGroup();
    if (main) this.#tell(main.name, text);
  }

  /** Ends the group's turn by the host's decision, or, with none running, stops its container and tells it why. */
  #stopGroup(group: string, message: string, idle: string): void {
    if (!this.turns.end(group, { kind: 'stopped', message })) this.#tell(group, `${idle}: ${message}.`);
    this.runner.stop(group, 0); // no grace: it may be writing as fast as it can
  }

  /** Counts a decision of the group's proxy: past MAX_DECISIONS_PER_TURN in one turn its container is stopped as a flood. */
  #decided(group: string): void {
    const n = this.turns.counted(group, 'decisions');
    if (n !== MAX_DECISIONS_PER_TURN + 1) return;
    this.#log.warn('egress flood: stopping the container', { group, decisions: n });
    this.#record('egress.flood', group, { decisions: n, limit: MAX_DECISIONS_PER_TURN });
    this.#stopGroup(group, `its container made more than ${MAX_DECISIONS_PER_TURN} network requests in one turn`, 'I stopped this group\'s container');
  }

  /** A refused webhook request: logged and audited within the channel's budget (REFUSALS_AUDITED_PER_MINUTE). */
  #refused(channel: string, reason: string, detail: Readonly<Record<string, string>> = {}): void {
    let budget = this.#refusalBudgets.get(channel);
    if (!budget) this.#refusalBudgets.set(channel, budget = perMinute(REFUSALS_AUDITED_PER_MINUTE));
    const { within, over } = budget();
    if (over) {
      this.#log.warn('refused requests over budget: the rest of this minute\'s are not audited', { channel, perMinute: REFUSALS_AUDITED_PER_MINUTE });
      this.#record('webhook.flood', null, { channel, perMinute: REFUSALS_AUDITED_PER_MINUTE });
    }
    if (!within) return this.#log.debug('a request was refused', { channel, reason, ...detail });
    this.#log.warn('a request was refused', { channel, reason, ...detail });
    this.#record('webhook.refused', null, { channel, reason, ...detail });
  }

  /** Counts a group's rejected files: past MAX_REJECTED_PER_TURN in one turn its container is stopped as a flood. */
  #rejected(group: string, file: string, reason: string): void {
    this.#record('ipc.reject', group, { file, reason });
    const n = this.turns.counted(group, 'rejected');
    if (n !== MAX_REJECTED_PER_TURN + 1) return;
    this.#log.warn('ipc flood: stopping the container', { group, rejected: n });
    this.#record('ipc.flood', group, { rejected: n, limit: MAX_REJECTED_PER_TURN });
    this.#stopGroup(group, `its container wrote more than ${MAX_REJECTED_PER_TURN} files that were rejected (see ipc/${group}/rejected/)`, 'I stopped this group\'s container');
  }

  #diskOver(group: string, problem: string): void {
    this.#log.warn('group over its disk limit: its turns stop until it is under', { group, problem });
    this.#record('disk', group, { event: 'over', problem });
    this.#stopGroup(group, `${problem}: ask the owner to free space in it or to raise the limit (hako groups set ${group} --disk SIZE); until then your messages wait`, 'I cannot take new turns');
  }

  #diskLow(problem: string): void {
    const text = `${problem}; your message is kept and will be answered when there is room again`;
    this.#log.warn('disk nearly full: turns stopped, no container starts until there is room', { problem, home: this.config.home });
    this.#record('disk', null, { event: 'low', problem });
    for (const g of this.turns.groups()) this.turns.end(g, { kind: 'stopped', message: text, keep: true });
    for (const g of this.runner.slotHolders()) this.runner.stop(g, 0);
    this.#tellMain(`${problem}. I stopped running turns and start no containers until there is room again; messages are kept. Free space on the disk of ${this.config.home}, or lower HAKO_DISK_RESERVE.`);
  }

  #containerExited(group: string, exit: ContainerExit): void {
    // Outputs written just before the exit are applied before the turn is judged; its
    // temporaries can no longer be finished.
    this.ipc.clearTemporaries(group).then(() => {
      // Only groups with a container are watched: idle groups cost nothing (no polling).
      if (!this.runner.state(group)) this.ipc.unwatch(group);
      this.turns.end(group, exitEnd(exit)); // a turn still open failed with its container (and is retried)
      this.queue.pump();
    }).catch((err: unknown) => this.#log.error('could not settle an exited container\'s turn', { group, error: String(err) }));
  }

  /** A snapshot for `hako status`: plain data. */
  status() {
    const now = Date.now();
    const today = this.#usageToday();
    const groups = this.store.listGroups().map((g) => {
      const s = this.runner.state(g.name);
      const counts = this.store.counts(g.name);
      return {
        tokens: { used: today.byGroup.get(g.name) ?? 0, budget: g.tokensPerDay, waitsForBudget: this.#budgetHeld.has(g.name) },
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
      modelProblem: (() => { const main = this.store.mainGroup(); return modelProblem(this.config, main ? groupModel(main, this.config) : this.config.model); })() ?? this.#modelProblem,
      maxContainers: this.config.maxContainers,
      queue: { running: [...this.queue.active], waiting: [...this.queue.waiting] },
      groups, nextRuns,
      recentFailures: this.store.recentFailures(5),
      disk: this.disk.status(),
      tokens: { day: today.day, tz: this.config.tz, used: today.total, budget: this.config.tokensPerDay },
      channels: this.#channels.map((c) => ({ name: c.name, problem: this.#channelErrors.get(c.name) ?? c.problem?.() ?? null })),
    };
  }
}
