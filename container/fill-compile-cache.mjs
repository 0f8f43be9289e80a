// Runs once while the agent image is built — inside it, as the agent's uid (1000), with
// NODE_COMPILE_CACHE set — and never at run time. It loads every agent module, both
// providers included, so that the image carries their stripped TypeScript and V8 code
// cache: an agent's cold start is then mostly Node's own start, not module loading. Node keys the cache by Node version, architecture, V8 flags and uid, and checks
// each entry against the file's contents, so a stale or foreign entry is simply not used.
// At run time the root file system is read-only: the cache is only ever read.
//
// Usage: NODE_COMPILE_CACHE=/app/.compile-cache node fill-compile-cache.mjs /app

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { flushCompileCache, getCompileCacheDir } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const app = process.argv[2];
if (!app) {
  console.error('usage: NODE_COMPILE_CACHE=<dir> node fill-compile-cache.mjs <app-dir>');
  process.exit(2);
}
const dir = getCompileCacheDir();
if (!dir) {
  console.error('fill-compile-cache: the compile cache is not enabled (set NODE_COMPILE_CACHE to a writable directory)');
  process.exit(1);
}

// main.ts runs when imported; it is cached by running it below instead.
const main = join(app, 'agent', 'main.ts');
const modules = ['agent', 'protocol']
  .flatMap((top) => readdirSync(join(app, top), { recursive: true, encoding: 'utf8' }).map((rel) => join(app, top, rel)))
  .filter((file) => file.endsWith('.ts') && file !== main)
  .sort();
for (const file of modules) await import(pathToFileURL(file).href);
flushCompileCache();

// With no model configured the agent stops at its config check and exits 2, having loaded
// main.ts and everything it imports up front. The entry flags must match the image's.
const ipc = mkdtempSync(join(tmpdir(), 'hako-fill-'));
const run = spawnSync(process.execPath, [...process.execArgv, main], {
  env: { ...process.env, HAKO_MODEL: '', HAKO_IPC_DIR: ipc },
  encoding: 'utf8',
});
rmSync(ipc, { recursive: true, force: true });
if (run.status !== 2) {
  console.error(`fill-compile-cache: the agent's config check exited ${run.status} (expected 2):\n${run.stderr}`);
  process.exit(1);
}
const entries = readdirSync(dir).length;
console.log(`compile cache: ${modules.length + 1} agent modules, ${entries} entries in ${dir}`);
