// protocol/poll.ts: the safety poll beside fs.watch runs fast until the watcher is seen to
// deliver, slow afterwards, and fast again when the poll finds a file first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SafetyPoll } from '../../protocol/poll.ts';

test('safety poll - ticks fast, slows once the watcher finds a file first, speeds up when the poll does', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  let ticks = 0;
  const poll = new SafetyPoll(() => { ticks++; }, { fastMs: 1000, slowMs: 10_000 });
  poll.start();
  t.mock.timers.tick(3000);
  assert.equal(ticks, 3);

  poll.found('watch');
  assert.equal(poll.intervalMs, 10_000);
  t.mock.timers.tick(9999);
  assert.equal(ticks, 3, 'no tick within the slow period');
  t.mock.timers.tick(1);
  assert.equal(ticks, 4);

  poll.found('poll');
  assert.equal(poll.intervalMs, 1000);
  t.mock.timers.tick(2000);
  assert.equal(ticks, 6);

  poll.stop();
  t.mock.timers.tick(60_000);
  assert.equal(ticks, 6, 'stopped');
});

test('safety poll - an owner that knows the watcher delivers starts slow, and a file the poll finds first still turns it fast', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  let ticks = 0;
  const poll = new SafetyPoll(() => { ticks++; }, { fastMs: 1000, slowMs: 30_000, startSlow: true });
  assert.equal(poll.intervalMs, 30_000);
  poll.start();
  t.mock.timers.tick(29_999);
  assert.equal(ticks, 0, 'no tick within the slow period');
  t.mock.timers.tick(1);
  assert.equal(ticks, 1);
  poll.found('poll');
  assert.equal(poll.intervalMs, 1000);
  poll.stop();
});

test('safety poll - the slow period is never shorter than the fast one', () => {
  const poll = new SafetyPoll(() => {}, { fastMs: 500, slowMs: 100 });
  poll.found('watch');
  assert.equal(poll.intervalMs, 500);
});

test('safety poll - a failed watcher puts it back to the fast pace', () => {
  const poll = new SafetyPoll(() => {}, { fastMs: 1000, slowMs: 10_000 });
  poll.found('watch');
  assert.equal(poll.intervalMs, 10_000);
  poll.watchFailed();
  assert.equal(poll.intervalMs, 1000);
});

test('safety poll - each scan learns what asked for it: a watch event, a poll tick, or neither', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const asked: (string | null)[] = [];
  const poll = new SafetyPoll(() => asked.push(poll.scanStarted()), { fastMs: 1000 });
  poll.start();
  poll.watched();
  t.mock.timers.tick(1000);
  asked.push(poll.scanStarted()); // a scan the owner started itself
  poll.stop();
  assert.deepEqual(asked, ['watch', 'poll', null]);
});

