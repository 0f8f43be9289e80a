// `hako backup FILE`: one consistent copy of hako's state, taken while the host may run.
//
// What goes in: hako.db through SQLite's online backup in a single step (one read
// snapshot: every transaction is in it whole or not at all, and a message the host
// acknowledged before the backup began is in it), the folders groups/, global/, files/
// (copies of files agents sent, which pending deliveries name) and channels/ (a chat
// channel's own state, such as the e-mail channel's list of mails already stored), and a
// manifest `hako-backup.json` (format, versions, time, the audit chain's head at the
// snapshot). The secrets (HAKO_HOME/http-token, HAKO_CONFIG/secrets.env and hako.env) only
// with --with-secrets. Left out on purpose: ipc/ (files of turns in flight: the database
// alone says what to run again, and a restored host re-runs unfinished turns), run/
// (sockets of the running host), logs/ (history for people, not state, and large),
// backups/ (earlier copies) and HAKO_CONFIG's policy files (they name this machine's paths).
//
// Invariants: agent-writable folders are read without following any link (each folder
// opened O_NOFOLLOW through its parent's descriptor, like core/beneath.ts); links and
// special files are skipped and counted, never archived. The file is written to a
// temporary name beside FILE, owner-only (0600), and renamed into place only when whole.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { backup, DatabaseSync } from 'node:sqlite';
import { randomBytes } from 'node:crypto';
import { AuditLog, GENESIS } from '../core/audit.ts';
import { loadConfig } from '../core/config.ts';
import { homePaths } from '../core/paths.ts';
import { END, entryHeader, entryPadding, type EntryHeader } from './backup-archive.ts';
import { parse, runCommand, UsageError } from './args.ts';

export const help = `Usage: hako backup FILE [--with-secrets] [--force]

Writes one file holding a consistent copy of hako's state; the host may keep running.
  FILE            where to write it (a gzip-compressed tar: "tar -tzf FILE" lists it);
                  it must lie outside HAKO_HOME
  --with-secrets  also copy the API token (HAKO_HOME/http-token) and HAKO_CONFIG's
                  secrets.env and hako.env; keep such a file as safe as those
  --force         replace FILE when it exists

What it holds: the database (messages, groups, tasks, the audit log) copied with SQLite's
online backup, the group folders (groups/, global/), the files agents sent (files/), the
chat channels' state (channels/) and a manifest with the audit log's head. Links and
special files in the group folders are skipped and counted, never followed.
Not held: logs/, the IPC and socket folders of the running host, the policy files of
HAKO_CONFIG (mounts.json, egress.json) and, without --with-secrets, any secret.

Restore it with "hako restore FILE" into an empty HAKO_HOME.`;

/** The manifest's format; restore refuses any other. */
export const FORMAT = 'hako-backup';
export const FORMAT_VERSION = 1;
export const MANIFEST = 'hako-backup.json';
/** Folders of HAKO_HOME copied as they are (agents write to groups/). */
export const FOLDERS = ['groups', 'global', 'files', 'channels'] as const;
/** Archive name → where the secret lives (`home` or `config` folder, file name). */
export const SECRETS = {
  'secrets/http-token': { in: 'home', name: 'http-token' },
  'secrets/secrets.env': { in: 'config', name: 'secrets.env' },
  'secrets/hako.env': { in: 'config', name: 'hako.env' },
} as const;

export interface Manifest {
  readonly format: typeof FORMAT;
  readonly formatVersion: number;
  readonly hakoVersion: string;
  readonly schemaVersion: number;
  readonly createdAt: string;
  /** The audit chain at the snapshot: its last record, or seq 0 and GENESIS when empty. */
  readonly audit: { readonly seq: number; readonly head: string };
  readonly withSecrets: boolean;
  readonly contents: Stats;
}

interface Stats { files: number; dirs: number; bytes: number; links: number; special: number; changed: number }

const DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;
const FILE = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const CHUNK = 1024 * 1024;

export function hakoVersion(): string {
  return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

const isLinkError = (err: unknown) => ['ELOOP', 'ENOTDIR', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '');

/** The data of an open file, `size` bytes: cut when it grew, zero-filled (and counted) when it shrank. */
function* fileData(fd: number, size: number, stats: Stats): Generator<Buffer> {
  let left = size;
  while (left > 0) {
    const buf = Buffer.alloc(Math.min(CHUNK, left));
    const n = fs.readSync(fd, buf, 0, buf.length, size - left);
    if (n === 0) {
      stats.changed++;
      yield Buffer.alloc(left);
      break;
    }
    left -= n;
    yield n === buf.length ? buf : buf.subarray(0, n);
  }
  yield entryPadding(size);
}

/** One regular file as archive chunks, opened through its folder's descriptor without following a link. */
function* fileEntry(at: string, name: string, stats: Stats): Generator<Buffer> {
  let fd: number;
  try {
    fd = fs.openSync(at, FILE);
  } catch (err) {
    if (isLinkError(err)) { stats.links++; return; }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') { stats.changed++; return; }
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) { stats.special++; return; }
    stats.files++;
    stats.bytes += st.size;
    yield entryHeader({ path: name, type: 'file', mode: st.mode & 0o777, size: st.size, mtime: st.mtimeMs / 1000 });
    yield* fileData(fd, st.size, stats);
  } finally {
    fs.closeSync(fd);
  }
}

/** A folder and everything under it, each folder opened O_NOFOLLOW through its parent. */
function* folderEntries(at: string, name: string, stats: Stats): Generator<Buffer> {
  let fd: number;
  try {
    fd = fs.openSync(at, DIR);
  } catch (err) {
    if (isLinkError(err)) { stats.links++; return; }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    stats.dirs++;
    yield entryHeader({ path: name, type: 'dir', mode: st.mode & 0o777, size: 0, mtime: st.mtimeMs / 1000 });
    const here = `/proc/self/fd/${fd}`;
    for (const child of fs.readdirSync(here).sort()) {
      const childAt = `${here}/${child}`;
      let lst: fs.Stats;
      try {
        lst = fs.lstatSync(childAt);
      } catch {
        stats.changed++;
        continue;
      }
      if (lst.isSymbolicLink()) stats.links++;
      else if (lst.isDirectory()) yield* folderEntries(childAt, `${name}/${child}`, stats);
      else if (lst.isFile()) yield* fileEntry(childAt, `${name}/${child}`, stats);
      else stats.special++;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A small file of the owner's (the database copy, a secret), whole. */
function* ownFile(file: string, name: string, stats: Stats): Generator<Buffer> {
  if (fs.existsSync(file)) yield* fileEntry(file, name, stats);
}

function emptyStats(): Stats {
  return { files: 0, dirs: 0, bytes: 0, links: 0, special: 0, changed: 0 };
}

/** Copies the live database in one step of the online backup (one read snapshot, never restarted by writers). */
async function snapshotDb(dbFile: string, target: string): Promise<number> {
  const src = new DatabaseSync(dbFile);
  try {
    src.exec('PRAGMA busy_timeout = 5000');
    return await backup(src, target, { rate: 2 ** 31 - 1 });
  } finally {
    src.close();
  }
}

/** The copy's schema and audit head; warns (and keeps going) when the chain is already broken. */
function describeDb(file: string): { schemaVersion: number; audit: Manifest['audit']; records: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  let schemaVersion: number;
  let hasAudit: boolean;
  try {
    schemaVersion = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    hasAudit = !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get();
  } finally {
    db.close();
  }
  if (!hasAudit) return { schemaVersion, audit: { seq: 0, head: GENESIS }, records: 0 };
  const log = new AuditLog(file);
  try {
    const v = log.verify();
    const last = log.query({ limit: 1 })[0];
    if (!v.ok) console.log(`warning: the audit log is already broken in HAKO_HOME (the backup keeps it as it is):\n  ${v.problems.join('\n  ')}`);
    return { schemaVersion, audit: { seq: last?.seq ?? 0, head: last?.hash ?? GENESIS }, records: v.count };
  } finally {
    log.close();
  }
}

function phaseLine(label: string, s: Stats, before: Stats): string {
  const files = s.files - before.files;
  const dirs = s.dirs - before.dirs;
  return `${label.padEnd(10)} ${files} file${files === 1 ? '' : 's'}, ${dirs} folder${dirs === 1 ? '' : 's'}, ${formatBytes(s.bytes - before.bytes)}`;
}

interface Plan {
  readonly home: string;
  readonly configDir: string;
  readonly dbCopy: string;
  readonly withSecrets: boolean;
  readonly manifest: (contents: Stats) => Manifest;
}

/** Every chunk of the archive, in order, printing a line as each phase ends. */
function* archive(plan: Plan, stats: Stats): Generator<Buffer> {
  yield* ownFile(plan.dbCopy, 'hako.db', stats);
  for (const folder of FOLDERS) {
    const before = { ...stats };
    yield* folderEntries(path.join(plan.home, folder), folder, stats);
    console.log(phaseLine(`${folder}/`, stats, before));
  }
  if (plan.withSecrets) {
    const before = { ...stats };
    yield entryHeader({ path: 'secrets', type: 'dir', mode: 0o700, size: 0, mtime: Date.now() / 1000 });
    for (const [name, where] of Object.entries(SECRETS)) {
      yield* ownFile(path.join(where.in === 'home' ? plan.home : plan.configDir, where.name), name, stats);
    }
    console.log(`secrets    ${stats.files - before.files} file${stats.files - before.files === 1 ? '' : 's'} (${Object.values(SECRETS).map((s) => s.name).join(', ')}, those present)`);
  }
  const manifest = Buffer.from(JSON.stringify(plan.manifest({ ...stats }), null, 2) + '\n');
  yield entryHeader({ path: MANIFEST, type: 'file', mode: 0o600, size: manifest.length, mtime: Date.now() / 1000 });
  yield manifest;
  yield entryPadding(manifest.length);
  yield END;
}

function checkTarget(file: string, home: string, force: boolean): string {
  const target = path.resolve(file);
  if (!fs.existsSync(path.dirname(target))) throw new UsageError(`the folder ${path.dirname(target)} does not exist: create it (mkdir -p ${path.dirname(target)}) or write the backup elsewhere`, { showHelp: false });
  const dir = fs.realpathSync(path.dirname(target));
  const realHome = fs.existsSync(home) ? fs.realpathSync(home) : home;
  if (dir === realHome || dir.startsWith(realHome + path.sep)) {
    throw new UsageError(`${target} lies inside HAKO_HOME (${home}), where agents could read it or the next backup would copy it: write it elsewhere, such as ~/hako-backup.tar.gz`, { showHelp: false });
  }
  if (fs.existsSync(target) && !force) throw new UsageError(`${target} exists: choose another name, or add --force to replace it`, { showHelp: false });
  return path.join(dir, path.basename(target));
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { 'with-secrets': { type: 'boolean' }, force: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const [file, ...extra] = parsed.positionals;
    if (!file) throw new UsageError('name the FILE to write, such as: hako backup ~/hako-backup.tar.gz');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const config = loadConfig();
    const dbFile = homePaths(config.home).db;
    if (!fs.existsSync(dbFile)) throw new Error(`there is nothing to back up: no database at ${dbFile} (is HAKO_HOME=${config.home} right?)`);
    const target = checkTarget(file, config.home, !!parsed.values.force);
    const withSecrets = !!parsed.values['with-secrets'];
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-backup-'));
    const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const dbCopy = path.join(work, 'hako.db');
      const pages = await snapshotDb(dbFile, dbCopy);
      fs.chmodSync(dbCopy, 0o600);
      const db = describeDb(dbCopy);
      console.log(`database   ${formatBytes(fs.statSync(dbCopy).size)} (${pages} pages), schema ${db.schemaVersion}, audit log ${db.records} record${db.records === 1 ? '' : 's'}, head ${db.audit.head.slice(0, 16)}… (record ${db.audit.seq})`);
      const createdAt = new Date().toISOString();
      const plan: Plan = {
        home: config.home, configDir: config.configDir, dbCopy, withSecrets,
        manifest: (contents) => ({ format: FORMAT, formatVersion: FORMAT_VERSION, hakoVersion: hakoVersion(), schemaVersion: db.schemaVersion, createdAt, audit: db.audit, withSecrets, contents }),
      };
      const stats = emptyStats();
      const out = fs.createWriteStream(temp, { flags: 'wx', mode: 0o600 });
      await pipeline(Readable.from(archive(plan, stats), { objectMode: false }), createGzip(), out);
      const fd = fs.openSync(temp, 'r');
      try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
      fs.renameSync(temp, target);
      if (stats.links || stats.special) console.log(`skipped    ${stats.links} link${stats.links === 1 ? '' : 's'} and ${stats.special} special file${stats.special === 1 ? '' : 's'} (never followed or copied)`);
      if (stats.changed) console.log(`note       ${stats.changed} file${stats.changed === 1 ? '' : 's'} changed or vanished while being copied (an agent was writing); kept as found`);
      console.log(`wrote ${target} (${formatBytes(fs.statSync(target).size)}, mode 600)`);
      console.log(withSecrets
        ? 'it HOLDS SECRETS (the API token and HAKO_CONFIG\'s secrets.env/hako.env): keep it as safe as those files'
        : 'it holds no secrets (no API token, secrets.env or hako.env): add --with-secrets to include them');
      return 0;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(temp, { force: true });
    }
  });
}
