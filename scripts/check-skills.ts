// CI for skills (run by .ci/run after `npm test`): every skill under skills/ is added to a
// scratch copy of the project, type-checked, its tests run, removed again, and the copy's
// `git status` must then be empty. So no integration rots unseen, and "remove leaves the
// tree byte for byte as before" is checked for every skill on every run.
//
// The scratch copy is the working tree as it is (tracked and untracked files that git does
// not ignore), committed into a fresh repository, with its own `npm ci` — not the checkout's
// node_modules, which may hold packages a skill forgot to pin. Each skill in turn is added
// to it alone, its tests run, and it is removed: the scratch must then be clean, so the next
// skill starts from the same tree. Last, every skill is added at once, the whole tree is
// type-checked and the core's unit tests run (once, not once per skill: CI time), and all
// are removed again. The skills' end-to-end tests need the container engine and the agent
// image, which `npm test` (its preflight) has set up before.
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

/**
 * How tests are run, as `npm test` runs them: one file at a time, and a test that never
 * settles fails after 5 minutes instead of hanging the run. Not --test-force-exit: on Linux
 * it exits a file's process before its last results have left the pipe to the runner, which
 * then counts fewer tests and still passes (nodejs/node#64833; it dropped 4 in our CI).
 */
const NODE_TEST = ['--test', '--test-concurrency=1', '--test-timeout=300000'];
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

/** The owner-free settings every `hako` run here gets: the doctor check after an add reads no owner's settings. */
function scratchEnv(): { env: NodeJS.ProcessEnv; cleanup(): void } {
  const config = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-check-skills-config-'));
  return {
    env: { ...process.env, HAKO_CONFIG: config, HAKO_HOME: `${config}-home` },
    cleanup: () => {
      fs.rmSync(config, { recursive: true, force: true });
      fs.rmSync(`${config}-home`, { recursive: true, force: true });
    },
  };
}

const hakoIn = (dir: string, env: NodeJS.ProcessEnv) => (argv: string[]) =>
  sh(`hako ${argv.join(' ')}`, process.execPath, ['bin/hako.mjs', ...argv], { cwd: dir, capture: true, env });

const porcelain = (dir: string) => git(dir, ['status', '--porcelain', '--untracked-files=all']);

/** remove, then the tree must be as before the add, and a second remove must change nothing. */
async function removeClean(dir: string, hako: ReturnType<typeof hakoIn>, name: string, othersAdded: boolean): Promise<number> {
  const remove = await hako(['skill', 'remove', name]);
  if (!othersAdded) {
    const dirty = await porcelain(dir);
    if (dirty) throw new Failure(`after "hako skill remove ${name}" the tree is not as before (git status --porcelain):\n${dirty}`);
  }
  const again = await hako(['skill', 'remove', name]);
  if (!/not added; nothing changed/.test(again.out)) throw new Failure(`a second "hako skill remove ${name}" did not say it changed nothing:\n${again.out}`);
  return remove.ms;
}

/**
 * One skill alone, in the scratch (clean before, clean after): add, add again (nothing may
 * change), list, its own tests, remove, remove again, and `git status` empty.
 */
async function checkSkill(dir: string, skill: Skill): Promise<string> {
  const t0 = Date.now();
  const { env, cleanup } = scratchEnv();
  const hako = hakoIn(dir, env);
  try {
    const add = await hako(['skill', 'add', skill.name]);
    console.log(add.out.trimEnd().replace(/^/gm, `  [${skill.name}] `));
    const status = await porcelain(dir);
    const again = await hako(['skill', 'add', skill.name]);
    if (!/already added; nothing changed/.test(again.out) || await porcelain(dir) !== status) {
      throw new Failure(`a second "hako skill add ${skill.name}" changed something or did not say it changed nothing:\n${again.out}`);
    }
    const listed = (await hako(['skill', 'list'])).out;
    if (!new RegExp(`^${skill.name} +added `, 'm').test(listed)) throw new Failure(`after the add, "hako skill list" does not show ${skill.name} as added:\n${listed}`);
    say(`${skill.name}: tests ${skill.manifest.tests.join(' ')}`);
    const tests = await sh(`${skill.name}: its tests`, process.execPath, [...NODE_TEST, ...skill.manifest.tests], { cwd: dir });
    const remove = await removeClean(dir, hako, skill.name, false);
    return `add ${secs(add.ms)}, tests ${secs(tests.ms)}, remove ${secs(remove)}; git status clean (total ${secs(Date.now() - t0)})`;
  } finally {
    cleanup();
  }
}

/**
 * Every skill added at once, as an owner with several channels has them: they must add
 * side by side, type-check together and leave every unit test of the core passing (a
 * skill's module loads only when configured); removed in reverse order, the tree is clean.
 */
async function checkTogether(dir: string, skills: readonly Skill[]): Promise<string> {
  const t0 = Date.now();
  const { env, cleanup } = scratchEnv();
  const hako = hakoIn(dir, env);
  try {
    for (const s of skills) await hako(['skill', 'add', s.name]);
    say(`all ${skills.length} added: typecheck`);
    const tc = await sh('npm run typecheck with every skill added', 'npm', ['run', '--silent', 'typecheck'], { cwd: dir });
    say(`all ${skills.length} added: the core's unit tests`);
    const tests = await sh('the unit tests with every skill added', process.execPath, [...NODE_TEST, 'test/unit/**/*.test.ts'], { cwd: dir });
    for (const [i, s] of [...skills].reverse().entries()) await removeClean(dir, hako, s.name, i < skills.length - 1);
    return `typecheck ${secs(tc.ms)}, unit tests ${secs(tests.ms)}; removed in reverse order, git status clean (total ${secs(Date.now() - t0)})`;
  } finally {
    cleanup();
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
  const passed: Skill[] = [];
  try {
    await prepareScratch(base);
    // Skills that change the agent go last: each makes the agent image stale, and the
    // end-to-end tests of the next skill would rebuild it (about a minute each time).
    const touchesAgent = (l: (typeof listed)[number]) => ('skill' in l && l.skill.files.some((f) => f.startsWith('agent/')) ? 1 : 0);
    for (const l of [...listed].sort((a, b) => touchesAgent(a) - touchesAgent(b))) {
      if (!('skill' in l)) {
        failures.push(`${l.name}: ${l.error}`);
        continue;
      }
      const problems = staticProblems(base, l.skill);
      if (problems.length) {
        failures.push(`${l.name}:\n  - ${problems.join('\n  - ')}`);
        continue;
      }
      say(`${l.name}: add, add again, its tests, remove, git status`);
      try {
        say(`${l.name}: ok — ${await checkSkill(base, l.skill)}`);
        passed.push(l.skill);
      } catch (err) {
        if (!(err instanceof Failure)) throw err;
        failures.push(`${l.name}: ${err.message}`);
        // The scratch is no longer clean: what follows would fail for this skill's reasons.
        break;
      }
    }
    if (failures.length === 0 && passed.length) {
      say(`together: ${passed.map((s) => s.name).join(', ')}: add all, typecheck, unit tests, remove all, git status`);
      say(`together: ok — ${await checkTogether(base, passed)}`);
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
