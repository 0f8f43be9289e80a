// The agent image itself: an agent's cold start loads its modules from the compile cache
// baked into the image (container/fill-compile-cache.mjs), under the same read-only root,
// uid and entry flags a real container has. Node logs each cache decision with
// NODE_DEBUG_NATIVE=COMPILE_CACHE; a module compiled afresh shows as "not initialized" or
// "rejected".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { imageTag } from '../../src/runtime/image.ts';

/** Runs the image like the runner does (read-only root, no network, uid 1000) and returns Node's cache decisions. */
function cacheDecisions(extra: readonly string[]): Map<string, string> {
  const run = spawnSync('docker', [
    'run', '--rm', '--read-only', '--network', 'none', '--user', '1000:1000', '--cap-drop', 'ALL',
    '-e', 'NODE_DEBUG_NATIVE=COMPILE_CACHE', '-e', 'HAKO_MODEL=', ...extra,
  ], { encoding: 'utf8' });
  const decisions = new Map<string, string>();
  for (const m of run.stderr.matchAll(/V8 code cache for ESM (file:\/\/\S+) was (accepted|rejected|not initialized)/g)) {
    decisions.set(m[1]!, m[2]!);
  }
  assert.ok(decisions.size > 0, `no compile cache decisions logged (exit ${run.status}):\n${run.stderr.slice(0, 2000)}`);
  return decisions;
}

function notFromCache(decisions: Map<string, string>): string[] {
  return [...decisions].filter(([url, d]) => url.startsWith('file:///app/') && d !== 'accepted').map(([url, d]) => `${url}: ${d}`);
}

test('agent image - the agent starts with every one of its modules from the baked compile cache', () => {
  // With no model configured the agent loads main.ts and all it imports, then stops at its config check.
  const decisions = cacheDecisions([imageTag()]);
  const agent = [...decisions.keys()].filter((url) => url.startsWith('file:///app/agent/'));
  assert.ok(agent.includes('file:///app/agent/main.ts'), 'main.ts was loaded');
  assert.ok(agent.length >= 20, `the agent's modules were loaded (${agent.length})`);
  assert.deepEqual(notFromCache(decisions), []);
});

test('agent image - both providers load from the baked compile cache, and /app holds no npm package', () => {
  const script = "await import('/app/agent/providers/openai.ts'); await import('/app/agent/providers/anthropic.ts');";
  const decisions = cacheDecisions(['--entrypoint', 'node', imageTag(), '--preserve-symlinks', '--input-type=module', '-e', script]);
  const urls = [...decisions.keys()];
  for (const p of ['openai', 'anthropic', 'http']) assert.ok(urls.includes(`file:///app/agent/providers/${p}.ts`), `${p}.ts was loaded`);
  assert.deepEqual(notFromCache(decisions), []);
  const ls = spawnSync('docker', ['run', '--rm', '--network', 'none', '--entrypoint', 'ls', imageTag(), '-A', '/app'], { encoding: 'utf8' });
  assert.equal(ls.status, 0, ls.stderr);
  assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['.compile-cache', 'agent', 'package.json', 'protocol']);
});
