// Which group runs next. At most one running turn per group, at most `maxContainers`
// containers on the host (running or warm), waiting groups served first-come first-served.
// A group that keeps a warm container reuses it without taking a new slot; a warm
// container of an idle group is evicted when a waiting group needs its slot.

export interface ContainerView {
  /** Groups whose container is starting, busy, warm or stopping: each holds a slot. */
  slotHolders(): ReadonlySet<string>;
  /** Whether the group has a container that can take work now (warm or busy). */
  isReusable(group: string): boolean;
  /** Starts stopping the longest-idle warm container not in `keep`; false if none. */
  evictIdle(keep: ReadonlySet<string>): boolean;
  /** How many containers are being stopped (their slots are about to free). */
  evicting(): number;
}

export interface QueueOptions {
  readonly maxContainers: number;
  readonly containers: ContainerView;
  /**
   * Contract: serves the group once (one batch). Should not throw; a throw is reported
   * through `onError` and the group is not retried automatically. `signal` aborts when the
   * queue is closed with `abort` (shutdown gave up waiting): the work should end promptly.
   */
  readonly work: (group: string, signal: AbortSignal) => Promise<void>;
  readonly onError: (group: string, err: unknown) => void;
}

export class GroupQueue {
  readonly #opts: QueueOptions;
  readonly #waiting: string[] = [];
  readonly #active = new Set<string>();
  readonly #again = new Set<string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  readonly #abort = new AbortController();

  constructor(opts: QueueOptions) {
    if (!Number.isInteger(opts.maxContainers) || opts.maxContainers < 1) throw new TypeError(`maxContainers must be a whole number ≥ 1, got ${opts.maxContainers}`);
    this.#opts = opts;
  }

  get waiting(): readonly string[] { return this.#waiting; }
  get active(): ReadonlySet<string> { return this.#active; }

  enqueue(group: string): void {
    if (this.#closed) return;
    if (this.#active.has(group)) {
      this.#again.add(group);
      return;
    }
    if (!this.#waiting.includes(group)) this.#waiting.push(group);
    this.pump();
  }

  /** Enqueues the group after `ms` (a retry with backoff). A sooner enqueue still runs it. */
  enqueueLater(group: string, ms: number): void {
    if (this.#closed || this.#timers.has(group)) return;
    const t = setTimeout(() => {
      this.#timers.delete(group);
      this.enqueue(group);
    }, ms);
    this.#timers.set(group, t);
  }

  /** Re-evaluates who may run; call when a container slot frees. */
  pump(): void {
    if (this.#closed) return this.#settle();
    const c = this.#opts.containers;
    let needSlots = 0;
    for (let i = 0; i < this.#waiting.length;) {
      const group = this.#waiting[i]!;
      const holders = c.slotHolders();
      const used = new Set([...holders, ...this.#active]).size;
      if (c.isReusable(group) || (!holders.has(group) && used < this.#opts.maxContainers)) {
        this.#waiting.splice(i, 1);
        this.#start(group);
        continue;
      }
      // One eviction in flight per group that waits for a slot, no more.
      if (!holders.has(group) && c.evicting() < ++needSlots) c.evictIdle(new Set([...this.#active, ...this.#waiting]));
      i++;
    }
    this.#settle();
  }

  #start(group: string): void {
    this.#active.add(group);
    let run: Promise<void>;
    try {
      run = this.#opts.work(group, this.#abort.signal);
    } catch (err) {
      run = Promise.reject(err); // thrown before its first await: the same as a rejection, or the group stays active forever
    }
    run.catch((err: unknown) => this.#opts.onError(group, err)).finally(() => {
      this.#active.delete(group);
      if (this.#again.delete(group)) this.enqueue(group);
      this.pump();
    });
  }

  #settle(): void {
    if (this.#waiting.length > 0 || this.#active.size > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when nothing is waiting or running (retries scheduled for later do not count). */
  idle(): Promise<void> {
    if (this.#waiting.length === 0 && this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops admitting work; running work finishes (await idle()), or with `abort` is told to end now. */
  close(opts: { abort?: boolean } = {}): void {
    if (opts.abort) this.#abort.abort(new Error('the queue was closed: hako is shutting down'));
    this.#closed = true;
    this.#waiting.length = 0;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#settle();
  }
}
