// `hako logs` against a real host: the host's log is rotated at HAKO_LOG_MAX_BYTES while
// turns run, `hako logs -f` follows it across the rotations without losing or repeating a
// line, and the recent lines are printed (human view or JSON) with or without a host.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/core/log.ts';
import { startModelServer } from '../support/model-server.ts';
import { HakoProcess, runCli } from '../support/hako.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} /;

/** Every kept line, oldest first: hako.log.5 … hako.log.1, hako.log. */
function keptLines(home: string): unknown[] {
  const dir = path.join(home, 'logs');
  const files = [5, 4, 3, 2, 1].map((n) => `hako.log.${n}`).filter((f) => fs.existsSync(path.join(dir, f)));
  return [...files, 'hako.log'].flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
}

test('hako logs - says where it looked and which HAKO_HOME when there is no log yet', async (t) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-nolog-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const r = await runCli(['logs'], { HAKO_HOME: home });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`no log yet: looked for ${path.join(home, 'logs', 'hako.log')} \\(HAKO_HOME=${home}\\); hako writes it once it starts \\(hako start\\)`));
  const help = await runCli(['logs', '--help'], { HAKO_HOME: home });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: hako logs \[-f\|--follow\] \[--group G\] \[--level L\] \[-n\|--lines N\] \[--json\]/);
  const bad = await runCli(['logs', '--level', 'loud'], { HAKO_HOME: home });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--level "loud" is not a level: use debug, info, warn or error/);
});

/**
 * Small enough that a few turns rotate the log twice, big enough that one turn's debug lines
 * (a warm turn logs each of its hops) never rotate it more than the 5 kept files between two
 * of the follower's polls: what rotates out of hako.log.5 before anyone read it is gone.
 */
const LOG_MAX_BYTES = 4096;

test('hako logs -f - follows the running host\'s log across rotations, every line once and in order', async (t) => {
  const model = await startModelServer();
  const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_LOG_MAX_BYTES: String(LOG_MAX_BYTES) } });
  t.after(async () => { await h.stop(); await model.close(); h.cleanup(); });

  const follower = spawn(process.execPath, [path.join(ROOT, 'bin', 'hako.mjs'), 'logs', '-f', '--json', '-n', '100000'], {
    env: { ...process.env, HAKO_HOME: h.home, HAKO_CONFIG: h.configDir }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let followed = '';
  follower.stdout.on('data', (c) => { followed += c; });
  follower.stderr.on('data', (c) => { followed += c; });
  t.after(() => { if (follower.exitCode === null) follower.kill('SIGKILL'); });

  // Each turn logs a few kilobytes at debug level: enough turns to rotate twice.
  for (let i = 0; i < 12 && !fs.existsSync(path.join(h.home, 'logs', 'hako.log.2')); i++) {
    const id = await h.post('main', `message ${i}`);
    await h.waitForReplies('main', id, 1);
  }
  assert.ok(fs.existsSync(path.join(h.home, 'logs', 'hako.log.2')), 'the host rotated its log twice');
  for (const f of fs.readdirSync(path.join(h.home, 'logs'))) {
    const st = fs.statSync(path.join(h.home, 'logs', f));
    assert.ok(st.size <= LOG_MAX_BYTES, `${f} is ${st.size} bytes`);
    assert.equal(st.mode & 0o077, 0, `${f} is owner-only`);
  }

  // Quiet the host, then wait (bounded) until the follower has printed the newest line.
  await h.stop();
  const kept = keptLines(h.home);
  const last = JSON.stringify(kept.at(-1));
  const deadline = Date.now() + 10_000;
  while (!followed.split('\n').some((l) => l !== '' && JSON.stringify(JSON.parse(l)) === last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  follower.kill('SIGINT');
  assert.equal(await new Promise((r) => follower.once('exit', r)), 0, 'Ctrl+C ends it cleanly');
  const seen = followed.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
  assert.ok(seen.length >= kept.length, `followed ${seen.length} lines, ${kept.length} kept`);
  assert.deepEqual(seen.slice(seen.length - kept.length), kept, 'the kept lines, each once, in order, at the end of what was followed');
  assert.deepEqual(new Set(seen.map((l) => JSON.stringify(l))).size, seen.length, 'no line twice');
  const agentLine = (event: string) => kept.find((l) => (l as { msg: string }).msg === 'agent' && String((l as { line: unknown }).line).includes(`"event":"${event}"`)) as { level: string } | undefined;
  assert.equal(agentLine('batch_start')?.level, 'debug', 'at debug level the agent\'s progress lines are relayed, at debug');

  // With the host stopped: the recent lines, human view, read across the rotated files.
  const live = fs.readFileSync(path.join(h.home, 'logs', 'hako.log'), 'utf8').split('\n').filter(Boolean).length;
  const n = Math.min(live + 2, kept.length);
  assert.ok(n > live, 'the test needs lines from the rotated files');
  const recent = await h.cli(['logs', '-n', String(n)]);
  assert.equal(recent.code, 0, recent.stderr);
  const lines = recent.stdout.trimEnd().split('\n');
  assert.equal(lines.length, n);
  for (const l of lines) assert.match(l, LOCAL_TIME, l);
  assert.ok(lines[0]!.includes((kept.at(-n) as { msg: string }).msg), `${lines[0]} is the line ${n} back, in hako.log.1`);
  assert.match(lines.at(-1)!, /(info|debug) +/);
  const main = await h.cli(['logs', '--group', 'main', '--level', 'info', '-n', '3']);
  assert.equal(main.code, 0, main.stderr);
  for (const l of main.stdout.trimEnd().split('\n')) assert.match(l, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (info |warn |error) \[main\] /, l);
});

test('hako logs - at the default level the agent\'s start is relayed at info, and its progress lines are not even written', async (t) => {
  const model = await startModelServer();
  const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_LOG_LEVEL: 'info' } });
  t.after(async () => { await h.stop(); await model.close(); h.cleanup(); });
  const id = await h.post('main', 'hello');
  await h.waitForReplies('main', id, 1);
  const started = await h.waitForLog((e) => e.msg === 'agent' && String(e.line).includes('"event":"agent_start"'));
  assert.equal(started.level, 'info');
  await h.stop(); // every line the container wrote has reached the log
  const relayed = h.logEvents().filter((e) => e.msg === 'agent').map((e) => JSON.parse(String(e.line)) as { event: string; level: string });
  assert.ok(relayed.length > 0);
  for (const l of relayed) assert.notEqual(l.level, 'debug', `${l.event} was written at the default level`);
  assert.ok(!h.logEvents().some((e) => e.level === 'debug'), 'no debug line at all');
});

test('hako logs - a line that is not JSON is shown as it is, and agent text in fields never drives the terminal', async (t) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-logtext-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const dir = path.join(home, 'logs');
  // The real logger, as the host would log a file name an agent chose.
  createLogger({ dir, console: false }).warn('rejected output file', { group: 'main', file: 'x\u001b]52;c;ZXZpbA==\u0007\u202eexe.txt', reason: 'bad\r\nline' });
  fs.appendFileSync(path.join(dir, 'hako.log'), 'node: crashed here \u001b[2J\n{"ts":"2026-01-01T00:00:00Z","level":"info","msg":"half a li\n');
  const r = await runCli(['logs'], { HAKO_HOME: home });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /warn  \[main\] rejected output file file="x\\u001b\]52;c;ZXZpbA==\\u0007\\u202eexe.txt" reason="bad\\r\\nline"$/);
  assert.equal(lines[1], 'node: crashed here \\u001b[2J');
  assert.equal(lines[2], '{"ts":"2026-01-01T00:00:00Z","level":"info","msg":"half a li');
  const json = await runCli(['logs', '--json'], { HAKO_HOME: home });
  assert.equal(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout.split('\n')[0]!).file, 'x\u001b]52;c;ZXZpbA==\u0007\u202eexe.txt', 'JSON output keeps the value');
  for (const out of [r.stdout, json.stdout]) assert.doesNotMatch(out, UNSAFE);
});

/**
 * `hako logs -f --json` on a fresh HAKO_HOME with no log yet, once it says it waits. `until(i)`
 * waits for the line {"i": i} (then `settleMs` more), stops it with SIGINT, and returns every
 * printed i in order.
 */
async function waitingFollower(t: TestContext, prefix: string): Promise<{ home: string; err: () => string; until: (last: number, settleMs?: number) => Promise<number[]> }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const follower = spawn(process.execPath, [path.join(ROOT, 'bin', 'hako.mjs'), 'logs', '-f', '--json'], { env: { ...process.env, HAKO_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (follower.exitCode === null) follower.kill('SIGKILL'); });
  let out = '';
  let err = '';
  follower.stdout.on('data', (c) => { out += c; });
  await new Promise<void>((resolve) => follower.stderr.on('data', (c) => { err += c; if (err.includes('waiting for it')) resolve(); }));
  return {
    home,
    err: () => err,
    async until(last, settleMs = 0) {
      const deadline = Date.now() + 10_000;
      while (!out.includes(`"i":${last}}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, settleMs));
      follower.kill('SIGINT');
      assert.equal(await new Promise((r) => follower.once('exit', r)), 0);
      return out.trimEnd().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    },
  };
}

test('hako logs -f - started before there is any log, prints every line from the first, even after rotations it did not see happen', async (t) => {
  const f = await waitingFollower(t, 'hako-logwait-');
  assert.match(f.err(), /no log yet: looked for .*hako\.log/);
  // All at once, between two of its polls: three rotations it never sees happen.
  const log = createLogger({ dir: path.join(f.home, 'logs'), console: false, maxBytes: 1024 });
  for (let i = 0; i < 80; i++) log.info('line', { i });
  assert.ok(fs.existsSync(path.join(f.home, 'logs', 'hako.log.3')));
  assert.deepEqual(await f.until(79), Array.from({ length: 80 }, (_, i) => i));
});

test('hako logs -f - regression: a live file that is rotated while the follower opens it is printed once, not also as a rotated file', async (t) => {
  // The state the race leaves: the file just opened as hako.log is by then hako.log.1 too
  // (a hard link stands for the rename), with an older hako.log.2 below it.
  const f = await waitingFollower(t, 'hako-lograce-');
  const dir = path.join(f.home, 'logs');
  fs.mkdirSync(dir, { mode: 0o700 });
  const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `{"i":${from + k}}\n`).join('');
  fs.writeFileSync(path.join(dir, 'hako.log.2'), lines(0, 5));
  fs.writeFileSync(path.join(dir, 'next'), lines(5, 10));
  fs.linkSync(path.join(dir, 'next'), path.join(dir, 'hako.log.1'));
  fs.renameSync(path.join(dir, 'next'), path.join(dir, 'hako.log'));
  assert.deepEqual(await f.until(9, 600), Array.from({ length: 10 }, (_, i) => i), 'two more polls after the last line: nothing came twice');
});
