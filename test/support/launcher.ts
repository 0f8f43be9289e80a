// Runs bin/hako.mjs, the `hako` entry point, with its own cache folder (XDG_CACHE_HOME) and
// Node's compile-cache decisions logged (NODE_DEBUG_NATIVE=COMPILE_CACHE), and reads them.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LAUNCHER = new URL('../../bin/hako.mjs', import.meta.url).pathname;
export const VERSION = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

export function hako(cacheHome: string, args: string[], extraEnv: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^NODE_(COMPILE_CACHE|DISABLE_COMPILE_CACHE|DEBUG_NATIVE)$/.test(k)) env[k] = v;
  Object.assign(env, { XDG_CACHE_HOME: cacheHome, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' }, extraEnv);
  return spawnSync(process.execPath, [LAUNCHER, ...args], { env, encoding: 'utf8' });
}

/** Per TypeScript file: whether its stripped code came from the cache. */
export function transpiles(stderr: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const m of stderr.matchAll(/retrieving transpile cache for StrippedTypeScript (\S+?)\.\.\.success/g)) out.set(m[1]!, true);
  for (const m of stderr.matchAll(/no transpile cache for StrippedTypeScript (\S+)/g)) out.set(m[1]!, false);
  return out;
}

export function tempHome(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-launcher-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
