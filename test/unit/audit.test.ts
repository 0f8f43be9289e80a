import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { AUDIT_DATA_LIMIT, AuditLog, GENESIS, canonicalJson, recordHash, type AuditKind, type AuditRecord } from '../../src/core/audit.ts';
import { Store } from '../../src/core/store.ts';

type T = { after(fn: () => void): void };

/** A migrated hako.db in a temp directory. */
function tempDb(t: T): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-audit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hako.db');
  new Store(file).close();
  return file;
}

/** A clock that advances one minute per call from 2025-01-01T00:00Z. */
function minuteClock(start = Date.parse('2025-01-01T00:00:00Z')): () => Date {
  let i = 0;
  return () => new Date(start + i++ * 60_000);
}

function openLog(t: T, file: string, opts: ConstructorParameters<typeof AuditLog>[1] = {}): AuditLog {
  const log = new AuditLog(file, { now: minuteClock(), ...opts });
  t.after(() => log.close());
  return log;
}

const KINDS: AuditKind[] = ['container.start', 'ipc.apply', 'egress', 'container.exit', 'task.run', 'ipc.reject'];

function fill(log: AuditLog, n: number): AuditRecord[] {
  return Array.from({ length: n }, (_, i) => log.append(KINDS[i % KINDS.length]!, i % 2 ? 'team' : 'main', { n: i + 1, note: `record ${i + 1}` }));
}

/** A raw connection with the append-only triggers dropped, as an attacker with file access would. */
function attacker(t: T, file: string): DatabaseSync {
  const db = new DatabaseSync(file);
  t.after(() => db.close());
  db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
  return db;
}

function problemsOf(log: AuditLog): readonly string[] {
  const result = log.verify();
  assert.equal(result.ok, false, 'verify should fail');
  return result.ok ? [] : result.problems;
}

test('audit - appended records form a chain from GENESIS that verifies', (t) => {
  const log = openLog(t, tempDb(t));
  const records = fill(log, 5);
  assert.deepEqual(records.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.equal(records[0]!.prevHash, GENESIS);
  for (let i = 1; i < records.length; i++) assert.equal(records[i]!.prevHash, records[i - 1]!.hash);
  for (const r of records) {
    assert.match(r.hash, /^[0-9a-f]{64}$/);
    assert.equal(recordHash(r), r.hash);
  }
  assert.deepEqual(log.verify(), { ok: true, count: 5, head: records[4]!.hash });
});

test('audit - an empty log verifies with the GENESIS head', (t) => {
  const log = openLog(t, tempDb(t));
  assert.deepEqual(log.verify(), { ok: true, count: 0, head: GENESIS });
});

test('audit - the hash covers a canonical serialization with sorted keys', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } }), '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
  const fields = { seq: 1, ts: '2025-01-01T00:00:00.000Z', kind: 'egress', group: null, data: { y: 1, x: 2 }, prevHash: GENESIS };
  assert.equal(recordHash(fields), recordHash({ ...fields, data: { x: 2, y: 1 } }));
  assert.notEqual(recordHash(fields), recordHash({ ...fields, seq: 2 }));
});

test('audit - a reopened log continues the same chain', (t) => {
  const file = tempDb(t);
  const first = new AuditLog(file, { now: minuteClock() });
  const [a] = fill(first, 1);
  first.close();
  const second = openLog(t, file);
  const b = second.append('policy.change', null, { what: 'allow api.example.com' });
  assert.equal(b.seq, 2);
  assert.equal(b.prevHash, a!.hash);
  assert.equal(second.verify().ok, true);
});

test('audit - a missing database or one without the audit table is refused with a hint', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-audit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  assert.throws(() => new AuditLog(path.join(dir, 'nope.db')), /no hako database at .*start hako once/);
  assert.equal(fs.existsSync(path.join(dir, 'nope.db')), false, 'must not create the file');
  const bare = path.join(dir, 'bare.db');
  new DatabaseSync(bare).close();
  assert.throws(() => new AuditLog(bare), /has no audit table/);
});

test('audit - the append-only triggers refuse UPDATE and DELETE with the hako message', (t) => {
  const file = tempDb(t);
  fill(openLog(t, file), 3);
  const db = new DatabaseSync(file);
  t.after(() => db.close());
  assert.throws(() => db.exec("UPDATE audit SET data = '{}' WHERE seq = 2"), /the audit log is append-only/);
  assert.throws(() => db.exec('DELETE FROM audit WHERE seq = 3'), /the audit log is append-only/);
  assert.equal((db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n, 3);
});

test('audit verify - an edited record is named by its seq', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 6);
  attacker(t, file).exec(`UPDATE audit SET data = '{"n":3,"note":"nothing happened"}' WHERE seq = 3`);
  assert.deepEqual(problemsOf(log), ['record 3 was altered: its contents no longer match its hash']);
});

test('audit verify - editing any field of a record (ts, kind, group, data form) is detected', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 6);
  const db = attacker(t, file);
  db.exec(`UPDATE audit SET ts = '2020-01-01T00:00:00.000Z' WHERE seq = 2`);
  db.exec(`UPDATE audit SET kind = 'message' WHERE seq = 3`);
  db.exec(`UPDATE audit SET group_name = NULL WHERE seq = 4`);
  db.exec(`UPDATE audit SET data = '{"note": "record 5", "n": 5}' WHERE seq = 5`); // same meaning, not hako's form
  db.exec(`UPDATE audit SET data = 'not json' WHERE seq = 6`);
  const problems = problemsOf(log);
  assert.equal(problems.length, 5, problems.join('\n'));
  for (const [i, n] of [2, 3, 4, 5, 6].entries()) assert.match(problems[i]!, new RegExp(`^record ${n} was altered`));
});

test('audit verify - a deleted record is named as the gap after the record before it', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 6);
  attacker(t, file).exec('DELETE FROM audit WHERE seq = 4');
  assert.deepEqual(problemsOf(log), ['record 4 is missing or was removed (the log jumps from record 3 to record 5)']);
});

test('audit verify - deleting several records, or the first, names the range', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 8);
  attacker(t, file).exec('DELETE FROM audit WHERE seq IN (1, 4, 5, 6)');
  assert.deepEqual(problemsOf(log), [
    'record 1 is missing or was removed (the log jumps from its start to record 2)',
    'records 4-6 are missing or were removed (the log jumps from record 3 to record 7)',
  ]);
});

test('audit verify - swapping the data of two records names both', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 6);
  const db = attacker(t, file);
  const [d2, d5] = (db.prepare('SELECT data FROM audit WHERE seq IN (2, 5) ORDER BY seq').all() as { data: string }[]).map((r) => r.data);
  db.prepare('UPDATE audit SET data = ? WHERE seq = 2').run(d5!);
  db.prepare('UPDATE audit SET data = ? WHERE seq = 5').run(d2!);
  assert.deepEqual(problemsOf(log), [
    'record 2 was altered: its contents no longer match its hash',
    'record 5 was altered: its contents no longer match its hash',
  ]);
});

test('audit verify - records reordered by rewriting their seqs are detected where the order changed', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 6);
  // Swap records 3 and 4 by renumbering (through a free seq, as the key is unique).
  attacker(t, file).exec('UPDATE audit SET seq = 100 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 100;');
  const problems = problemsOf(log);
  assert.ok(problems.includes('record 3 was altered: its contents no longer match its hash'), problems.join('\n'));
  assert.ok(problems.includes('record 4 was altered: its contents no longer match its hash'), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('the chain breaks at record 3: it does not link to record 2')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('the chain breaks at record 5: it does not link to record 4')), problems.join('\n'));
  assert.ok(problems.every((p) => /record [345]\b/.test(p)), 'nothing outside 3-5 is blamed');
});

test('audit verify - ts going backwards is not an error by itself: the chain is the truth', (t) => {
  const times = ['2025-01-01T10:00:00Z', '2025-01-01T09:00:00Z', '2025-01-01T11:00:00Z'].map((s) => new Date(s));
  const log = openLog(t, tempDb(t), { now: () => times.shift()! });
  fill(log, 3);
  assert.equal(log.verify().ok, true);
});

test('audit verify - a record replaced in place with a self-consistent forged hash breaks the chain at the next record', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  const records = fill(log, 5);
  const forged = { ...records[2]!, data: { n: 3, note: 'forged' } };
  const hash = recordHash(forged);
  attacker(t, file).prepare('UPDATE audit SET data = ?, hash = ? WHERE seq = 3').run(canonicalJson(forged.data), hash);
  assert.deepEqual(problemsOf(log), ['the chain breaks at record 4: it does not link to record 3 (a record was replaced, inserted, removed or reordered here)']);
});

test('audit verify - a forged record inserted in the middle with a self-consistent hash breaks the chain after it', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  const records = fill(log, 6);
  const db = attacker(t, file);
  // Make room at seq 4 by moving 4..6 to 5..7 (via negative seqs, the key is unique).
  db.exec('UPDATE audit SET seq = -seq WHERE seq >= 4; UPDATE audit SET seq = 1 - seq WHERE seq < 0;');
  const fields = { seq: 4, ts: records[2]!.ts, kind: 'egress', group: 'main', data: { host: 'evil.example', allowed: true }, prevHash: records[2]!.hash };
  db.prepare('INSERT INTO audit (seq, ts, kind, group_name, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(fields.seq, fields.ts, fields.kind, fields.group, canonicalJson(fields.data), fields.prevHash, recordHash(fields));
  const problems = problemsOf(log);
  assert.ok(!problems.some((p) => p.startsWith('record 4 ')), 'the forged record is consistent on its own');
  assert.ok(problems.some((p) => p.startsWith('the chain breaks at record 5: it does not link to record 4')), problems.join('\n'));
});

test('audit verify - removing the newest records is only detected against a recorded head', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 5);
  const before = log.verify();
  assert.ok(before.ok);
  fill(log, 2);
  const grown = log.verify({ expectHead: before.head });
  assert.deepEqual(grown, { ok: true, count: 7, head: log.query({ limit: 1 })[0]!.hash, expectedAt: 5 });
  attacker(t, file).exec('DELETE FROM audit WHERE seq >= 4');
  assert.equal(log.verify().ok, true, 'known limit: a truncated chain is consistent on its own');
  const result = log.verify({ expectHead: before.head });
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.problems[0]!, new RegExp(`recorded head ${before.head} is no longer in the log \\(3 records`));
  assert.deepEqual(log.verify({ expectHead: GENESIS }), { ok: true, count: 3, head: log.query({ limit: 1 })[0]!.hash, expectedAt: 0 });
});

test('audit verify - a log rewritten wholesale lists many problems but stays readable', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  fill(log, 150);
  attacker(t, file).exec(`UPDATE audit SET data = '{}'`);
  const problems = problemsOf(log);
  assert.equal(problems.length, 101);
  assert.equal(problems[100], '… and 50 more problems');
});

test('audit - two connections appending interleaved keep one valid chain', (t) => {
  const file = tempDb(t);
  const host = openLog(t, file);
  const cli = openLog(t, file);
  for (let i = 0; i < 20; i++) {
    host.append('container.start', 'main', { i });
    cli.append('policy.change', null, { i });
  }
  const check = openLog(t, file);
  const result = check.verify();
  assert.equal(result.ok, true);
  assert.equal(result.count, 40);
  const all = check.query({});
  assert.deepEqual(all.map((r) => r.seq), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.deepEqual(all.slice(0, 2).map((r) => r.kind), ['container.start', 'policy.change']);
});

test('audit - appenders in four threads at once keep one valid chain', async (t) => {
  const file = tempDb(t);
  const moduleUrl = new URL('../../src/core/audit.ts', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.moduleUrl).then(({ AuditLog }) => {
      const log = new AuditLog(workerData.file);
      for (let i = 0; i < 50; i++) log.append('egress', 'w' + workerData.id, { i });
      log.close();
      parentPort.postMessage('done');
    });`;
  await Promise.all([0, 1, 2, 3].map((id) => new Promise<void>((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { file, moduleUrl, id } });
    w.once('error', reject);
    w.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker ${id} exited with ${c}`))));
  })));
  const log = openLog(t, file);
  const result = log.verify();
  assert.equal(result.ok, true, result.ok ? '' : result.problems.join('\n'));
  assert.equal(result.count, 200);
  for (const id of [0, 1, 2, 3]) assert.equal(log.query({ group: `w${id}` }).length, 50);
});

const SECRET = 'sk-live-0123456789abcdef';
const mask = (s: string) => s.split(SECRET).join('[secret]');

test('audit - redaction keeps a secret out of the stored row', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file, { redact: mask });
  const r = log.append('egress', 'main', { header: `Bearer ${SECRET}`, nested: { list: [SECRET, 'ok'] }, [SECRET]: 1 });
  assert.deepEqual(r.data, { header: 'Bearer [secret]', nested: { list: ['[secret]', 'ok'] }, '[secret]': 1 });
  const db = new DatabaseSync(file);
  t.after(() => db.close());
  const row = db.prepare('SELECT * FROM audit').get() as Record<string, unknown>;
  assert.ok(!JSON.stringify(row).includes(SECRET), 'the secret reached the database');
  assert.equal(log.verify().ok, true);
});

test('audit - the second pass masks a secret that spans fields of the serialized data, and withholds data it breaks', (t) => {
  const across = (s: string) => s.split('x","b":"y').join('[secret]').split('1","q').join('[secret]');
  const log = openLog(t, tempDb(t), { redact: across });
  assert.deepEqual(log.append('message', 'main', { a: 'x', b: 'y' }).data, { a: '[secret]' });
  assert.deepEqual(log.append('message', 'main', { p: '1', q: '2' }).data, { withheld: 'redaction made this data invalid JSON, so it was not recorded' });
  assert.equal(log.verify().ok, true);
});

test('audit - a secret with JSON-escaped characters is still redacted', (t) => {
  const odd = 'pa"ss\\word\n12345';
  const log = openLog(t, tempDb(t), { redact: (s) => s.split(odd).join('[secret]') });
  const r = log.append('message', 'main', { text: `the password is ${odd}` });
  assert.equal(r.data.text, 'the password is [secret]');
});

test('audit - redaction runs before truncation, so a cut never leaves part of a secret', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file, { redact: mask });
  log.append('ipc.apply', 'main', { output: SECRET.repeat(5000) });
  const db = new DatabaseSync(file);
  t.after(() => db.close());
  const { data } = db.prepare('SELECT data FROM audit').get() as { data: string };
  assert.ok(!data.includes(SECRET.slice(0, 6)));
  assert.match(data, /…\[truncated: 40000 chars\]/);
});

test('audit - oversized data is truncated to 16 KiB with a note and still verifies', (t) => {
  const file = tempDb(t);
  const log = openLog(t, file);
  const r = log.append('ipc.apply', 'main', { output: 'x'.repeat(100_000), more: 'é'.repeat(20_000), small: 'kept' });
  assert.equal(r.data.small, 'kept');
  assert.match(String(r.data.output), /^x+…\[truncated: 100000 chars\]$/);
  assert.match(String(r.data.more), /^é+…\[truncated: 20000 chars\]$/);
  const size = Buffer.byteLength(canonicalJson(r.data));
  assert.ok(size <= AUDIT_DATA_LIMIT && size > AUDIT_DATA_LIMIT - 200, `stored ${size} bytes`);
  const many = log.append('ipc.apply', 'main', Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`key${i}`, i])));
  assert.match(String(many.data.truncated), /over the 16384-byte limit/);
  assert.deepEqual((many.data.keys as string[]).slice(0, 2), ['key0', 'key1']);
  assert.equal(log.verify().ok, true);
});

test('audit - data that JSON cannot hold is refused with its path', (t) => {
  const log = openLog(t, tempDb(t));
  assert.throws(() => log.append('message', null, { when: new Date() }), /data\.when is a Date: convert it to plain JSON/);
  assert.throws(() => log.append('message', null, { n: [1, NaN] }), /data\.n\[1\] is NaN/);
  assert.throws(() => log.append('message', null, { f: () => 1 }), /data\.f is a function/);
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  assert.throws(() => log.append('message', null, { loop }), /data\.loop\.self refers back to itself/);
  assert.deepEqual(log.append('message', null, { a: 1, b: undefined }).data, { a: 1 }, 'undefined properties are left out');
  assert.equal(log.verify().count, 1, 'refused records were not stored');
});

test('audit query - filters by group, kind (exact or family), since and until', (t) => {
  const log = openLog(t, tempDb(t)); // one record per minute from 00:00
  fill(log, 12);
  assert.deepEqual(log.query({ group: 'team' }).map((r) => r.seq), [2, 4, 6, 8, 10, 12]);
  assert.deepEqual(log.query({ kind: 'egress' }).map((r) => r.seq), [3, 9]);
  assert.deepEqual(log.query({ kind: 'container' }).map((r) => r.seq), [1, 4, 7, 10]);
  assert.deepEqual(log.query({ kind: 'contain' }).map((r) => r.seq), [], 'a family is a whole dotted prefix');
  assert.deepEqual(log.query({ kind: 'ipc', group: 'team' }).map((r) => r.seq), [2, 6, 8, 12]);
  assert.deepEqual(log.query({ since: '2025-01-01T00:09:00Z' }).map((r) => r.seq), [10, 11, 12]);
  assert.deepEqual(log.query({ since: '2025-01-01T00:02:00Z', until: '2025-01-01T00:05:00Z' }).map((r) => r.seq), [3, 4, 5]);
  assert.throws(() => log.query({ since: 'yesterday' }), /since="yesterday" is not an ISO time/);
});

test('audit query - limit keeps the newest N, returned oldest first', (t) => {
  const log = openLog(t, tempDb(t));
  fill(log, 12);
  assert.deepEqual(log.query({ limit: 3 }).map((r) => r.seq), [10, 11, 12]);
  assert.deepEqual(log.query({ group: 'main', limit: 2 }).map((r) => r.seq), [9, 11]);
  assert.throws(() => log.query({ limit: 0 }), /positive whole number/);
});
