// What a skill is, read from skills/<name>/: its manifest.json (validated once, with
// messages that say what to fix), its SKILL.md front matter, and the files under add/ that
// it puts into the tree. Pure reading: nothing here changes the repository.
//
// A skill either registers a channel (its `register` line) or only adds files, such as
// agent instructions (agent/instructions/*.md): then it has no `register` and ships no
// channel module.
//
// Invariants: a skill's name is a safe folder name; every file it adds is a regular file
// (no symlink) at a repository-relative path that is not one the mechanism itself edits
// (package.json, package-lock.json, src/channels/installed.ts) nor under .git/,
// node_modules/ or skills/; dependencies are pinned to one exact version.

import fs from 'node:fs';
import path from 'node:path';

export const INSTALLED = 'src/channels/installed.ts';
const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const ENV_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
/** An exact semver version (no range), or a package file inside the repository (`file:vendor/x-1.0.0.tgz`). */
const EXACT = /^(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?|file:(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]+\.tgz)$/;
const PACKAGE = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;
const REGISTER = /^import '\.\/([A-Za-z0-9_-]+(?:\/[A-Za-z0-9_.-]+)*\.ts)';$/;
const RESERVED = ['package.json', 'package-lock.json', INSTALLED];
const RESERVED_DIRS = ['.git/', 'node_modules/', 'skills/'];

export class SkillError extends Error {
  override name = 'SkillError';
}

export interface Manifest {
  readonly name: string;
  readonly description: string;
  /** The channel module the skill registers (`registerChannel({ name })`); defaults to the skill's name; null without `register`. */
  readonly channel: string | null;
  /** The one line appended to src/channels/installed.ts; null for a skill that registers no channel. */
  readonly register: string | null;
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
  readonly env: { readonly required: readonly string[]; readonly optional: readonly string[]; readonly secrets: readonly string[] };
  /** Test files (under test/unit, test/e2e or test/redteam) that the skill adds. */
  readonly tests: readonly string[];
}

export interface Skill {
  readonly name: string;
  /** skills/<name>, absolute. */
  readonly dir: string;
  readonly manifest: Manifest;
  /** Repository-relative paths (with `/`) of the files under add/, sorted. */
  readonly files: readonly string[];
}

export function skillsDir(root: string): string {
  return path.join(root, 'skills');
}

/** Checks a skill name given on the command line before it is used in a path. */
export function assertSkillName(name: string): void {
  if (!NAME.test(name)) throw new SkillError(`"${name}" is not a skill name: skills are named with lowercase letters, digits and "-" (see "hako skill list")`);
}

/** Reads and validates skills/<name>/; throws SkillError naming each problem. */
export function readSkill(root: string, name: string): Skill {
  assertSkillName(name);
  const dir = path.join(skillsDir(root), name);
  if (!fs.existsSync(dir)) throw new SkillError(`there is no skill "${name}" in ${skillsDir(root)} (see "hako skill list")`);
  const file = path.join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SkillError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (every skill has a manifest.json: see skills/README.md)' : `not valid JSON (${(err as Error).message})`}`);
  }
  const files = addedFiles(dir);
  const problems: string[] = [];
  const manifest = checkManifest(raw, name, files, problems);
  if (problems.length) throw new SkillError(`skill "${name}" is invalid:\n  - ${problems.join('\n  - ')}`);
  return { name, dir, manifest, files };
}

export type Listed = { readonly name: string; readonly skill: Skill } | { readonly name: string; readonly error: string };

/** Every folder under skills/, sorted by name, each read or with the reason it cannot be. */
export function listSkills(root: string): Listed[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(skillsDir(root), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort().map((name) => {
    try {
      return { name, skill: readSkill(root, name) };
    } catch (err) {
      return { name, error: (err as Error).message };
    }
  });
}

/** The repository path a register line imports (relative to src/channels/), or undefined. */
export function registerTarget(line: string): string | undefined {
  const m = REGISTER.exec(line);
  if (!m || m[1]!.split('/').some((s) => s === '.' || s === '..')) return undefined;
  return `src/channels/${m[1]!}`;
}

function checkManifest(raw: unknown, name: string, files: readonly string[], problems: string[]): Manifest {
  const m = (raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  if (m.name !== name) problems.push(`"name" must be "${name}", the folder's name`);
  if (typeof m.description !== 'string' || !m.description.trim() || m.description.includes('\n')) problems.push('"description" must be one line of text');
  const register = m.register === undefined ? null : typeof m.register === 'string' ? m.register : '';
  const channel = register === null && m.channel === undefined ? null : m.channel ?? name;
  if (register === null) {
    // No channel: nothing to register, so nothing may need registering.
    if (channel !== null) problems.push('"channel" is set but "register" is not: a channel skill registers its module with one import line like "import \'./' + name + '/register.ts\';"');
    for (const f of files) if (f.startsWith('src/channels/')) problems.push(`add/${f}: a channel module must be registered: add "register" (one import line like "import './${name}/register.ts';")`);
  } else {
    if (typeof channel !== 'string' || !NAME.test(channel)) problems.push('"channel" (the channel module\'s name, default: the skill\'s name) must be a lowercase name');
    const target = registerTarget(register);
    if (!target) problems.push(`"register" must be one import line like "import './${name}/register.ts';"`);
    else if (!files.includes(target)) problems.push(`"register" imports ${target}, which add/ does not contain`);
  }
  const deps = (key: 'dependencies' | 'devDependencies'): Record<string, string> => {
    const d = m[key] ?? {};
    if (!d || typeof d !== 'object' || Array.isArray(d)) {
      problems.push(`"${key}" must map package names to exact versions`);
      return {};
    }
    for (const [pkg, version] of Object.entries(d)) {
      if (!PACKAGE.test(pkg)) problems.push(`${key}: "${pkg}" is not a package name`);
      if (typeof version !== 'string' || !EXACT.test(version)) problems.push(`${key}: ${pkg} must be pinned to one exact version like "1.2.3" (got ${JSON.stringify(version)})`);
    }
    return d as Record<string, string>;
  };
  const dependencies = deps('dependencies');
  const devDependencies = deps('devDependencies');
  for (const pkg of Object.keys(dependencies)) if (pkg in devDependencies) problems.push(`${pkg} is in both "dependencies" and "devDependencies"`);
  const env = (m.env ?? {}) as Record<string, unknown>;
  const names = (key: string): string[] => {
    const list = env[key] ?? [];
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || !ENV_NAME.test(x))) {
      problems.push(`"env.${key}" must list environment variable names like TELEGRAM_BOT_TOKEN`);
      return [];
    }
    return list as string[];
  };
  const required = names('required'), optional = names('optional'), secrets = names('secrets');
  for (const s of secrets) if (!required.includes(s) && !optional.includes(s)) problems.push(`env.secrets: ${s} is listed neither in env.required nor in env.optional`);
  const tests = m.tests ?? [];
  if (!Array.isArray(tests) || tests.some((t) => typeof t !== 'string')) problems.push('"tests" must list test files');
  else {
    if (tests.length === 0) problems.push('"tests" lists no test: every skill carries its tests');
    for (const t of tests as string[]) {
      if (!/^test\/(unit|e2e|redteam)\/.+\.test\.ts$/.test(t)) problems.push(`tests: ${t} must lie under test/unit, test/e2e or test/redteam and end in .test.ts (so that "npm test" runs it)`);
      else if (!files.includes(t)) problems.push(`tests: ${t} is not under add/`);
    }
  }
  for (const f of files) {
    if (RESERVED.includes(f) || RESERVED_DIRS.some((d) => f.startsWith(d))) problems.push(`add/${f}: a skill may not add this path (hako skill edits package.json, package-lock.json and ${INSTALLED} itself)`);
  }
  return {
    name, description: String(m.description ?? ''), channel: channel === null ? null : String(channel), register, dependencies, devDependencies,
    env: { required, optional, secrets }, tests: Array.isArray(tests) ? tests as string[] : [],
  };
}

/** The files under add/, as repository-relative paths; refuses anything but folders and regular files. */
function addedFiles(dir: string): string[] {
  const base = path.join(dir, 'add');
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = path.join(base, rel);
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
      // A symlink would make "copy the skill's files" mean "copy whatever it points at".
      else throw new SkillError(`${path.join(base, r)} is not a regular file (a symlink?): a skill adds only regular files`);
    }
  };
  if (!fs.existsSync(base)) throw new SkillError(`${base} is missing: a skill keeps the files it adds under add/, at their paths in the repository`);
  walk('');
  return out.sort();
}

/** `key: value` pairs of a Markdown file's front matter (between the first two `---` lines). */
export function frontMatter(text: string): Record<string, string> | undefined {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n/.exec(text);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const line of m[1]!.split(/\r?\n/)) {
    const kv = /^([A-Za-z][\w-]*):\s*(.*)$/.exec(line);
    if (kv) out[kv[1]!] = kv[2]!.replace(/^(['"])(.*)\1$/, '$2').trim();
  }
  return out;
}

/**
 * What is wrong with a skill's documents: skills/<name>/SKILL.md with front matter `name`
 * and `description`, and .claude/skills/add-<name>/SKILL.md exposing it to Claude Code.
 */
export function docProblems(root: string, name: string): string[] {
  const problems: string[] = [];
  const check = (file: string, wantName: string): void => {
    let text: string;
    try {
      text = fs.readFileSync(path.join(root, file), 'utf8');
    } catch {
      problems.push(`${file} is missing`);
      return;
    }
    const fm = frontMatter(text);
    if (!fm) problems.push(`${file} has no front matter (--- name: … description: … ---)`);
    else {
      if (fm.name !== wantName) problems.push(`${file}: front matter "name" must be "${wantName}" (got ${JSON.stringify(fm.name ?? '')})`);
      if (!fm.description) problems.push(`${file}: front matter "description" is missing`);
    }
  };
  check(`skills/${name}/SKILL.md`, name);
  check(`.claude/skills/add-${name}/SKILL.md`, `add-${name}`);
  return problems;
}
