import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_TIMER_MS, RETRY_MS, Scheduler, type Clock, type SchedulerStore } from '../../src/core/scheduler.ts';
import { nextRun, serializeSchedule, type Schedule } from '../../src/core/schedule.ts';
import { Store } from '../../src/core/store.ts';
import { createTaskService } from '../../src/core/tasks.ts';
import { silentLogger, type Fields, type Logger } from '../../src/core/log.ts';

const T0 = Date.parse('2026-03-02T08:00:00Z'); // a Monday
const MIN = 60_000;
const HOUR = 60 * MIN;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

// ---- fakes -----------------------------------------------------------------------------

type Timer = { at: number; ms: number; fn: () => void; live: boolean };

/** A clock the test drives: `now` moves only when told, timers fire in time order. */
class FakeClock implements Clock {
  #now: number;
  readonly #alternateTies: boolean;
  #ties = 0;
  readonly timers: Timer[] = [];

  /** alternateTies: timers due at the same instant fire in a different order each time. */
  constructor(now: number, opts: { alternateTies?: boolean } = {}) {
    this.#now = now;
    this.#alternateTies = opts.alternateTies ?? false;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    assert.ok(Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIMER_MS, `timer of ${ms} ms is out of range`);
    const timer: Timer = { at: this.#now + ms, ms, fn, live: true };
    this.timers.push(timer);
    return () => { timer.live = false; };
  }

  get live(): Timer[] {
    return this.timers.filter((t) => t.live);
  }

  /** Moves time forward to `to`, firing every timer due on the way at its own time. */
  advanceTo(to: number): void {
    for (let fired = 0; ; fired++) {
      assert.ok(fired < 10_000, 'timers keep firing: the scheduler is spinning');
      const due = this.live.filter((t) => t.at <= to).sort((a, b) => a.at - b.at);
      if (!due[0]) break;
      const tied = due.filter((t) => t.at === due[0]!.at);
      const next = this.#alternateTies && tied.length > 1 ? tied[this.#ties++ % tied.length]! : due[0];
      this.#now = Math.max(this.#now, next.at);
      next.live = false;
      next.fn();
    }
    this.#now = Math.max(this.#now, to);
  }

  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  /** Time passes with no timer firing (the host is down, or the wall clock jumps). */
  jump(ms: number): void {
    this.#now += ms;
  }

  /** Fires the pending timer now, before its time (a clock that jumped back). */
  fireEarly(): void {
    const [timer] = this.live;
    assert.ok(timer, 'no timer armed');
    timer.live = false;
    timer.fn();
  }
}

type MemTask = { id: string; group: string; schedule: string; state: string; nextRun: number | null };

/** SchedulerStore in memory, with the same compare-and-set claim as the SQLite store. */
class MemoryStore implements SchedulerStore {
  readonly tasks = new Map<string, MemTask>();
  readonly runs: { id: string; taskId: string; group: string; scheduledFor: number }[] = [];
  failures = 0;

  dueTasks(nowMs: number) {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('database is locked');
    }
    return [...this.tasks.values()]
      .filter((t) => t.state === 'active' && t.nextRun !== null && t.nextRun <= nowMs)
      .sort((a, b) => a.nextRun! - b.nextRun!)
      .map((t) => ({ ...t }));
  }

  nextDue(): number | null {
    const times = [...this.tasks.values()].filter((t) => t.state === 'active' && t.nextRun !== null).map((t) => t.nextRun!);
    return times.length ? Math.min(...times) : null;
  }

  claimTask(taskId: string, expectedNextRun: number, newNextRun: number | null) {
    const t = this.tasks.get(taskId);
    if (!t || t.state !== 'active' || t.nextRun !== expectedNextRun) return undefined;
    t.nextRun = newNextRun;
    if (newNextRun === null) t.state = 'completed';
    const run = { id: `run-${this.runs.length + 1}`, taskId, group: t.group, scheduledFor: expectedNextRun };
    this.runs.push(run);
    return { id: run.id, group: run.group };
  }
}

/**
 * Connections that all read at the same instant before any of them writes: every
 * dueTasks(now) with the same `now` gets the answer of the first, possibly stale, so only
 * the store's compare-and-set stands between two schedulers and a double run.
 */
function racingConnections(connect: () => SchedulerStore) {
  const reads = new Map<number, ReturnType<SchedulerStore['dueTasks']>>();
  const stats = { lost: 0 };
  const make = (): SchedulerStore => {
    const store = connect();
    return {
      dueTasks(now) {
        if (!reads.has(now)) reads.set(now, store.dueTasks(now));
        return reads.get(now)!;
      },
      nextDue: () => store.nextDue(),
      claimTask(id, expected, next) {
        const run = store.claimTask(id, expected, next);
        if (!run) stats.lost++;
        return run;
      },
    };
  };
  return { make, stats };
}

/** What a scenario needs from a backing store, for the in-memory fake and the real SQLite store alike. */
interface Backend {
  /** A handle on the shared state: another connection for SQLite, the same object in memory. */
  connect(): SchedulerStore;
  add(schedule: Schedule | string, nextRun: number | null): string;
  /** scheduled_for of the task's runs, oldest first. */
  runs(taskId: string): number[];
  task(taskId: string): { state: string; nextRun: number | null };
  pause(taskId: string): void;
}

function memoryBackend(): Backend {
  const store = new MemoryStore();
  let n = 0;
  return {
    connect: () => store,
    add(schedule, next) {
      const id = `task-${++n}`;
      store.tasks.set(id, { id, group: 'main', schedule: typeof schedule === 'string' ? schedule : serializeSchedule(schedule), state: 'active', nextRun: next });
      return id;
    },
    runs: (id) => store.runs.filter((r) => r.taskId === id).map((r) => r.scheduledFor).sort((a, b) => a - b),
    task: (id) => store.tasks.get(id)!,
    pause(id) {
      const t = store.tasks.get(id)!;
      t.state = 'paused';
      t.nextRun = null;
    },
  };
}

function sqliteBackend(t: { after(fn: () => void): void }): Backend {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-scheduler-'));
  const file = path.join(dir, 'hako.db');
  const main = new Store(file);
  const stores = [main];
  t.after(() => {
    for (const s of stores) s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  main.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  return {
    connect() {
      const s = new Store(file);
      stores.push(s);
      return s;
    },
    add: (schedule, next) => main.addTask({
      group: 'main', prompt: 'p', schedule: typeof schedule === 'string' ? schedule : serializeSchedule(schedule), context: 'group', nextRun: next, createdBy: 'test',
    }).id,
    runs: (id) => main.listRuns(id, 10_000).map((r) => r.scheduledFor).sort((a, b) => a - b),
    task: (id) => main.getTask(id)!,
    pause: (id) => { main.setTaskState(id, 'paused', null); },
  };
}

function recordingLogger(): Logger & { entries: { level: string; msg: string; fields: Fields }[] } {
  const entries: { level: string; msg: string; fields: Fields }[] = [];
  const at = (level: string) => (msg: string, fields: Fields = {}) => { entries.push({ level, msg, fields }); };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function makeScheduler(opts: { store: SchedulerStore; clock: FakeClock; tz?: string; log?: Logger; onRun?: (run: { id: string; group: string }) => void }) {
  const fired: { id: string; group: string; at: number }[] = [];
  const scheduler = new Scheduler({
    store: opts.store, clock: opts.clock, tz: opts.tz ?? 'UTC', log: opts.log ?? silentLogger,
    onRun: (run) => {
      fired.push({ ...run, at: opts.clock.now() });
      opts.onRun?.(run);
    },
  });
  return { scheduler, fired };
}

/** The next_run a new task gets (as the task service computes it). */
const first = (s: Schedule, now: number, tz = 'UTC') => nextRun(s, now - 1, tz);

// ---- scenarios, run against the in-memory fake and the real SQLite store ---------------

const backends: [string, (t: { after(fn: () => void): void }) => Backend][] = [['memory', () => memoryBackend()], ['sqlite', sqliteBackend]];

for (const [kind, makeBackend] of backends) {
  test(`scheduler (${kind}) - a cron task fires on schedule and moves on to its next run`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const s: Schedule = { kind: 'cron', expr: '0 9 * * *' };
    const id = b.add(s, first(s, T0));
    const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
    scheduler.start();
    clock.advanceTo(T0 + HOUR - 1);
    assert.equal(fired.length, 0, 'nothing before 09:00');
    clock.advanceTo(T0 + HOUR);
    assert.deepEqual(fired.map((f) => [f.group, iso(f.at)]), [['main', '2026-03-02T09:00:00.000Z']]);
    assert.deepEqual(b.runs(id).map(iso), ['2026-03-02T09:00:00.000Z']);
    assert.equal(iso(b.task(id).nextRun), '2026-03-03T09:00:00.000Z');
    clock.advanceTo(Date.parse('2026-03-05T12:00:00Z'));
    assert.deepEqual(fired.map((f) => iso(f.at)), ['2026-03-02T09:00:00.000Z', '2026-03-03T09:00:00.000Z', '2026-03-04T09:00:00.000Z', '2026-03-05T09:00:00.000Z']);
    scheduler.stop();
  });

  test(`scheduler (${kind}) - every_seconds fires repeatedly on its grid`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const s: Schedule = { kind: 'every', seconds: 90, anchor: T0 + 90_000 };
    const id = b.add(s, first(s, T0));
    const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
    scheduler.start();
    clock.advance(10 * MIN);
    const expected = Array.from({ length: 6 }, (_, k) => T0 + 90_000 * (k + 1));
    assert.deepEqual(fired.map((f) => f.at), expected);
    assert.deepEqual(b.runs(id), expected);
    assert.equal(b.task(id).nextRun, T0 + 90_000 * 7);
    scheduler.stop();
  });

  test(`scheduler (${kind}) - a run missed while the host was down fires once at start, then the schedule resumes`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 + MIN };
    const id = b.add(s, first(s, T0));
    const before = makeScheduler({ store: b.connect(), clock });
    before.scheduler.start();
    clock.advance(2 * MIN);
    assert.equal(before.fired.length, 2);
    before.scheduler.stop(); // the host goes down ...
    clock.jump(3 * HOUR + 25_000); // ... for three hours, 180 runs' worth
    const after = makeScheduler({ store: b.connect(), clock });
    after.scheduler.start();
    assert.equal(after.fired.length, 1, 'one catch-up run, not 180');
    assert.deepEqual(b.runs(id).slice(-1), [T0 + 3 * MIN], 'the run is recorded for the time it was due');
    assert.equal(b.task(id).nextRun, T0 + 3 * HOUR + 3 * MIN, 'the next run is the next grid point after now');
    clock.advance(3 * MIN);
    assert.deepEqual(after.fired.slice(1).map((f) => f.at), [T0 + 3 * HOUR + 3 * MIN, T0 + 3 * HOUR + 4 * MIN, T0 + 3 * HOUR + 5 * MIN]);
    after.scheduler.stop();
  });

  test(`scheduler (${kind}) - two schedulers over one store never claim the same run twice`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0, { alternateTies: true });
    const every: Schedule = { kind: 'every', seconds: 30, anchor: T0 + 30_000 };
    const cron: Schedule = { kind: 'cron', expr: '*/5 * * * *' };
    const ids = [b.add(every, first(every, T0)), b.add(cron, first(cron, T0))];
    const racing = racingConnections(() => b.connect());
    const one = makeScheduler({ store: racing.make(), clock });
    const two = makeScheduler({ store: racing.make(), clock });
    one.scheduler.start();
    clock.advance(2 * MIN);
    two.scheduler.start(); // an overlapping restart: the old process is still running
    clock.advance(30 * MIN);
    one.scheduler.stop();
    two.scheduler.stop();
    const fired = [...one.fired, ...two.fired];
    assert.ok(two.fired.length > 0 && one.fired.length > 0, 'both took part');
    assert.ok(racing.stats.lost > 0, 'claims really raced, and the loser got nothing');
    assert.equal(new Set(fired.map((f) => f.id)).size, fired.length, 'no run reported twice');
    for (const id of ids) {
      const runs = b.runs(id);
      assert.equal(new Set(runs).size, runs.length, `no scheduled time claimed twice for ${id}`);
    }
    assert.equal(b.runs(ids[0]!).length, 64, 'every 30 s for 32 min');
    assert.equal(b.runs(ids[1]!).length, 7, '08:00, 08:05 … 08:30');
    assert.equal(fired.length, 71);
  });

  test(`scheduler (${kind}) - an at task fires once and then has no next run`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const s: Schedule = { kind: 'at', time: T0 + 5 * MIN };
    const id = b.add(s, first(s, T0));
    const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
    scheduler.start();
    clock.advance(HOUR);
    assert.deepEqual(fired.map((f) => f.at), [T0 + 5 * MIN]);
    assert.deepEqual(b.runs(id), [T0 + 5 * MIN]);
    assert.deepEqual(b.task(id), { ...b.task(id), state: 'completed', nextRun: null });
    assert.equal(clock.live.length, 0, 'nothing left to wait for');
    scheduler.stop();
  });

  test(`scheduler (${kind}) - stop() prevents further runs`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 + MIN };
    b.add(s, first(s, T0));
    const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
    scheduler.start();
    clock.advance(MIN);
    assert.equal(fired.length, 1);
    scheduler.stop();
    assert.equal(clock.live.length, 0, 'the timer is cancelled');
    clock.advance(HOUR);
    scheduler.poke();
    assert.equal(fired.length, 1);
  });

  test(`scheduler (${kind}) - a corrupt schedule is logged once and does not stop other tasks`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const broken = b.add('{"kind":"cron","expr":', T0 - MIN); // due, unreadable
    const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 + MIN };
    const good = b.add(s, first(s, T0));
    const log = recordingLogger();
    const { scheduler, fired } = makeScheduler({ store: b.connect(), clock, log });
    scheduler.start();
    clock.advance(5 * MIN);
    assert.deepEqual(b.runs(good), [1, 2, 3, 4, 5].map((k) => T0 + k * MIN));
    assert.equal(fired.length, 5);
    assert.deepEqual(b.runs(broken), []);
    const errors = log.entries.filter((e) => e.level === 'error');
    assert.equal(errors.length, 1, 'logged once, not on every pass');
    assert.match(errors[0]!.msg, /schedule cannot be read/);
    assert.equal(errors[0]!.fields.task, broken);
    assert.ok(clock.timers.length <= 8, `the loop does not spin (${clock.timers.length} timers armed)`);
    scheduler.stop();
  });

  test(`scheduler (${kind}) - a paused task does not fire, and poke() re-arms for a task added later`, (t) => {
    const b = makeBackend(t);
    const clock = new FakeClock(T0);
    const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 + MIN };
    const paused = b.add(s, first(s, T0));
    const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
    scheduler.start();
    b.pause(paused);
    scheduler.poke();
    assert.equal(clock.live.length, 0, 'nothing scheduled, no timer');
    clock.advance(HOUR);
    assert.equal(fired.length, 0);
    const at: Schedule = { kind: 'at', time: clock.now() + 10_000 };
    b.add(at, first(at, clock.now()));
    scheduler.poke();
    clock.advance(10_000);
    assert.deepEqual(fired.map((f) => f.at), [T0 + HOUR + 10_000]);
    scheduler.stop();
  });
}

test('attack 33 - the scheduler never claims a pending task, even one whose next run is due; once approved it fires', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-scheduler-pending-'));
  const store = new Store(path.join(dir, 'hako.db'));
  t.after(() => { store.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  store.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  store.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  const clock = new FakeClock(T0);
  const tasks = createTaskService({ store, tz: 'UTC', now: () => clock.now(), maxTasks: 20 });
  const { scheduler, fired } = makeScheduler({ store, clock, onRun: () => {} });
  const pending = tasks.schedule({ kind: 'group', group: 'team', isMain: false }, { prompt: 'bill the owner', every_seconds: 10 });
  // Even a pending row that somehow holds a due next_run (a bug, a hand edit) is not claimed.
  store.setTaskState(pending.id, 'pending', T0);
  scheduler.start();
  clock.advance(HOUR);
  assert.equal(fired.length, 0);
  assert.equal(store.claimTask(pending.id, T0, T0 + 10_000), undefined, 'the claim itself refuses a pending task');
  assert.deepEqual(store.listRuns(pending.id), []);
  tasks.approve({ kind: 'owner' }, pending.id);
  scheduler.poke(); // now is a slot of its 10 s grid: it fires at once
  assert.deepEqual(fired.map((f) => [f.group, f.at]), [['team', T0 + HOUR]]);
  scheduler.stop();
});

// ---- loop mechanics (in-memory store) --------------------------------------------------

test('scheduler - a run is claimed in the store before onRun hears of it', () => {
  const b = memoryBackend();
  const clock = new FakeClock(T0);
  const s: Schedule = { kind: 'at', time: T0 + MIN };
  const id = b.add(s, first(s, T0));
  const seen: unknown[] = [];
  const { scheduler } = makeScheduler({ store: b.connect(), clock, onRun: () => seen.push({ runs: b.runs(id), task: b.task(id).state }) });
  scheduler.start();
  clock.advance(MIN);
  assert.deepEqual(seen, [{ runs: [T0 + MIN], task: 'completed' }]);
});

test('scheduler - only one timer at a time, never longer than the cap, and a task days away still fires on time', () => {
  const b = memoryBackend();
  const clock = new FakeClock(T0);
  const s: Schedule = { kind: 'at', time: T0 + 3 * 24 * HOUR + 17_000 };
  b.add(s, first(s, T0));
  const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
  scheduler.start();
  assert.equal(clock.live.length, 1);
  assert.equal(clock.live[0]!.ms, MAX_TIMER_MS);
  scheduler.poke();
  scheduler.poke();
  assert.equal(clock.live.length, 1, 'poke re-arms, it does not add timers');
  clock.advance(4 * 24 * HOUR);
  assert.deepEqual(fired.map((f) => f.at), [s.time]);
  assert.ok(clock.timers.every((tm) => tm.ms <= MAX_TIMER_MS));
});

test('scheduler - a timer that fires early (the clock jumped back) just re-arms', () => {
  const b = memoryBackend();
  const clock = new FakeClock(T0);
  const s: Schedule = { kind: 'at', time: T0 + 10 * MIN };
  b.add(s, first(s, T0));
  const { scheduler, fired } = makeScheduler({ store: b.connect(), clock });
  scheduler.start();
  clock.advance(4 * MIN);
  clock.fireEarly();
  assert.equal(fired.length, 0);
  assert.equal(clock.live.length, 1);
  assert.equal(clock.live[0]!.at, T0 + 10 * MIN, 'armed for the remaining 6 minutes');
  clock.advance(6 * MIN);
  assert.equal(fired.length, 1);
});

test('scheduler - stop() called from inside onRun stops the remaining due runs too', () => {
  const b = memoryBackend();
  const clock = new FakeClock(T0);
  const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 };
  b.add(s, T0);
  b.add(s, T0);
  const holder: { scheduler?: Scheduler } = {};
  const made = makeScheduler({ store: b.connect(), clock, onRun: () => holder.scheduler!.stop() });
  holder.scheduler = made.scheduler;
  made.scheduler.start();
  clock.advance(HOUR);
  assert.equal(made.fired.length, 1);
});

test('scheduler - onRun throwing is logged and the loop goes on', () => {
  const b = memoryBackend();
  const clock = new FakeClock(T0);
  const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 + MIN };
  b.add(s, first(s, T0));
  const log = recordingLogger();
  const { scheduler, fired } = makeScheduler({ store: b.connect(), clock, log, onRun: () => { throw new Error('queue full'); } });
  scheduler.start();
  clock.advance(3 * MIN);
  assert.equal(fired.length, 3);
  assert.equal(log.entries.filter((e) => e.level === 'error' && /onRun threw/.test(e.msg)).length, 3);
  scheduler.stop();
});

test('scheduler - a store error is logged and retried later, not thrown out of a timer', () => {
  const b = memoryBackend();
  const store = b.connect() as MemoryStore;
  const clock = new FakeClock(T0);
  const s: Schedule = { kind: 'every', seconds: 60, anchor: T0 + MIN };
  b.add(s, first(s, T0));
  const log = recordingLogger();
  const { scheduler, fired } = makeScheduler({ store, clock, log });
  scheduler.start();
  store.failures = 1;
  clock.advance(MIN);
  assert.equal(fired.length, 0);
  assert.equal(log.entries.filter((e) => e.level === 'error').length, 1);
  clock.advance(RETRY_MS);
  assert.deepEqual(fired.map((f) => f.at), [T0 + MIN + RETRY_MS], 'the late run fires on the retry');
  clock.advance(MIN);
  assert.equal(fired.length, 2, 'and the grid goes on');
  scheduler.stop();
});

test('scheduler - a cron task in Europe/Berlin fires at 09:00 local time across the spring DST change', () => {
  const b = memoryBackend();
  const clock = new FakeClock(Date.parse('2026-03-27T12:00:00Z'));
  const s: Schedule = { kind: 'cron', expr: '0 9 * * *' };
  b.add(s, first(s, clock.now(), 'Europe/Berlin'));
  const { scheduler, fired } = makeScheduler({ store: b.connect(), clock, tz: 'Europe/Berlin' });
  scheduler.start();
  clock.advanceTo(Date.parse('2026-03-31T00:00:00Z'));
  assert.deepEqual(fired.map((f) => iso(f.at)), ['2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z', '2026-03-30T07:00:00.000Z']);
  scheduler.stop();
});

test('scheduler - start() after stop() is refused: a stopped scheduler stays stopped', () => {
  const { scheduler } = makeScheduler({ store: new MemoryStore(), clock: new FakeClock(T0) });
  scheduler.start();
  scheduler.stop();
  assert.throws(() => scheduler.start(), /create a new Scheduler/);
});
