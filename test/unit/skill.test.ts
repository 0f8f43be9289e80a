// The skill mechanism (hako skill list|add|remove) on a scratch git repository: a minimal
// project with a lockfile, src/channels/installed.ts and the channel registry, and two
// skills written by the test — "tiny", whose pinned packages are local tarballs (so npm
// runs for real, offline), and "plain", which pins none. Real npm, real git, no network.

import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addSkill, appendLine, removeLine, removeSkill, skillState } from '../../src/skills/apply.ts';
import { docProblems, frontMatter, readSkill } from '../../src/skills/manifest.ts';
import { skillCommand } from '../../src/cli/skill.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-skill-'));
const base = path.join(tmp, 'base');
const marker = path.join(tmp, 'an-install-script-ran');
// npm may not reach the network, and keeps its cache out of the owner's.
const npmEnv = { ...process.env, npm_config_offline: 'true', npm_config_cache: path.join(tmp, 'npm-cache'), npm_config_update_notifier: 'false' };
const opts = { npmEnv };
let n = 0;

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, env: npmEnv, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** A package folder packed into <base>/vendor/<name>-1.0.0.tgz. */
function pack(name: string, pkg: Record<string, unknown> = {}): void {
  const dir = path.join(tmp, 'packages', name);
  fs.mkdirSync(path.join(base, 'vendor'), { recursive: true });
  write(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js', ...pkg }));
  write(path.join(dir, 'index.js'), `module.exports = ${JSON.stringify(name)};\n`);
  run('npm', ['pack', '--pack-destination', path.join(base, 'vendor'), '--loglevel=error'], dir);
}

function writeSkill(root: string, name: string, manifest: Record<string, unknown>, files: Record<string, string>): void {
  const dir = path.join(root, 'skills', name);
  write(path.join(dir, 'manifest.json'), JSON.stringify({ name, description: `the ${name} channel`, register: `import './${name}/register.ts';`, tests: [`test/unit/${name}.test.ts`], ...manifest }, null, 2) + '\n');
  write(path.join(dir, 'SKILL.md'), `---\nname: ${name}\ndescription: Adds the ${name} channel.\n---\n\n# ${name}\n`);
  write(path.join(root, '.claude', 'skills', `add-${name}`, 'SKILL.md'), `---\nname: add-${name}\ndescription: Adds the ${name} channel (skills/${name}).\n---\n\nFollow skills/${name}/SKILL.md.\n`);
  for (const [rel, text] of Object.entries(files)) write(path.join(dir, 'add', rel), text);
}

const register = (name: string, token: string) => `import { registerChannel } from '../registry.ts';

registerChannel({
  name: '${name}',
  required: ['${token}'],
  secrets: ['${token}'],
  async create() { throw new Error('not in this test'); },
  async check(deps) {
    return deps.env.${token} === 'refused-token-123' ? '${name}: the token was refused (401): check ${token} in secrets.env' : undefined;
  },
});
`;

before(() => {
  write(path.join(base, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true, type: 'module', dependencies: { 'core-dep': 'file:vendor/core-dep-1.0.0.tgz' } }, null, 2) + '\n');
  pack('core-dep');
  pack('tiny-dep', { scripts: { postinstall: `node -e "require('fs').writeFileSync(${JSON.stringify(marker).replace(/"/g, "'")}, 'x')"` } });
  pack('tiny-dev-dep', { scripts: { install: `node -e "require('fs').writeFileSync(${JSON.stringify(marker).replace(/"/g, "'")}, 'x')"` } });
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], base);
  write(path.join(base, '.gitignore'), 'node_modules/\n');
  fs.mkdirSync(path.join(base, 'src', 'channels'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'src', 'channels', 'registry.ts'), path.join(base, 'src', 'channels', 'registry.ts'));
  // A core installed.ts, even when this tree has skills added (CI runs these tests with each skill added too).
  const core = fs.readFileSync(path.join(ROOT, 'src', 'channels', 'installed.ts'), 'utf8').split('\n').filter((l) => !l.startsWith('import ')).join('\n');
  write(path.join(base, 'src', 'channels', 'installed.ts'), core);
  write(path.join(base, 'test', 'unit', 'core.test.ts'), '// a core test\n');
  writeSkill(base, 'tiny', {
    dependencies: { 'tiny-dep': 'file:vendor/tiny-dep-1.0.0.tgz' },
    devDependencies: { 'tiny-dev-dep': 'file:vendor/tiny-dev-dep-1.0.0.tgz' },
    env: { required: ['TINY_TOKEN'], optional: ['TINY_API_ROOT'], secrets: ['TINY_TOKEN'] },
  }, {
    'src/channels/tiny/register.ts': register('tiny', 'TINY_TOKEN'),
    'src/channels/tiny/wire.ts': 'export const wire = 1;\n',
    'test/unit/tiny.test.ts': '// tiny tests\n',
    'test/support/tiny-emulator/peer.ts': 'export const peer = 1;\n',
  });
  writeSkill(base, 'plain', { channel: 'flat', env: { required: ['FLAT_URL'] } }, {
    'src/channels/plain/register.ts': register('flat', 'FLAT_URL'),
    'test/unit/plain.test.ts': '// plain tests\n',
  });
  run('git', ['init', '-q'], base);
  run('git', ['add', '-A'], base);
  run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'base'], base);
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fresh copy of the scratch project. */
function scratch(): string {
  const dir = path.join(tmp, `repo-${++n}`);
  fs.cpSync(base, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

/** sha256 of every file in the tree except .git/, by path (node_modules included). */
function hashes(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (r === '.git') continue;
      if (e.isDirectory()) walk(r);
      else out.set(r, e.isSymbolicLink() ? `-> ${fs.readlinkSync(path.join(root, r))}` : createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex'));
    }
  };
  walk('');
  return out;
}

const gitStatus = (root: string) => run('git', ['status', '--porcelain', '--untracked-files=all'], root);
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, string>>;

/** Sets environment variables (undefined: unset) until the test ends. */
function env(t: TestContext, vars: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(vars)) {
    const old = process.env[k];
    t.after(() => { if (old === undefined) delete process.env[k]; else process.env[k] = old; });
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

/** Runs the CLI against `root`, capturing what it prints. */
async function cli(t: TestContext, root: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  t.mock.method(console, 'log', (...a: unknown[]) => { out += a.join(' ') + '\n'; });
  t.mock.method(console, 'error', (...a: unknown[]) => { err += a.join(' ') + '\n'; });
  try {
    const code = await skillCommand(root, args, opts);
    return { code, out, err };
  } finally {
    t.mock.restoreAll();
  }
}

test('skill add - copies the files, appends the register line and installs the pinned packages exactly, running no install script', async () => {
  const root = scratch();
  const installedBefore = fs.readFileSync(path.join(root, 'src/channels/installed.ts'), 'utf8');
  const r = await addSkill(root, 'tiny', opts);
  assert.ok(r.done.length > 0);
  for (const f of ['src/channels/tiny/register.ts', 'src/channels/tiny/wire.ts', 'test/unit/tiny.test.ts', 'test/support/tiny-emulator/peer.ts']) {
    assert.deepEqual(fs.readFileSync(path.join(root, f)), fs.readFileSync(path.join(root, 'skills/tiny/add', f)), f);
  }
  assert.equal(fs.readFileSync(path.join(root, 'src/channels/installed.ts'), 'utf8'), `${installedBefore}import './tiny/register.ts';\n`);
  const pkg = readJson(path.join(root, 'package.json'));
  assert.equal(pkg.dependencies!['tiny-dep'], 'file:vendor/tiny-dep-1.0.0.tgz');
  assert.equal(pkg.devDependencies!['tiny-dev-dep'], 'file:vendor/tiny-dev-dep-1.0.0.tgz');
  const lock = readJson(path.join(root, 'package-lock.json')) as unknown as { packages: Record<string, { dev?: boolean }> };
  assert.ok(lock.packages['node_modules/tiny-dep'] && lock.packages['node_modules/tiny-dev-dep']?.dev, 'package-lock.json has both');
  assert.ok(fs.existsSync(path.join(root, 'node_modules/tiny-dep/index.js')));
  assert.equal(fs.existsSync(marker), false, 'no install script ran');
  assert.equal(skillState(root, readSkill(root, 'tiny')).status, 'added');
});

test('skill add - a second add changes nothing and says so', async (t) => {
  const root = scratch();
  await addSkill(root, 'tiny', opts);
  const before = hashes(root);
  const again = await addSkill(root, 'tiny', opts);
  assert.deepEqual(again.done, []);
  assert.deepEqual(hashes(root), before);
  const r = await cli(t, root, ['add', 'tiny']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /skill tiny is already added; nothing changed/);
  assert.deepEqual(hashes(root), before);
});

test('skill remove - leaves every file byte for byte as before the add (package.json, package-lock.json, installed.ts, node_modules), git status clean', async () => {
  const root = scratch();
  const before = hashes(root);
  await addSkill(root, 'tiny', opts);
  assert.notEqual(gitStatus(root), '');
  const r = await removeSkill(root, 'tiny', opts);
  assert.equal(r.kind, 'removed');
  assert.equal(gitStatus(root), '');
  assert.deepEqual(hashes(root), before);
  assert.equal(fs.existsSync(path.join(root, 'src/channels/tiny')), false, 'the folder it created is gone');
  assert.equal(fs.existsSync(path.join(root, 'test/support')), false, 'and so are the folders that became empty');
  assert.ok(fs.existsSync(path.join(root, 'test/unit/core.test.ts')), 'a folder with other files stays');
});

test('skill remove - a second remove changes nothing and says so', async (t) => {
  const root = scratch();
  await addSkill(root, 'plain', opts);
  await removeSkill(root, 'plain', opts);
  const before = hashes(root);
  assert.equal((await removeSkill(root, 'plain', opts)).kind, 'not-added');
  const r = await cli(t, root, ['remove', 'plain']);
  assert.equal(r.code, 0);
  assert.match(r.out, /skill plain is not added; nothing changed/);
  assert.deepEqual(hashes(root), before);
});

test('skill remove - refuses a file changed since the add, shows the diff and changes nothing', async (t) => {
  const root = scratch();
  await addSkill(root, 'plain', opts);
  fs.appendFileSync(path.join(root, 'src/channels/plain/register.ts'), '// my own tweak\n');
  const before = hashes(root);
  const r = await cli(t, root, ['remove', 'plain']);
  assert.equal(r.code, 1);
  assert.match(r.out, /^\+\/\/ my own tweak$/m, 'the diff shows the added line');
  assert.match(r.out, /src\/channels\/plain\/register\.ts/);
  assert.match(r.err, /not removing skill plain: you changed what it added[\s\S]*src\/channels\/plain\/register\.ts[\s\S]*--force/);
  assert.deepEqual(hashes(root), before, 'nothing was touched');
});

test('skill remove --force - deletes a changed file too and restores the tree', async (t) => {
  const root = scratch();
  await addSkill(root, 'plain', opts);
  fs.appendFileSync(path.join(root, 'src/channels/plain/register.ts'), 'export const mine = 2;\n');
  fs.rmSync(path.join(root, 'test/unit/plain.test.ts'));
  const r = await cli(t, root, ['remove', 'plain', '--force']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /deleted src\/channels\/plain\/register\.ts \(it had local changes: --force\)/);
  assert.equal(gitStatus(root), '');
});

test('skill add - refuses a file in its way that the skill did not add, and touches nothing', async () => {
  const root = scratch();
  write(path.join(root, 'src/channels/tiny/wire.ts'), 'export const wire = "someone else";\n');
  const before = hashes(root);
  await assert.rejects(addSkill(root, 'tiny', opts), /cannot add skill "tiny": these files exist and are not the skill's:\n {2}src\/channels\/tiny\/wire\.ts/);
  assert.deepEqual(hashes(root), before);
});

test('skill add - writes nothing through a symlinked folder that leads out of the repository', async () => {
  const root = scratch();
  const outside = fs.mkdtempSync(path.join(tmp, 'outside-'));
  fs.symlinkSync(outside, path.join(root, 'src/channels/tiny'));
  await assert.rejects(addSkill(root, 'tiny', opts), /src\/channels\/tiny\/register\.ts: its folder leads out of .* \(a symlink\?\); not writing there/);
  assert.deepEqual(fs.readdirSync(outside), []);
  assert.equal(fs.readFileSync(path.join(root, 'src/channels/installed.ts'), 'utf8'), fs.readFileSync(path.join(base, 'src/channels/installed.ts'), 'utf8'), 'not even the register line');
});

test('skill add - refuses a package that hako itself already has, and touches nothing', async () => {
  const root = scratch();
  const m = path.join(root, 'skills/plain/manifest.json');
  fs.writeFileSync(m, JSON.stringify({ ...JSON.parse(fs.readFileSync(m, 'utf8')), dependencies: { 'core-dep': 'file:vendor/core-dep-1.0.0.tgz' } }));
  const before = hashes(root);
  await assert.rejects(addSkill(root, 'plain', opts), /pins core-dep@file:vendor\/core-dep-1\.0\.0\.tgz in dependencies, but package\.json's dependencies already has core-dep .*\(a dependency of hako itself\)/);
  assert.deepEqual(hashes(root), before);
});

test('skill add - finishes an add that was cut short (register line written, files and packages not yet)', async () => {
  const root = scratch();
  const installed = path.join(root, 'src/channels/installed.ts');
  fs.writeFileSync(installed, appendLine(fs.readFileSync(installed, 'utf8'), "import './tiny/register.ts';"));
  assert.equal(skillState(root, readSkill(root, 'tiny')).status, 'partial');
  const r = await addSkill(root, 'tiny', opts);
  assert.ok(r.done.some((d) => d.startsWith('installed tiny-dep@')));
  assert.equal(skillState(root, readSkill(root, 'tiny')).status, 'added');
  assert.equal(fs.readFileSync(installed, 'utf8').split("import './tiny/register.ts';").length, 2, 'the line is there once');
});

test('skill remove - keeps a file and a package that another added skill shares, and the last remove restores the tree', async () => {
  const root = scratch();
  // plain shares tiny's test peer (same bytes) and its pinned package.
  fs.cpSync(path.join(root, 'skills/tiny/add/test/support'), path.join(root, 'skills/plain/add/test/support'), { recursive: true });
  const m = path.join(root, 'skills/plain/manifest.json');
  fs.writeFileSync(m, JSON.stringify({ ...JSON.parse(fs.readFileSync(m, 'utf8')), dependencies: { 'tiny-dep': 'file:vendor/tiny-dep-1.0.0.tgz' } }));
  run('git', ['add', '-A'], root);
  run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'plain shares'], root);
  const before = hashes(root);
  await addSkill(root, 'tiny', opts);
  await addSkill(root, 'plain', opts);
  await removeSkill(root, 'tiny', opts);
  assert.equal(skillState(root, readSkill(root, 'plain')).status, 'added', 'plain still has its shared file and package');
  assert.ok(fs.existsSync(path.join(root, 'node_modules/tiny-dep')));
  assert.equal(skillState(root, readSkill(root, 'tiny')).status, 'available');
  await removeSkill(root, 'plain', opts);
  assert.deepEqual(hashes(root), before);
  assert.equal(gitStatus(root), '');
});

test('skill list - shows each skill as available, added or modified, with its description', async (t) => {
  const root = scratch();
  let r = await cli(t, root, ['list']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^plain +available +the plain channel$/m);
  assert.match(r.out, /^tiny +available +the tiny channel$/m);
  await addSkill(root, 'tiny', opts);
  await addSkill(root, 'plain', opts);
  fs.appendFileSync(path.join(root, 'src/channels/plain/register.ts'), '// mine\n');
  r = await cli(t, root, ['list']);
  assert.match(r.out, /^plain +modified +the plain channel — changed locally: src\/channels\/plain\/register\.ts$/m);
  assert.match(r.out, /^tiny +added +the tiny channel$/m);
  fs.rmSync(path.join(root, 'src/channels/tiny/wire.ts'));
  r = await cli(t, root, ['list']);
  assert.match(r.out, /^tiny +partial +the tiny channel — missing: src\/channels\/tiny\/wire\.ts; run "hako skill add tiny" to finish it/m);
  assert.equal(r.out.trim().split('\n').length, 2, 'one line per skill');
  assert.equal(r.err, '', 'a git checkout: no note');
});

test('skill list - says clearly when the tree is not a git checkout', async (t) => {
  const root = scratch();
  fs.rmSync(path.join(root, '.git'), { recursive: true });
  const r = await cli(t, root, ['list']);
  assert.equal(r.code, 0);
  assert.match(r.err, new RegExp(`note: ${root.replace(/[/.]/g, '\\$&')} is not a git checkout`));
  assert.match(r.out, /^tiny +available/m);
});

test('skill add - runs the doctor check of its channel: names the missing settings and where they go, then the next steps', async (t) => {
  const root = scratch();
  const config = fs.mkdtempSync(path.join(tmp, 'config-'));
  env(t, { HAKO_CONFIG: config, TINY_TOKEN: undefined });
  const r = await cli(t, root, ['add', 'tiny']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /skill tiny added:\n {2}registered in src\/channels\/installed\.ts/);
  assert.match(r.out, new RegExp(`\\[warn\\] channel tiny: off\\n\\s+TINY_TOKEN not set: set TINY_TOKEN in the environment or ${config.replace(/[/.]/g, '\\$&')}/secrets\\.env`));
  assert.match(r.out, /set TINY_TOKEN \(a secret: in .*secrets\.env, mode 600/);
  assert.match(r.out, /optional: TINY_API_ROOT/);
  assert.match(r.out, /hako groups add NAME --chat tiny:ADDRESS/);
});

test('skill add - the own check of a configured channel runs, and its finding is printed with the secret masked', async (t) => {
  const root = scratch();
  env(t, { HAKO_CONFIG: fs.mkdtempSync(path.join(tmp, 'config-')), FLAT_URL: 'refused-token-123' });
  const r = await cli(t, root, ['add', 'plain']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\[FAIL\] channel flat: on\n\s+flat: the token was refused \(401\): check FLAT_URL in secrets\.env/);
  assert.doesNotMatch(r.out, /refused-token-123/);
  assert.match(r.out, /next steps[\s\S]*- FLAT_URL is set\n/);
});

test('skill - the register line is appended and removed byte for byte, with or without a final newline', () => {
  const line = "import './x/register.ts';";
  for (const text of ['// header\n', '// header', '', '// a\n// b\n\n', "// a\nimport './y/register.ts';\n"]) {
    const added = appendLine(text, line);
    assert.ok(added.split('\n').includes(line));
    assert.equal(removeLine(added, line), text, JSON.stringify(text));
  }
  assert.equal(removeLine('// a\n', line), '// a\n', 'absent: unchanged');
});

test('skill manifest - a range, a symlink, a reserved path or a test outside test/ is refused with what to fix', () => {
  const root = scratch();
  const m = path.join(root, 'skills/plain/manifest.json');
  const manifest = JSON.parse(fs.readFileSync(m, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(m, JSON.stringify({ ...manifest, dependencies: { grammy: '^1.46.0' }, tests: ['src/x.test.ts'] }));
  assert.throws(() => readSkill(root, 'plain'), (err: Error) => /grammy must be pinned to one exact version/.test(err.message) && /src\/x\.test\.ts must lie under test\/unit, test\/e2e or test\/redteam/.test(err.message));
  fs.writeFileSync(m, JSON.stringify({ ...manifest, register: "import './plain/../../core/host.ts';" }));
  assert.throws(() => readSkill(root, 'plain'), /"register" must be one import line like "import '\.\/plain\/register\.ts';"/);
  fs.writeFileSync(m, JSON.stringify(manifest));
  write(path.join(root, 'skills/plain/add/package.json'), '{}\n');
  assert.throws(() => readSkill(root, 'plain'), /add\/package\.json: a skill may not add this path/);
  fs.rmSync(path.join(root, 'skills/plain/add/package.json'));
  fs.symlinkSync('/etc/passwd', path.join(root, 'skills/plain/add/src/channels/plain/passwd'));
  assert.throws(() => readSkill(root, 'plain'), /is not a regular file \(a symlink\?\)/);
  assert.throws(() => readSkill(root, '../etc'), /is not a skill name/);
});

test('skill docs - SKILL.md and .claude/skills/add-<name>/SKILL.md need front matter with the name and a description', () => {
  const root = scratch();
  assert.deepEqual(docProblems(root, 'tiny'), []);
  fs.writeFileSync(path.join(root, 'skills/tiny/SKILL.md'), '# tiny\n');
  fs.rmSync(path.join(root, '.claude/skills/add-tiny/SKILL.md'));
  assert.deepEqual(docProblems(root, 'tiny'), ['skills/tiny/SKILL.md has no front matter (--- name: … description: … ---)', '.claude/skills/add-tiny/SKILL.md is missing']);
  assert.deepEqual(frontMatter('---\nname: x\ndescription: "Does y."\n---\nbody'), { name: 'x', description: 'Does y.' });
});

test('skill without a register line (agent instructions only) - add copies its files and leaves installed.ts alone; list, a changed file and remove work as for a channel, and the tree is restored', async (t) => {
  const root = scratch();
  env(t, { HAKO_CONFIG: fs.mkdtempSync(path.join(tmp, 'config-')) });
  writeSkill(root, 'notes', { register: undefined, description: 'instructions for the agent' }, {
    'agent/instructions/notes.md': '## Notes\n\nFile notes.\n',
    'test/unit/notes.test.ts': '// notes tests\n',
  });
  const before = hashes(root);
  const installed = fs.readFileSync(path.join(root, 'src/channels/installed.ts'), 'utf8');
  const r = await cli(t, root, ['add', 'notes']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /skill notes added:\n {2}added agent\/instructions\/notes\.md\n {2}added test\/unit\/notes\.test\.ts\n/);
  assert.doesNotMatch(r.out, /--chat|installed\.ts|\[FAIL\]|\[warn\]/, 'no channel to check or bind');
  assert.match(r.out, /restart hako \(hako start\): it rebuilds the agent image when the skill changed agent\//);
  assert.equal(fs.readFileSync(path.join(root, 'src/channels/installed.ts'), 'utf8'), installed);
  assert.match((await cli(t, root, ['list'])).out, /^notes +added +instructions for the agent$/m);
  assert.match((await cli(t, root, ['add', 'notes'])).out, /skill notes is already added; nothing changed/);
  fs.appendFileSync(path.join(root, 'agent/instructions/notes.md'), 'My own rule.\n');
  assert.match((await cli(t, root, ['list'])).out, /^notes +modified .* changed locally: agent\/instructions\/notes\.md$/m);
  assert.deepEqual((await addSkill(root, 'notes', opts)).kept, ['agent/instructions/notes.md'], 'a second add keeps the owner\'s change');
  assert.equal((await cli(t, root, ['remove', 'notes'])).code, 1, 'a changed file is not dropped without --force');
  fs.copyFileSync(path.join(root, 'skills/notes/add/agent/instructions/notes.md'), path.join(root, 'agent/instructions/notes.md'));
  fs.rmSync(path.join(root, 'test/unit/notes.test.ts'));
  assert.match((await cli(t, root, ['list'])).out, /^notes +partial .* missing: test\/unit\/notes\.test\.ts; run "hako skill add notes"/m);
  assert.equal((await cli(t, root, ['remove', 'notes'])).code, 0);
  assert.deepEqual(hashes(root), before, 'byte for byte as before the add');
  assert.equal(fs.existsSync(path.join(root, 'agent')), false, 'the folders it created are gone');
  assert.match((await cli(t, root, ['remove', 'notes'])).out, /skill notes is not added; nothing changed/);
});

test('skill manifest - without "register" a skill may neither ship a channel module nor name a channel', () => {
  const root = scratch();
  const m = path.join(root, 'skills/plain/manifest.json');
  const { register: _, ...manifest } = JSON.parse(fs.readFileSync(m, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(m, JSON.stringify(manifest));
  assert.throws(() => readSkill(root, 'plain'), (err: Error) => /"channel" is set but "register" is not/.test(err.message)
    && /add\/src\/channels\/plain\/register\.ts: a channel module must be registered: add "register"/.test(err.message));
});

test('doctor - an installed channel without its settings is off, a warning naming them and where they go, and a configured one runs its own check, masked', async () => {
  const { channelChecks } = await import('../../src/cli/doctor.ts');
  const { loadConfig } = await import('../../src/core/config.ts');
  const config = loadConfig({ HAKO_HOME: path.join(tmp, 'home'), HAKO_CONFIG: path.join(tmp, 'cfg') });
  const deps = { env: { GOOD_TOKEN: 'good-secret-1', BAD_TOKEN: 'bad-secret-22' }, home: config.home, assistantName: 'hako', log: (await import('../../src/core/log.ts')).silentLogger };
  const module = (name: string, token: string, check?: () => Promise<string | undefined>) => ({ name, required: [token], secrets: [token], create: () => { throw new Error('unused'); }, ...(check ? { check } : {}) });
  const checks = await channelChecks(config, [
    module('off', 'OFF_TOKEN'),
    module('good', 'GOOD_TOKEN', async () => undefined),
    module('bad', 'BAD_TOKEN', async () => { throw new Error('refused bad-secret-22 (401)'); }),
  ], deps);
  assert.deepEqual(checks, [
    { name: 'channel off: off', problem: `OFF_TOKEN not set: set OFF_TOKEN in the environment or ${path.join(tmp, 'cfg', 'secrets.env')}, then restart hako`, warnOnly: true },
    { name: 'channel good: on', problem: null },
    { name: 'channel bad: on', problem: 'its check failed: refused [secret] (401)' },
  ]);
  assert.deepEqual(await channelChecks(config, [], deps), [{ name: 'chat channels: none added (see hako skill list)', problem: null }]);
});
