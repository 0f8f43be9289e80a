import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareGroupDirs } from '../../src/core/runner.ts';
import { groupPaths } from '../../src/core/paths.ts';

function tempHome(t: { after(fn: () => void): void }): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-dirs-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

test('group dirs - a new group gets its folder, MEMORY.md and IPC folders with tight modes', (t) => {
  const home = tempHome(t);
  prepareGroupDirs(home, 'team');
  const p = groupPaths(home, 'team');
  assert.match(fs.readFileSync(p.memory, 'utf8'), /^# team/);
  assert.equal(fs.statSync(p.ipcRejected).mode & 0o777, 0o700, 'rejected/ is the host\'s alone');
  assert.equal(fs.statSync(p.folder).mode & 0o077, 0, 'the group folder is closed to other users');
  for (const d of [p.ipcIn, p.ipcOut, p.run]) assert.ok(fs.statSync(d).isDirectory(), d);
});

test('group dirs - an existing MEMORY.md is never overwritten', (t) => {
  const home = tempHome(t);
  prepareGroupDirs(home, 'team');
  const p = groupPaths(home, 'team');
  fs.writeFileSync(p.memory, 'my notes');
  prepareGroupDirs(home, 'team');
  assert.equal(fs.readFileSync(p.memory, 'utf8'), 'my notes');
});

test('group dirs - regression: a MEMORY.md symlink planted by the agent is not followed to create a host file', (t) => {
  const home = tempHome(t);
  prepareGroupDirs(home, 'team');
  const p = groupPaths(home, 'team');
  const target = path.join(home, 'outside', 'planted-by-agent');
  fs.mkdirSync(path.dirname(target));
  fs.rmSync(p.memory);
  fs.symlinkSync(target, p.memory); // dangling: existsSync() would say "missing" and writeFileSync() would follow it
  prepareGroupDirs(home, 'team');
  assert.equal(fs.existsSync(target), false, 'nothing was created through the link');
  assert.ok(fs.lstatSync(p.memory).isSymbolicLink(), 'the link itself is left alone');
});
