import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupQueue, type ContainerView } from '../../src/core/queue.ts';

/** A container table driven by the test: groups hold slots while running or warm. */
function fakeContainers() {
  const warm = new Map<string, number>();
  const busy = new Set<string>();
  /** Evicted containers hold their slot until the test says they have stopped. */
  const stopping = new Set<string>();
  const view: ContainerView & { warm: typeof warm; busy: typeof busy; evicted: string[]; stopped(g: string): void } = {
    warm, busy, evicted: [],
    slotHolders: () => new Set([...warm.keys(), ...busy, ...stopping]),
    isReusable: (g) => warm.has(g) || busy.has(g),
    evicting: () => stopping.size,
    evictIdle(keep) {
      const victim = [...warm.entries()].filter(([g]) => !keep.has(g)).sort((a, b) => a[1] - b[1])[0];
      if (!victim) return false;
      warm.delete(victim[0]);
      stopping.add(victim[0]);
      view.evicted.push(victim[0]);
      return true;
    },
    stopped(g) {
      stopping.delete(g);
    },
  };
  return view;
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

test('queue - a group never runs two turns at once', async () => {
  const c = fakeContainers();
  let running = 0, maxRunning = 0, runs = 0;
  const gate = deferred();
  const q = new GroupQueue({
    maxContainers: 4, containers: c, onError: () => {},
    work: async () => { running++; runs++; maxRunning = Math.max(maxRunning, running); await gate.promise; running--; },
  });
  q.enqueue('a'); q.enqueue('a'); q.enqueue('a');
  assert.equal(running, 1);
  gate.resolve();
  await q.idle();
  assert.equal(maxRunning, 1);
  assert.equal(runs, 2, 'requests while running coalesce into one more run');
});

test('queue - concurrency: at most maxContainers groups run, the rest wait in arrival order', async () => {
  const c = fakeContainers();
  const order: string[] = [];
  const gates = new Map<string, ReturnType<typeof deferred>>();
  const q = new GroupQueue({
    maxContainers: 2, containers: c, onError: () => {},
    work: async (g) => { order.push(g); c.busy.add(g); const d = deferred(); gates.set(g, d); await d.promise; c.busy.delete(g); },
  });
  for (const g of ['a', 'b', 'c', 'd']) q.enqueue(g);
  assert.deepEqual(order, ['a', 'b']);
  assert.deepEqual(q.waiting, ['c', 'd']);
  gates.get('a')!.resolve();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b', 'c']);
  gates.get('b')!.resolve(); await new Promise((r) => setImmediate(r));
  gates.get('c')!.resolve(); await new Promise((r) => setImmediate(r));
  gates.get('d')!.resolve();
  await q.idle();
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
});

test('queue - a warm container of an idle group is evicted when a waiting group needs the slot', async () => {
  const c = fakeContainers();
  c.warm.set('old', 1);
  const ran: string[] = [];
  const q = new GroupQueue({ maxContainers: 1, containers: c, onError: () => {}, work: async (g) => { ran.push(g); } });
  q.enqueue('new');
  assert.deepEqual(c.evicted, ['old']);
  assert.deepEqual(ran, [], 'the slot is not free until the container has stopped');
  q.pump();
  assert.deepEqual(c.evicted, ['old'], 'no second eviction while the first is under way');
  c.stopped('old');
  q.pump(); // the runner calls pump when the evicted container has exited
  await q.idle();
  assert.deepEqual(ran, ['new']);
});

test('queue - several waiting groups evict several warm containers at once, one each', async () => {
  const c = fakeContainers();
  for (const [i, g] of ['w1', 'w2', 'w3'].entries()) c.warm.set(g, i);
  const q = new GroupQueue({ maxContainers: 3, containers: c, onError: () => {}, work: async () => {} });
  q.enqueue('a');
  q.enqueue('b');
  assert.deepEqual(c.evicted, ['w1', 'w2'], 'the longest idle go first, one per waiting group');
  q.pump();
  assert.deepEqual(c.evicted, ['w1', 'w2'], 'no eviction beyond the groups that wait');
});

test('queue - a group with a warm container reuses it without a new slot', async () => {
  const c = fakeContainers();
  c.warm.set('a', 1);
  c.busy.add('b');
  const ran: string[] = [];
  const q = new GroupQueue({ maxContainers: 2, containers: c, onError: () => {}, work: async (g) => { ran.push(g); } });
  q.enqueue('a');
  await q.idle();
  assert.deepEqual(ran, ['a']);
  assert.deepEqual(c.evicted, []);
});

test('queue - a throwing turn is reported and does not stop the queue', async () => {
  const c = fakeContainers();
  const errors: string[] = [];
  const ran: string[] = [];
  const q = new GroupQueue({
    maxContainers: 1, containers: c, onError: (g) => errors.push(g),
    work: async (g) => { ran.push(g); if (g === 'bad') throw new Error('boom'); },
  });
  q.enqueue('bad'); q.enqueue('good');
  await q.idle();
  assert.deepEqual(errors, ['bad']);
  assert.deepEqual(ran, ['bad', 'good']);
});

test('queue - options are validated at construction', () => {
  assert.throws(() => new GroupQueue({ maxContainers: 0, containers: fakeContainers(), onError: () => {}, work: async () => {} }), /maxContainers/);
});

test('queue - close() admits no more work; idle() resolves once the running work has finished (regression: it never did), its signal unaborted', async () => {
  const c = fakeContainers();
  const gate = deferred();
  let signal: AbortSignal | undefined;
  const ran: string[] = [];
  const q = new GroupQueue({ maxContainers: 1, containers: c, onError: () => {}, work: async (g, s) => { ran.push(g); signal = s; await gate.promise; } });
  q.enqueue('a'); q.enqueue('b');
  q.close();
  q.enqueue('c');
  gate.resolve();
  await q.idle();
  assert.deepEqual(ran, ['a']);
  assert.equal(signal?.aborted, false);
});

test('queue - close({ abort: true }) aborts the signal of running work, which then ends', async () => {
  const c = fakeContainers();
  const q = new GroupQueue({
    maxContainers: 2, containers: c, onError: () => {},
    // Work that only ends when it is told to.
    work: (_g, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
  });
  q.enqueue('a'); q.enqueue('b');
  assert.deepEqual([...q.active].sort(), ['a', 'b']);
  q.close({ abort: true });
  await q.idle();
  assert.deepEqual([...q.active], []);
});

test('queue - work that throws at once is reported like a rejection: the group is free again and the queue goes idle', async () => {
  const c = fakeContainers();
  const errors: string[] = [];
  let calls = 0;
  const q = new GroupQueue({
    maxContainers: 1, containers: c, onError: (g, err) => errors.push(`${g}: ${(err as Error).message}`),
    work: (g) => {
      calls++;
      if (calls === 1) throw new Error('the database could not be read');
      return Promise.resolve();
    },
  });
  assert.doesNotThrow(() => q.enqueue('a'), 'the caller (who stored a message) is not handed the error');
  await q.idle();
  assert.deepEqual(errors, ['a: the database could not be read']);
  q.enqueue('a');
  await q.idle();
  assert.equal(calls, 2, 'the group is served again');
});
