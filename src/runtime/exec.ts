// Runs host commands for the runtime layer: always an argument array (never a shell
// string), output captured or streamed line by line, AbortSignal honoured.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';

export type CommandResult = {
  /** Exit code; null when the command could not start or was killed. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the command could not start (ENOENT, EACCES) or hit its timeout. */
  readonly error?: Error;
};

export type CommandOptions = {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
};

/**
 * Runs a command and collects its output.
 * Contract: never rejects; a missing binary, a timeout or an abort is reported through
 * `error` with `code: null`. A timeout or abort kills the whole process group.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  opts: CommandOptions = {},
): Promise<CommandResult> {
  let stdout = '';
  let stderr = '';
  return runProcess(command, args, opts, {
    stdout: (chunk) => (stdout += chunk),
    stderr: (chunk) => (stderr += chunk),
  }).then(({ code, error }) => ({ code, stdout, stderr, ...(error ? { error } : {}) }));
}

export type StreamOptions = CommandOptions & {
  /** Called with each non-empty output line (stdout and stderr interleaved). */
  readonly onLine: (line: string) => void;
};

/**
 * Runs a command and passes every output line to `onLine`; resolves with the exit code and
 * the last 20 lines (for error messages).
 * Contract: never rejects (see runCommand); `onLine` must not throw.
 */
export async function streamCommand(
  command: string,
  args: readonly string[],
  opts: StreamOptions,
): Promise<{ code: number | null; tail: readonly string[]; error?: Error }> {
  const tail: string[] = [];
  const emit = (line: string) => {
    if (line.trim() === '') return;
    tail.push(line);
    if (tail.length > 20) tail.shift();
    opts.onLine(line);
  };
  const splitters = [lineSplitter(emit), lineSplitter(emit)] as const;
  const result = await runProcess(command, args, opts, {
    stdout: splitters[0].push,
    stderr: splitters[1].push,
  });
  splitters[0].end();
  splitters[1].end();
  return { ...result, tail };
}

/** Finds an executable on PATH and in the sbin directories a non-root PATH often lacks. */
export async function findExecutable(name: string): Promise<string | null> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/local/sbin', '/usr/sbin', '/sbin']) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

type Sinks = { stdout: (chunk: string) => void; stderr: (chunk: string) => void };

function runProcess(
  command: string,
  args: readonly string[],
  opts: CommandOptions,
  sinks: Sinks,
): Promise<{ code: number | null; error?: Error }> {
  return new Promise((resolve) => {
    if (opts.signal?.aborted) {
      resolve({ code: null, error: abortError(opts.signal) });
      return;
    }
    // detached: the child leads its own process group, so a timeout or abort can stop
    // everything it started (docker build, mmdebstrap, apt-get …), not just the parent.
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let failure: Error | undefined;
    const kill = (reason: Error) => {
      failure ??= reason;
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          child.kill('SIGTERM');
        }
      }
    };
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => kill(new Error(`${command} did not finish within ${opts.timeoutMs} ms`)),
            opts.timeoutMs,
          );
    const onAbort = () => kill(abortError(opts.signal));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', sinks.stdout);
    child.stderr.setEncoding('utf8').on('data', sinks.stderr);
    const finish = (code: number | null, error?: Error) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const err = error ?? failure;
      resolve(err ? { code: failure ? null : code, error: err } : { code });
    };
    child.once('error', (error) => finish(null, error));
    child.once('close', (code) => finish(code));
  });
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}

function lineSplitter(emit: (line: string) => void) {
  let pending = '';
  return {
    push: (chunk: string) => {
      pending += chunk;
      const lines = pending.split(/\r\n|\r|\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    },
    end: () => {
      if (pending !== '') emit(pending);
      pending = '';
    },
  };
}
