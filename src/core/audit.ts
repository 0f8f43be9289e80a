// The hash-chained audit log: every container start, IPC action, egress decision and task
// run becomes one record in the `audit` table of hako.db (DESIGN.md principle 9).
//
// Invariants: record N's hash is
//   sha256hex(canonicalJson({ data, group, kind, prevHash, seq, ts }))
// and its prevHash is record N-1's hash (GENESIS for record 1); seq has no gaps. Stored
// data is redacted, capped at AUDIT_DATA_LIMIT bytes and stored as canonical JSON.
// The table's UPDATE/DELETE triggers are defence in depth only: anyone who can write the
// file can drop them. The chain is the proof, and `verify` checks it.
//
// Known limit: removing the newest records (or rewriting the chain from some record to
// the end) leaves a chain that is consistent on its own. `verify` returns the head hash
// so an owner can record it elsewhere; `verify({ expectHead })` then reports when that
// head is no longer in the chain.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';

/** Kinds of audit records. Add new kinds here (the CLI validates `--kind` against it). */
export const AUDIT_KINDS = [
  'container.start', 'container.exit', 'ipc.apply', 'ipc.reject', 'egress', 'task.run', 'policy.change', 'policy.refused', 'message', 'disk',
  'container.strays', 'ipc.flood', 'container.refused', 'chat.unknown', 'webhook.refused', 'webhook.flood', 'egress.flood',
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export interface AuditRecord {
  readonly seq: number;
  readonly ts: string;
  readonly kind: string;
  readonly group: string | null;
  readonly data: Record<string, unknown>;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditFilter {
  readonly group?: string;
  /** An exact kind, or a family: `container` matches `container.start` and `container.exit`. */
  readonly kind?: string;
  /** ISO time, inclusive. */
  readonly since?: string;
  /** ISO time, exclusive. */
  readonly until?: string;
  /** Only the newest N matching records (still returned oldest first). */
  readonly limit?: number;
}

export type VerifyResult =
  | { readonly ok: true; readonly count: number; readonly head: string; /** seq of the expected head, when one was given */ readonly expectedAt?: number }
  | { readonly ok: false; readonly count: number; readonly problems: readonly string[] };

export interface AuditOptions {
  /** Contract: returns a valid Date; never throws. Defaults to the system clock. */
  readonly now?: () => Date;
  /**
   * Masks secret values in a string (the host passes its secret masker).
   * Contract: pure, returns the masked string, never throws (if it does, `append` throws
   * and nothing is stored). Applied to every string and key of the data and then to the
   * serialized data, before the record is hashed and stored.
   */
  readonly redact?: (s: string) => string;
}

export const GENESIS = '0'.repeat(64);
/** Largest stored data, in bytes of canonical JSON; longer strings are cut to fit. */
export const AUDIT_DATA_LIMIT = 16 * 1024;
/** `verify` lists at most this many problems, then says how many more it found. */
const MAX_PROBLEMS = 100;

/** JSON with object keys sorted (by UTF-16 code units) at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The hash of one record, from its fields (exported for tests and external verifiers). */
export function recordHash(r: Omit<AuditRecord, 'hash'>): string {
  return hashOf(canonicalJson(r.data), r);
}

/**
 * The hash from the data's canonical JSON and the other fields: the record's canonical JSON
 * is composed here with its keys in canonicalJson's order, so append serializes the data once.
 */
function hashOf(dataText: string, r: Omit<AuditRecord, 'hash' | 'data'>): string {
  const body = `{"data":${dataText},"group":${JSON.stringify(r.group)},"kind":${JSON.stringify(r.kind)},"prevHash":${JSON.stringify(r.prevHash)},"seq":${JSON.stringify(r.seq)},"ts":${JSON.stringify(r.ts)}}`;
  return createHash('sha256').update(body).digest('hex');
}

/**
 * A plain-JSON copy of `value` with every string and key passed through `redact`.
 * Throws a TypeError naming the path for values JSON cannot hold (a programmer error);
 * object properties that are `undefined` are left out, as JSON.stringify does.
 */
function toJson(value: unknown, redact: (s: string) => string, at: string, seen: Set<object>): unknown {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`audit data ${at} is ${value}: only JSON values can be recorded`);
    return value;
  }
  if (typeof value !== 'object') throw new TypeError(`audit data ${at} is a ${typeof value}: only JSON values can be recorded`);
  if (seen.has(value)) throw new TypeError(`audit data ${at} refers back to itself: only JSON values can be recorded`);
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((v, i) => {
        if (v === undefined) throw new TypeError(`audit data ${at}[${i}] is undefined: only JSON values can be recorded`);
        return toJson(v, redact, `${at}[${i}]`, seen);
      });
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`audit data ${at} is a ${(value as object).constructor?.name ?? 'non-plain object'}: convert it to plain JSON first (e.g. a Date to toISOString())`);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[redact(k)] = toJson(v, redact, `${at}.${k}`, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function longestString(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (value === null || typeof value !== 'object') return 0;
  return Math.max(0, ...Object.values(value).map(longestString));
}

/** `value` with every string longer than `max` cut to `max` characters plus a note. */
function cutStrings(value: unknown, max: number): unknown {
  if (typeof value === 'string') {
    const note = `…[truncated: ${value.length} chars]`;
    if (value.length <= max + note.length) return value;
    let head = value.slice(0, max);
    if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1); // never split a surrogate pair
    return head + note;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => cutStrings(v, max));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cutStrings(v, max)]));
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Data as stored, and its canonical JSON. */
interface Prepared { readonly data: Record<string, unknown>; readonly text: string }

const prepared = (data: Record<string, unknown>): Prepared => ({ data, text: canonicalJson(data) });

/** Fits data into AUDIT_DATA_LIMIT: the longest cut that fits, else a stub naming the keys. */
function capData(p: Prepared): Prepared {
  const { data } = p;
  const size = bytes(p.text);
  if (size <= AUDIT_DATA_LIMIT) return p;
  const fits = (max: number) => bytes(canonicalJson(cutStrings(data, max))) <= AUDIT_DATA_LIMIT;
  if (fits(0)) {
    // Serialized size never shrinks as `max` grows, so binary-search the largest that fits.
    let lo = 0;
    let hi = longestString(data);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid - 1;
    }
    return prepared(cutStrings(data, lo) as Record<string, unknown>);
  }
  return prepared({
    truncated: `data of ${size} bytes was over the ${AUDIT_DATA_LIMIT}-byte limit even with every string cut, and was dropped`,
    keys: Object.keys(data).slice(0, 20).map((k) => k.slice(0, 64)),
  });
}

/** Redacts, validates and caps `data`; returns what will be hashed and stored, and its canonical JSON. */
function prepareData(data: Record<string, unknown>, redact: (s: string) => string): Prepared {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new TypeError('audit data must be a plain object');
  const clean = toJson(data, redact, 'data', new Set()) as Record<string, unknown>;
  const text = canonicalJson(clean);
  // Second pass over the serialized form, as the spec of `redact` promises.
  const masked = redact(text);
  if (masked === text) return capData({ data: clean, text });
  let redacted: Record<string, unknown>;
  try {
    redacted = JSON.parse(masked) as Record<string, unknown>;
  } catch {
    redacted = { withheld: 'redaction made this data invalid JSON, so it was not recorded' };
  }
  return capData(prepared(redacted));
}

interface Row {
  seq: number;
  ts: string;
  kind: string;
  group_name: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

function toRecord(r: Row): AuditRecord {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(r.data) as Record<string, unknown>;
  } catch {
    data = { unreadable: 'the stored data is not JSON: run "hako audit verify"' };
  }
  return { seq: r.seq, ts: r.ts, kind: r.kind, group: r.group_name, data, prevHash: r.prev_hash, hash: r.hash };
}

function isoTime(value: string, name: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new TypeError(`audit query ${name}=${JSON.stringify(value)} is not an ISO time`);
  return new Date(ms).toISOString();
}

function range(from: number, to: number): string {
  return from === to ? `record ${from} is missing or was removed` : `records ${from}-${to} are missing or were removed`;
}

export class AuditLog {
  readonly #db: DatabaseSync;
  readonly #now: () => Date;
  readonly #redact: (s: string) => string;
  readonly #last: StatementSync;
  readonly #insert: StatementSync;
  #open = true;

  /**
   * Opens the audit log in an existing hako database (migrated by `Store`) on a
   * connection of its own. Throws when the file or the audit table does not exist.
   */
  constructor(dbFile: string, opts: AuditOptions = {}) {
    if (!fs.existsSync(dbFile)) throw new Error(`no hako database at ${dbFile}: start hako once to create it`);
    this.#now = opts.now ?? (() => new Date());
    this.#redact = opts.redact ?? ((s) => s);
    this.#db = new DatabaseSync(dbFile);
    try {
      // FULL: a record is on disk when append returns, even across a power loss.
      this.#db.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;');
      const table = this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get();
      if (!table) throw new Error(`the database ${dbFile} has no audit table: start this version of hako once to upgrade it`);
      this.#last = this.#db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
      this.#insert = this.#db.prepare('INSERT INTO audit (seq, ts, kind, group_name, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  /**
   * Appends one record and returns it as stored (redacted, capped).
   * Contract: synchronous; the record is durable when it returns. Safe against other
   * connections and processes appending to the same file (BEGIN IMMEDIATE serializes
   * them). Throws for data that is not JSON, and when the record cannot be stored (disk
   * full, database locked for over 5 s). Do not call it inside a `Store` transaction: it
   * would wait for that transaction's write lock and fail after 5 s.
   */
  append(kind: AuditKind, group: string | null, data: Record<string, unknown>): AuditRecord {
    const { data: stored, text: dataText } = prepareData(data, this.#redact);
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const ts = this.#now().toISOString(); // under the lock, so ts follows seq in practice
      const last = this.#last.get() as { seq: number; hash: string } | undefined;
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? GENESIS;
      const record = { seq, ts, kind, group, data: stored, prevHash };
      const hash = hashOf(dataText, record);
      this.#insert.run(seq, ts, kind, group, dataText, prevHash, hash);
      this.#db.exec('COMMIT');
      return { ...record, hash };
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Matching records, oldest first; `limit` keeps the newest N. Does not check hashes. */
  query(filter: AuditFilter = {}): AuditRecord[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.group !== undefined) {
      where.push('group_name = ?');
      params.push(filter.group);
    }
    if (filter.kind !== undefined) {
      where.push("(kind = ? OR substr(kind, 1, length(?) + 1) = ? || '.')");
      params.push(filter.kind, filter.kind, filter.kind);
    }
    if (filter.since !== undefined) {
      where.push('ts >= ?');
      params.push(isoTime(filter.since, 'since'));
    }
    if (filter.until !== undefined) {
      where.push('ts < ?');
      params.push(isoTime(filter.until, 'until'));
    }
    let sql = `SELECT * FROM audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC`;
    if (filter.limit !== undefined) {
      if (!Number.isInteger(filter.limit) || filter.limit < 1) throw new TypeError(`audit query limit must be a positive whole number, not ${filter.limit}`);
      sql += ' LIMIT ?';
      params.push(filter.limit);
    }
    return (this.#db.prepare(sql).all(...params) as unknown as Row[]).map(toRecord).reverse();
  }

  /**
   * Walks the whole log in seq order and checks every hash and link. Problems name the
   * records involved. With `expectHead` (a head recorded earlier), also reports when that
   * hash is no longer in the log: the newest records were removed or the chain rewritten.
   */
  verify(opts: { expectHead?: string } = {}): VerifyResult {
    const problems: string[] = [];
    let more = 0;
    const report = (p: string) => (problems.length < MAX_PROBLEMS ? problems.push(p) : more++);
    let prev = { seq: 0, hash: GENESIS };
    let count = 0;
    let expectedAt: number | undefined = opts.expectHead === GENESIS ? 0 : undefined;
    this.#db.exec('BEGIN'); // one snapshot, even while another process appends
    try {
      for (const row of this.#db.prepare('SELECT * FROM audit ORDER BY seq').iterate() as Iterable<Row>) {
        count++;
        const n = row.seq;
        let data: unknown;
        try {
          data = JSON.parse(row.data);
        } catch {
          report(`record ${n} was altered: its data is not valid JSON`);
        }
        if (data !== undefined) {
          if (canonicalJson(data) !== row.data) report(`record ${n} was altered: its data is not in the form hako writes`);
          else if (recordHash({ seq: n, ts: row.ts, kind: row.kind, group: row.group_name, data: data as Record<string, unknown>, prevHash: row.prev_hash }) !== row.hash) {
            report(`record ${n} was altered: its contents no longer match its hash`);
          }
        }
        // Rows come in seq order and seq is the primary key, so n > prev.seq always.
        if (n !== prev.seq + 1) {
          report(`${range(prev.seq + 1, n - 1)} (the log jumps from ${prev.seq === 0 ? 'its start' : `record ${prev.seq}`} to record ${n})`);
        } else if (row.prev_hash !== prev.hash) {
          report(`the chain breaks at record ${n}: it does not link to ${prev.seq === 0 ? 'the start of the log' : `record ${prev.seq}`} (a record was replaced, inserted, removed or reordered here)`);
        }
        if (row.hash === opts.expectHead) expectedAt = n;
        prev = { seq: n, hash: row.hash };
      }
    } finally {
      this.#db.exec('COMMIT');
    }
    if (opts.expectHead !== undefined && expectedAt === undefined) {
      report(`the recorded head ${opts.expectHead} is no longer in the log (${count} records, head ${prev.hash}): the newest records were removed or the chain was rewritten`);
    }
    if (more) problems.push(`… and ${more} more problems`);
    if (problems.length) return { ok: false, count, problems };
    return expectedAt === undefined ? { ok: true, count, head: prev.hash } : { ok: true, count, head: prev.hash, expectedAt };
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
