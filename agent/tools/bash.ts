// The `bash` tool: `bash -c <command>` in the workspace with a time limit. Safe because the
// container is the boundary; output is bounded and the exit code is always reported.

import { runProcess } from './process.ts';
import { fail, ok, type ToolHandler } from './types.ts';

export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
export const BASH_MAX_TIMEOUT_MS = 600_000;
export const BASH_MAX_OUTPUT_CHARS = 30_000;

export const bash: ToolHandler = async (args, ctx, signal) => {
  const command = args.command as string;
  const timeoutMs = (args.timeout_ms as number | undefined) ?? BASH_DEFAULT_TIMEOUT_MS;
  if (timeoutMs < 1 || timeoutMs > BASH_MAX_TIMEOUT_MS) {
    return fail(`timeout_ms must be between 1 and ${BASH_MAX_TIMEOUT_MS} (got ${timeoutMs})`);
  }
  const r = await runProcess({ command: 'bash', args: ['-c', command], cwd: ctx.workspace, timeoutMs, maxChars: BASH_MAX_OUTPUT_CHARS, signal });
  if (r.spawnError) return fail(`could not start bash: ${r.spawnError}`);
  const body = r.output.length > 0 ? r.output.replace(/\n$/, '') : '(no output)';
  if (r.timedOut) return fail(`${body}\n[killed: timed out after ${timeoutMs} ms]`);
  if (r.aborted) return fail(`${body}\n[killed: the turn was stopped]`);
  const status = r.exitCode === null ? 'killed by a signal' : `exit code ${r.exitCode}`;
  const text = `${body}\n[${status}]`;
  return r.exitCode === 0 ? ok(text) : fail(text);
};
