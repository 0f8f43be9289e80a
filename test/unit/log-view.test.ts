// `hako logs`'s reading of log lines: the human view, filters, raw lines and rotated files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asJson, human, localTime, matches, parseLine, recent } from '../../src/cli/logs.ts';
import { createLogger } from '../../src/core/log.ts';

// Any of these reaching a terminal could drive it: ESC (OSC 52 clipboard, colours), CR, bidi override.
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

test('logs view - local date and time, level, the group first, the message, then the fields', () => {
  const ts = '2026-03-04T05:06:07.000Z';
  const line = human(parseLine(JSON.stringify({ ts, level: 'warn', msg: 'turn failed; will retry', group: 'team', attempt: 2, error: 'model said no' })));
  assert.equal(line, `${localTime(ts)} warn  [team] turn failed; will retry attempt=2 error="model said no"`);
  const d = new Date(ts);
  assert.match(localTime(ts), new RegExp(`^${d.getFullYear()}-0?${d.getMonth() + 1}-0?${d.getDate()} 0?${d.getHours()}:06:07$`), 'in local time, with the date');
  assert.equal(human(parseLine('{"ts":"2026-03-04T05:06:07Z","level":"info","msg":"no group"}')), `${localTime('2026-03-04T05:06:07Z')} info  no group`);
});

test('logs view - agent-chosen text in a message or field cannot reach the terminal as a control sequence', () => {
  const hostile = 'ok\u001b]52;c;ZXZpbA==\u0007\r\u202eevil\u009b31m';
  const entry = parseLine(JSON.stringify({ ts: 'x', level: 'info', msg: hostile, group: hostile, [hostile]: hostile }));
  for (const out of [human(entry), asJson(entry), human(parseLine(hostile)), asJson(parseLine(hostile))]) {
    assert.doesNotMatch(out, UNSAFE, out);
    assert.match(out, /\\u001b/, 'shown as a visible escape');
  }
});

test('logs view - a line that is not JSON is shown as it is and only without filters', () => {
  const e = parseLine('Segmentation fault (core dumped)');
  assert.deepEqual(e, { kind: 'raw', text: 'Segmentation fault (core dumped)' });
  assert.equal(human(e), 'Segmentation fault (core dumped)');
  assert.equal(asJson(e), 'Segmentation fault (core dumped)');
  assert.deepEqual(parseLine('[1,2]'), { kind: 'raw', text: '[1,2]' }, 'JSON that is not an object is shown as it is');
  assert.equal(matches(e, {}), true);
  assert.equal(matches(e, { level: 'debug' }), false);
  assert.equal(matches(e, { group: 'main' }), false);
});

test('logs view - --level keeps that level and above, --group keeps that group\'s lines', () => {
  const at = (level: string, group?: string) => parseLine(JSON.stringify({ level, msg: 'm', ...(group ? { group } : {}) }));
  assert.deepEqual(['debug', 'info', 'warn', 'error', 'loud'].map((l) => matches(at(l), { level: 'warn' })), [false, false, true, true, false]);
  assert.equal(matches(at('info', 'main'), { group: 'main' }), true);
  assert.equal(matches(at('info', 'team'), { group: 'main' }), false);
  assert.equal(matches(at('info'), { group: 'main' }), false);
  assert.equal(matches(at('error', 'main'), { group: 'main', level: 'warn' }), true);
});

test('logs view - the recent lines are read across rotated files, newest last', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-logview-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = createLogger({ dir, console: false, maxBytes: 1024, keep: 5 });
  for (let i = 0; i < 60; i++) log.info('line', { i, group: i % 2 ? 'odd' : 'even' });
  assert.ok(fs.existsSync(path.join(dir, 'hako.log.2')), 'the test needs two rotations');
  const live = fs.readFileSync(path.join(dir, 'hako.log'), 'utf8');
  const nums = (entries: ReturnType<typeof recent>) => entries.map((e) => (e.kind === 'json' ? e.value.i : e.text));
  assert.deepEqual(nums(recent(dir, live, 25, {})), Array.from({ length: 25 }, (_, k) => 35 + k));
  assert.deepEqual(nums(recent(dir, live, 5, { group: 'odd' })), [51, 53, 55, 57, 59]);
  const all = nums(recent(dir, live, 1000, {})) as number[];
  assert.deepEqual(all, Array.from({ length: all.length }, (_, k) => 60 - all.length + k), 'asking for more gives every kept line, each once');
  assert.deepEqual(nums(recent(dir, live, 0, {})), []);
});

test('logs view - a rotation after the live file was read shows no line twice', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-logview-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = createLogger({ dir, console: false, maxBytes: 1024, keep: 5 });
  for (let i = 0; i < 30; i++) log.info('line', { i });
  const file = path.join(dir, 'hako.log');
  const live = fs.readFileSync(file, 'utf8');
  const liveIno = fs.statSync(file).ino;
  // The host rotates between `hako logs` reading the live file and reading hako.log.1.
  for (let n = 4; n >= 1; n--) if (fs.existsSync(`${file}.${n}`)) fs.renameSync(`${file}.${n}`, `${file}.${n + 1}`);
  fs.renameSync(file, `${file}.1`);
  const all = recent(dir, live, 1000, {}, liveIno).map((e) => (e.kind === 'json' ? e.value.i : e.text)) as number[];
  assert.deepEqual(all, Array.from({ length: all.length }, (_, k) => 30 - all.length + k), 'every kept line once, in order');
  assert.ok(all.length > live.split('\n').length, 'the older rotated files are still read');
});
