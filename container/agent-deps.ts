// The agent image's own npm dependencies: the packages the agent imports (AGENT_PACKAGES)
// and everything they need, cut out of the project's package.json and package-lock.json.
// The image installs only these (`npm ci` on the cut pair), and its source hash covers only
// these, so a chat skill (whose packages go into the same package.json) neither puts its
// library into the agents' containers nor makes the image stale.
//
// Runs as a script inside the image build too (`node agent-deps.ts REPO OUT`), so it
// imports nothing but node: modules. Invariants: the cut lockfile keeps each kept entry
// byte-equal in content (versions, integrity), so `npm ci` installs exactly what the
// project locked; a package the agent needs that the lockfile lacks is an error, not a skip.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** What agent/ and protocol/ import from npm (test/unit/agent-deps.test.ts checks the list against the sources). */
export const AGENT_PACKAGES = ['@anthropic-ai/sdk', 'openai'] as const;

type Entry = {
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly [key: string]: unknown;
};
type Lock = { readonly packages: Record<string, Entry>; readonly [key: string]: unknown };
type Pkg = { readonly dependencies?: Record<string, string>; readonly [key: string]: unknown };

/** Where Node would find `name` from the package at `from` ('' for the root), as the lockfile lays node_modules out. */
function resolveIn(packages: Lock['packages'], from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    base = base.slice(0, base.lastIndexOf('node_modules/')).replace(/\/$/, '');
  }
}

/** The package.json and package-lock.json the agent image is installed from, as text. Pure. */
export function agentManifest(pkgText: string, lockText: string): { packageJson: string; lock: string } {
  const pkg = JSON.parse(pkgText) as Pkg;
  const lock = JSON.parse(lockText) as Lock;
  const dependencies: Record<string, string> = {};
  for (const name of AGENT_PACKAGES) {
    const spec = pkg.dependencies?.[name];
    if (spec === undefined) throw new Error(`package.json has no dependency ${name}, which the agent imports: add it back (npm install --save-exact ${name})`);
    dependencies[name] = spec;
  }
  const kept = new Set<string>();
  const visit = (from: string, name: string, optional: boolean) => {
    const at = resolveIn(lock.packages, from, name);
    if (!at) {
      if (optional) return;
      throw new Error(`package-lock.json has no entry for ${name} (needed from ${from || 'the project'}): run npm install to bring the lockfile up to date`);
    }
    if (kept.has(at)) return;
    kept.add(at);
    const e = lock.packages[at]!;
    for (const d of Object.keys(e.dependencies ?? {})) visit(at, d, false);
    for (const d of Object.keys(e.optionalDependencies ?? {})) visit(at, d, true);
    // npm installs a peer that is not marked optional, so the image needs it too.
    for (const d of Object.keys(e.peerDependencies ?? {})) visit(at, d, e.peerDependenciesMeta?.[d]?.optional === true);
  };
  for (const name of AGENT_PACKAGES) visit('', name, false);

  const { devDependencies: _dev, scripts: _scripts, bin: _bin, ...rest } = pkg;
  const rootEntry = { ...lock.packages['']! };
  delete (rootEntry as Record<string, unknown>).devDependencies;
  delete (rootEntry as Record<string, unknown>).bin;
  const packages: Record<string, Entry> = { '': { ...rootEntry, dependencies } };
  for (const key of [...kept].sort()) packages[key] = lock.packages[key]!;
  return {
    packageJson: `${JSON.stringify({ ...rest, dependencies }, null, 2)}\n`,
    lock: `${JSON.stringify({ ...lock, packages }, null, 2)}\n`,
  };
}

/** Reads `repo`'s package.json and package-lock.json and writes the agent's pair into `out`. */
export function writeAgentManifest(repo: string, out: string): void {
  const m = agentManifest(readFileSync(path.join(repo, 'package.json'), 'utf8'), readFileSync(path.join(repo, 'package-lock.json'), 'utf8'));
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'package.json'), m.packageJson);
  writeFileSync(path.join(out, 'package-lock.json'), m.lock);
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const [repo, out] = process.argv.slice(2);
  if (!repo || !out) {
    console.error('usage: node container/agent-deps.ts REPO OUT   (writes OUT/package.json and OUT/package-lock.json for the agent image)');
    process.exit(2);
  }
  writeAgentManifest(repo, out);
}
