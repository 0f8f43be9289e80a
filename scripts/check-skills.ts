// CI for skills (run by .ci/run after `npm test`): every skill under skills/ is added to a
// scratch copy of the project, type-checked, its tests run, removed again, and the copy's
// `git status` must then be empty. So no integration rots unseen, and "remove leaves the
// tree byte for byte as before" is checked for every skill on every run.
//
// The scratch copy is the working tree as it is (tracked and untracked files that git does
// not ignore), committed into a fresh repository, with its own `npm ci` — not the checkout's
// node_modules, which may hold packages a skill forgot to pin. Each skill gets its own copy
// of that prepared scratch. The skills' end-to-end tests need the container engine and the
// agent image, which `npm test` (its preflight) has set up before.
//
// Usage: node scripts/check-skills.ts [name…] [--keep]   (--keep leaves the scratch folders)

import { spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docProblems, listSkills, type Skill } from '../src/skills/manifest.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const only = args.filter((a) => !a.startsWith('--'));

class Failure extends Error {}

// Ctrl+C or a CI cancel: the running command gets the signal too, then nothing else runs
// and the scratch copies are still removed.
let interrupted = false;
let running: ReturnType<typeof spawn> | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    running?.kill(signal);
  });
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (s: string) => console.log(`check-skills: ${s}`);

/** Runs a command; rejects with a Failure naming `what` unless it exits 0. Output goes to the log unless captured. */
async function sh(what: string, cmd: string, argv: string[], opts: SpawnOptions & { capture?: boolean } = {}): Promise<{ ms: number; out: string }> {
  if (interrupted) throw new Failure(`interrupted before: ${what}`);
  const start = Date.now();
  const child = spawn(cmd, argv, { stdio: opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit', ...opts });
  running = child;
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const status = await new Promise<number | string>((resolve) => {
    child.on('error', (e) => resolve(`could not run ${cmd} (${e.message})`));
    child.on('close', (code, signal) => resolve(code ?? signal ?? 'no status'));
  });
  running = undefined;
  if (interrupted) throw new Failure(`interrupted during: ${what}`);
  if (status !== 0) throw new Failure(`${what} failed (${typeof status === 'number' ? `exit ${status}` : status}): ${cmd} ${argv.join(' ')}${opts.capture ? `\n${out}` : ' (output above)'}`);
  return { ms: Date.now() - start, out };
}

const git = async (cwd: string, argv: string[]) => (await sh(`git ${argv[0]}`, 'git', ['-c', 'user.name=check-skills', '-c', 'user.email=check-skills@localhost', '-c', 'commit.gpgsign=false', ...argv], { cwd, capture: true })).out;

/** Problems found without running anything: the manifest, the documents, and overlap with the core. */
function staticProblems(scratch: string, skill: Skill): string[] {
  const problems = docProblems(ROOT, skill.name);
  for (const f of skill.files) {
    // A path the core already has would be deleted by remove (or refused by add).
    if (fs.existsSync(path.join(scratch, f))) problems.push(`add/${f} exists in the project without the skill: a skill adds only new files (move the file under skills/${skill.name}/add/ or out of the skill)`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(scratch, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  for (const name of [...Object.keys(skill.manifest.dependencies), ...Object.keys(skill.manifest.devDependencies)]) {
    const core = pkg.dependencies?.[name] ?? pkg.devDependencies?.[name];
    if (core !== undefined) problems.push(`it pins ${name}, which hako itself depends on (${core}): a skill pins only packages that it alone adds`);
  }
  return problems;
}

/** The working tree (tracked and untracked, not ignored) copied into a fresh repository with its own npm ci. */
async function prepareScratch(dir: string): Promise<void> {
  const list = (await git(ROOT, ['ls-files', '-z', '--cached', '--others', '--exclude-standard'])).split('\0').filter(Boolean);
  let copied = 0;
  for (const rel of new Set(list)) {
    const src = path.join(ROOT, rel);
    let st: fs.Stats;
    try { st = fs.lstatSync(src); } catch { continue; } // deleted in the working tree
    const dst = path.join(dir, rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (st.isFile()) fs.copyFileSync(src, dst);
    else continue;
    copied++;
  }
  await git(dir, ['init', '-q']);
  await git(dir, ['add', '-A']);
  await git(dir, ['commit', '-qm', 'scratch copy for check-skills', '--no-verify']);
  const ci = await sh('npm ci in the scratch copy', 'npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: dir, capture: true });
  say(`scratch copy of ${ROOT}: ${copied} files in ${dir}; npm ci --ignore-scripts took ${secs(ci.ms)}`);
}

/** add, add again, typecheck, tests, remove, clean tree — in a copy of the prepared scratch. */
async function checkSkill(base: string, skill: Skill): Promise<string> {
  const dir = `${base}-${skill.name}`;
  const t0 = Date.now();
  fs.cpSync(base, dir, { recursive: true, verbatimSymlinks: true });
  const copy = Date.now() - t0;
  // The doctor check after an add reads no owner's settings: an empty HAKO_CONFIG and HAKO_HOME.
  const config = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-check-skills-config-'));
  const env = { ...process.env, HAKO_CONFIG: config, HAKO_HOME: `${config}-home` };
  const hako = (argv: string[]) => sh(`hako ${argv.join(' ')}`, process.execPath, ['bin/hako.mjs', ...argv], { cwd: dir, capture: true, env });
  try {
    const add = await hako(['skill', 'add', skill.name]);
    console.log(add.out.trimEnd().replace(/^/gm, `  [${skill.name}] `));
    const status = await git(dir, ['status', '--porcelain', '--untracked-files=all']);
    const again = await hako(['skill', 'add', skill.name]);
    if (!/already added; nothing changed/.test(again.out) || await git(dir, ['status', '--porcelain', '--untracked-files=all']) !== status) {
      throw new Failure(`a second "hako skill add ${skill.name}" changed something or did not say it changed nothing:\n${again.out}`);
    }
    const listed = (await hako(['skill', 'list'])).out;
    if (!new RegExp(`^${skill.name} +added `, 'm').test(listed)) throw new Failure(`after the add, "hako skill list" does not show ${skill.name} as added:\n${listed}`);
    say(`${skill.name}: typecheck`);
    const tc = await sh(`${skill.name}: npm run typecheck`, 'npm', ['run', '--silent', 'typecheck'], { cwd: dir });
    // Its own tests, and every unit test of the core with the skill added (the end-to-end
    // suite of the core ran before, without it; a skill's module only loads when it is configured).
    const suite = ['test/unit/**/*.test.ts', ...skill.manifest.tests.filter((f) => !f.startsWith('test/unit/'))];
    say(`${skill.name}: tests ${suite.join(' ')}`);
    const tests = await sh(`${skill.name}: its tests and the unit tests`, process.execPath, ['--test', '--test-concurrency=1', ...suite], { cwd: dir });
    const remove = await hako(['skill', 'remove', skill.name]);
    const dirty = await git(dir, ['status', '--porcelain', '--untracked-files=all']);
    if (dirty) throw new Failure(`after "hako skill remove ${skill.name}" the tree is not as before (git status --porcelain):\n${dirty}`);
    const again2 = await hako(['skill', 'remove', skill.name]);
    if (!/not added; nothing changed/.test(again2.out)) throw new Failure(`a second "hako skill remove ${skill.name}" did not say it changed nothing:\n${again2.out}`);
    return `copy ${secs(copy)}, add ${secs(add.ms)}, typecheck ${secs(tc.ms)}, tests ${secs(tests.ms)}, remove ${secs(remove.ms)}; git status clean (total ${secs(Date.now() - t0)})`;
  } finally {
    fs.rmSync(config, { recursive: true, force: true });
    fs.rmSync(`${config}-home`, { recursive: true, force: true });
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const listed = listSkills(ROOT).filter((l) => only.length === 0 || only.includes(l.name));
  const missing = only.filter((n) => !listed.some((l) => l.name === n));
  if (missing.length) {
    say(`no skill named ${missing.join(', ')} under ${path.join(ROOT, 'skills')}`);
    return 2;
  }
  if (listed.length === 0) {
    say('no skills under skills/: nothing to check');
    return 0;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-check-skills-'));
  const base = path.join(tmp, 'scratch');
  const failures: string[] = [];
  try {
    await prepareScratch(base);
    for (const l of listed) {
      if (!('skill' in l)) {
        failures.push(`${l.name}: ${l.error}`);
        continue;
      }
      const problems = staticProblems(base, l.skill);
      if (problems.length) {
        failures.push(`${l.name}:\n  - ${problems.join('\n  - ')}`);
        continue;
      }
      say(`${l.name}: add, add again, typecheck, tests, remove, git status`);
      try {
        say(`${l.name}: ok — ${await checkSkill(base, l.skill)}`);
      } catch (err) {
        if (!(err instanceof Failure)) throw err;
        failures.push(`${l.name}: ${err.message}`);
        if (interrupted) break;
      }
    }
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    failures.push(err.message);
  } finally {
    if (keep) say(`scratch copies kept in ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(`\ncheck-skills: ${failures.length} problem(s):\n${failures.map((f) => `- ${f}`).join('\n')}`);
    return 1;
  }
  say(`all ${listed.length} skill(s) pass`);
  return 0;
}

process.exitCode = await main();
