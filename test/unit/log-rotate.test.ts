// The host log's rotation and file modes, against the real file system.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, DEFAULT_LOG_MAX_BYTES, logMaxBytes } from '../../src/core/log.ts';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-logrot-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const seqs = (text: string) => text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i);

test('log rotation - rotates before a line would pass maxBytes, keeps the newest files and loses no line', (t) => {
  const dir = tempDir(t);
  const log = createLogger({ dir, console: false, maxBytes: 1024, keep: 3 });
  for (let i = 0; i < 300; i++) log.info('a line of the host log', { i });
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files, ['hako.log', 'hako.log.1', 'hako.log.2', 'hako.log.3'], 'the oldest past `keep` are dropped');
  const kept = ['hako.log.3', 'hako.log.2', 'hako.log.1', 'hako.log'].flatMap((f) => seqs(fs.readFileSync(path.join(dir, f), 'utf8')));
  const first = kept[0]!;
  assert.ok(first > 0, 'older lines were rotated away');
  assert.deepEqual(kept, Array.from({ length: 300 - first }, (_, k) => first + k), 'the kept lines are the newest ones, each once, in order');
  for (const f of files) {
    const st = fs.statSync(path.join(dir, f));
    assert.ok(st.size <= 1024, `${f} is ${st.size} bytes`);
    assert.equal(st.mode & 0o777, 0o600, `${f} is owner-only`);
  }
});

test('log rotation - a rotation that fails keeps the line in the open file and never throws into the host', (t) => {
  const dir = tempDir(t);
  // A non-empty folder where the oldest kept file goes: removing it fails.
  fs.mkdirSync(path.join(dir, 'hako.log.1', 'x'), { recursive: true });
  const log = createLogger({ dir, console: false, maxBytes: 1024, keep: 1 });
  for (let i = 0; i < 100; i++) log.warn('still logged', { i });
  assert.deepEqual(seqs(fs.readFileSync(path.join(dir, 'hako.log'), 'utf8')), Array.from({ length: 100 }, (_, i) => i));
});

test('log rotation - a log folder and file an older version left readable are made owner-only', (t) => {
  const dir = path.join(tempDir(t), 'logs');
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'hako.log'), '{"old":true}\n', { mode: 0o644 });
  fs.chmodSync(path.join(dir, 'hako.log'), 0o644);
  createLogger({ dir, console: false }).info('new');
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'hako.log')).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(path.join(dir, 'hako.log'), 'utf8'), /^\{"old":true\}\n\{"ts":.*"msg":"new"\}\n$/, 'appended, never truncated');
});

test('log - a field that cannot be serialised is logged without it and does not throw', (t) => {
  const dir = tempDir(t);
  const log = createLogger({ dir, console: false });
  log.error('odd field', { n: 10n });
  const line = JSON.parse(fs.readFileSync(path.join(dir, 'hako.log'), 'utf8'));
  assert.equal(line.msg, 'odd field');
  assert.equal(line.fields, '[not serialisable]');
});

test('log - HAKO_LOG_MAX_BYTES takes bytes or a size such as 10m, and refuses anything else saying what to set', () => {
  assert.equal(logMaxBytes(undefined), DEFAULT_LOG_MAX_BYTES);
  assert.equal(logMaxBytes(''), DEFAULT_LOG_MAX_BYTES);
  assert.equal(logMaxBytes('4096'), 4096);
  assert.equal(logMaxBytes('10m'), 10 * 1024 * 1024);
  assert.equal(logMaxBytes('512k'), 512 * 1024);
  for (const bad of ['10 MB', '-1', '100', 'lots', '1.5']) {
    assert.throws(() => logMaxBytes(bad), /HAKO_LOG_MAX_BYTES=".*" is not a log size: set a number of bytes of at least 1024 or a size such as 10m/, bad);
  }
});
