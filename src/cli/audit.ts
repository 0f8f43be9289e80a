// `hako audit [filters]` lists audit records; `hako audit verify` checks the hash chain.
// Works whether or not the host is running (SQLite WAL). Record contents may come from
// agents, so control and bidi characters are escaped before they reach the terminal.

import fs from 'node:fs';
import { AUDIT_KINDS, AuditLog, type AuditRecord } from '../core/audit.ts';
import { loadConfig } from '../core/config.ts';
import { homePaths } from '../core/paths.ts';
import { safeJson, safeLine } from '../core/safe-text.ts';
import { parse, runCommand, UsageError } from './args.ts';

export const help = `Usage:
  hako audit [--group G] [--kind K] [--since T] [--until T] [--limit N] [--json]
  hako audit verify [--head HASH] [--json]

Lists audit records oldest first, one per line: seq, time, kind, group and data.
  --group   only this group's records
  --kind    one kind (${AUDIT_KINDS.join(', ')})
            or a family such as "container" or "ipc"
  --since   records at or after T: an ISO time (2025-01-31T09:00Z) or an age (30m, 2h, 7d)
  --until   records before T (same forms)
  --limit   the newest N matching records (default 50)
  --json    print the records as JSON

"verify" walks the whole log and checks every record's hash and link to the one before.
It prints the head hash: keep it somewhere else and pass it later as --head to detect
records removed from the end, which the chain alone cannot show.`;

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** An ISO time from `--since`/`--until`: an ISO date or time, or an age such as 30m. */
export function parseTime(flag: string, value: string, now: Date = new Date()): string {
  const age = /^(\d{1,6})([smhdw])$/.exec(value);
  if (age) return new Date(now.getTime() - Number(age[1]) * UNITS[age[2]!]!).toISOString();
  const ms = /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/i.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) {
    throw new UsageError(`${flag} "${value}" is not a time: use an ISO time such as 2025-01-31T09:00Z or an age such as 30m, 2h or 7d`);
  }
  return new Date(ms).toISOString();
}

function checkKind(kind: string | undefined): void {
  if (kind === undefined) return;
  if (AUDIT_KINDS.some((k) => k === kind || k.startsWith(kind + '.'))) return;
  throw new UsageError(`--kind "${kind}" is not a kind of audit record: use one of ${AUDIT_KINDS.join(', ')} or a family such as "container"`);
}

/** Escapes characters that could move the cursor, recolour or reorder a terminal line. */
export const terminalSafe = safeLine;

function jsonSafe(value: unknown): string {
  return safeJson(JSON.stringify(value, null, 2));
}

const SUMMARY_CHARS = 200;

function summary(data: Record<string, unknown>): string {
  const text = Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"]*$/.test(v) && v !== '' ? v : JSON.stringify(v)}`)
    .join(' ');
  return text.length > SUMMARY_CHARS ? text.slice(0, SUMMARY_CHARS - 1) + '…' : text;
}

export function formatRecord(r: AuditRecord): string {
  return terminalSafe(`${String(r.seq).padStart(6)} ${r.ts} ${r.kind.padEnd(15)} ${(r.group ?? '-').padEnd(16)} ${summary(r.data)}`);
}

function openLog(): AuditLog {
  const db = homePaths(loadConfig().home).db;
  if (!fs.existsSync(db)) throw new Error(`hako has not been started yet: there is no database at ${db} (run "hako start" once)`);
  return new AuditLog(db);
}

function limit(raw: string | undefined): number {
  if (raw === undefined) return 50;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 1_000_000) throw new UsageError(`--limit "${raw}" must be a whole number from 1 to 1000000`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, {
      group: { type: 'string' }, kind: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' },
      limit: { type: 'string' }, json: { type: 'boolean' }, head: { type: 'string' },
    }, help);
    if (!parsed) return 0;
    const [sub, ...extra] = parsed.positionals;
    const v = parsed.values;
    if (sub !== undefined && sub !== 'verify') throw new UsageError(`unknown subcommand "${sub}"`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (sub === 'verify') {
      const listing = (['group', 'kind', 'since', 'until', 'limit'] as const).find((k) => v[k] !== undefined);
      if (listing) throw new UsageError(`--${listing} lists records and does not apply to "verify"`);
      const head = v.head?.toLowerCase();
      if (head !== undefined && !/^[0-9a-f]{64}$/.test(head)) throw new UsageError('--head must be the 64-character hex hash printed by "hako audit verify"');
      const log = openLog();
      try {
        const result = log.verify(head !== undefined ? { expectHead: head } : {});
        if (v.json) console.log(jsonSafe(result));
        else if (result.ok) {
          console.log(`audit log intact: ${result.count} records, head ${result.head}`);
          if (result.expectedAt !== undefined) console.log(`the recorded head is record ${result.expectedAt}; ${result.count - result.expectedAt} records were added since`);
        } else {
          console.log(`audit log BROKEN: ${result.count} records checked, problems:`);
          for (const p of result.problems) console.log(terminalSafe(`  - ${p}`));
        }
        return result.ok ? 0 : 1;
      } finally {
        log.close();
      }
    }
    if (v.head !== undefined) throw new UsageError('--head applies only to "hako audit verify"');
    checkKind(v.kind);
    const now = new Date();
    const filter = {
      ...(v.group !== undefined ? { group: v.group } : {}),
      ...(v.kind !== undefined ? { kind: v.kind } : {}),
      ...(v.since !== undefined ? { since: parseTime('--since', v.since, now) } : {}),
      ...(v.until !== undefined ? { until: parseTime('--until', v.until, now) } : {}),
      limit: limit(v.limit),
    };
    const log = openLog();
    try {
      const records = log.query(filter);
      if (v.json) console.log(jsonSafe(records));
      else if (records.length === 0) console.log('no audit records match');
      else for (const r of records) console.log(formatRecord(r));
      return 0;
    } finally {
      log.close();
    }
  });
}
