// `hako setup` on a ready machine (engine up, image current): besides the engine and the
// image, it leaves the host's modules in the compile cache, so the first `hako start` after
// an install or an update never loads Node's TypeScript stripper.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { hako, tempHome, transpiles } from '../support/launcher.ts';

test('setup - `hako setup` fills the compile cache with every host module, so the first `hako start` strips nothing', (t) => {
  const home = tempHome(t);
  const setup = hako(home, ['setup']);
  assert.equal(setup.status, 0, setup.stdout + setup.stderr);
  assert.match(setup.stdout, /host modules loaded into the compile cache/);
  // What `hako start` loads, through the same cache, in a fresh process.
  const start = new URL('../../src/cli/start.ts', import.meta.url).href;
  const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { enableCompileCache } from 'node:module';
    enableCompileCache(${JSON.stringify(path.join(home, 'hako', 'compile-cache'))});
    await import(${JSON.stringify(start)});`], { env: { ...process.env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' }, encoding: 'utf8' });
  const files = transpiles(probe.stderr);
  assert.ok(files.has(new URL('../../src/core/host.ts', import.meta.url).href), 'the host was loaded');
  assert.deepEqual([...files].filter(([, cached]) => !cached), [], 'every host module came from the cache');
});
