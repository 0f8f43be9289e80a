// `hako memory show|edit`: the owner reads and edits a group's MEMORY.md and the global one
// with the real CLI against a real HAKO_HOME (no host needed: the files are the state). The
// editor is a script standing in for the owner; MEMORY.md is treated as agent-written.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/hako.ts';

let home: string;
let configDir: string;
let scripts: string;
const cli = (args: string[], env: Record<string, string> = {}) => runCli(['memory', ...args], { HAKO_HOME: home, HAKO_CONFIG: configDir, ...env });
const memoryOf = (group: string) => path.join(home, 'groups', group, 'MEMORY.md');

/** An editor: a shell script run as `editor FILE`. */
function editor(name: string, body: string): Record<string, string> {
  const file = path.join(scripts, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return { EDITOR: file, VISUAL: '' };
}

before(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-home-'));
  configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
  scripts = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-editor-'));
  for (const args of [['groups', 'add', 'main', '--main'], ['groups', 'add', 'sales']]) {
    const r = await runCli(args, { HAKO_HOME: home, HAKO_CONFIG: configDir });
    assert.equal(r.code, 0, r.stderr);
  }
});
after(() => {
  for (const d of [home, configDir, scripts]) fs.rmSync(d, { recursive: true, force: true });
});

test('hako memory show - prints the group\'s MEMORY.md with the control characters an agent wrote escaped', async () => {
  fs.writeFileSync(memoryOf('sales'), '# sales\n\n## Clients\n- ACME \x1b]52;c;cGF5bG9hZA==\x07 pays late\n');
  const r = await cli(['show', 'sales']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^# sales\n\n## Clients\n- ACME \\u001b\]52;c;cGF5bG9hZA==\\u0007 pays late\n$/);
  assert.ok(!r.stdout.includes('\x1b'), 'no escape sequence reaches the terminal');
});

test('hako memory show --global - prints global/MEMORY.md', async () => {
  fs.writeFileSync(path.join(home, 'global', 'MEMORY.md'), 'The owner is called Sam.\n');
  const r = await cli(['show', '--global']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'The owner is called Sam.\n');
});

test('hako memory show - an unknown group, no group, or a group and --global are refused with a hint', async () => {
  const unknown = await cli(['show', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no group "nope" \(see: hako groups list\)/);
  const neither = await cli(['show']);
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /name a group or give --global/);
  const both = await cli(['show', 'sales', '--global']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /name a group or give --global/);
});

test('hako memory edit - the owner\'s edit replaces MEMORY.md and the agent can still write the new file', async () => {
  fs.writeFileSync(memoryOf('sales'), '# sales\n\n## Clients\n- ACME\n');
  const r = await cli(['edit', 'sales'], editor('add-client.sh', 'printf -- "- Globex\\n" >> "$1"'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote the MEMORY\.md of group "sales" \(\d+ bytes\)/);
  assert.equal(fs.readFileSync(memoryOf('sales'), 'utf8'), '# sales\n\n## Clients\n- ACME\n- Globex\n');
  const st = fs.lstatSync(memoryOf('sales'));
  assert.ok(st.isFile());
  assert.deepEqual(fs.readdirSync(path.dirname(memoryOf('sales'))).filter((n) => n.includes('.edit-')), [], 'no temporary file is left');
});

test('hako memory edit --global - edits global/MEMORY.md', async () => {
  fs.writeFileSync(path.join(home, 'global', 'MEMORY.md'), 'The owner is called Sam.\n');
  const r = await cli(['edit', '--global'], editor('tz.sh', 'printf "Time zone: Europe/Berlin.\\n" >> "$1"'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(home, 'global', 'MEMORY.md'), 'utf8'), 'The owner is called Sam.\nTime zone: Europe/Berlin.\n');
});

test('hako memory edit - when the agent changes MEMORY.md while the editor is open, nothing is written and the owner\'s copy is kept', async () => {
  fs.writeFileSync(memoryOf('sales'), '# sales\n');
  // The "editor" saves the owner's change, and meanwhile the agent appends to the real file.
  const r = await cli(['edit', 'sales'], editor('race.sh', `printf "owner line\\n" >> "$1"; printf "agent line\\n" >> ${JSON.stringify(memoryOf('sales'))}`));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /changed while you edited it .* nothing was written\. Your version is kept at (\S+): run "hako memory edit" again/);
  assert.equal(fs.readFileSync(memoryOf('sales'), 'utf8'), '# sales\nagent line\n', 'the agent\'s write stands');
  const kept = /kept at (\S+):/.exec(r.stderr)![1]!;
  assert.equal(fs.readFileSync(kept, 'utf8'), '# sales\nowner line\n');
  fs.rmSync(path.dirname(kept), { recursive: true, force: true });
});

test('hako memory edit - an editor that fails leaves MEMORY.md as it was', async () => {
  fs.writeFileSync(memoryOf('sales'), '# sales\n');
  const r = await cli(['edit', 'sales'], editor('fail.sh', 'printf "half\\n" >> "$1"; exit 3'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the editor exited with 3; the MEMORY\.md of group "sales" was not changed/);
  assert.equal(fs.readFileSync(memoryOf('sales'), 'utf8'), '# sales\n');
});

test('hako memory show|edit - a MEMORY.md link planted by an agent is neither read nor written through', async () => {
  const outside = path.join(scripts, 'host-file.txt');
  fs.writeFileSync(outside, 'host secret\n');
  fs.rmSync(memoryOf('sales'));
  fs.symlinkSync(outside, memoryOf('sales'));
  const shown = await cli(['show', 'sales']);
  assert.equal(shown.code, 1);
  assert.match(shown.stderr, /MEMORY\.md of group "sales" is a symbolic link .* hako never follows it.*"rm /);
  assert.ok(!shown.stdout.includes('host secret'));
  const edited = await cli(['edit', 'sales'], editor('overwrite.sh', 'printf "pwned\\n" > "$1"'));
  assert.equal(edited.code, 1);
  assert.match(edited.stderr, /symbolic link/);
  assert.equal(fs.readFileSync(outside, 'utf8'), 'host secret\n', 'the link target is untouched');
  assert.ok(fs.lstatSync(memoryOf('sales')).isSymbolicLink());
  fs.rmSync(memoryOf('sales'));
});

test('hako memory --help - says what the file is and how an edit is written back', async () => {
  const r = await cli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /hako memory show <group>/);
  assert.match(r.stdout, /hako memory edit --global/);
  assert.match(r.stdout, /only main's agent may change it/);
});
