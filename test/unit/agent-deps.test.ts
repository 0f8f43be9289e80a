// The agent image's own dependencies (container/agent-deps.ts): what the agent imports, cut
// out of the project's package files, so that no chat skill's library reaches a container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT_PACKAGES, agentManifest } from '../../container/agent-deps.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name) && !e.parentPath.includes('node_modules'))
    .map((e) => path.join(e.parentPath, e.name));
}

test('agent deps - AGENT_PACKAGES are exactly the npm packages that agent/ and protocol/ import', () => {
  const imported = new Set<string>();
  for (const file of [...sources('agent'), ...sources('protocol')]) {
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'([^'.][^']*)'/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  assert.deepEqual([...imported].sort(), [...AGENT_PACKAGES].sort());
});

test('agent deps - the cut of the real project holds the agent\'s packages and what they need, nothing of the host\'s or a skill\'s', () => {
  const pkgText = readFileSync(path.join(ROOT, 'package.json'), 'utf8');
  const lockText = readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8');
  const m = agentManifest(pkgText, lockText);
  const pkg = JSON.parse(m.packageJson) as { type: string; dependencies: Record<string, string>; devDependencies?: unknown; scripts?: unknown };
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), [...AGENT_PACKAGES].sort());
  assert.equal(pkg.type, 'module', 'the agent is ES modules: /app/package.json must say so');
  assert.equal(pkg.devDependencies, undefined);
  assert.equal(pkg.scripts, undefined);
  const lock = JSON.parse(m.lock) as { packages: Record<string, { version?: string; dev?: boolean }> };
  const full = JSON.parse(lockText) as { packages: Record<string, unknown> };
  for (const name of AGENT_PACKAGES) assert.ok(lock.packages[`node_modules/${name}`], name);
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '') continue;
    assert.deepEqual(entry, full.packages[key], `${key} is kept exactly as the project locked it`);
    assert.notEqual(entry.dev, true, `${key} is a dev package`);
  }
  for (const host of ['croner', 'typescript', 'fast-check', 'playwright-core']) {
    assert.equal(lock.packages[`node_modules/${host}`], undefined, `${host} is the host's, not the agent's`);
  }
});

test('agent deps - a package the agent imports that the lockfile lacks is an error naming it and the fix', () => {
  const pkg = JSON.stringify({ name: 'x', version: '1.0.0', dependencies: { '@anthropic-ai/sdk': '1.0.0', openai: '2.0.0' } });
  const lock = JSON.stringify({ lockfileVersion: 3, packages: { '': { dependencies: {} }, 'node_modules/openai': { version: '2.0.0' } } });
  assert.throws(() => agentManifest(pkg, lock), /package-lock\.json has no entry for @anthropic-ai\/sdk .*run npm install/);
  assert.throws(() => agentManifest(JSON.stringify({ dependencies: {} }), lock), /package\.json has no dependency @anthropic-ai\/sdk, which the agent imports/);
});

test('agent deps - a nested copy of a package is found where Node would find it, before the hoisted one', () => {
  const pkg = JSON.stringify({ name: 'x', version: '1.0.0', dependencies: { '@anthropic-ai/sdk': '1.0.0', openai: '2.0.0' } });
  const lock = JSON.stringify({ lockfileVersion: 3, packages: {
    '': { dependencies: {} },
    'node_modules/@anthropic-ai/sdk': { version: '1.0.0', dependencies: { helper: '^2' } },
    'node_modules/@anthropic-ai/sdk/node_modules/helper': { version: '2.0.0' },
    'node_modules/helper': { version: '1.0.0' },
    'node_modules/openai': { version: '2.0.0', optionalDependencies: { 'not-here': '1' }, peerDependencies: { zod: '3' }, peerDependenciesMeta: { zod: { optional: true } } },
  } });
  const kept = Object.keys((JSON.parse(agentManifest(pkg, lock).lock) as { packages: object }).packages);
  assert.deepEqual(kept, ['', 'node_modules/@anthropic-ai/sdk', 'node_modules/@anthropic-ai/sdk/node_modules/helper', 'node_modules/openai']);
});
