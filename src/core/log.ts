// Structured logging: one JSON line per event to HAKO_HOME/logs/hako.log for machines,
// and a short human-readable line on stderr for people. Never log a secret: callers pass
// fields, and values that look like keys are masked as a last line of defence.

import fs from 'node:fs';
import path from 'node:path';
import { safeJson, safeLine } from './safe-text.ts';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Replaces each secret (8+ characters) in a string with [secret]. */
export function secretMasker(secrets: readonly (string | undefined)[]): (s: string) => string {
  const list = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 8);
  return (s) => list.reduce((acc, secret) => acc.split(secret).join('[secret]'), s);
}

export function createLogger(opts: { dir?: string; console?: boolean; level?: Level; secrets?: readonly string[] } = {}): Logger {
  let file: number | undefined;
  if (opts.dir) {
    fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    file = fs.openSync(path.join(opts.dir, 'hako.log'), 'a', 0o600);
  }
  const min = ORDER[opts.level ?? 'info'];
  const mask = secretMasker(opts.secrets ?? []);
  const write = (level: Level, msg: string, fields: Fields = {}) => {
    if (ORDER[level] < min) return;
    const ts = new Date().toISOString();
    // Fields may hold agent-chosen text (file names, errors): escaped so that neither
    // this console nor a `tail -f` of the file can be driven by it.
    if (file !== undefined) {
      // A full disk must not take the host down with its log: the line still reaches stderr.
      try { fs.writeSync(file, mask(safeJson(JSON.stringify({ ts, level, msg, ...fields }))) + '\n'); } catch { /* dropped */ }
    }
    if (opts.console !== false) {
      const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
      process.stderr.write(mask(safeLine(`${ts.slice(11, 19)} ${level.padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`)) + '\n');
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
