// Schedule rules for scheduled tasks: validation of what an agent or the CLI asked for,
// the next run time, and the stored JSON form. Pure functions of their arguments (no I/O,
// no hidden clock); compiled cron patterns are cached, which is invisible to callers.
//
// Invariants: a Schedule that parseSchedule accepted always has a first run; nextRun is
// strictly after `after`, so a scheduler that claims run t and asks for nextRun(s, now)
// with now >= t can never get t again; runs after a pause or downtime are never bunched
// (every schedule answers "the next run after now", not "all runs since last time").

import { Cron, CronPattern } from 'croner';

export type Schedule =
  /** `tz`: the owner's time zone when the task was made; the task keeps it if HAKO_TZ changes later. */
  | { kind: 'cron'; expr: string; tz?: string }
  | { kind: 'every'; seconds: number; anchor: number /* epoch ms of the first run */ }
  | { kind: 'at'; time: number /* epoch ms */ };

export type ScheduleInput = { cron?: unknown; every_seconds?: unknown; at?: unknown };

export const MIN_EVERY_SECONDS = 10;
export const MAX_EVERY_SECONDS = 31_536_000; // 365 days
/** Two cron runs must be at least this far apart. */
export const MIN_CRON_GAP_SECONDS = 10;
/** An `at` this far in the past is taken as clock skew and runs at once. */
export const AT_SKEW_MS = 5_000;
export const AT_MAX_YEARS = 5;

const DAY_MS = 86_400_000;

// ---- validation ----------------------------------------------------------------------

/**
 * Validates what an agent or the CLI asked for. Exactly one of `cron`, `every_seconds`
 * and `at` must be given (null counts as absent). Reasons are sentences a model can act on.
 *
 * - cron: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first,
 *   or a nickname such as @daily; evaluated in `tz`; it must have a next run and its runs
 *   must be at least 10 s apart.
 * - every_seconds: a whole number 10 … 31 536 000 (a number, or a string of digits from
 *   the CLI); the first run is now + seconds, later runs stay on that grid.
 * - at: an ISO-8601 date-time. With Z or an offset (+01:00, +0100, +01) it is that
 *   instant; without one it is wall-clock time in `tz` (a time skipped by a DST change is
 *   moved forward by the length of the gap, a repeated one means its first occurrence, as
 *   Temporal's "compatible" disambiguation and JavaScript's local Date do). It must not be
 *   more than 5 s in the past (skew: it is then moved to `now` and runs at once) nor more
 *   than 5 years ahead.
 *
 * Throws only for a broken precondition: `tz` is not a valid IANA time zone (config
 * validates it once at start).
 */
export function parseSchedule(input: ScheduleInput, opts: { now: number; tz: string }): { ok: true; schedule: Schedule } | { ok: false; reason: string } {
  if (!validTimeZone(opts.tz)) throw new RangeError(`time zone "${opts.tz}" is not a valid IANA time zone (e.g. "Europe/Berlin", "UTC")`);
  const given = (['cron', 'every_seconds', 'at'] as const).filter((k) => input[k] !== undefined && input[k] !== null);
  if (given.length === 0) {
    return fail('no schedule given: set exactly one of "cron" (e.g. "0 9 * * 1-5"), "every_seconds" (e.g. 3600) or "at" (e.g. "2026-12-01T09:00:00Z")');
  }
  if (given.length > 1) {
    return fail(`got ${given.map((k) => `"${k}"`).join(' and ')}: set exactly one of "cron", "every_seconds" or "at"`);
  }
  if (input.cron !== undefined && input.cron !== null) return parseCron(input.cron, opts);
  if (input.every_seconds !== undefined && input.every_seconds !== null) return parseEvery(input.every_seconds, opts.now);
  return parseAt(input.at, opts);
}

type Parsed = ReturnType<typeof parseSchedule>;

function fail(reason: string): Parsed {
  return { ok: false, reason };
}

const CRON_FORMAT = 'Use 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 9 * * 1-5" for 09:00 on weekdays), or 6 with seconds first.';

const FIELD_RANGES: Record<string, string> = {
  second: 'second must be 0-59',
  minute: 'minute must be 0-59',
  hour: 'hour must be 0-23',
  day: 'day-of-month must be 1-31 (or L, W)',
  month: 'month must be 1-12 or JAN-DEC',
  dayOfWeek: 'day-of-week must be 0-7 (0 and 7 are Sunday) or SUN-SAT',
};

function parseCron(raw: unknown, opts: { now: number; tz: string }): Parsed {
  if (typeof raw !== 'string') return fail(`"cron" must be a string such as "0 9 * * 1-5", got ${typeName(raw)}`);
  const expr = raw.trim().split(/\s+/).join(' ');
  const bad = (detail: string) => fail(`cron "${expr}" is invalid: ${detail}`);
  if (expr === '') return bad(`it is empty. ${CRON_FORMAT}`);
  if (expr.startsWith('@')) {
    if (!['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'].includes(expr.toLowerCase())) {
      return bad('the only nicknames are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly');
    }
  } else {
    const fields = expr.split(' ').length;
    if (fields !== 5 && fields !== 6) return bad(`it has ${fields} field${fields === 1 ? '' : 's'}. ${CRON_FORMAT}`);
  }
  let cron: Cron;
  let pattern: CronPattern;
  try {
    cron = compileCron(expr, opts.tz);
    pattern = new CronPattern(expr, opts.tz, CRON_PATTERN_OPTIONS);
  } catch (err) {
    const msg = String(err instanceof Error ? err.message : err).replace(/^CronPattern:\s*/, '').replace(/\.$/, '');
    const field = /Invalid value for (\w+)/.exec(msg)?.[1];
    const range = field === undefined ? undefined : FIELD_RANGES[field];
    return bad(`${range ?? msg}. ${CRON_FORMAT}`);
  }
  const gap = minGapSeconds(pattern);
  if (gap < MIN_CRON_GAP_SECONDS) {
    return bad(`its runs can come ${gap} s apart, and scheduled tasks must be at least ${MIN_CRON_GAP_SECONDS} s apart; use a 5-field pattern (at most once a minute) or "every_seconds"`);
  }
  if (cron.nextRun(new Date(opts.now)) === null) return bad('it never runs (no such date, e.g. 30 February); check day-of-month and month');
  return { ok: true, schedule: { kind: 'cron', expr, tz: opts.tz } };
}

/**
 * The smallest gap in seconds between two runs, judged from the seconds field: 60 when
 * only one second of the minute matches (5-field patterns have second 0). Runs in two
 * adjacent minutes make the gap across the minute boundary count too.
 */
function minGapSeconds(p: CronPattern): number {
  const secs = onIndices(p.second);
  if (secs.length <= 1) return 60;
  let gap = 60;
  for (let i = 1; i < secs.length; i++) gap = Math.min(gap, secs[i]! - secs[i - 1]!);
  const adjacentMinutes = onIndices(p.minute).some((m) => p.minute[(m + 1) % 60]);
  if (adjacentMinutes) gap = Math.min(gap, 60 - secs[secs.length - 1]! + secs[0]!);
  return gap;
}

function onIndices(bits: readonly number[]): number[] {
  const out: number[] = [];
  bits.forEach((b, i) => { if (b) out.push(i); });
  return out;
}

function parseEvery(raw: unknown, now: number): Parsed {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n)) {
    return fail(`"every_seconds" must be a whole number of seconds from ${MIN_EVERY_SECONDS} to ${MAX_EVERY_SECONDS} (365 days), got ${JSON.stringify(raw) ?? typeName(raw)}`);
  }
  if (n < MIN_EVERY_SECONDS) return fail(`"every_seconds" ${n} is too short: scheduled tasks run at most every ${MIN_EVERY_SECONDS} s`);
  if (n > MAX_EVERY_SECONDS) return fail(`"every_seconds" ${n} is too long: the longest interval is ${MAX_EVERY_SECONDS} s (365 days); for yearly runs use "cron" (e.g. "0 9 1 1 *")`);
  return { ok: true, schedule: { kind: 'every', seconds: n, anchor: now + n * 1000 } };
}

const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

function parseAt(raw: unknown, opts: { now: number; tz: string }): Parsed {
  const example = `e.g. "2026-12-01T09:00:00Z", "2026-12-01T09:00:00+01:00", or "2026-12-01T09:00" for wall-clock time in ${opts.tz}`;
  if (typeof raw !== 'string') return fail(`"at" must be an ISO-8601 date-time string (${example}), got ${typeName(raw)}`);
  const text = raw.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return fail(`"at" ${text} has no time of day: add one (${example})`);
  const m = ISO_DATE_TIME.exec(text);
  if (!m) return fail(`"at" ${JSON.stringify(text)} is not an ISO-8601 date-time (${example})`);
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const wall = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const d = new Date(wall);
  if (month < 1 || month > 12 || d.getUTCDate() !== day || d.getUTCMonth() !== month - 1 || hour > 23 || minute > 59 || second > 59) {
    return fail(`"at" ${text} is not a real date and time: check the month (1-12), day, hour (0-23), minute and second (0-59)`);
  }
  const time = m[8] === undefined ? wallClockToInstant(wall, opts.tz) : wall - offsetMs(m[8]);
  const iso = new Date(time).toISOString();
  if (time < opts.now - AT_SKEW_MS) {
    return fail(`"at" ${text} is in the past (now is ${new Date(opts.now).toISOString()}): give a future time`);
  }
  const latest = addYears(opts.now, AT_MAX_YEARS);
  if (time > latest) return fail(`"at" ${text} (${iso}) is more than ${AT_MAX_YEARS} years ahead: the latest allowed is ${new Date(latest).toISOString()}`);
  // Up to AT_SKEW_MS in the past is clock skew between agent and host: run at once.
  return { ok: true, schedule: { kind: 'at', time: Math.max(time, opts.now) } };
}

/** "+01:00", "-0530", "+01" or "Z" as milliseconds east of UTC. */
function offsetMs(text: string): number {
  if (text === 'Z' || text === 'z') return 0;
  const sign = text.startsWith('-') ? -1 : 1;
  const digits = text.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0')) * 60_000;
}

function addYears(ms: number, years: number): number {
  const d = new Date(ms);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.getTime();
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

// ---- time zones ----------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Whether `tz` is an IANA time zone name this runtime knows (via Intl). */
export function validTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

/** Local wall-clock time minus UTC at `instant`, in ms (e.g. +3 600 000 for CET). */
function zoneOffsetMs(instant: number, tz: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(tz).formatToParts(new Date(instant))) p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return wall - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant at which the wall clock in `tz` shows `wall` (wall-clock fields encoded as
 * if UTC). A repeated time (DST ends) is its first occurrence; a skipped time (DST
 * starts) is moved forward by the length of the gap (02:30 → 03:30 in Europe/Berlin).
 */
function wallClockToInstant(wall: number, tz: string): number {
  const before = zoneOffsetMs(wall - DAY_MS, tz);
  const after = zoneOffsetMs(wall + DAY_MS, tz);
  const fits = [wall - before, wall - after].filter((t) => t + zoneOffsetMs(t, tz) === wall).sort((a, b) => a - b);
  return fits[0] ?? wall - before;
}

// ---- next run ------------------------------------------------------------------------

// Vixie cron semantics: when both day-of-month and day-of-week are restricted, a day
// matching EITHER runs (domAndDow: false), so "0 9 1 * 1" is the 1st and every Monday.
// "no-wildcard" counts lists and ranges such as "30 2,14 * * *" as fixed-time jobs, as
// Vixie cron does, for DST: a fixed time skipped by the spring change runs at the first
// valid instant after the gap, a fixed time repeated in autumn runs once (first pass).
// Jobs with * or a step in seconds, minutes or hours keep running in real time: they skip
// wall-clock times that do not exist and run in both passes of a repeated hour.
const CRON_PATTERN_OPTIONS = { mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard' } as const;

const compiled = new Map<string, Cron>();

function compileCron(expr: string, tz: string): Cron {
  const key = `${tz}\u0000${expr}`;
  let cron = compiled.get(key);
  if (!cron) {
    cron = new Cron(expr, { ...CRON_PATTERN_OPTIONS, timezone: tz, domAndDow: false, paused: true });
    if (compiled.size >= 500) compiled.clear();
    compiled.set(key, cron);
  }
  return cron;
}

/** The first run strictly after `after` (epoch ms), or null when there is none (an `at` already passed). */
export function nextRun(s: Schedule, after: number, tz: string): number | null {
  switch (s.kind) {
    case 'cron': {
      const cron = compileCron(s.expr, s.tz ?? tz);
      let next = cron.nextRun(new Date(after))?.getTime() ?? null;
      // croner works in whole seconds and already answers strictly after; this guard keeps
      // the invariant even if that ever changes.
      while (next !== null && next <= after) next = cron.nextRun(new Date(next + 1000))?.getTime() ?? null;
      return next;
    }
    case 'every': {
      if (after < s.anchor) return s.anchor;
      const step = s.seconds * 1000;
      return s.anchor + (Math.floor((after - s.anchor) / step) + 1) * step;
    }
    case 'at':
      return s.time > after ? s.time : null;
  }
}

// ---- description and storage ---------------------------------------------------------

/** "cron 0 9 * * 1-5 (Europe/Berlin)", "every 300 s", "once at 2026-12-01T08:00:00.000Z". */
export function describeSchedule(s: Schedule, tz: string): string {
  switch (s.kind) {
    case 'cron': return `cron ${s.expr} (${s.tz ?? tz})`;
    case 'every': return `every ${s.seconds} s`;
    case 'at': return `once at ${new Date(s.time).toISOString()}`;
  }
}

export function serializeSchedule(s: Schedule): string {
  switch (s.kind) {
    case 'cron': return JSON.stringify({ kind: s.kind, expr: s.expr, ...(s.tz ? { tz: s.tz } : {}) });
    case 'every': return JSON.stringify({ kind: s.kind, seconds: s.seconds, anchor: s.anchor });
    case 'at': return JSON.stringify({ kind: s.kind, time: s.time });
  }
}

/** Reads a stored schedule back. Throws an Error saying what is wrong when the JSON does not hold one. */
export function deserializeSchedule(json: string): Schedule {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new Error(`stored schedule is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const bad = (what: string) => new Error(`stored schedule ${json.length > 200 ? json.slice(0, 200) + '…' : json} is not valid: ${what}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('expected an object');
  const o = v as Record<string, unknown>;
  switch (o.kind) {
    case 'cron': {
      if (typeof o.expr !== 'string' || o.expr.trim() === '') throw bad('"expr" must be a non-empty string');
      try {
        new CronPattern(o.expr, undefined, CRON_PATTERN_OPTIONS);
      } catch (err) {
        throw bad(`"expr" does not parse (${(err as Error).message})`);
      }
      if (o.tz !== undefined && (typeof o.tz !== 'string' || !validTimeZone(o.tz))) throw bad('"tz" must be an IANA time zone');
      return { kind: 'cron', expr: o.expr, ...(o.tz ? { tz: o.tz as string } : {}) };
    }
    case 'every':
      if (!Number.isInteger(o.seconds) || (o.seconds as number) < 1) throw bad('"seconds" must be a positive whole number');
      if (!Number.isSafeInteger(o.anchor)) throw bad('"anchor" must be epoch milliseconds');
      return { kind: 'every', seconds: o.seconds as number, anchor: o.anchor as number };
    case 'at':
      if (!Number.isSafeInteger(o.time)) throw bad('"time" must be epoch milliseconds');
      return { kind: 'at', time: o.time as number };
    default:
      throw bad('"kind" must be "cron", "every" or "at"');
  }
}
