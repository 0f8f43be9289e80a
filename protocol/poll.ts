// The safety poll both ends of the file IPC run beside fs.watch (host: out/, agent: in/).
// fs.watch does the work; the poll exists for mounts that deliver no inotify events
// (gVisor for host-written files, some Docker Desktop set-ups). It ticks every `fastMs`
// until the watcher is the first to report a new file — proof that events arrive — and
// then every `slowMs`, since each wake-up of an idle process costs CPU. An owner that knows
// events arrive (the host tells the agent so under runc on Linux) starts at `slowMs`; one
// that knows they do not (gVisor) sets `slowMs` to `fastMs`. A new file that the poll finds
// first, or a watcher error, puts it back to `fastMs`. Either way nothing is missed: the
// slow pace only bounds how late a file the watcher did not report is picked up.

export type FoundBy = 'watch' | 'poll';

export interface SafetyPollOptions {
  readonly fastMs?: number;
  readonly slowMs?: number;
  /** Begin at `slowMs`: the owner knows the watcher delivers here (a file the poll finds first still turns it fast). */
  readonly startSlow?: boolean;
  /** Let the process exit while only this timer is left (the host); the agent keeps it. */
  readonly unref?: boolean;
}

export const POLL_FAST_MS = 1000;
export const POLL_SLOW_MS = 10_000;

export class SafetyPoll {
  readonly #scan: () => void;
  readonly #fastMs: number;
  readonly #slowMs: number;
  readonly #unref: boolean;
  #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** What asked for the scan that has not started yet (neither: a scan the owner ran). */
  #byWatch = false;
  #byPoll = false;

  /** `scan` looks for new files; it calls `scanStarted()` first and `found()` on a new file. */
  constructor(scan: () => void, o: SafetyPollOptions = {}) {
    this.#scan = scan;
    this.#fastMs = o.fastMs ?? POLL_FAST_MS;
    this.#slowMs = Math.max(o.slowMs ?? POLL_SLOW_MS, this.#fastMs);
    this.#unref = o.unref ?? false;
    this.#intervalMs = o.startSlow ? this.#slowMs : this.#fastMs;
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => { this.#byPoll = true; this.#scan(); }, this.#intervalMs);
    if (this.#unref) this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The watcher's callback: a scan, remembered as asked for by a watch event. */
  watched(): void {
    this.#byWatch = true;
    this.#scan();
  }

  /** At the start of each scan pass: what asked for it since the last one, if anything. */
  scanStarted(): FoundBy | null {
    const by = this.#byWatch ? 'watch' : this.#byPoll ? 'poll' : null;
    this.#byWatch = this.#byPoll = false;
    return by;
  }

  /** Who saw a new file first: the watcher (events arrive) or the poll (they may not). */
  found(by: FoundBy): void {
    this.#pace(by === 'watch' ? this.#slowMs : this.#fastMs);
  }

  /** The watcher failed: nothing but the poll finds files now. */
  watchFailed(): void {
    this.#pace(this.#fastMs);
  }

  #pace(next: number): void {
    if (next === this.#intervalMs) return;
    this.#intervalMs = next;
    if (!this.#timer) return;
    this.stop();
    this.start();
  }
}
