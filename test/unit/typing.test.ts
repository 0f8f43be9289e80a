import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Typers } from '../../src/channels/typing.ts';

test('typing - shown at once, again every period, and no more once stopped', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const typers = new Typers();
  let shown = 0;
  const stop = typers.start(() => { shown++; }, 4000);
  assert.equal(shown, 1, 'at once');
  t.mock.timers.tick(8000);
  assert.equal(shown, 3);
  stop();
  stop();
  t.mock.timers.tick(8000);
  assert.equal(shown, 3, 'nothing after stop');
  assert.equal(typers.size, 0);
});

test('typing - an indicator nobody stopped ends by itself after its longest time', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const typers = new Typers();
  let shown = 0;
  typers.start(() => { shown++; }, 1000, 5000);
  t.mock.timers.tick(5000);
  const at = shown;
  t.mock.timers.tick(10_000);
  assert.equal(shown, at);
  assert.equal(typers.size, 0);
});

test('typing - the tick can end its own indicator, and stopAll ends every one', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const typers = new Typers();
  let running = true;
  let a = 0;
  let b = 0;
  typers.start((stop) => { if (!running) return stop(); a++; }, 1000);
  typers.start(() => { b++; }, 1000);
  running = false;
  t.mock.timers.tick(1000);
  assert.equal(typers.size, 1, 'the first ended itself');
  typers.stopAll();
  t.mock.timers.tick(5000);
  assert.deepEqual([a, b, typers.size], [1, 2, 0]);
});
