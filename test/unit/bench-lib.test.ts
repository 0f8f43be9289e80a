// The benchmark's own arithmetic and readings (bench/lib): the figures it reports and the
// targets it judges must be right, or its "met" means nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { median, percentile, summarize } from '../../bench/lib/stats.ts';
import { sampled, single, table } from '../../bench/lib/report.ts';
import { childPids, cpuMs, descendantPids, rssBytes } from '../../bench/lib/proc.ts';

test('bench stats - median of an odd count is the middle value, of an even count the mean of the two middle ones', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('bench stats - p95 is the nearest-rank percentile', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(percentile(hundred, 95), 95);
  assert.equal(percentile([10, 20, 30], 95), 30); // rank ceil(2.85) = 3
  assert.equal(percentile([7], 95), 7);
  const s = summarize([3, 1, 2]);
  assert.deepEqual({ n: s.n, median: s.median, min: s.min, max: s.max, mean: s.mean }, { n: 3, median: 2, min: 1, max: 3, mean: 2 });
});

test('bench report - a target is met at or below its maximum, missed above it or with no samples', () => {
  const target = { max: 30, text: '≤ 30 ms' };
  assert.equal(sampled('a', 'a', 'ms', [29, 30, 31], target).met, true); // median 30
  assert.equal(sampled('b', 'b', 'ms', [30, 31, 40], target).met, false); // median 31
  assert.equal(sampled('c', 'c', 'ms', [], target).met, false);
  assert.equal(single('d', 'd', '%', 0.999, 1, { max: 1, text: '≤ 1 %' }).met, true);
  const printed = table([{ suite: 'warm', seconds: 1, notes: ['a note'], figures: [sampled('b', 'warm overhead', 'ms', [30, 31, 40], target)] }]);
  assert.match(printed, /warm overhead\s+31\.0 ms\s+40\.0 ms\s+3\s+≤ 30 ms\s+MISSED/);
  assert.match(printed, /warm: a note/);
});

test('bench report - a floor target (messages per second) is met at or above its minimum only', () => {
  const target = { max: Number.POSITIVE_INFINITY, min: 8, text: '≥ 8 msg/s' };
  assert.equal(single('a', 'a', 'msg/s', 8, 500, target).met, true);
  assert.equal(single('b', 'b', 'msg/s', 7.9, 500, target).met, false);
  assert.equal(single('c', 'c', 'msg/s', Number.NaN, 500, target).met, false);
});

test('bench report - sampled percentages keep the precision of a 0.03 % target (regression: rounded to one decimal, 0.04 % read as 0.0 and met)', () => {
  const target = { max: 0.03, text: '≤ 0.03 %' };
  const f = sampled('cpu', 'idle CPU of one warm container', '%', [0.04, 0.05, 0.04], target);
  assert.equal(f.median, 0.04);
  assert.equal(f.met, false);
  assert.equal(sampled('ok', 'ok', '%', [0.012, 0.02, 0.008], target).met, true);
});

test('bench proc - RSS, CPU time and children are read from /proc for a live process', { skip: process.platform === 'linux' ? false : 'reads Linux /proc' }, async (t) => {
  const rss = rssBytes(process.pid);
  const own = process.memoryUsage().rss;
  assert.ok(Math.abs(rss - own) < own * 0.2, `VmRSS ${rss} near memoryUsage().rss ${own}`);
  const before = cpuMs(process.pid);
  // Busy until Node's own accounting says 150 ms of CPU were used (wall time would depend on the machine's load).
  const start = process.cpuUsage();
  while (((u) => (u.user + u.system) / 1000)(process.cpuUsage(start)) < 150) { /* burn CPU */ }
  assert.ok(cpuMs(process.pid) - before >= 50, 'busy time shows up as CPU time');
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
  t.after(() => child.kill());
  await new Promise((r) => child.once('spawn', r));
  assert.ok(childPids(process.pid).includes(child.pid!));
  // A grandchild counts for "every process it started", not for the direct children.
  const parent = spawn(process.execPath, ['-e', `require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' }); console.log('spawned'); setTimeout(() => {}, 10000)`], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => { for (const p of descendantPids(parent.pid!)) process.kill(p); parent.kill(); });
  await new Promise((r) => parent.stdout.once('data', r));
  const below = descendantPids(process.pid);
  const grandchildren = childPids(parent.pid!);
  assert.equal(grandchildren.length, 1);
  assert.ok(below.includes(parent.pid!) && below.includes(grandchildren[0]!), 'children and their children');
  assert.ok(!childPids(process.pid).includes(grandchildren[0]!));
  assert.equal(rssBytes(2 ** 22 + 12345), 0, 'a process that does not exist reads as 0');
});
