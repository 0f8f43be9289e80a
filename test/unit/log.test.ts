import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/core/log.ts';

test('log - writes JSON lines and masks configured secrets wherever they appear', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-log-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = 'sk-live-0123456789abcdef';
  const log = createLogger({ dir, console: false, secrets: [secret] });
  log.warn(`upstream said: bad key ${secret}`, { header: `Bearer ${secret}`, group: 'main' });
  const file = path.join(dir, 'hako.log');
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(!text.includes(secret));
  const line = JSON.parse(text.trim());
  assert.equal(line.level, 'warn');
  assert.equal(line.group, 'main');
  assert.match(line.msg, /\[secret\]/);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});
