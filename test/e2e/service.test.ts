// `hako service` as the owner runs it: the real CLI (bin/hako.mjs) on this machine, with the
// service file sent to a temporary folder (HAKO_SERVICE_DIR) so no test writes to /etc or
// asks the machine's service manager anything. No container engine is needed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../support/hako.ts';

const exec = promisify(execFile);
const NO_SYSTEMD = !fs.existsSync('/run/systemd/system');
const LINUX = process.platform === 'linux';

interface Root {
  readonly base: string;
  readonly env: { HAKO_HOME: string; HAKO_CONFIG: string; HAKO_SERVICE_DIR: string };
  readonly unit: string;
  readonly envFile: string;
}

/** A throwaway HAKO_HOME, HAKO_CONFIG and service folder, all under one path with a space. */
function root(t: { after(fn: () => void): void }): Root {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hako service '));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const env = { HAKO_HOME: path.join(base, 'home'), HAKO_CONFIG: path.join(base, 'config'), HAKO_SERVICE_DIR: path.join(base, 'units') };
  return { base, env, unit: path.join(env.HAKO_SERVICE_DIR, 'hako.service'), envFile: path.join(env.HAKO_CONFIG, 'hako.env') };
}

test('hako service - install, status and uninstall round trip in a temporary root', { skip: !LINUX && 'systemd units are Linux only' }, async (t) => {
  const r = root(t);
  const installed = await runCli(['service', 'install'], r.env);
  assert.ok(installed.code === 0 || installed.code === 3, installed.stderr);
  const text = fs.readFileSync(r.unit, 'utf8');
  assert.ok(installed.stdout.includes(`wrote ${r.unit}:\n${text}`), 'install prints exactly what it wrote');
  const verified = await exec('systemd-analyze', ['verify', r.unit]).then(() => 'ok', (e: { stderr: string }) => e.stderr);
  assert.equal(verified, 'ok', 'the installed unit passes systemd-analyze verify');
  assert.ok(text.includes(`"HAKO_HOME=${r.env.HAKO_HOME}" "HAKO_CONFIG=${r.env.HAKO_CONFIG}"`), 'HAKO_HOME and HAKO_CONFIG are fixed to their values at install');

  const status = await runCli(['service', 'status'], r.env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^hako service: installed \(systemd, /);
  assert.ok(status.stdout.includes(r.unit) && status.stdout.includes(r.envFile) && status.stdout.includes(path.join(r.env.HAKO_HOME, 'logs', 'hako.log')), status.stdout);

  const removed = await runCli(['service', 'uninstall'], r.env);
  assert.equal(removed.code, 0, removed.stderr);
  assert.ok(removed.stdout.includes(`removed ${r.unit}`), removed.stdout);
  assert.equal(fs.existsSync(r.unit), false);
  assert.equal(fs.existsSync(r.envFile), true, 'the settings are kept');

  const after = await runCli(['service', 'status'], r.env);
  assert.equal(after.code, 3);
  assert.match(after.stdout, /^hako service: not installed .*install it with: hako service install/);
});

test('hako service install - on a machine without a running systemd says so in one line, writes the file and exits 3', { skip: (!LINUX || !NO_SYSTEMD) && 'needs Linux without a running systemd' }, async (t) => {
  const r = root(t);
  const res = await runCli(['service', 'install'], r.env);
  assert.equal(res.code, 3);
  assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
  assert.match(res.stderr, /^hako: systemd is not running on this machine .*: the file is written but cannot be enabled here\. Run `hako start` under your own supervisor instead/);
  assert.doesNotMatch(res.stderr + res.stdout, /\n\s+at /, 'no stack trace');
  assert.ok(fs.existsSync(r.unit));
  const status = await runCli(['service', 'status'], r.env);
  assert.match(status.stdout, /state: +unknown — systemd is not running on this machine/);
});

test('hako service uninstall - twice, or with nothing installed, is fine', { skip: !LINUX && 'Linux only' }, async (t) => {
  const r = root(t);
  await runCli(['service', 'install'], r.env);
  assert.equal((await runCli(['service', 'uninstall'], r.env)).code, 0);
  const again = await runCli(['service', 'uninstall'], r.env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `hako service: not installed (no ${r.unit}); nothing to do\n`);
});

test('hako service install - creates hako.env owner-only with commented examples, and never overwrites it', { skip: !LINUX && 'Linux only' }, async (t) => {
  const r = root(t);
  await runCli(['service', 'install'], r.env);
  const st = fs.statSync(r.envFile);
  assert.equal(st.mode & 0o777, 0o600);
  const created = fs.readFileSync(r.envFile, 'utf8');
  assert.ok(created.split('\n').every((l) => l === '' || l.startsWith('#')), 'only comments: no setting is made for the owner');
  assert.match(created, /#HAKO_MODEL=/);

  fs.writeFileSync(r.envFile, 'HAKO_MODEL=openai/mine\n');
  const again = await runCli(['service', 'install'], r.env);
  assert.ok(again.code === 0 || again.code === 3, again.stderr);
  assert.match(again.stdout, /kept .*hako\.env/);
  assert.equal(fs.readFileSync(r.envFile, 'utf8'), 'HAKO_MODEL=openai/mine\n');
});

test('hako service install - refuses a hako.env other users can read, with the chmod that fixes it', { skip: !LINUX && 'Linux only' }, async (t) => {
  const r = root(t);
  fs.mkdirSync(r.env.HAKO_CONFIG, { recursive: true });
  fs.writeFileSync(r.envFile, 'ANTHROPIC_API_KEY=sk-ant-x\n', { mode: 0o644 });
  fs.chmodSync(r.envFile, 0o644);
  const res = await runCli(['service', 'install'], r.env);
  assert.equal(res.code, 1);
  assert.ok(res.stderr.includes(`run chmod 600 ${r.envFile}`), res.stderr);
  assert.equal(fs.existsSync(r.unit), false, 'nothing is installed');
});

test('hako service install - no setting or secret from the environment reaches the unit file or the output', { skip: !LINUX && 'Linux only' }, async (t) => {
  const r = root(t);
  const secret = 'sk-ant-service-secret-123';
  const res = await runCli(['service', 'install'], { ...r.env, ANTHROPIC_API_KEY: secret, HAKO_MODEL: 'anthropic/claude-x', HAKO_HTTP_TOKEN: 'tok-service-456' });
  assert.ok(res.code === 0 || res.code === 3, res.stderr);
  const text = fs.readFileSync(r.unit, 'utf8');
  for (const value of [secret, 'tok-service-456', 'claude-x']) {
    assert.ok(!text.includes(value) && !res.stdout.includes(value) && !res.stderr.includes(value), `${value} is not copied`);
  }
  assert.ok(!fs.readFileSync(r.envFile, 'utf8').includes(secret));
});

test('hako service install --print - prints the unit it would write and touches nothing', { skip: !LINUX && 'Linux only' }, async (t) => {
  const r = root(t);
  for (const flag of ['--print', '--dry-run']) {
    const res = await runCli(['service', 'install', flag, '--user'], r.env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^ExecStart=".*" ".*bin\/hako\.mjs" start$/m);
    assert.match(res.stdout, /^WantedBy=default\.target$/m, '--user makes a user unit');
  }
  assert.equal(fs.existsSync(r.env.HAKO_SERVICE_DIR), false);
  assert.equal(fs.existsSync(r.env.HAKO_CONFIG), false);
  assert.equal(fs.existsSync(r.env.HAKO_HOME), false);
});

test('hako service - --help for the command and each subcommand; usage errors exit 2 in one line', async (t) => {
  const r = root(t);
  const top = await runCli(['service', '--help'], r.env);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /^Usage: hako service install\|uninstall\|status/);
  for (const sub of ['install', 'uninstall', 'status']) {
    const res = await runCli(['service', sub, '--help'], r.env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^Usage: hako service ${sub} `));
  }
  const both = await runCli(['service', 'install', '--user', '--system'], r.env);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^hako: choose one of --user and --system/);
  const unknown = await runCli(['service', 'status', '--print'], r.env);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, 'hako: service status: --print and --dry-run are options of hako service install\n');
});
