import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseTime, run, terminalSafe } from '../../src/cli/audit.ts';
import { AuditLog, type AuditKind, type AuditRecord } from '../../src/core/audit.ts';
import { Store } from '../../src/core/store.ts';

type Ctx = { after(fn: () => void): void; mock: { method: (o: object, name: string, impl: (...a: unknown[]) => void) => unknown } };

/** A HAKO_HOME in a temp dir for this test; restores the environment afterwards. */
function tempHome(t: Ctx, opts: { db?: boolean } = {}): { home: string; db: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-audit-cli-'));
  const saved = process.env.HAKO_HOME;
  process.env.HAKO_HOME = home;
  t.after(() => {
    if (saved === undefined) delete process.env.HAKO_HOME;
    else process.env.HAKO_HOME = saved;
    fs.rmSync(home, { recursive: true, force: true });
  });
  const db = path.join(home, 'hako.db');
  if (opts.db !== false) new Store(db).close();
  return { home, db };
}

/** Runs `hako audit <args>` in-process and returns its exit code and output. */
async function audit(t: Ctx, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' '))) as { mock: { restore(): void } };
  const error = t.mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' '))) as { mock: { restore(): void } };
  try {
    const code = await run(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}

type Entry = [ms: number, kind: AuditKind, group: string | null, data: Record<string, unknown>];

/** Appends records at the given times (epoch ms). */
function append(t: Ctx, db: string, entries: Entry[]): AuditRecord[] {
  const times = entries.map(([ms]) => new Date(ms));
  const log = new AuditLog(db, { now: () => times.shift()! });
  t.after(() => log.close());
  return entries.map(([, kind, group, data]) => log.append(kind, group, data));
}

test('hako audit - without a database it says hako has not been started', async (t) => {
  const { db } = tempHome(t, { db: false });
  const r = await audit(t);
  assert.equal(r.code, 1);
  assert.match(r.err, /hako has not been started yet: there is no database at .*hako\.db/);
  assert.equal(fs.existsSync(db), false, 'must not create the database');
});

test('hako audit - lists the newest records oldest first, one line each', async (t) => {
  const { db } = tempHome(t);
  const base = Date.parse('2025-03-01T12:00:00Z');
  append(t, db, Array.from({ length: 60 }, (_, i): Entry => [base + i * 1000, 'egress', 'main', { host: `h${i}.example`, allowed: i % 2 === 0 }]));
  const r = await audit(t);
  assert.equal(r.code, 0);
  const lines = r.out.split('\n');
  assert.equal(lines.length, 50, 'default limit is 50');
  assert.match(lines[0]!, /^\s+11 2025-03-01T12:00:10\.000Z egress\s+main\s+allowed=true host=h10\.example$/);
  assert.match(lines[49]!, /^\s+60 .* host=h59\.example$/);
  const three = await audit(t, '--limit', '3');
  assert.deepEqual(three.out.split('\n').map((l) => Number(l.trim().split(' ')[0])), [58, 59, 60]);
});

test('hako audit - filters by group and kind family, and prints JSON', async (t) => {
  const { db } = tempHome(t);
  const base = Date.parse('2025-03-01T12:00:00Z');
  append(t, db, [
    [base, 'container.start', 'main', { name: 'hako-main-1' }],
    [base + 1, 'egress', 'team', { host: 'a.example' }],
    [base + 2, 'message', null, { text: 'hi there' }],
    [base + 3, 'container.start', 'team', { name: 'hako-team-1' }],
  ]);
  const team = await audit(t, '--group', 'team');
  assert.deepEqual(team.out.split('\n').map((l) => Number(l.trim().split(' ')[0])), [2, 4]);
  const containers = await audit(t, '--kind', 'container', '--json');
  const records = JSON.parse(containers.out) as AuditRecord[];
  assert.deepEqual(records.map((r) => [r.seq, r.group, r.data.name]), [[1, 'main', 'hako-main-1'], [4, 'team', 'hako-team-1']]);
  const none = await audit(t, '--group', 'nobody');
  assert.equal(none.out, 'no audit records match');
  const message = await audit(t, '--kind', 'message');
  assert.match(message.out, /message\s+-\s+text="hi there"$/);
});

test('hako audit - --since takes an age or an ISO time', async (t) => {
  const { db } = tempHome(t);
  const now = Date.now();
  append(t, db, [
    [now - 3 * 86_400_000, 'egress', 'main', { n: 1 }],
    [now - 2 * 3_600_000, 'egress', 'main', { n: 2 }],
    [now - 10 * 60_000, 'egress', 'main', { n: 3 }],
  ]);
  const seqs = async (...args: string[]) => (await audit(t, ...args)).out.split('\n').map((l) => Number(l.trim().split(' ')[0]));
  assert.deepEqual(await seqs('--since', '30m'), [3]);
  assert.deepEqual(await seqs('--since', '3h'), [2, 3]);
  assert.deepEqual(await seqs('--since', '7d'), [1, 2, 3]);
  assert.deepEqual(await seqs('--since', new Date(now - 3 * 3_600_000).toISOString(), '--until', '30m'), [2]);
});

test('hako audit - bad --since, --kind and --limit values are usage errors that say what is expected', async (t) => {
  tempHome(t);
  for (const [args, message] of [
    [['--since', 'yesterday'], /--since "yesterday" is not a time: use an ISO time such as 2025-01-31T09:00Z or an age such as 30m, 2h or 7d/],
    [['--since', '2025-13-45'], /--since "2025-13-45" is not a time/],
    [['--since', '10y'], /--since "10y" is not a time/],
    [['--kind', 'bogus'], /--kind "bogus" is not a kind of audit record: use one of container\.start/],
    [['--limit', '0'], /--limit "0" must be a whole number/],
    [['--limit', 'ten'], /--limit "ten" must be a whole number/],
    [['verify', '--group', 'main'], /--group lists records and does not apply to "verify"/],
    [['verify', '--head', 'abc'], /--head must be the 64-character hex hash/],
    [['--head', '0'.repeat(64)], /--head applies only to "hako audit verify"/],
    [['check'], /unknown subcommand "check"/],
  ] as const) {
    const r = await audit(t, ...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, message);
  }
});

test('hako audit verify - an intact log prints its size and head and exits 0', async (t) => {
  const { db } = tempHome(t);
  const records = append(t, db, [[0, 'egress', 'main', { a: 1 }], [1, 'egress', 'main', { a: 2 }], [2, 'message', null, { a: 3 }]]);
  const r = await audit(t, 'verify');
  assert.equal(r.code, 0);
  assert.equal(r.out, `audit log intact: 3 records, head ${records[2]!.hash}`);
  const json = await audit(t, 'verify', '--json');
  assert.deepEqual(JSON.parse(json.out), { ok: true, count: 3, head: records[2]!.hash });
  const since = await audit(t, 'verify', '--head', records[0]!.hash.toUpperCase());
  assert.match(since.out, /the recorded head is record 1; 2 records were added since/);
});

test('hako audit verify - a tampered log prints each problem and exits 1', async (t) => {
  const { db } = tempHome(t);
  const records = append(t, db, Array.from({ length: 5 }, (_, i): Entry => [i, 'egress', 'main', { i }]));
  const raw = new DatabaseSync(db);
  t.after(() => raw.close());
  raw.exec(`DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; UPDATE audit SET data = '{"i":99}' WHERE seq = 2; DELETE FROM audit WHERE seq = 5;`);
  const r = await audit(t, 'verify');
  assert.equal(r.code, 1);
  assert.equal(r.out, 'audit log BROKEN: 4 records checked, problems:\n  - record 2 was altered: its contents no longer match its hash');
  const head = await audit(t, 'verify', '--head', records[4]!.hash);
  assert.equal(head.code, 1);
  assert.match(head.out, /the recorded head [0-9a-f]{64} is no longer in the log/);
});

test('hako audit - control and bidi characters from record data are escaped on the terminal', async (t) => {
  const { db } = tempHome(t);
  append(t, db, [[0, 'message', 'main', { text: 'red \u001b[31malert\u001b[0m \u202eevil\u0085' }]]);
  const r = await audit(t);
  assert.ok(!/[\u001b\u202e\u0085]/.test(r.out), r.out);
  assert.match(r.out, /\\u001b\[31malert/);
  const json = await audit(t, '--json');
  assert.ok(!/[\u001b\u202e\u0085]/.test(json.out));
  assert.equal((JSON.parse(json.out) as AuditRecord[])[0]!.data.text, 'red \u001b[31malert\u001b[0m \u202eevil\u0085', 'JSON output still parses to the stored text');
});

test('audit parseTime - ages and ISO times become ISO instants', () => {
  const now = new Date('2025-01-31T12:00:00Z');
  assert.equal(parseTime('--since', '30m', now), '2025-01-31T11:30:00.000Z');
  assert.equal(parseTime('--since', '2h', now), '2025-01-31T10:00:00.000Z');
  assert.equal(parseTime('--since', '7d', now), '2025-01-24T12:00:00.000Z');
  assert.equal(parseTime('--since', '2025-01-31', now), '2025-01-31T00:00:00.000Z');
  assert.equal(parseTime('--since', '2025-01-31T09:00+02:00', now), '2025-01-31T07:00:00.000Z');
  assert.equal(terminalSafe('a\nb'), 'a\\u000ab');
});
