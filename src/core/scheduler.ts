// The scheduler loop: turns due scheduled tasks into queued runs.
//
// Invariants:
// - A run is claimed in the store (compare-and-set on next_run, run recorded) before
//   onRun hears of it, always. A crash between claim and queueing delays a run; it never
//   doubles it, and two schedulers over one database never claim the same run twice.
// - Runs missed while the host was down (or the timer was late) fire ONCE, then the
//   schedule resumes from now: the new next_run is nextRun(schedule, now), never a backlog.
// - One timer at a time, armed for the earliest due task (never a polling interval),
//   capped at MAX_TIMER_MS so long delays cannot overflow setTimeout and a jumped clock
//   is noticed. A timer that fires early just re-arms.
// - A task whose stored schedule is unreadable is logged once and skipped; it does not
//   stop other tasks nor make the loop spin.
// - After stop(), onRun is never called again.

import type { Logger } from './log.ts';
import { deserializeSchedule, nextRun } from './schedule.ts';

/** The part of TaskStore (store-contract.ts) the scheduler needs, narrowed so a test fake stays small. */
export interface SchedulerStore {
  /** Contract: active tasks with next_run <= nowMs, earliest first; [] when none. May throw on a database error. */
  dueTasks(nowMs: number): readonly { id: string; group: string; schedule: string; nextRun: number | null }[];
  /** Contract: the earliest next_run of an active task, or null when no task is scheduled. */
  nextDue(): number | null;
  /**
   * Contract: compare-and-set. If the task is active and its next_run is still
   * `expectedNextRun`, atomically records a queued run for that time and moves next_run to
   * `newNextRun` (null: the task is completed), returning the run; otherwise changes
   * nothing and returns undefined (someone else claimed it, or it was paused/cancelled).
   */
  claimTask(taskId: string, expectedNextRun: number, newNextRun: number | null): { id: string; group: string } | undefined;
}

/**
 * Contract: now() is epoch ms and may jump (NTP, suspend). setTimer calls `fn` once after
 * about `ms` ms (possibly early or late) unless the returned cancel function was called;
 * it never throws and `ms` is at most MAX_TIMER_MS.
 */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/** The longest single timer: far below setTimeout's 2^31-1 ms limit, and re-checks at least hourly. */
export const MAX_TIMER_MS = 60 * 60 * 1000;
/** After a store error the loop tries again this much later. */
export const RETRY_MS = 30_000;
/** A run claimed this late counts as missed (logged as such). */
const MISSED_AFTER_MS = 60_000;

export interface SchedulerOptions {
  readonly store: SchedulerStore;
  readonly clock?: Clock;
  /** IANA time zone that cron schedules are evaluated in. */
  readonly tz: string;
  /**
   * Contract: called synchronously for each run, after it has been claimed (it is
   * recorded as queued in the store). Should return quickly and not throw; a throw is
   * logged and the loop goes on; the run stays queued in the store for recovery.
   */
  readonly onRun: (run: { id: string; group: string }) => void;
  readonly log: Logger;
}

type Phase = 'new' | 'running' | 'stopped';

export class Scheduler {
  readonly #store: SchedulerStore;
  readonly #clock: Clock;
  readonly #tz: string;
  readonly #onRun: SchedulerOptions['onRun'];
  readonly #log: Logger;
  #phase: Phase = 'new';
  #cancelTimer: (() => void) | null = null;
  /** Bumped whenever a timer is armed or cancelled, so a stale timer callback is ignored. */
  #generation = 0;
  #ticking = false;
  #tickAgain = false;
  /** Tasks skipped because their schedule is unreadable: id → the next_run they were skipped at. */
  readonly #unreadable = new Map<string, number>();

  constructor(opts: SchedulerOptions) {
    this.#store = opts.store;
    this.#clock = opts.clock ?? systemClock;
    this.#tz = opts.tz;
    this.#onRun = opts.onRun;
    this.#log = opts.log;
  }

  /** Claims everything due now (one run per missed task), then arms the timer. Calling it again does nothing. */
  start(): void {
    if (this.#phase === 'stopped') throw new Error('this scheduler was stopped; create a new Scheduler to start again');
    if (this.#phase === 'running') return;
    this.#phase = 'running';
    this.#tick();
  }

  /** Call after tasks changed (added, paused, resumed, cancelled): claims what is due and re-arms. */
  poke(): void {
    if (this.#phase !== 'running') return;
    this.#unreadable.clear(); // a changed task may have been repaired: look at it again (logged once more if not)
    this.#tick();
  }

  /** Cancels the timer; onRun is not called after this returns (nor after it is called from inside onRun). */
  stop(): void {
    this.#phase = 'stopped';
    this.#disarm();
  }

  #tick(): void {
    if (this.#ticking) {
      // poke() from inside onRun: finish this pass, then go round once more.
      this.#tickAgain = true;
      return;
    }
    this.#ticking = true;
    try {
      do {
        this.#tickAgain = false;
        this.#claimDue();
      } while (this.#tickAgain && this.#phase === 'running');
      this.#arm();
    } catch (err) {
      this.#log.error('scheduler could not read or claim tasks; retrying', { error: String(err), retryMs: RETRY_MS });
      this.#armIn(RETRY_MS);
    } finally {
      this.#ticking = false;
    }
  }

  #claimDue(): void {
    const now = this.#clock.now();
    for (const task of this.#store.dueTasks(now)) {
      if (this.#phase !== 'running') return;
      const due = task.nextRun;
      if (due === null || this.#unreadable.get(task.id) === due) continue;
      let next: number | null;
      try {
        next = nextRun(deserializeSchedule(task.schedule), now, this.#tz);
      } catch (err) {
        this.#unreadable.set(task.id, due);
        this.#log.error('scheduled task skipped: its schedule cannot be read (fix or cancel the task)', { task: task.id, group: task.group, error: String(err) });
        continue;
      }
      const run = this.#store.claimTask(task.id, due, next);
      if (!run) {
        this.#log.debug('scheduled run already claimed elsewhere', { task: task.id, group: task.group });
        continue;
      }
      const late = now - due;
      this.#log.info(late > MISSED_AFTER_MS ? 'missed scheduled run fires once now' : 'scheduled run claimed', {
        task: task.id, group: run.group, run: run.id, scheduledFor: new Date(due).toISOString(),
        nextRun: next === null ? null : new Date(next).toISOString(), ...(late > MISSED_AFTER_MS ? { lateMs: late } : {}),
      });
      try {
        this.#onRun({ id: run.id, group: run.group });
      } catch (err) {
        this.#log.error('onRun threw; the run stays queued in the store', { task: task.id, group: run.group, run: run.id, error: String(err) });
      }
    }
  }

  /** Arms one timer for the earliest task that can be claimed, or for MAX_TIMER_MS to re-check. */
  #arm(): void {
    this.#disarm();
    if (this.#phase !== 'running') return;
    const now = this.#clock.now();
    let due = this.#store.nextDue();
    if (due === null) return; // nothing scheduled: poke() will wake us
    if (due <= now) due = this.#earliestClaimable(now);
    this.#armIn(due === null ? MAX_TIMER_MS : Math.min(Math.max(due - now, 0), MAX_TIMER_MS));
  }

  /**
   * What is still due after a pass can only be unreadable tasks (or tasks that changed
   * meanwhile): look past them, within one timer cap, so they do not make the loop spin.
   */
  #earliestClaimable(now: number): number | null {
    for (const t of this.#store.dueTasks(now + MAX_TIMER_MS)) {
      if (t.nextRun !== null && this.#unreadable.get(t.id) !== t.nextRun) return t.nextRun;
    }
    return null;
  }

  #armIn(ms: number): void {
    this.#disarm();
    if (this.#phase !== 'running') return;
    const generation = ++this.#generation;
    this.#cancelTimer = this.#clock.setTimer(() => {
      if (generation !== this.#generation || this.#phase !== 'running') return;
      this.#cancelTimer = null;
      this.#tick();
    }, ms);
  }

  #disarm(): void {
    this.#generation++;
    this.#cancelTimer?.();
    this.#cancelTimer = null;
  }
}
