#!/usr/bin/env node
// The `hako` command's entry point, in plain JavaScript on purpose. Two things happen here
// because they must happen before any TypeScript loads; everything else is src/main.ts.
//
// 1. `hako start`, the long-running host, re-executes itself in place (same pid, same
//    stdio) with a small V8 young generation: under a burst of messages V8 would otherwise
//    grow it by ~20 MB that the process then keeps. A V8 heap flag only takes effect at
//    process start; the re-exec costs one Node start (~40 ms) once per host start.
// 2. Node's compile cache is turned on before the first TypeScript file loads, so a host
//    started with a warm cache never loads Node's TypeScript stripper, a WebAssembly module
//    whose memory (~35 MB for the host's modules) is never given back.
//
// The cache holds code the host runs, so it lives in a folder only this user can use —
// never Node's default in the shared temp folder, never under HAKO_HOME (parts of it are
// mounted into containers). A folder that is a symlink, someone else's, or open to others
// is not used: the host then starts without a cache (slower, same behaviour).

import { lstatSync, mkdirSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** `${XDG_CACHE_HOME:-~/.cache}/hako/compile-cache`, created 0700; null when it is unsafe or cannot be made. */
function privateCacheDir() {
  // The XDG spec says a relative XDG_CACHE_HOME is to be ignored.
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  const dir = join(base, 'hako', 'compile-cache');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    const mine = typeof process.getuid !== 'function' || st.uid === process.getuid();
    if (st.isDirectory() && mine && (st.mode & 0o077) === 0) return dir;
    process.emitWarning(`not using the compile cache at ${dir}: it must be a directory owned by you with mode 0700 (fix: chmod 700 ${dir}, or remove it)`);
  } catch {
    // No writable cache folder (read-only home, no HOME): run without one.
  }
  return null;
}

const HOST_V8_FLAGS = ['--max-semi-space-size=2'];

if (process.argv[2] === 'start' && typeof process.execve === 'function' && !HOST_V8_FLAGS.every((f) => process.execArgv.includes(f))) {
  process.execve(process.execPath, [process.execPath, ...HOST_V8_FLAGS, ...process.execArgv, ...process.argv.slice(1)], process.env);
}

// NODE_COMPILE_CACHE, when set, has already enabled Node's own cache: leave it as it is.
if (!process.env.NODE_COMPILE_CACHE && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  const dir = privateCacheDir();
  if (dir) enableCompileCache(dir);
}

await import('../src/main.ts');
