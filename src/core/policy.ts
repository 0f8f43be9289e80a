// The mount policy: which host folders a group may see, read-only or read-write. It lives
// in HAKO_CONFIG/mounts.json, outside HAKO_HOME and never mounted, so no agent can edit it.
// No policy file means no extra mounts at all.
//
// Invariants: a mount is checked on its real path (links resolved) and on the path as
// given; it must lie under an allowed root, no component may match a blocked pattern, it
// may not contain a blocked entry near its top, and it may neither be nor contain
// HAKO_HOME or HAKO_CONFIG. Folders of different groups may not overlap where either
// group can write (the writer could swap what the other mounts). An accepted mount carries
// the device and inode of the very folder that was checked, so the runtime can prove the
// engine bound that folder and nothing swapped in later. Every refusal names the rule.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import type { Mount } from './runtime.ts';

export const DEFAULT_BLOCKED: readonly string[] = [
  '.ssh', '.gnupg', '.aws', '.azure', '.gcloud', '.config/gcloud', '.kube', '.docker', '.config/hako',
  '.env', '.env.*', '.netrc', '.npmrc', '.pypirc', '.git-credentials', '.password-store', '.vault-token',
  'id_rsa', 'id_ed25519', 'id_ecdsa', 'id_dsa', '*.pem', '*.key', '*.p12', '*.pfx', '*.kdbx',
  'credentials', 'credentials.json', 'secrets', 'secrets.env', 'hako.db',
];

/** How deep and how wide a mount is searched for blocked entries inside it. */
const SCAN_DEPTH = 3;
const SCAN_ENTRIES = 5000;

export interface AllowedRoot {
  readonly path: string;
  /** The root may be mounted read-write (by the main group). */
  readonly readWrite: boolean;
  /** Non-main groups may mount it read-write too (they get read-only otherwise). */
  readonly nonMainReadWrite: boolean;
}

export interface MountPolicy {
  readonly roots: readonly AllowedRoot[];
  readonly blocked: readonly string[];
  /** The file it came from, or null when there is none (then nothing may be mounted). */
  readonly file: string | null;
}

/** What a group asked for; stored with the group and checked again at every start. */
export interface MountRequest {
  readonly hostPath: string;
  readonly readWrite: boolean;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
}

function expand(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** Reads one policy file as JSON; undefined when it does not exist. */
function readPolicyJson(configDir: string, name: string, example: string): { file: string; json: unknown } | undefined {
  const file = path.join(configDir, name);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return { file, json: JSON.parse(raw) };
  } catch (err) {
    throw new PolicyError(`${file} is not valid JSON (${(err as Error).message}); expected ${example}`);
  }
}

export function loadMountPolicy(configDir: string): MountPolicy {
  const read = readPolicyJson(configDir, 'mounts.json', '{"allowedRoots": [{"path": "~/notes", "readWrite": false}], "blockedPatterns": []}');
  if (!read) return { roots: [], blocked: DEFAULT_BLOCKED, file: null };
  const { file, json } = read;
  const o = json as { allowedRoots?: unknown; blockedPatterns?: unknown };
  if (typeof json !== 'object' || json === null || !Array.isArray(o.allowedRoots ?? [])) throw new PolicyError(`${file}: "allowedRoots" must be a list of {"path", "readWrite"}`);
  const roots = ((o.allowedRoots ?? []) as unknown[]).map((r, i) => {
    const root = r as { path?: unknown; readWrite?: unknown; nonMainReadWrite?: unknown };
    if (typeof root?.path !== 'string' || !path.isAbsolute(expand(root.path))) throw new PolicyError(`${file}: allowedRoots[${i}].path must be an absolute path or start with ~/`);
    return { path: expand(root.path), readWrite: root.readWrite === true, nonMainReadWrite: root.nonMainReadWrite === true };
  });
  const extra = o.blockedPatterns ?? [];
  if (!Array.isArray(extra) || extra.some((p) => typeof p !== 'string' || p === '')) throw new PolicyError(`${file}: "blockedPatterns" must be a list of names or globs like "*.sqlite"`);
  return { roots, blocked: [...DEFAULT_BLOCKED, ...(extra as string[])], file };
}

/** Whether one path component matches a single-segment pattern (`*` within the name only). */
function matchName(name: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
  return re.test(name);
}

/** The first blocked pattern matching any run of components of `p`, if any. */
export function blockedBy(p: string, patterns: readonly string[]): string | undefined {
  const parts = p.split(path.sep).filter(Boolean);
  for (const pattern of patterns) {
    const segs = pattern.split('/').filter(Boolean);
    for (let i = 0; i + segs.length <= parts.length; i++) {
      if (segs.every((s, j) => matchName(parts[i + j]!, s))) return pattern;
    }
  }
  return undefined;
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

/** A blocked entry within the first levels of `dir` (bounded), as a path relative to it. */
function blockedInside(dir: string, patterns: readonly string[]): { entry: string; pattern: string } | undefined {
  let seen = 0;
  const walk = (rel: string, depth: number): { entry: string; pattern: string } | undefined => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return undefined;
    }
    for (const e of entries) {
      if (++seen > SCAN_ENTRIES) return undefined;
      const entry = path.join(rel, e.name);
      const pattern = blockedBy(entry, patterns);
      if (pattern) return { entry, pattern };
      if (e.isDirectory() && depth < SCAN_DEPTH) {
        const found = walk(entry, depth + 1);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk('', 1);
}

/** A mount another group holds, for the overlap rule. */
export interface OtherMount {
  readonly group: string;
  readonly hostPath: string;
  readonly readWrite: boolean;
}

export interface MountContext {
  readonly group: string;
  readonly isMain: boolean;
  readonly home: string;
  readonly configDir: string;
  /** Every other group's mounts (see `othersOf`). */
  readonly others: readonly OtherMount[];
}

export type MountCheck = { ok: true; hostPath: string; readonly: boolean; identity: string } | { ok: false; reason: string };

/** The mounts of every group but `self`, from the stored groups. */
export function othersOf(groups: readonly { readonly name: string; readonly mounts: readonly MountRequest[] }[], self: string): OtherMount[] {
  return groups.filter((g) => g.name !== self).flatMap((g) => g.mounts.map((m) => ({ group: g.name, hostPath: m.hostPath, readWrite: m.readWrite })));
}

/** A path as given (expanded) and, when it resolves elsewhere now, as resolved. */
function spellings(p: string): string[] {
  const given = path.resolve(expand(p));
  try {
    const real = fs.realpathSync(given);
    return real === given ? [given] : [given, real];
  } catch {
    return [given];
  }
}

/**
 * Why `mine` may not be mounted beside another group's mount, if it may not: the two
 * overlap and either is writable. A writer could swap a folder on the other's path for a
 * link between hako's check and the engine's bind mount, or plant what the other reads.
 */
export function overlapProblem(mine: readonly string[], readWrite: boolean, others: readonly OtherMount[]): string | undefined {
  for (const o of others) {
    if (!readWrite && !o.readWrite) continue;
    const theirs = spellings(o.hostPath);
    const how = `which group "${o.group}" mounts ${o.readWrite ? 'read-write' : 'read-only'}`;
    const hint = `an agent that can write there could swap one for a link to any host folder (remove one of the two: hako groups mounts ${o.group} remove ${o.hostPath})`;
    if (mine.some((a) => theirs.some((b) => inside(a, b)))) return `it lies inside ${o.hostPath}, ${how}; ${hint}`;
    if (mine.some((a) => theirs.some((b) => inside(b, a)))) return `it contains ${o.hostPath}, ${how}; ${hint}`;
  }
  return undefined;
}

/**
 * Opens the folder at `real` (never through a link) and checks that the descriptor is the
 * folder now at that path, so what is scanned and recorded is what the path checks saw.
 * Undefined when it is not (a component was swapped meanwhile) or cannot be opened.
 */
function openChecked(real: string): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  if (process.platform === 'linux') {
    let now = '';
    try {
      now = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch { /* no /proc: treated as swapped */ }
    if (now !== real) {
      fs.closeSync(fd);
      return undefined;
    }
  }
  return fd;
}

/** Decides one requested mount for one group. Pure except for reading the file system. */
export function checkMount(policy: MountPolicy, req: MountRequest, ctx: MountContext): MountCheck {
  const where = policy.file ?? path.join(ctx.configDir, 'mounts.json');
  const refuse = (why: string): MountCheck => ({ ok: false, reason: `group "${ctx.group}" mounts ${req.hostPath}: ${why} (edit ${where} to change the policy)` });
  if (req.hostPath.split(/[\\/]/).includes('..')) return refuse('the path contains ".."');
  const given = expand(req.hostPath);
  if (!path.isAbsolute(given)) return refuse('the path must be absolute or start with ~/');
  if (!policy.file) return refuse('there is no mount policy, so no extra folders may be mounted');
  const givenBlock = blockedBy(given, policy.blocked);
  if (givenBlock) return refuse(`blocked by pattern ${givenBlock}`);
  // Before anything resolves the path: a folder mid-swap may not exist or be a link now.
  const overlap = overlapProblem(spellings(given), req.readWrite, ctx.others);
  if (overlap) return { ok: false, reason: `group "${ctx.group}" mounts ${req.hostPath}: ${overlap}` };
  let real: string;
  try {
    real = fs.realpathSync(given);
  } catch {
    return refuse('it does not exist');
  }
  if (!fs.statSync(real).isDirectory()) return refuse('it is not a folder');
  const realBlock = blockedBy(real, policy.blocked);
  if (realBlock) return refuse(`it resolves to ${real}, blocked by pattern ${realBlock}`);
  for (const [label, p] of [['HAKO_HOME', ctx.home], ['HAKO_CONFIG', ctx.configDir]] as const) {
    const own = fs.existsSync(p) ? fs.realpathSync(p) : path.resolve(p);
    if (inside(real, own) || inside(own, real)) return refuse(`it overlaps ${label} (${own}), which no container may see`);
  }
  const root = policy.roots.find((r) => {
    try {
      return inside(real, fs.realpathSync(r.path));
    } catch {
      return false;
    }
  });
  if (!root) return refuse(`${real === given ? 'it' : `it resolves to ${real}, which`} is not under an allowed root (allowed: ${policy.roots.map((r) => r.path).join(', ') || 'none'})`);
  if (req.readWrite && !root.readWrite) return refuse(`the root ${root.path} is read-only`);
  if (req.readWrite && !ctx.isMain && !root.nonMainReadWrite) return refuse(`the root ${root.path} is read-only for groups other than main (set "nonMainReadWrite": true to allow)`);
  const fd = openChecked(real);
  if (fd === undefined) return refuse(`it changed while it was being checked (${real} is no longer the folder that was resolved)`);
  try {
    // Scanned through the descriptor where /proc allows: exactly the folder recorded below.
    const inner = blockedInside(process.platform === 'linux' ? `/proc/self/fd/${fd}` : real, policy.blocked);
    if (inner) return refuse(`it contains ${inner.entry}, blocked by pattern ${inner.pattern}`);
    const st = fs.fstatSync(fd, { bigint: true });
    return { ok: true, hostPath: real, readonly: !req.readWrite, identity: `${st.dev}:${st.ino}` };
  } finally {
    fs.closeSync(fd);
  }
}

/** Checks every requested mount; throws PolicyError naming the first refusal. */
export function resolveMounts(policy: MountPolicy, requests: readonly MountRequest[], ctx: MountContext): Mount[] {
  const used = new Set<string>();
  return requests.map((req) => {
    const c = checkMount(policy, req, ctx);
    if (!c.ok) throw new PolicyError(c.reason);
    let name = path.basename(c.hostPath).replace(/[^A-Za-z0-9._-]/g, '_') || 'root';
    for (let i = 2; used.has(name); i++) name = `${path.basename(c.hostPath)}-${i}`;
    used.add(name);
    return { host: c.hostPath, container: `${CONTAINER_PATHS.extra}/${name}`, readonly: c.readonly, identity: c.identity };
  });
}

/** Parses `HOSTPATH[:ro|:rw]` as given on the command line. */
export function parseMountArg(arg: string): MountRequest {
  const m = /^(.*?)(?::(ro|rw))?$/.exec(arg)!;
  if (!m[1]) throw new PolicyError(`mount "${arg}" is empty: use HOSTPATH[:ro|:rw]`);
  return { hostPath: m[1], readWrite: m[2] === 'rw' };
}

// ---- egress allowlist and credentials ------------------------------------------------

export interface SecretRule {
  readonly name: string;
  /** Hosts the value may be sent to (exact, or "*.example.com"). */
  readonly hosts: readonly string[];
  /** Groups that may use it. */
  readonly groups: readonly string[];
  /** Request headers the value may be put into (lower case); default ["authorization"]. */
  readonly headers: readonly string[];
}

export interface EgressConfig {
  /** Domains per group; "*" as a group name applies to every group. */
  readonly domains: Readonly<Record<string, readonly string[]>>;
  readonly secrets: readonly SecretRule[];
  readonly file: string | null;
}

const DOMAIN = /^(\*\.)?([a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}$/i;

/** Reads HAKO_CONFIG/egress.json: {"groups": {"main": ["api.github.com"]}, "secrets": {"GITHUB_TOKEN": {"hosts": […], "groups": […], "headers": ["authorization"]}}}. */
export function loadEgressConfig(configDir: string): EgressConfig {
  const read = readPolicyJson(configDir, 'egress.json', '{"groups": {"main": ["api.github.com"]}, "secrets": {}}');
  if (!read) return { domains: {}, secrets: [], file: null };
  const { file } = read;
  const json = (read.json ?? {}) as { groups?: unknown; secrets?: unknown };
  const domains: Record<string, string[]> = {};
  for (const [group, list] of Object.entries((json.groups ?? {}) as Record<string, unknown>)) {
    if (!Array.isArray(list) || list.some((d) => typeof d !== 'string' || !DOMAIN.test(d))) {
      throw new PolicyError(`${file}: groups.${group} must be a list of domain names like "api.github.com" or "*.example.com"`);
    }
    domains[group] = (list as string[]).map((d) => d.toLowerCase());
  }
  const secrets = Object.entries((json.secrets ?? {}) as Record<string, { hosts?: unknown; groups?: unknown; headers?: unknown }>).map(([name, rule]) => {
    if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(name)) throw new PolicyError(`${file}: secret name "${name}" must be UPPER_SNAKE_CASE`);
    const hosts = rule?.hosts, groups = rule?.groups, headers = rule?.headers ?? ['authorization'];
    if (!Array.isArray(hosts) || hosts.length === 0 || hosts.some((h) => typeof h !== 'string' || !DOMAIN.test(h))) throw new PolicyError(`${file}: secrets.${name}.hosts must list the hosts it may be sent to`);
    if (!Array.isArray(groups) || groups.length === 0 || groups.some((g) => typeof g !== 'string')) throw new PolicyError(`${file}: secrets.${name}.groups must list the groups that may use it`);
    if (!Array.isArray(headers) || headers.length === 0 || headers.some((h) => typeof h !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(h))) throw new PolicyError(`${file}: secrets.${name}.headers must list the request headers the value may be sent in, e.g. ["authorization"] (the default) or ["x-api-key"]`);
    return { name, hosts: (hosts as string[]).map((h) => h.toLowerCase()), groups: groups as string[], headers: (headers as string[]).map((h) => h.toLowerCase()) };
  });
  return { domains, secrets, file };
}

/** The domains a group may reach. */
export function domainsFor(cfg: EgressConfig, group: string): string[] {
  return [...new Set([...(cfg.domains['*'] ?? []), ...(cfg.domains[group] ?? [])])];
}

/**
 * Reads HAKO_CONFIG/secrets.env (NAME=value lines, `#` comments, optional quotes); empty
 * when there is none. Refused when other users could read it. Errors name the line, never
 * the value.
 */
export function readSecretsFile(configDir: string): Map<string, string> {
  const file = path.join(configDir, 'secrets.env');
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  if ((st.mode & 0o077) !== 0) throw new PolicyError(`${file} has mode ${(st.mode & 0o777).toString(8)}: other users could read it; run chmod 600 ${file}`);
  const values = new Map<string, string>();
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Z][A-Z0-9_]{0,63})=(.*)$/.exec(t);
    if (!m) throw new PolicyError(`${file}:${i + 1}: expected NAME=value`);
    values.set(m[1]!, m[2]!.replace(/^(['"])(.*)\1$/, '$2'));
  });
  return values;
}

/**
 * The secrets of secrets.env that egress.json binds to hosts. Every other name must be
 * one the host itself reads (`hostOnly`: a chat channel's settings and credentials, never
 * given to a container); anything else is refused as a mistake (hako would not know where
 * it may be sent). A bound value must be long enough to be masked reliably.
 */
export function loadSecrets(configDir: string, rules: readonly SecretRule[], hostOnly: readonly string[] = []): Map<string, string> {
  const file = path.join(configDir, 'secrets.env');
  const values = readSecretsFile(configDir);
  for (const [name, value] of values) {
    if (hostOnly.includes(name) && !rules.some((r) => r.name === name)) {
      values.delete(name);
      continue;
    }
    if (!rules.some((r) => r.name === name)) throw new PolicyError(`${file}: ${name} has no rule in egress.json ("secrets": {"${name}": {"hosts": […], "groups": […]}}), so hako would not know where it may be sent`);
    if (value.length < 8) throw new PolicyError(`${file}: the value of ${name} is shorter than 8 characters; too short to be masked in logs reliably`);
  }
  return values;
}
