// bin/hako.mjs, the `hako` entry point: the host's TypeScript comes from a compile cache in
// a folder private to the user, so a warm start never loads Node's TypeScript stripper; a
// cache folder others could write is never used. Node logs each cache decision with
// NODE_DEBUG_NATIVE=COMPILE_CACHE.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { hako, LAUNCHER, tempHome, transpiles, VERSION } from '../support/launcher.ts';

test('launcher - the first run fills a 0700 cache folder; the next run strips no TypeScript', (t) => {
  const home = tempHome(t);
  const first = hako(home, ['--version']);
  assert.equal(first.stdout.trim(), VERSION);
  const dir = path.join(home, 'hako', 'compile-cache');
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.ok([...transpiles(first.stderr).values()].includes(false), 'the first run strips and caches');

  const second = hako(home, ['--version']);
  assert.equal(second.stdout.trim(), VERSION);
  const files = transpiles(second.stderr);
  assert.ok(files.has(`file://${path.resolve(LAUNCHER, '../../src/main.ts')}`), 'src/main.ts was loaded');
  assert.deepEqual([...files].filter(([, cached]) => !cached), [], 'every TypeScript file came from the cache');
});

test('launcher - a cache folder others can write is not used, and the run says how to fix it', (t) => {
  const home = tempHome(t);
  const dir = path.join(home, 'hako', 'compile-cache');
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o777);
  const run = hako(home, ['--version']);
  assert.equal(run.stdout.trim(), VERSION, 'the command still works');
  assert.match(run.stderr, new RegExp(`not using the compile cache at ${dir}: .*chmod 700`));
  assert.equal(transpiles(run.stderr).size, 0, 'no cache was consulted');
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing was written into it');
});

test('launcher - a cache folder that is a symlink is not followed', (t) => {
  const home = tempHome(t);
  const elsewhere = path.join(home, 'elsewhere');
  fs.mkdirSync(elsewhere, { mode: 0o700 });
  fs.mkdirSync(path.join(home, 'hako'));
  fs.symlinkSync(elsewhere, path.join(home, 'hako', 'compile-cache'));
  const run = hako(home, ['--version']);
  assert.equal(run.stdout.trim(), VERSION);
  assert.match(run.stderr, /not using the compile cache/);
  assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing was written through the link');
});

test('launcher - `hako start` re-executes itself in place with the host\'s small young generation; other commands do not', (t) => {
  const home = tempHome(t);
  // A preload that reports each process image: its pid and V8 flags.
  const probe = `--import=data:text/javascript,console.error('probe',process.pid,JSON.stringify(process.execArgv))`;
  const images = (args: string[]) => {
    const run = hako(home, args, { NODE_OPTIONS: probe });
    assert.equal(run.status, 0, run.stderr);
    return [...run.stderr.matchAll(/^probe (\d+) (.*)$/gm)].map((m) => ({ pid: m[1], flags: JSON.parse(m[2]!) as string[] }));
  };
  const start = images(['start', '--help']);
  assert.equal(start.length, 2, 'two images: the launcher, then the host');
  assert.equal(start[0]!.pid, start[1]!.pid, 'the same process: exec, not a child');
  assert.ok(!start[0]!.flags.includes('--max-semi-space-size=2'));
  assert.ok(start[1]!.flags.includes('--max-semi-space-size=2'));
  assert.equal(images(['--version']).length, 1, 'other commands run in the first image');
});
