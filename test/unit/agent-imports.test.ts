// The agent image carries no npm package (container/Dockerfile, build-offline.sh): that holds
// only while agent/ and protocol/ import nothing but node: modules and their own files. And
// what an agent loads at its cold start stays small.
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

test('agent imports - agent/ and protocol/ import only node: modules and files under agent/ or protocol/', () => {
  const outside: string[] = [];
  let relative = 0;
  for (const file of [...sources('agent'), ...sources('protocol')]) {
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:\bfrom|\bimport\(?)\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      const target = spec.startsWith('.') ? path.relative(ROOT, path.resolve(path.dirname(file), spec)) : spec;
      if (/^(agent|protocol)\//.test(target)) relative++;
      else outside.push(`${path.relative(ROOT, file)} imports ${spec}`);
    }
  }
  assert.ok(relative > 50, `the scan found the agent's own imports (${relative})`);
  assert.deepEqual(outside, []);
});

test('agent imports - /app/package.json of the image declares ES modules and no dependencies', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'container', 'app-package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.dependencies, undefined);
});

test('agent imports - node:http and node:crypto come through agent/builtins.ts (require), never as ES module imports', () => {
  // An ES module import of node:http reads its lazy WebSocket export, which loads undici,
  // TLS and HTTP/2 into every agent's cold start (see agent/builtins.ts).
  const offenders: string[] = [];
  for (const file of [...sources('agent'), ...sources('protocol')]) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^import\s+(?!type\b)[^;]*?from\s+'(node:(?:http|https|crypto))'/gm)) {
      offenders.push(`${path.relative(ROOT, file)} imports ${m[1]}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('agent imports - loading every agent module loads no undici, TLS or HTTP/2 into the process', () => {
  const script = `
    import { readdirSync } from 'node:fs';
    const dir = ${JSON.stringify(path.join(ROOT, 'agent'))};
    for (const f of readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.ts') && f !== 'main.ts')) await import(dir + '/' + f);
    console.log(JSON.stringify(process.moduleLoadList));`;
  const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
  assert.ok(loaded.includes('NativeModule http'), 'node:http itself is loaded (the model client needs it)');
  assert.deepEqual(loaded.filter((m) => /undici|NativeModule tls|http2/.test(m)), []);
});
