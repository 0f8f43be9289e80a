// Runs a child process with a time limit, an AbortSignal and bounded combined output.
// Invariants: the whole process group is killed on timeout, on abort and when the command
// itself exits (so nothing it started in the background outlives it); memory stays bounded
// however much the child prints (only the head and the tail are kept).

import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

export interface RunOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly timeoutMs: number;
  readonly maxChars: number;
  readonly signal: AbortSignal;
}

export interface RunResult {
  /** Combined stdout + stderr, with a note in the middle when characters were cut. */
  readonly output: string;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  /** Set when the process could not be started (e.g. ENOENT). */
  readonly spawnError?: string;
}

/** Keeps the first and last `max / 2` characters of a stream of text. */
class HeadTail {
  #half: number;
  #head = '';
  #tail = '';
  #total = 0;
  constructor(max: number) { this.#half = Math.floor(max / 2); }

  push(s: string): void {
    this.#total += s.length;
    const room = this.#half - this.#head.length;
    if (room > 0) { this.#head += s.slice(0, room); s = s.slice(room); }
    if (s.length === 0) return;
    this.#tail += s;
    if (this.#tail.length > 2 * this.#half) this.#tail = this.#tail.slice(-this.#half);
  }

  text(): string {
    const kept = this.#head.length + Math.min(this.#tail.length, this.#half);
    if (this.#total <= 2 * this.#half) return this.#head + this.#tail;
    return `${this.#head}\n[… ${this.#total - kept} characters cut …]\n${this.#tail.slice(-this.#half)}`;
  }
}

/** After the child exits, wait at most this long for its pipes to close (a setsid'd grandchild may hold them). */
const DRAIN_MS = 500;

export function runProcess(o: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    const out = new HeadTail(o.maxChars);
    let timedOut = false;
    let aborted = false;
    let settled = false;
    const child = spawn(o.command, o.args, { cwd: o.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });

    const killGroup = (): void => {
      try { if (child.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    };
    const onAbort = (): void => { aborted = true; killGroup(); };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, o.timeoutMs);
    o.signal.addEventListener('abort', onAbort, { once: true });
    if (o.signal.aborted) onAbort();

    const done = (r: RunResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(r);
    };
    for (const stream of [child.stdout, child.stderr]) {
      const dec = new StringDecoder('utf8');
      stream.on('data', (b: Buffer) => out.push(dec.write(b)));
      stream.on('end', () => out.push(dec.end()));
    }
    child.on('error', (err) => done({ output: '', exitCode: null, timedOut, aborted, spawnError: err.message }));
    const finish = (code: number | null): void => done({ output: out.text(), exitCode: code, timedOut, aborted });
    child.on('close', (code) => finish(code));
    child.on('exit', (code) => {
      killGroup(); // leftovers would pile up in a warm container (pids limit) and hold the pipes
      setTimeout(() => finish(code), DRAIN_MS).unref();
    });
  });
}
