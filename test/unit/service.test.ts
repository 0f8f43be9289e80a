// The service files as the service managers read them: the systemd unit through the real
// `systemd-analyze verify`, the launchd plist through a real plist parser (python3 plistlib).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { launchdPlist, systemdUnit, type ServicePaths } from '../../src/cli/service-files.ts';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function pathsFor(base: string, over: Partial<ServicePaths> = {}): ServicePaths {
  return {
    node: process.execPath, entry: path.join(ROOT, 'bin', 'hako.mjs'), workdir: ROOT,
    home: path.join(base, 'home'), configDir: path.join(base, 'config'), envFile: path.join(base, 'config', 'hako.env'),
    pathVar: '/usr/local/bin:/usr/bin:/bin', ...over,
  };
}

/** `systemd-analyze verify` on the unit; resolves with what it said (it exits non-zero on errors). */
async function verify(dir: string, text: string): Promise<{ code: number; said: string }> {
  const file = path.join(dir, 'hako.service');
  fs.writeFileSync(file, text);
  try {
    const r = await exec('systemd-analyze', ['verify', file]);
    return { code: 0, said: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, said: e.stdout + e.stderr };
  }
}

test('systemd unit - the system-wide unit passes systemd-analyze verify without a warning', async (t) => {
  const dir = tempDir(t, 'hako-unit-');
  const text = systemdUnit({ ...pathsFor(dir), user: false });
  const r = await verify(dir, text);
  assert.equal(r.code, 0, r.said);
  assert.equal(r.said.trim(), '', 'verify has nothing to say about it');
  assert.match(text, /^WantedBy=multi-user\.target$/m);
  assert.match(text, /^Restart=on-failure$/m);
  assert.match(text, /^StartLimitBurst=\d+$/m);
});

test('systemd unit - the --user unit passes systemd-analyze verify and is wanted by default.target', async (t) => {
  const dir = tempDir(t, 'hako-unit-');
  const text = systemdUnit({ ...pathsFor(dir), user: true });
  const r = await verify(dir, text);
  assert.equal(r.code, 0, r.said);
  assert.equal(r.said.trim(), '');
  assert.match(text, /^WantedBy=default\.target$/m);
  assert.doesNotMatch(text, /network-online/, 'the user manager has no network-online.target');
});

test('systemd unit - runs the absolute Node with the absolute bin/hako.mjs and start, with HAKO_HOME, HAKO_CONFIG and the settings file', (t) => {
  const dir = tempDir(t, 'hako-unit-');
  const p = pathsFor(dir);
  const text = systemdUnit({ ...p, user: false });
  assert.match(text, new RegExp(`^ExecStart="${p.node}" "${p.entry}" start$`, 'm'));
  assert.ok(text.includes(`"HAKO_HOME=${p.home}" "HAKO_CONFIG=${p.configDir}"`), text);
  assert.match(text, new RegExp(`^EnvironmentFile=-${p.envFile}$`, 'm'));
  assert.ok(text.includes(`${p.home}/logs/hako.log`), 'the unit says where the log file is');
});

test('systemd unit - paths with spaces, %, $, quotes and backslashes stay one word in ExecStart (systemd-analyze finds the binary)', async (t) => {
  const dir = tempDir(t, 'hako-unit-');
  // systemd-analyze checks that ExecStart's program exists: a wrongly split or expanded
  // path names a file that does not.
  const odd = path.join(dir, 'my dir 100%$HOME');
  fs.mkdirSync(odd);
  const node = path.join(odd, 'no de');
  fs.symlinkSync(process.execPath, node);
  const entry = path.join(dir, 'check out "q" \\b 5% $USER', 'bin', 'hako.mjs');
  const text = systemdUnit({ ...pathsFor(dir, { node, entry, home: path.join(odd, 'home') }), user: false });
  const r = await verify(dir, text);
  assert.equal(r.code, 0, r.said);
  assert.ok(text.includes(String.raw`check out \"q\" \\b 5%% $$USER`), text);

  const unquoted = text.replace(/^ExecStart=.*$/m, `ExecStart=${node} start`);
  const bad = await verify(dir, unquoted);
  assert.notEqual(bad.code, 0, 'the same path unquoted is refused: the check can fail');
  assert.match(bad.said, /not executable/);
});

test('systemd unit - a Node path systemd would refuse (a quote or backslash) is refused at install with what to do', (t) => {
  const dir = tempDir(t, 'hako-unit-');
  assert.throws(() => systemdUnit({ ...pathsFor(dir, { node: '/opt/no"de/bin/node' }), user: false }), /quote or a backslash.*plain path/);
});

test('systemd unit - a path with a newline is refused with what to do, not written broken', (t) => {
  const dir = tempDir(t, 'hako-unit-');
  assert.throws(() => systemdUnit({ ...pathsFor(dir, { home: '/tmp/a\nExecStartPre=/bin/evil' }), user: false }), /control character.*HAKO_HOME/);
});

test('launchd plist - parses with a real plist parser and holds ProgramArguments, KeepAlive, the environment and the log paths', async (t) => {
  const dir = tempDir(t, 'hako-plist-');
  const p = pathsFor(dir, { home: path.join(dir, 'R&D <home>') });
  const file = path.join(dir, 'dev.hako.plist');
  fs.writeFileSync(file, launchdPlist(p));
  const { stdout } = await exec('python3', ['-c', 'import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],"rb"))))', file]);
  const plist = JSON.parse(stdout);
  assert.equal(plist.Label, 'dev.hako');
  assert.deepEqual(plist.ProgramArguments, [p.node, `--env-file-if-exists=${p.envFile}`, p.entry, 'start']);
  assert.deepEqual(plist.KeepAlive, { SuccessfulExit: false }, 'restarted after a failure, not after a clean stop');
  assert.equal(plist.RunAtLoad, true);
  assert.deepEqual(plist.EnvironmentVariables, { HAKO_HOME: p.home, HAKO_CONFIG: p.configDir, PATH: p.pathVar });
  assert.equal(plist.StandardOutPath, path.join(p.home, 'logs', 'service.out.log'));
  assert.equal(plist.StandardErrorPath, path.join(p.home, 'logs', 'service.err.log'));
  assert.equal(plist.WorkingDirectory, ROOT);
});

test('launchd plist - Node reads the settings file that ProgramArguments names', async (t) => {
  // launchd has no environment file: the plist relies on Node's --env-file-if-exists.
  const dir = tempDir(t, 'hako-plist-');
  const envFile = path.join(dir, 'hako env');
  fs.writeFileSync(envFile, '# a comment\nHAKO_MODEL=openai/test-model\n');
  const { stdout } = await exec(process.execPath, [`--env-file-if-exists=${envFile}`, '-p', 'process.env.HAKO_MODEL']);
  assert.equal(stdout.trim(), 'openai/test-model');
  const missing = await exec(process.execPath, [`--env-file-if-exists=${path.join(dir, 'none')}`, '-p', '"started"']);
  assert.equal(missing.stdout.trim(), 'started', 'a missing settings file does not stop the service');
});
