import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  deserializeSchedule, describeSchedule, nextRun, parseSchedule, serializeSchedule, validTimeZone,
  type Schedule, type ScheduleInput,
} from '../../src/core/schedule.ts';

const NOW = Date.parse('2026-03-02T08:00:00Z'); // a Monday
const BERLIN = 'Europe/Berlin';
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function ok(input: ScheduleInput, opts: { now?: number; tz?: string } = {}): Schedule {
  const r = parseSchedule(input, { now: opts.now ?? NOW, tz: opts.tz ?? 'UTC' });
  if (!r.ok) assert.fail(`expected ${JSON.stringify(input)} to be accepted, got: ${r.reason}`);
  return r.schedule;
}

function reason(input: ScheduleInput, opts: { now?: number; tz?: string } = {}): string {
  const r = parseSchedule(input, { now: opts.now ?? NOW, tz: opts.tz ?? 'UTC' });
  if (r.ok) assert.fail(`expected ${JSON.stringify(input)} to be refused, got ${JSON.stringify(r.schedule)}`);
  return r.reason;
}

/** The next `n` runs after `from`. */
function runs(s: Schedule, from: number, n: number, tz: string): (string | null)[] {
  const out: (string | null)[] = [];
  let t: number | null = from;
  for (let i = 0; i < n && t !== null; i++) {
    t = nextRun(s, t, tz);
    out.push(iso(t));
  }
  return out;
}

// ---- exactly one kind ------------------------------------------------------------------

test('parseSchedule - no schedule at all is refused with the three choices', () => {
  const r = reason({});
  assert.match(r, /set exactly one of "cron" .*"every_seconds" .*"at"/);
});

test('parseSchedule - null counts as absent', () => {
  assert.deepEqual(ok({ cron: '0 9 * * *', at: null, every_seconds: null }), { kind: 'cron', expr: '0 9 * * *', tz: 'UTC' });
});

test('parseSchedule - two kinds at once are refused, naming both', () => {
  assert.match(reason({ cron: '0 9 * * *', every_seconds: 60 }), /got "cron" and "every_seconds": set exactly one/);
});

test('parseSchedule - a time zone that does not exist is a broken precondition and throws', () => {
  assert.throws(() => parseSchedule({ cron: '0 9 * * *' }, { now: NOW, tz: 'Mars/Olympus' }), /not a valid IANA time zone/);
});

// ---- cron ------------------------------------------------------------------------------

test('parseSchedule cron - a field out of range names the field and its range', () => {
  assert.match(reason({ cron: '61 * * * *' }), /^cron "61 \* \* \* \*" is invalid: minute must be 0-59\. Use 5 fields/);
  assert.match(reason({ cron: '0 24 * * *' }), /hour must be 0-23/);
  assert.match(reason({ cron: '0 0 32 * *' }), /day-of-month must be 1-31/);
  assert.match(reason({ cron: '0 0 1 13 *' }), /month must be 1-12 or JAN-DEC/);
  assert.match(reason({ cron: '0 0 * * 8' }), /day-of-week must be 0-7/);
  assert.match(reason({ cron: '60 0 0 * * *' }), /second must be 0-59/);
});

test('parseSchedule cron - the wrong number of fields is refused with the expected format', () => {
  assert.match(reason({ cron: '* * *' }), /it has 3 fields\. Use 5 fields "minute hour day-of-month month day-of-week"/);
  assert.match(reason({ cron: '0 0 9 1 1 * 2027' }), /it has 7 fields/);
  assert.match(reason({ cron: '   ' }), /it is empty/);
});

test('parseSchedule cron - garbage is refused with the parser detail', () => {
  assert.match(reason({ cron: 'a b c d e' }), /illegal characters/);
  assert.match(reason({ cron: 42 }), /"cron" must be a string/);
});

test('parseSchedule cron - a pattern that never runs is refused', () => {
  assert.match(reason({ cron: '0 0 30 2 *' }), /it never runs/);
});

test('parseSchedule cron - runs closer than 10 s apart are refused', () => {
  assert.match(reason({ cron: '* * * * * *' }), /its runs can come 1 s apart.*at least 10 s apart/);
  assert.match(reason({ cron: '*/5 * * * * *' }), /5 s apart/);
  assert.match(reason({ cron: '0,55 * * * * *' }), /5 s apart/, 'the gap across the minute boundary counts');
  ok({ cron: '*/10 * * * * *' });
  ok({ cron: '0,55 0 9 * * *' }); // 09:00:00 and 09:00:55: 55 s apart, then a day
  ok({ cron: '* * * * *' }); // every minute is fine
});

test('parseSchedule cron - whitespace is normalised and nicknames are accepted, @reboot is not', () => {
  assert.deepEqual(ok({ cron: '  0  9 * *\t1-5 ' }), { kind: 'cron', expr: '0 9 * * 1-5', tz: 'UTC' });
  ok({ cron: '@daily' });
  assert.match(reason({ cron: '@reboot' }), /the only nicknames are/);
});

// ---- every_seconds ---------------------------------------------------------------------

test('parseSchedule every_seconds - the first run is now + seconds', () => {
  assert.deepEqual(ok({ every_seconds: 300 }), { kind: 'every', seconds: 300, anchor: NOW + 300_000 });
  assert.deepEqual(ok({ every_seconds: '60' }), { kind: 'every', seconds: 60, anchor: NOW + 60_000 }, 'a string of digits from the CLI');
});

test('parseSchedule every_seconds - bounds and whole numbers', () => {
  assert.match(reason({ every_seconds: 9 }), /"every_seconds" 9 is too short: .* at most every 10 s/);
  assert.match(reason({ every_seconds: 31_536_001 }), /too long: the longest interval is 31536000 s/);
  assert.match(reason({ every_seconds: 1.5 }), /must be a whole number of seconds from 10 to 31536000/);
  assert.match(reason({ every_seconds: 'soon' }), /must be a whole number/);
  ok({ every_seconds: 10 });
  ok({ every_seconds: 31_536_000 });
});

// ---- at --------------------------------------------------------------------------------

test('parseSchedule at - an explicit offset or Z is that instant', () => {
  assert.deepEqual(ok({ at: '2026-12-01T08:00:00Z' }, { tz: BERLIN }), { kind: 'at', time: Date.parse('2026-12-01T08:00:00Z') });
  assert.deepEqual(ok({ at: '2026-12-01T09:00:00+01:00' }, { tz: 'UTC' }), { kind: 'at', time: Date.parse('2026-12-01T08:00:00Z') });
  assert.deepEqual(ok({ at: '2026-12-01T03:30-0530' }), { kind: 'at', time: Date.parse('2026-12-01T09:00:00Z') });
  assert.deepEqual(ok({ at: '2026-12-01 08:00:00.250Z' }), { kind: 'at', time: Date.parse('2026-12-01T08:00:00.250Z') });
});

test('parseSchedule at - without an offset it is wall-clock time in the configured time zone', () => {
  assert.equal(iso((ok({ at: '2026-12-01T09:00' }, { tz: BERLIN }) as { time: number }).time), '2026-12-01T08:00:00.000Z'); // CET
  assert.equal(iso((ok({ at: '2026-07-01T09:00:00' }, { tz: BERLIN }) as { time: number }).time), '2026-07-01T07:00:00.000Z'); // CEST
  assert.equal(iso((ok({ at: '2026-07-01T09:00:00' }, { tz: 'America/New_York' }) as { time: number }).time), '2026-07-01T13:00:00.000Z');
});

test('parseSchedule at - a wall-clock time skipped by DST moves forward by the gap, a repeated one is its first occurrence', () => {
  // 2026-03-29 02:00 → 03:00 in Berlin: 02:30 does not exist and becomes 03:30 CEST.
  assert.equal(iso((ok({ at: '2026-03-29T02:30' }, { tz: BERLIN }) as { time: number }).time), '2026-03-29T01:30:00.000Z');
  // 2026-10-25 03:00 → 02:00 in Berlin: 02:30 happens twice; the first (CEST) is meant.
  assert.equal(iso((ok({ at: '2026-10-25T02:30' }, { tz: BERLIN }) as { time: number }).time), '2026-10-25T00:30:00.000Z');
});

test('parseSchedule at - the past is refused, up to 5 s of clock skew runs at once', () => {
  assert.equal(reason({ at: '2020-01-01T00:00:00Z' }), '"at" 2020-01-01T00:00:00Z is in the past (now is 2026-03-02T08:00:00.000Z): give a future time');
  const skewed = ok({ at: '2026-03-02T07:59:57Z' });
  assert.deepEqual(skewed, { kind: 'at', time: NOW });
  assert.equal(nextRun(skewed, NOW - 1, 'UTC'), NOW, 'the first run is now');
  assert.match(reason({ at: '2026-03-02T07:59:54Z' }), /is in the past/);
});

test('parseSchedule at - more than 5 years ahead is refused with the latest allowed time', () => {
  assert.match(reason({ at: '2031-03-02T08:00:01Z' }), /more than 5 years ahead: the latest allowed is 2031-03-02T08:00:00.000Z/);
  ok({ at: '2031-03-02T08:00:00Z' });
});

test('parseSchedule at - not ISO-8601, no time of day, or an impossible date are refused', () => {
  assert.match(reason({ at: 'tomorrow at 9' }, { tz: BERLIN }), /is not an ISO-8601 date-time \(e\.g\. .*wall-clock time in Europe\/Berlin\)/);
  assert.match(reason({ at: '2026-12-01' }), /has no time of day/);
  assert.match(reason({ at: '2026-02-30T10:00' }), /is not a real date and time/);
  assert.match(reason({ at: '2026-12-01T24:00' }), /is not a real date and time/);
  assert.match(reason({ at: 1_800_000_000_000 }), /"at" must be an ISO-8601 date-time string/);
});

// ---- nextRun ---------------------------------------------------------------------------

test('nextRun cron - UTC, strictly after the reference', () => {
  const s = ok({ cron: '0 9 * * 1-5' });
  assert.equal(iso(nextRun(s, NOW, 'UTC')), '2026-03-02T09:00:00.000Z');
  assert.equal(iso(nextRun(s, Date.parse('2026-03-02T09:00:00Z'), 'UTC')), '2026-03-03T09:00:00.000Z', 'a run exactly at `after` is not returned');
  assert.equal(iso(nextRun(s, Date.parse('2026-03-02T08:59:59.999Z'), 'UTC')), '2026-03-02T09:00:00.000Z');
  assert.equal(iso(nextRun(s, Date.parse('2026-03-06T10:00:00Z'), 'UTC')), '2026-03-09T09:00:00.000Z', 'skips the weekend');
});

test('nextRun cron - day-of-month and day-of-week combine with OR, as in Vixie cron', () => {
  // The 1st of the month OR any Monday.
  assert.deepEqual(runs(ok({ cron: '0 9 1 * 1' }), Date.parse('2026-03-25T00:00:00Z'), 3, 'UTC'),
    ['2026-03-30T09:00:00.000Z', '2026-04-01T09:00:00.000Z', '2026-04-06T09:00:00.000Z']);
});

test('nextRun cron - evaluated in the configured time zone', () => {
  const s = ok({ cron: '0 9 * * *' }, { tz: BERLIN });
  assert.equal(iso(nextRun(s, NOW, 'UTC')), '2026-03-03T08:00:00.000Z', 'the zone stored with the task wins'); // 09:00 CET
  assert.equal(iso(nextRun(s, Date.parse('2026-07-01T00:00:00Z'), BERLIN)), '2026-07-01T07:00:00.000Z'); // 09:00 CEST
});

test('nextRun cron - Europe/Berlin spring forward: a skipped fixed time fires at the first valid instant after the gap', () => {
  // 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day.
  assert.deepEqual(runs(ok({ cron: '30 2 * * *' }, { tz: BERLIN }), Date.parse('2026-03-28T12:00:00Z'), 3, BERLIN),
    ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']);
  // A list of fixed times behaves the same (Vixie-like "no-wildcard" rule).
  assert.deepEqual(runs(ok({ cron: '30 2,14 * * *' }, { tz: BERLIN }), Date.parse('2026-03-28T23:00:00Z'), 2, BERLIN),
    ['2026-03-29T01:00:00.000Z', '2026-03-29T12:30:00.000Z']);
});

test('nextRun cron - Europe/Berlin fall back: a repeated fixed time fires once, at its first occurrence', () => {
  // 2026-10-25: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice.
  assert.deepEqual(runs(ok({ cron: '30 2 * * *' }, { tz: BERLIN }), Date.parse('2026-10-24T12:00:00Z'), 2, BERLIN),
    ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
});

test('nextRun cron - Europe/Berlin: interval patterns keep running in real time through both DST changes', () => {
  const halfHourly = ok({ cron: '*/30 * * * *' });
  // Spring: 01:30 CET, then 03:00 CEST — 02:00 and 02:30 do not exist, 30 min of real time.
  assert.deepEqual(runs(halfHourly, Date.parse('2026-03-29T00:15:00Z'), 2, BERLIN), ['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z']);
  // Fall: 02:00, 02:30 CEST, 02:00, 02:30 CET — the repeated hour runs in both passes.
  assert.deepEqual(runs(halfHourly, Date.parse('2026-10-24T23:45:00Z'), 4, BERLIN),
    ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z']);
});

test('nextRun every - runs stay on the anchor grid and a long gap yields only the next grid point', () => {
  const s: Schedule = { kind: 'every', seconds: 300, anchor: NOW };
  assert.equal(nextRun(s, NOW - 86_400_000, 'UTC'), NOW, 'before the anchor: the anchor');
  assert.equal(nextRun(s, NOW, 'UTC'), NOW + 300_000);
  // The host was down for 3 days and 7 s: one run, at the next point of the grid.
  const after = NOW + 3 * 86_400_000 + 7_000;
  const next = nextRun(s, after, 'UTC')!;
  assert.equal(next, NOW + 3 * 86_400_000 + 300_000);
  assert.equal((next - NOW) % 300_000, 0);
  assert.equal(nextRun(s, next - 1, 'UTC'), next);
});

test('nextRun at - the time while it is ahead, then null', () => {
  const s: Schedule = { kind: 'at', time: NOW + 1000 };
  assert.equal(nextRun(s, NOW, 'UTC'), NOW + 1000);
  assert.equal(nextRun(s, NOW + 1000, 'UTC'), null);
});

// ---- describe and storage --------------------------------------------------------------

test('describeSchedule - one short line per kind', () => {
  assert.equal(describeSchedule({ kind: 'cron', expr: '0 9 * * 1-5' }, BERLIN), 'cron 0 9 * * 1-5 (Europe/Berlin)');
  assert.equal(describeSchedule({ kind: 'cron', expr: '0 9 * * 1-5', tz: 'Asia/Tokyo' }, BERLIN), 'cron 0 9 * * 1-5 (Asia/Tokyo)', 'a task keeps the zone it was made in');
  assert.equal(describeSchedule({ kind: 'every', seconds: 300, anchor: NOW }, BERLIN), 'every 300 s');
  assert.equal(describeSchedule({ kind: 'at', time: Date.parse('2026-12-01T08:00:00Z') }, BERLIN), 'once at 2026-12-01T08:00:00.000Z');
});

test('serializeSchedule - every kind survives a JSON round trip', () => {
  for (const s of [ok({ cron: '0 9 * * 1-5' }), ok({ every_seconds: 600 }), ok({ at: '2026-12-01T08:00:00Z' })]) {
    assert.deepEqual(deserializeSchedule(serializeSchedule(s)), s);
  }
});

test('deserializeSchedule - a wrong shape throws saying what is wrong', () => {
  assert.throws(() => deserializeSchedule('not json'), /stored schedule is not JSON/);
  assert.throws(() => deserializeSchedule('[]'), /expected an object/);
  assert.throws(() => deserializeSchedule('{"kind":"weekly"}'), /"kind" must be "cron", "every" or "at"/);
  assert.throws(() => deserializeSchedule('{"kind":"cron","expr":"99 * * * *"}'), /"expr" does not parse/);
  assert.throws(() => deserializeSchedule('{"kind":"every","seconds":"60","anchor":1}'), /"seconds" must be a positive whole number/);
  assert.throws(() => deserializeSchedule('{"kind":"every","seconds":60}'), /"anchor" must be epoch milliseconds/);
  assert.throws(() => deserializeSchedule('{"kind":"at","time":"2026-12-01"}'), /"time" must be epoch milliseconds/);
});

test('validTimeZone - IANA names known to Intl', () => {
  assert.equal(validTimeZone('Europe/Berlin'), true);
  assert.equal(validTimeZone('UTC'), true);
  assert.equal(validTimeZone('Mars/Olympus'), false);
  assert.equal(validTimeZone(''), false);
});
