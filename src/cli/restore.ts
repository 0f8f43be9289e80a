// `hako restore FILE`: a backup made by `hako backup` becomes HAKO_HOME again.
//
// Invariants: HAKO_HOME must be empty or missing (a host running on it has files there).
// The archive is read twice: first only checked (its manifest is known, every entry is a
// regular file or folder with a relative path under a name a backup holds, parents before
// children, no duplicates), then written into a staging folder beside HAKO_HOME with the
// same checks; the restored database must pass the audit verification against the head
// the manifest recorded. Only then does the staging folder become HAKO_HOME (one rename),
// so a refused or broken archive writes nothing there. Secrets go where they belong
// (http-token in HAKO_HOME, secrets.env and hako.env in HAKO_CONFIG), mode 0600, never
// over an existing file.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { AuditLog } from '../core/audit.ts';
import { loadConfig, type Config } from '../core/config.ts';
import { MIGRATIONS } from '../core/store-schema.ts';
import { containerUser } from '../core/runner.ts';
import { ArchiveError, readArchive, type ReadEntry } from './backup-archive.ts';
import { FOLDERS, FORMAT, FORMAT_VERSION, formatBytes, MANIFEST, SECRETS, type Manifest } from './backup.ts';
import { hostClient } from './client.ts';
import { parse, runCommand, UsageError } from './args.ts';

export const help = `Usage: hako restore FILE

Restores a backup made by "hako backup FILE" into HAKO_HOME, which must be empty or
missing (a new machine, or after moving the old folder away). Nothing is written until
the whole file has been checked: its manifest, and that it holds only plain files and
folders below the names a backup uses (no absolute paths, "..", links or devices).
Then the restored audit log is verified against the head recorded in the backup.

Secrets in the backup (made with --with-secrets) are restored with mode 600: the API token
to HAKO_HOME/http-token, secrets.env and hako.env to HAKO_CONFIG (never over a file that
is there). Without them, the host makes a new API token when it starts.

To restore on this machine in place of the current state:
  stop the host, move HAKO_HOME away (mv ~/.hako ~/.hako.old), then hako restore FILE`;

const MANIFEST_MAX = 64 * 1024;
const SECRET_MAX = 1024 * 1024;
const TOP = new Set<string>([MANIFEST, 'hako.db', ...FOLDERS, 'secrets']);

/** The rules every entry must meet, in both passes; returns what the entry is. */
class Checker {
  readonly #seen = new Map<string, 'file' | 'dir'>();
  files = 0;
  bytes = 0;

  check(e: ReadEntry): 'manifest' | 'db' | 'secret' | 'tree' {
    const top = e.path.split('/')[0]!;
    if (!TOP.has(top)) throw new ArchiveError(`the archive holds ${JSON.stringify(e.path)}, which no hako backup holds`);
    if (this.#seen.has(e.path)) throw new ArchiveError(`the archive holds ${JSON.stringify(e.path)} twice`);
    const parent = path.posix.dirname(e.path);
    if (parent !== '.' && this.#seen.get(parent) !== 'dir') throw new ArchiveError(`the archive holds ${JSON.stringify(e.path)} before (or without) its folder`);
    this.#seen.set(e.path, e.type);
    if (e.type === 'file') { this.files++; this.bytes += e.size; }
    if (e.path === MANIFEST || e.path === 'hako.db') {
      if (e.type !== 'file') throw new ArchiveError(`${e.path} in the archive is not a file`);
      return e.path === MANIFEST ? 'manifest' : 'db';
    }
    if (top === 'secrets') {
      if (e.type === 'dir' && e.path === 'secrets') return 'tree';
      if (!(e.path in SECRETS) || e.type !== 'file') throw new ArchiveError(`the archive holds ${JSON.stringify(e.path)}, which is not a secret a backup holds`);
      return 'secret';
    }
    if (e.path === top && e.type !== 'dir') throw new ArchiveError(`${top} in the archive is not a folder`);
    return 'tree';
  }

  has(p: string): boolean {
    return this.#seen.has(p);
  }
}

async function collect(e: ReadEntry, max: number): Promise<Buffer> {
  if (e.size > max) throw new ArchiveError(`${e.path} in the archive is ${e.size} bytes, over the ${max} a backup writes`);
  const parts: Buffer[] = [];
  await e.data((c) => { parts.push(Buffer.from(c)); });
  return Buffer.concat(parts);
}

function parseManifest(data: Buffer): Manifest {
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(data.toString('utf8')) as Partial<Manifest>;
  } catch {
    throw new ArchiveError(`${MANIFEST} in the archive is not JSON: the file is damaged`);
  }
  if (m.format !== FORMAT) throw new ArchiveError(`${MANIFEST} does not describe a hako backup`);
  if (m.formatVersion !== FORMAT_VERSION) throw new ArchiveError(`the backup's format version is ${m.formatVersion}; this hako reads version ${FORMAT_VERSION}: use the hako version that made it (${String(m.hakoVersion)}) or newer`);
  if (!Number.isInteger(m.schemaVersion) || m.schemaVersion! < 1) throw new ArchiveError(`${MANIFEST} has no valid schemaVersion: the file is damaged`);
  if (m.schemaVersion! > MIGRATIONS.length) throw new ArchiveError(`the backup's database is at schema ${m.schemaVersion}, newer than this hako's (${MIGRATIONS.length}): upgrade hako (it was made by ${String(m.hakoVersion)}), then restore`);
  if (!m.audit || !Number.isInteger(m.audit.seq) || !/^[0-9a-f]{64}$/.test(String(m.audit.head))) throw new ArchiveError(`${MANIFEST} has no valid audit head: the file is damaged`);
  return m as Manifest;
}

/** First pass: reads the whole archive, writing nothing; returns its manifest. */
async function validate(file: string): Promise<{ manifest: Manifest; secrets: string[]; files: number; bytes: number }> {
  const input = fs.createReadStream(file);
  const checker = new Checker();
  let manifest: Manifest | undefined;
  const secrets: string[] = [];
  try {
    for await (const e of readArchive(input)) {
      const kind = checker.check(e);
      if (kind === 'manifest') manifest = parseManifest(await collect(e, MANIFEST_MAX));
      if (kind === 'secret') { secrets.push(e.path); await collect(e, SECRET_MAX); }
    }
  } finally {
    input.destroy();
  }
  if (!manifest) throw new ArchiveError(`the archive has no ${MANIFEST}: it is not a hako backup, or it is cut short`);
  if (!checker.has('hako.db')) throw new ArchiveError('the archive holds no hako.db: it is not a hako backup');
  return { manifest, secrets, files: checker.files, bytes: checker.bytes };
}

/** Second pass: writes into `stage` (a new, empty folder of ours); secrets are returned, not written. */
async function extract(file: string, stage: string): Promise<Map<string, Buffer>> {
  const input = fs.createReadStream(file);
  const checker = new Checker();
  const secrets = new Map<string, Buffer>();
  try {
    for await (const e of readArchive(input)) {
      const kind = checker.check(e);
      if (kind === 'manifest' || e.path === 'secrets') continue;
      if (kind === 'secret') { secrets.set(e.path, await collect(e, SECRET_MAX)); continue; }
      const to = path.join(stage, ...e.path.split('/'));
      if (e.type === 'dir') {
        fs.mkdirSync(to, { mode: 0o700 });
        fs.chmodSync(to, (e.mode & 0o755) | 0o700);
        continue;
      }
      const mode = kind === 'db' ? 0o600 : (e.mode & 0o755) | 0o600;
      const fd = fs.openSync(to, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
      try {
        await e.data((c) => { fs.writeSync(fd, c); });
        fs.fchmodSync(fd, mode);
      } finally {
        fs.closeSync(fd);
      }
    }
  } finally {
    input.destroy();
  }
  return secrets;
}

/** As root, the agent's files belong to the container user, as `prepareGroupDirs` makes them. */
function chownGroups(stage: string): void {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = containerUser();
  const walk = (dir: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      fs.lchownSync(p, uid, gid);
      if (d.isDirectory()) walk(p);
    }
  };
  for (const g of fs.existsSync(path.join(stage, 'groups')) ? fs.readdirSync(path.join(stage, 'groups')) : []) {
    const top = path.join(stage, 'groups', g);
    fs.lchownSync(top, uid, gid);
    if (fs.lstatSync(top).isDirectory()) walk(top);
  }
}

/** The restored database opens, is sound, and its audit chain holds the head the backup recorded. */
function verifyDb(dbFile: string, m: Manifest): string {
  const db = new DatabaseSync(dbFile);
  try {
    const check = db.prepare('PRAGMA quick_check').all() as { quick_check: string }[];
    if (check[0]?.quick_check !== 'ok') throw new Error(`the restored database fails SQLite's check: ${check.map((r) => r.quick_check).join('; ')}`);
  } finally {
    db.close();
  }
  if (m.schemaVersion < 3) return 'audit log: none (this backup predates it)';
  const log = new AuditLog(dbFile);
  try {
    const v = log.verify({ expectHead: m.audit.head });
    if (!v.ok) throw new Error(`the restored audit log does not verify against the head in the backup:\n  ${v.problems.join('\n  ')}`);
    if (v.expectedAt !== m.audit.seq) throw new Error(`the backup's audit head is record ${v.expectedAt} in the restored log, not record ${m.audit.seq} as its manifest says`);
    return `audit log verified: ${v.count} record${v.count === 1 ? '' : 's'}, head ${m.audit.head.slice(0, 16)}… is record ${m.audit.seq}, as when the backup was taken`;
  } finally {
    log.close();
  }
}

async function refuseBusyHome(config: Config): Promise<void> {
  let names: string[] = [];
  try {
    names = fs.readdirSync(config.home);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (names.length === 0) return;
  const running = await hostClient(config).call('/api/status').then(() => true, () => false);
  if (running) throw new Error(`a hako host is running on HAKO_HOME=${config.home}: stop it, move the folder away (mv ${config.home} ${config.home}.old), then restore`);
  const shown = names.sort().slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
  throw new Error(`HAKO_HOME=${config.home} is not empty (it holds ${shown}): restore into an empty folder, e.g. HAKO_HOME=${config.home}-restored hako restore FILE, or stop the host and move the folder away first (mv ${config.home} ${config.home}.old)`);
}

function refuseExistingSecrets(config: Config, names: readonly string[]): void {
  for (const name of names) {
    const where = SECRETS[name as keyof typeof SECRETS];
    if (where.in !== 'config') continue;
    const to = path.join(config.configDir, where.name);
    if (fs.existsSync(to)) throw new Error(`the backup holds ${where.name}, but ${to} exists: move it away (mv ${to} ${to}.mine), then run hako restore again`);
  }
}

function writeSecret(file: string, data: Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, data);
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, {}, help);
    if (!parsed) return 0;
    const [file, ...extra] = parsed.positionals;
    if (!file) throw new UsageError('name the backup FILE to restore, such as: hako restore ~/hako-backup.tar.gz');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (!fs.existsSync(file)) throw new Error(`there is no file ${path.resolve(file)}: name a file written by hako backup`);
    const config = loadConfig();
    await refuseBusyHome(config);

    let checked;
    try {
      checked = await validate(file);
    } catch (err) {
      if (err instanceof ArchiveError || (err as NodeJS.ErrnoException).code === 'Z_DATA_ERROR') {
        throw new Error(`${path.resolve(file)} was refused, nothing was written: ${(err as Error).message}`);
      }
      throw err;
    }
    const m = checked.manifest;
    console.log(`checked    ${path.resolve(file)}: a backup of ${m.createdAt} (hako ${m.hakoVersion}, schema ${m.schemaVersion}), ${checked.files} files, ${formatBytes(checked.bytes)}${checked.secrets.length ? `, with ${checked.secrets.length} secret file(s)` : ', no secrets'}`);
    refuseExistingSecrets(config, checked.secrets);

    const stage = `${config.home}.restore-${randomBytes(4).toString('hex')}`;
    fs.mkdirSync(path.dirname(stage), { recursive: true, mode: 0o700 });
    fs.mkdirSync(stage, { mode: 0o700 });
    let moved = false;
    try {
      const secrets = await extract(file, stage);
      console.log(`wrote      ${checked.files} files into a staging folder`);
      chownGroups(stage);
      const token = secrets.get('secrets/http-token');
      if (token) writeSecret(path.join(stage, 'http-token'), token);
      console.log(verifyDb(path.join(stage, 'hako.db'), m));
      // rmdir fails if anything appeared in HAKO_HOME meanwhile (a host started): nothing is replaced.
      if (fs.existsSync(config.home)) fs.rmdirSync(config.home);
      fs.renameSync(stage, config.home);
      moved = true;
      for (const [name, data] of secrets) {
        const where = SECRETS[name as keyof typeof SECRETS];
        if (where.in === 'config') writeSecret(path.join(config.configDir, where.name), data);
      }
      console.log(`restored   into ${config.home}`);
      console.log(secrets.size
        ? `secrets    restored (mode 600): ${[...secrets.keys()].map((k) => SECRETS[k as keyof typeof SECRETS]).map((w) => path.join(w.in === 'home' ? config.home : config.configDir, w.name)).join(', ')}`
        : 'secrets    none in this backup: the host makes a new API token at start; put channel credentials back in HAKO_CONFIG/secrets.env');
      console.log('start it with: hako start (messages that were waiting are answered then)');
      return 0;
    } finally {
      if (!moved) fs.rmSync(stage, { recursive: true, force: true });
    }
  });
}
