// Structured logging: one JSON line per event to HAKO_HOME/logs/hako.log for machines,
// and a short human-readable line on stderr for people. Never log a secret: callers pass
// fields, and values that look like keys are masked as a last line of defence.
//
// Rotation: before a line would take hako.log past `maxBytes`, hako.log becomes hako.log.1
// (.1 → .2 … up to `keep`, the oldest dropped) and the line starts a new hako.log.
// Invariants: logging never throws into the host; the line being written is never lost
// to a rotation that fails (it goes to the file still open); every log file is 0600.

import fs from 'node:fs';
import path from 'node:path';
import { parseSize } from './disk.ts';
import { safeJson, safeLine } from './safe-text.ts';
import type { LogLevel } from '../../protocol/container.ts';

export type Level = LogLevel;
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

export const LEVELS: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
export const LOG_FILE = 'hako.log';
/** Rotated files kept: hako.log.1 (newest) … hako.log.5. */
export const LOG_KEEP = 5;
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Below this, rotation would churn on every few lines. */
const MIN_LOG_MAX_BYTES = 1024;

/** Replaces each secret (8+ characters) in a string with [secret]. */
export function secretMasker(secrets: readonly (string | undefined)[]): (s: string) => string {
  const list = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 8);
  return (s) => list.reduce((acc, secret) => acc.split(secret).join('[secret]'), s);
}

/** HAKO_LOG_MAX_BYTES as bytes: a whole number of bytes or a size such as 10m; throws saying what is expected. */
export function logMaxBytes(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_LOG_MAX_BYTES;
  const bytes = /^\d+$/.test(value) ? Number(value) : /^\d+(\.\d+)?[kmg]$/i.test(value) ? parseSize(value) : NaN;
  if (!(bytes >= MIN_LOG_MAX_BYTES)) {
    throw new Error(`HAKO_LOG_MAX_BYTES=${JSON.stringify(value)} is not a log size: set a number of bytes of at least ${MIN_LOG_MAX_BYTES} or a size such as 10m (default 10m), or unset it`);
  }
  return bytes;
}

/** The path of rotated file `n` (1 = newest); 0 is the live file. */
export function logFile(dir: string, n = 0): string {
  return path.join(dir, n === 0 ? LOG_FILE : `${LOG_FILE}.${n}`);
}

/** The live log file: appended to, owner-only (also when an older version left it 0644), with its size. */
class LogFile {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #fd: number | undefined;
  #size = 0;

  constructor(dir: string, maxBytes: number, keep: number) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
    this.#keep = keep;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    this.#open();
  }

  #open(): void {
    const fd = fs.openSync(logFile(this.#dir), 'a', 0o600);
    fs.fchmodSync(fd, 0o600);
    this.#size = fs.fstatSync(fd).size;
    this.#fd = fd;
  }

  /** Writes one line; never throws (a full disk must not take the host down with its log). */
  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.#size > 0 && this.#size + bytes > this.#maxBytes) this.#rotate();
    try {
      if (this.#fd === undefined) this.#open();
      fs.writeSync(this.#fd!, line);
      this.#size += bytes;
    } catch { /* dropped: the line still reached stderr */ }
  }

  /** Shifts hako.log → .1 → .2 …; on any failure the current file stays open and takes the line. */
  #rotate(): void {
    try {
      fs.rmSync(logFile(this.#dir, this.#keep), { force: true });
      for (let n = this.#keep - 1; n >= 1; n--) {
        try { fs.renameSync(logFile(this.#dir, n), logFile(this.#dir, n + 1)); } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      fs.renameSync(logFile(this.#dir), logFile(this.#dir, 1));
    } catch {
      this.#size = 0; // keep writing here; the next overflow tries again
      return;
    }
    const old = this.#fd;
    this.#fd = undefined;
    try { this.#open(); } catch { this.#fd = old; this.#size = 0; return; }
    if (old !== undefined) try { fs.closeSync(old); } catch { /* already gone */ }
  }
}

export interface LoggerOptions {
  /** The log folder (HAKO_HOME/logs); no file when absent. */
  readonly dir?: string;
  readonly console?: boolean;
  readonly level?: Level;
  readonly secrets?: readonly string[];
  /** Size at which hako.log is rotated (HAKO_LOG_MAX_BYTES). */
  readonly maxBytes?: number;
  /** Rotated files kept. */
  readonly keep?: number;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const file = opts.dir ? new LogFile(opts.dir, opts.maxBytes ?? DEFAULT_LOG_MAX_BYTES, opts.keep ?? LOG_KEEP) : undefined;
  const min = LEVELS[opts.level ?? 'info'];
  const mask = secretMasker(opts.secrets ?? []);
  const write = (level: Level, msg: string, fields: Fields = {}) => {
    if (LEVELS[level] < min) return;
    const ts = new Date().toISOString();
    // Fields may hold agent-chosen text (file names, errors): escaped so that neither
    // this console nor a `tail -f` of the file can be driven by it.
    if (file) {
      let json: string;
      try { json = JSON.stringify({ ts, level, msg, ...fields }); } catch { json = JSON.stringify({ ts, level, msg, fields: '[not serialisable]' }); }
      file.write(mask(safeJson(json)) + '\n');
    }
    if (opts.console !== false) {
      try {
        const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
        process.stderr.write(mask(safeLine(`${ts.slice(11, 19)} ${level.padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`)) + '\n');
      } catch { /* no stderr, or a field that cannot be shown: the file has the line */ }
    }
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
