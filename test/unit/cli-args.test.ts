// Usage errors and "not running" as the user sees them: real `hako` runs (bin/hako.mjs)
// with a throwaway HAKO_HOME, plus the parseArgs translation on its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { usageMessage } from '../../src/cli/args.ts';
import { freePort, runCli } from '../support/hako.ts';

/** Runs `hako <args>` against an empty HAKO_HOME and HAKO_CONFIG of its own. */
async function hako(t: { after(fn: () => void): void }, args: string[], env: Record<string, string> = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-args-home-'));
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-args-config-'));
  t.after(() => {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(configDir, { recursive: true, force: true });
  });
  return runCli(args, { HAKO_HOME: home, HAKO_CONFIG: configDir, ...env });
}

test('hako groups add x --foo - one line naming the unknown option and pointing at --help', async (t) => {
  const r = await hako(t, ['groups', 'add', 'x', '--foo']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'hako: unknown option "--foo" (see: hako groups --help)\n');
});

test('hako groups add x --trigger - a missing value names the option', async (t) => {
  const r = await hako(t, ['groups', 'add', 'x', '--trigger']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'hako: option "--trigger" needs a value (see: hako groups --help)\n');
});

test('hako start --no-image-check=yes - a flag given a value says it takes none', async (t) => {
  const r = await hako(t, ['start', '--no-image-check=yes']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'hako: option "--no-image-check" takes no value (see: hako start --help)\n');
});

test('usageMessage - a value that looks like an option says how to give it', () => {
  let err: unknown;
  try {
    parseArgs({ args: ['--trigger', '--main'], options: { trigger: { type: 'string' }, main: { type: 'boolean' } }, strict: true });
  } catch (e) {
    err = e;
  }
  assert.equal(usageMessage(err, 'Usage: hako groups add'), 'option "--trigger" needs a value; for one starting with "-", write --trigger=-VALUE (see: hako groups --help)');
});

test('usageMessage - a short option is named as typed', () => {
  let err: unknown;
  try {
    parseArgs({ args: ['-x'], options: {}, strict: true });
  } catch (e) {
    err = e;
  }
  assert.equal(usageMessage(err, 'Usage: hako tasks list'), 'unknown option "-x" (see: hako tasks --help)');
});

test('hako chat main with no host - says once that hako is not running, where, and how to start it', async (t) => {
  const port = await freePort(); // nothing listens there
  const r = await hako(t, ['chat', 'main'], { HAKO_HTTP_PORT: String(port), HAKO_HTTP_TOKEN: 'a'.repeat(43) });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `hako is not running at http://127.0.0.1:${port} (start it with: npm start, or hako start; or check HAKO_HTTP_PORT)`);
});

test('hako chat main never started - says hako has not been started in this HAKO_HOME', async (t) => {
  const r = await hako(t, ['chat', 'main']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^hako has not been started with HAKO_HOME=.+ \(it has no API token yet\): start it with: npm start, or hako start\n$/);
});
