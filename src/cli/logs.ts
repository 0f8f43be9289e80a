// `hako logs`: the host's log (HAKO_HOME/logs/hako.log and its rotated hako.log.1 … .N) in a
// human view or as JSON lines, optionally following new lines across rotations. Reads the
// files only, so it works whether or not the host runs.
//
// Invariants: log lines may hold agent-chosen text, so everything printed goes through
// safe-text (no terminal escape reaches the terminal); a line that is not JSON is shown
// as it is (escaped), never a crash; following never skips or repeats a line across a
// rotation (the old file is read to its end before the new one is opened).

import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { loadConfig } from '../core/config.ts';
import { LEVELS, logFile, type Level } from '../core/log.ts';
import { homePaths } from '../core/paths.ts';
import { safeJson, safeLine } from '../core/safe-text.ts';
import { withInterrupt } from './abort.ts';
import { parse, runCommand, UsageError } from './args.ts';

export const help = `Usage: hako logs [-f|--follow] [--group G] [--level L] [-n|--lines N] [--json]

Prints the host's recent log lines, oldest first: local date and time, level, the group
(when the line is about one), the message and its fields. The log is HAKO_HOME/logs/hako.log;
it is rotated at HAKO_LOG_MAX_BYTES (default 10m) into hako.log.1 … hako.log.5, and the
recent lines are read across them. Works whether or not hako is running.

  -f, --follow   keep printing new lines as they are written (also across a rotation);
                 stop with Ctrl+C
  --group G      only lines about group G
  --level L      only lines at level L or above: debug, info, warn or error
  -n, --lines N  how many recent lines to print first (default 50; 0 with -f: only new ones)
  --json         print the lines as JSON, one per line, as stored

With --group or --level, lines that carry no group or level (and lines that are not JSON)
are left out. Text from agents and chats is shown with control characters escaped.`;

const DEFAULT_LINES = 50;
const MAX_LINES = 1_000_000;
/** Rotated files looked at beyond the kept five, in case an older setting kept more. */
const MAX_ROTATED = 100;
const POLL_MS = 250;

export interface Filter {
  readonly group?: string;
  readonly level?: Level;
}

/** One log line: a JSON object as written by the logger, or anything else as it is. */
export type Entry =
  | { readonly kind: 'json'; readonly value: Record<string, unknown> }
  | { readonly kind: 'raw'; readonly text: string };

export function parseLine(line: string): Entry {
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === 'object' && !Array.isArray(value)) return { kind: 'json', value: value as Record<string, unknown> };
  } catch { /* not JSON: shown as it is */ }
  return { kind: 'raw', text: line };
}

export function matches(e: Entry, f: Filter): boolean {
  if (f.group === undefined && f.level === undefined) return true;
  if (e.kind === 'raw') return false;
  if (f.group !== undefined && e.value.group !== f.group) return false;
  if (f.level === undefined) return true;
  const level = e.value.level;
  return typeof level === 'string' && level in LEVELS && LEVELS[level as Level] >= LEVELS[f.level];
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `2026-01-31 09:05:07` in this machine's time zone; the stored text when it is not a time. */
export function localTime(ts: unknown): string {
  const d = typeof ts === 'string' ? new Date(ts) : new Date(NaN);
  if (Number.isNaN(d.getTime())) return typeof ts === 'string' ? ts : '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** The human view of one line, made safe for a terminal. */
export function human(e: Entry): string {
  if (e.kind === 'raw') return safeLine(e.text);
  const { ts, level, msg, group, ...fields } = e.value;
  const parts = [localTime(ts), String(level ?? '-').padEnd(5)];
  if (group !== undefined) parts.push(`[${typeof group === 'string' ? group : JSON.stringify(group)}]`);
  parts.push(typeof msg === 'string' ? msg : JSON.stringify(msg) ?? '');
  for (const [k, v] of Object.entries(fields)) parts.push(`${k}=${fieldValue(v)}`);
  return safeLine(parts.join(' '));
}

/** One JSON line, re-serialised so that nothing but JSON text (escaped) is printed. */
export function asJson(e: Entry): string {
  return e.kind === 'json' ? safeJson(JSON.stringify(e.value)) : safeLine(e.text);
}

function unreadable(file: string, err: unknown): Error {
  return new Error(`cannot read ${file}: ${(err as Error).message} (hako logs needs read access to HAKO_HOME/logs: run it as the user that runs hako)`);
}

const linesOf = (text: string) => text.split('\n').filter((l) => l !== '');

/** A file's text and the inode it was read from (one open, so both are of the same file). */
function readWithIno(file: string): { text: string; ino: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(file, err);
  }
  try {
    return { ino: fs.fstatSync(fd).ino, text: fs.readFileSync(fd, 'utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The newest `n` matching lines (oldest first): from `live` (the live file's text, read by
 * the caller from inode `liveIno`) and then the rotated files, newest first, until there are
 * enough. A rotation after the live file was read makes it hako.log.1: a rotated file of
 * that inode is skipped, so no line is shown twice.
 */
export function recent(dir: string, live: string, n: number, f: Filter, liveIno?: number): Entry[] {
  const picked: Entry[] = [];
  let text: string | undefined = live;
  for (let i = 1; text !== undefined && picked.length < n; i++) {
    const lines = linesOf(text);
    for (let j = lines.length - 1; j >= 0 && picked.length < n; j--) {
      const e = parseLine(lines[j]!);
      if (matches(e, f)) picked.push(e);
    }
    const rotated = i <= MAX_ROTATED ? readWithIno(logFile(dir, i)) : undefined;
    text = rotated && (rotated.ino === liveIno ? '' : rotated.text);
  }
  return picked.reverse();
}

/** Reads the live log from where it was left, across rotations, one whole line at a time. */
class Tail {
  readonly #dir: string;
  readonly #file: string;
  #fd: number | undefined;
  #ino = 0;
  #pos = 0;
  #decoder = new StringDecoder('utf8');
  #partial = '';
  /** No log at all when following began: whatever appears, rotated files included, is new. */
  #fromScratch = false;

  constructor(dir: string) {
    this.#dir = dir;
    this.#file = logFile(dir);
  }

  /** Opens the file if it is there and returns its whole lines; polling goes on from there. */
  start(): string | undefined {
    if (this.#open()) return this.#read();
    this.#fromScratch = readWithIno(logFile(this.#dir, 1)) === undefined;
    return undefined;
  }

  /** The inode of the live file opened, if one is. */
  get ino(): number | undefined {
    return this.#fd === undefined ? undefined : this.#ino;
  }

  /** A last line not finished yet (the logger writes whole lines: only a crash leaves one). */
  get unfinished(): string {
    return this.#partial;
  }

  /** New whole lines since the last call. Contract: never throws for a file that comes and goes. */
  poll(): string[] {
    let st: fs.Stats | undefined;
    try { st = fs.statSync(this.#file); } catch { st = undefined; }
    let out = '';
    if (this.#fd !== undefined && st && st.ino === this.#ino && st.size < this.#pos) {
      this.#pos = 0; // truncated in place: start over
      this.#partial = '';
    }
    if (this.#fd !== undefined && (!st || st.ino !== this.#ino)) {
      // Rotated: what was written to the old file before the rename is read first.
      out += this.#read() + (this.#partial ? this.#partial + '\n' : '');
      this.#partial = '';
      out += this.#rotatedSince();
      this.close();
    }
    if (this.#fd === undefined && st && this.#open() && this.#fromScratch) {
      // Rotated more than once before this poll saw the file: the rotated ones come first.
      out += this.#rotated(MAX_ROTATED, this.#ino);
      this.#fromScratch = false;
    }
    if (this.#fd !== undefined) out += this.#read();
    return linesOf(out);
  }

  /**
   * Files rotated after the one just finished, oldest first: with several rotations between
   * two polls, the old file is hako.log.K by now and .K-1 … .1 were written after it.
   */
  #rotatedSince(): string {
    for (let k = 1; k <= MAX_ROTATED; k++) {
      try {
        if (fs.statSync(logFile(this.#dir, k)).ino === this.#ino) return this.#rotated(k - 1);
      } catch { /* not there */ }
    }
    return ''; // rotated out of reach already: nothing left to read
  }

  /**
   * hako.log.`from` … hako.log.1, oldest first, each ending in a newline; with `stopAt`, only
   * those older than the file of that inode. The logger may rotate the file just opened as
   * the live one while this runs: it is then among the rotated ones (the files after it are
   * newer), so reading stops there and the next poll goes on from it (#rotatedSince). Files
   * are matched by the inode of what was opened, not by name.
   */
  #rotated(from: number, stopAt?: number): string {
    let text = '';
    for (let j = from; j >= 1; j--) {
      const file = readWithIno(logFile(this.#dir, j));
      if (!file) continue;
      if (file.ino === stopAt) break;
      text += file.text && !file.text.endsWith('\n') ? file.text + '\n' : file.text;
    }
    return text;
  }

  close(): void {
    if (this.#fd !== undefined) try { fs.closeSync(this.#fd); } catch { /* gone */ }
    this.#fd = undefined;
  }

  #open(): boolean {
    try {
      this.#fd = fs.openSync(this.#file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new Error(`cannot read ${this.#file}: ${(err as Error).message} (run hako logs as the user that runs hako)`);
    }
    this.#ino = fs.fstatSync(this.#fd).ino;
    this.#pos = 0;
    this.#decoder = new StringDecoder('utf8');
    return true;
  }

  /** The whole lines from the position to the end; an unfinished last line waits in #partial. */
  #read(): string {
    const buf = Buffer.alloc(64 * 1024);
    let text = this.#partial;
    for (;;) {
      const n = fs.readSync(this.#fd!, buf, 0, buf.length, this.#pos);
      if (n === 0) break;
      this.#pos += n;
      text += this.#decoder.write(buf.subarray(0, n));
    }
    const end = text.lastIndexOf('\n') + 1;
    this.#partial = text.slice(end);
    return text.slice(0, end);
  }
}

function options(values: { group?: string; level?: string; lines?: string }): { filter: Filter; lines: number } {
  const { group, level, lines } = values;
  if (level !== undefined && !(level in LEVELS)) throw new UsageError(`--level "${level}" is not a level: use debug, info, warn or error`, { showHelp: false });
  const n = lines === undefined ? DEFAULT_LINES : /^\d+$/.test(lines) ? Number(lines) : NaN;
  if (!(n >= 0 && n <= MAX_LINES)) throw new UsageError(`--lines "${lines}" is not a number of lines: use a whole number from 0 to ${MAX_LINES}`, { showHelp: false });
  return { filter: { ...(group !== undefined ? { group } : {}), ...(level !== undefined ? { level: level as Level } : {}) }, lines: n };
}

/** Writes to stdout; false once the reader went away (`hako logs | head`). */
function printer(): { print: (lines: string[]) => void; gone: () => boolean } {
  let gone = false;
  process.stdout.on('error', () => { gone = true; });
  return {
    print: (lines) => { if (!gone && lines.length) process.stdout.write(lines.join('\n') + '\n'); },
    gone: () => gone,
  };
}

async function follow(tail: Tail, keep: (e: Entry) => string | undefined, out: ReturnType<typeof printer>): Promise<void> {
  await withInterrupt(async (signal) => {
    while (!signal.aborted && !out.gone()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      out.print(tail.poll().map((l) => keep(parseLine(l))).filter((l): l is string => l !== undefined));
    }
  });
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, {
      follow: { type: 'boolean', short: 'f' }, group: { type: 'string' }, level: { type: 'string' },
      lines: { type: 'string', short: 'n' }, json: { type: 'boolean' },
    }, help);
    if (!parsed) return 0;
    if (parsed.positionals.length) throw new UsageError(`unexpected argument "${safeLine(parsed.positionals[0]!)}"`);
    const { filter, lines } = options(parsed.values);
    const home = loadConfig().home;
    const dir = homePaths(home).logs;
    const format = parsed.values.json ? asJson : human;
    const keep = (e: Entry) => (matches(e, filter) ? format(e) : undefined);
    const tail = new Tail(dir);
    try {
      const started = tail.start();
      const live = started === undefined || parsed.values.follow ? started : started + tail.unfinished;
      const rotated = live === undefined ? readWithIno(logFile(dir, 1))?.text : undefined;
      if (live === undefined && rotated === undefined) {
        const where = `no log yet: looked for ${logFile(dir)} (HAKO_HOME=${home}); hako writes it once it starts (hako start), or set HAKO_HOME to the home the running hako uses`;
        if (!parsed.values.follow) {
          console.error(`hako: ${safeLine(where)}`);
          return 1;
        }
        console.error(`hako: ${safeLine(where)}; waiting for it…`);
      }
      const out = printer();
      // With no log at all when this began, every line is new and comes from following: read
      // now, the files a host started meanwhile would be printed twice.
      if (live !== undefined || rotated !== undefined) out.print(recent(dir, live ?? '', lines, filter, tail.ino).map(format));
      if (parsed.values.follow) await follow(tail, keep, out);
      return 0;
    } finally {
      tail.close();
    }
  });
}
