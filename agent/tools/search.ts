// The search tools: glob (node:fs glob) and grep (ripgrep). Both run in the workspace and
// cap their output so one broad pattern cannot flood the model's context.

import { glob as fsGlob } from 'node:fs/promises';
import { runProcess } from './process.ts';
import { fail, ok, type ToolHandler } from './types.ts';

export const GLOB_MAX_RESULTS = 1000;
export const GREP_MAX_OUTPUT_CHARS = 30_000;
const GREP_TIMEOUT_MS = 60_000;

export const globTool: ToolHandler = async (args, ctx, signal) => {
  const pattern = args.pattern as string;
  const found: string[] = [];
  let more = false;
  for await (const entry of fsGlob(pattern, { cwd: ctx.workspace })) {
    if (signal.aborted) return fail('stopped: the turn was aborted');
    if (entry === '.') continue;
    if (found.length === GLOB_MAX_RESULTS) { more = true; break; }
    found.push(entry);
  }
  if (found.length === 0) return ok(`no files match ${pattern}`);
  found.sort();
  const note = more ? `\n[more than ${GLOB_MAX_RESULTS} matches; showing the first ${GLOB_MAX_RESULTS} found — narrow the pattern]` : '';
  return ok(found.join('\n') + note);
};

export const grepTool: ToolHandler = async (args, ctx, signal) => {
  const pattern = args.pattern as string;
  const path = (args.path as string | undefined) ?? '.';
  const r = await runProcess({
    command: 'rg',
    args: ['--line-number', '--no-heading', '--color', 'never', '--', pattern, path],
    cwd: ctx.workspace,
    timeoutMs: GREP_TIMEOUT_MS,
    maxChars: GREP_MAX_OUTPUT_CHARS,
    signal,
  });
  if (r.spawnError) return fail(`could not run ripgrep (rg): ${r.spawnError}`);
  if (r.timedOut) return fail(`grep timed out after ${GREP_TIMEOUT_MS} ms; narrow the path or pattern`);
  if (r.aborted) return fail('stopped: the turn was aborted');
  if (r.exitCode === 1) return ok('no matches');
  if (r.exitCode !== 0) return fail(`grep failed (exit code ${r.exitCode}): ${r.output.trim()}`);
  return ok(r.output.replace(/\n$/, ''));
};
