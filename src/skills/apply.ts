// Adds a skill to the working tree and takes it out again, deterministically.
//
// add: (1) the register line is appended to src/channels/installed.ts — first, so that a
// half-finished add is visibly "this skill's" and a second add simply finishes it; (2) every
// file under add/ is copied to its path; (3) the pinned dependencies are installed with npm.
// remove runs the same steps backwards: dependencies, files (and the folders that became
// empty), then the register line.
//
// No state is kept besides the tree itself: a skill counts as added when its register line
// is there (a skill without one, e.g. agent instructions only: when every file of it is
// there), and a file as changed when its bytes differ from the skill's copy. So an add
// committed to a fork can be removed in a fresh clone, and nothing is lost with node_modules.
// What makes remove restore the tree byte for byte:
// - a skill never ships a path that exists in the tree without it: add refuses a different
//   file there, and scripts/check-skills.ts refuses a skill whose path exists in the core;
// - a skill never pins a package the core (or another skill, at another version) already
//   has: add refuses, so uninstalling exactly what the skill pins takes away only its own;
// - the register line is appended at the end and removed with its line break;
// - `npm uninstall` after `npm install --save-exact` gives back package.json and
//   package-lock.json byte for byte (npm 11 sorts both; checked by hand for grammy and the
//   e-mail packages, and for every skill by scripts/check-skills.ts, whose `git status` after
//   add + remove must be empty).
// A file the owner changed is never deleted without --force; the refusal shows the diff.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { INSTALLED, listSkills, readSkill, SkillError, type Skill } from './manifest.ts';
import { npmInstall, npmUninstall, type NpmEnv } from './npm.ts';

export type FileState = 'same' | 'modified' | 'missing';

export interface SkillState {
  /** available: none of it is in the tree; added: all of it; partial: some of it (an add or remove was cut short). */
  readonly status: 'available' | 'added' | 'partial';
  readonly registered: boolean;
  readonly files: readonly { readonly path: string; readonly state: FileState }[];
  /** Files whose bytes differ from the skill's copy. */
  readonly modified: readonly string[];
  /** Pinned packages (`name@version`) that package.json lacks. */
  readonly missingDeps: readonly string[];
  /** Pinned packages that package.json has at another version or in the other section, said in words. */
  readonly changedDeps: readonly string[];
}

export interface Options {
  /** The environment npm runs with (tests point its cache somewhere else and forbid the network). */
  readonly npmEnv?: NpmEnv;
}

export interface AddResult {
  readonly skill: Skill;
  /** What was done, one line each; empty when the skill was already added. */
  readonly done: readonly string[];
  /** Files the owner changed after an earlier add; they were left as they are. */
  readonly kept: readonly string[];
}

export type RemoveResult =
  | { readonly kind: 'removed'; readonly skill: Skill; readonly done: readonly string[] }
  | { readonly kind: 'not-added'; readonly skill: Skill }
  /** Files were changed locally and --force was not given: nothing was touched. */
  | { readonly kind: 'refused'; readonly skill: Skill; readonly modified: readonly string[]; readonly diff: string };

/** Whether the tree is a git checkout (a folder or, for a worktree, a file named .git). */
export function isGitCheckout(root: string): boolean {
  return fs.existsSync(path.join(root, '.git'));
}

// ---- the register line -------------------------------------------------------------------

/** `text` with `line` appended as its last line; what removeLine undoes exactly. */
export function appendLine(text: string, line: string): string {
  if (text === '' || text.endsWith('\n')) return `${text}${line}\n`;
  return `${text}\n${line}`;
}

/** `text` without its first line equal to `line` (and that line's break); unchanged when absent. */
export function removeLine(text: string, line: string): string {
  const lines = text.split('\n');
  const i = lines.indexOf(line);
  if (i < 0) return text;
  // The last line of a file without a final newline: appendLine put a break before it.
  if (i === lines.length - 1) return lines.slice(0, -1).join('\n');
  lines.splice(i, 1);
  return lines.join('\n');
}

export function hasLine(text: string, line: string): boolean {
  return text.split('\n').includes(line);
}

// ---- state -----------------------------------------------------------------------------

function readInstalled(root: string): string {
  try {
    return fs.readFileSync(path.join(root, INSTALLED), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SkillError(`${path.join(root, INSTALLED)} is missing: is ${root} a checkout of hako?`);
    throw err;
  }
}

type PackageJson = { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };

function readPackage(root: string): PackageJson {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as PackageJson;
}

/** The state of a file the skill adds: absent, the skill's bytes, or other bytes. */
function fileState(skill: Skill, root: string, rel: string): FileState {
  const target = path.join(root, rel);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  if (!st.isFile()) return 'modified';
  return fs.readFileSync(target).equals(fs.readFileSync(path.join(skill.dir, 'add', rel))) ? 'same' : 'modified';
}

function allDeps(skill: Skill): { name: string; spec: string; dev: boolean }[] {
  return [
    ...Object.entries(skill.manifest.dependencies).map(([name, spec]) => ({ name, spec, dev: false })),
    ...Object.entries(skill.manifest.devDependencies).map(([name, spec]) => ({ name, spec, dev: true })),
  ];
}

/** The version package.json gives `name`, in either section. */
function pkgSpec(pkg: PackageJson, name: string): string | undefined {
  return pkg.dependencies?.[name] ?? pkg.devDependencies?.[name];
}

function hasDep(pkg: PackageJson, d: { name: string; spec: string; dev: boolean }): boolean {
  return (d.dev ? pkg.devDependencies : pkg.dependencies)?.[d.name] === d.spec;
}

/** Whether the skill is in the tree: its register line, or for a skill without one, every file it adds (changed or not). */
function isAdded(root: string, skill: Skill, installed: string): boolean {
  const line = skill.manifest.register;
  return line === null ? skill.files.every((f) => fileState(skill, root, f) !== 'missing') : hasLine(installed, line);
}

/** Where the skill stands in the tree at `root`. */
export function skillState(root: string, skill: Skill): SkillState {
  const line = skill.manifest.register;
  // A skill without a register line has nothing to register: its files alone say where it stands.
  const registered = line === null || hasLine(readInstalled(root), line);
  const files = skill.files.map((p) => ({ path: p, state: fileState(skill, root, p) }));
  const pkg = readPackage(root);
  const deps = allDeps(skill).map((d) => ({ ...d, has: pkgSpec(pkg, d.name) }));
  const missingDeps = deps.filter((d) => d.has === undefined).map((d) => `${d.name}@${d.spec}`);
  const changedDeps = deps.filter((d) => d.has !== undefined && !hasDep(pkg, d)).map((d) => `package.json: ${d.name} ${d.has} (the skill pins ${d.spec}${d.dev ? ' in devDependencies' : ''})`);
  const present = files.filter((f) => f.state !== 'missing').length;
  // A file another added skill ships too (same bytes) is that skill's evidence, not this one's.
  const others = registered ? [] : otherAdded(root, skill.name);
  const own = files.filter((f) => f.state !== 'missing' && !others.some((o) => o.files.includes(f.path) && fileState(o, root, f.path) === 'same')).length;
  const status = registered && present === files.length && missingDeps.length === 0 ? 'added'
    : (line === null || !registered) && own === 0 ? 'available'
    : 'partial';
  return { status, registered, files, modified: files.filter((f) => f.state === 'modified').map((f) => f.path), missingDeps, changedDeps };
}

/** The other skills that are added (isAdded). */
function otherAdded(root: string, name: string): Skill[] {
  const installed = readInstalled(root);
  return listSkills(root).flatMap((l) => ('skill' in l && l.name !== name && isAdded(root, l.skill, installed) ? [l.skill] : []));
}

// ---- add -------------------------------------------------------------------------------

/** Refuses a target whose folder leads out of the tree through a symlink. */
function assertInside(root: string, rel: string): void {
  const real = fs.realpathSync(root);
  let dir = path.dirname(path.join(root, rel));
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  const r = fs.realpathSync(dir);
  if (r !== real && !r.startsWith(real + path.sep)) throw new SkillError(`${rel}: its folder leads out of ${root} (a symlink?); not writing there`);
}

/** Writes `bytes` to `target` through a temporary file, so that no half-written file is left. */
function writeAtomic(target: string, bytes: Buffer | string, mode?: number): void {
  const tmp = `${target}.hako-skill-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, bytes, { mode: mode ?? 0o644, flag: 'wx' });
  if (mode !== undefined) fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, target);
}

/**
 * Adds skill `name` to the tree at `root`. Idempotent: a second add does nothing (and a
 * cut-short add is finished). Checks everything before changing anything: a file in the
 * way or a package pinned differently is refused with nothing touched.
 */
export async function addSkill(root: string, name: string, opts: Options = {}): Promise<AddResult> {
  const skill = readSkill(root, name);
  const { manifest } = skill;
  const others = otherAdded(root, name);
  const registered = isAdded(root, skill, readInstalled(root));

  // Plan the files.
  const copy: string[] = [];
  const kept: string[] = [];
  const refused: string[] = [];
  for (const rel of skill.files) {
    const state = fileState(skill, root, rel);
    if (state === 'missing') {
      assertInside(root, rel);
      copy.push(rel);
    } else if (state === 'modified') {
      if (registered && fs.lstatSync(path.join(root, rel)).isFile()) kept.push(rel);
      else refused.push(rel);
    }
  }
  if (refused.length) {
    const owner = (rel: string) => others.find((o) => o.files.includes(rel));
    throw new SkillError(`cannot add skill "${name}": these files exist and are not the skill's:\n${refused.map((r) => `  ${r}${owner(r) ? ` (added by skill "${owner(r)!.name}")` : ''}`).join('\n')}\nMove them away (or remove the skill that added them), then run "hako skill add ${name}" again.`);
  }

  // Plan the dependencies.
  const pkg = readPackage(root);
  const install: { name: string; spec: string; dev: boolean }[] = [];
  for (const d of allDeps(skill)) {
    const has = pkgSpec(pkg, d.name);
    if (has === undefined) { install.push(d); continue; }
    if (registered) {
      // Pinned differently after an earlier add: the owner's choice, kept like a changed file.
      if (!hasDep(pkg, d)) kept.push(`package.json: ${d.name} ${has} (the skill pins ${d.spec})`);
      continue;
    }
    if (hasDep(pkg, d) && others.some((o) => allDeps(o).some((x) => x.name === d.name && x.spec === d.spec && x.dev === d.dev))) continue;
    const section = pkg.dependencies?.[d.name] !== undefined ? 'dependencies' : 'devDependencies';
    const by = others.find((o) => allDeps(o).some((x) => x.name === d.name));
    throw new SkillError(`cannot add skill "${name}": it pins ${d.name}@${d.spec} in ${d.dev ? 'devDependencies' : 'dependencies'}, but package.json's ${section} already has ${d.name} ${has}${by ? ` (from skill "${by.name}")` : ' (a dependency of hako itself)'}. A skill pins only packages that it alone adds: change the skill's manifest.json to match, or leave this package out of it.`);
  }

  const done: string[] = [];
  if (manifest.register !== null && !registered) {
    writeAtomic(path.join(root, INSTALLED), appendLine(readInstalled(root), manifest.register), fs.statSync(path.join(root, INSTALLED)).mode & 0o777);
    done.push(`registered in ${INSTALLED}: ${manifest.register}`);
  }
  for (const rel of copy) {
    const src = path.join(skill.dir, 'add', rel);
    const target = path.join(root, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    writeAtomic(target, fs.readFileSync(src), fs.statSync(src).mode & 0o777);
    done.push(`added ${rel}`);
  }
  for (const dev of [false, true]) {
    const specs = install.filter((d) => d.dev === dev).map((d) => `${d.name}@${d.spec}`);
    if (specs.length === 0) continue;
    await npmInstall(root, specs, dev, opts.npmEnv);
    done.push(`installed ${specs.join(', ')}${dev ? ' (devDependencies)' : ''} with npm: exact versions, no install scripts`);
  }
  return { skill, done, kept };
}

// ---- remove ----------------------------------------------------------------------------

/** A unified diff from the skill's copy of `rel` to the file in the tree (git diff --no-index). */
export function fileDiff(root: string, skill: Skill, rel: string): string {
  const ours = path.relative(root, path.join(skill.dir, 'add', rel));
  if (!fs.existsSync(path.join(root, rel))) return `${rel}: missing\n`;
  const r = spawnSync('git', ['diff', '--no-index', '--no-color', '--', ours, rel], { cwd: root, encoding: 'utf8' });
  if (r.error) return `${rel}: differs from ${ours} (git is not installed, so no diff can be shown: compare the two files)\n`;
  return r.stdout;
}

/**
 * Takes skill `name` out of the tree at `root`: its dependencies, its files (and folders
 * that became empty), its register line. Refuses without `force` when a file it added was
 * changed since, and changes nothing then. Idempotent: a second remove does nothing.
 */
export async function removeSkill(root: string, name: string, opts: Options & { readonly force?: boolean } = {}): Promise<RemoveResult> {
  const skill = readSkill(root, name);
  const state = skillState(root, skill);
  const others = otherAdded(root, name);
  const pkg = readPackage(root);
  // Evidence that the skill is (partly) here: its line or its files. Without either, its
  // pinned packages in package.json are not touched (they would be someone else's).
  if (state.status === 'available') return { kind: 'not-added', skill };
  if ((state.modified.length || state.changedDeps.length) && !opts.force) {
    const diff = state.modified.map((rel) => fileDiff(root, skill, rel)).join('') + state.changedDeps.map((c) => `${c}\n`).join('');
    return { kind: 'refused', skill, modified: [...state.modified, ...state.changedDeps], diff };
  }

  const done: string[] = [];
  const shared = (d: { name: string }) => others.some((o) => allDeps(o).some((x) => x.name === d.name));
  const drop = allDeps(skill).filter((d) => pkgSpec(pkg, d.name) !== undefined && !shared(d)).map((d) => d.name);
  if (drop.length) {
    await npmUninstall(root, drop, opts.npmEnv);
    done.push(`uninstalled ${drop.join(', ')} with npm`);
  }
  const dirs = new Set<string>();
  for (const f of state.files) {
    if (f.state === 'missing') continue;
    // A file another added skill ships with the same bytes stays for that skill.
    if (others.some((o) => o.files.includes(f.path) && fileState(o, root, f.path) === 'same')) continue;
    fs.rmSync(path.join(root, f.path));
    done.push(`deleted ${f.path}${f.state === 'modified' ? ' (it had local changes: --force)' : ''}`);
    for (let d = path.posix.dirname(f.path); d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  }
  // Deepest first, so that a parent is looked at after its children went.
  for (const d of [...dirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
    try {
      fs.rmdirSync(path.join(root, d));
      done.push(`deleted the empty folder ${d}/`);
    } catch {
      // Not empty (or already gone): it holds something that is not the skill's.
    }
  }
  const installed = readInstalled(root);
  if (skill.manifest.register !== null && hasLine(installed, skill.manifest.register)) {
    writeAtomic(path.join(root, INSTALLED), removeLine(installed, skill.manifest.register), fs.statSync(path.join(root, INSTALLED)).mode & 0o777);
    done.push(`removed its line from ${INSTALLED}`);
  }
  return { kind: 'removed', skill, done };
}
