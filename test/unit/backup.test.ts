// `hako backup` and `hako restore` as the owner runs them (the real CLI, real SQLite, the
// system tar to read what backup wrote), without a host; and the copy a schema upgrade
// leaves behind. The run under load, with a real host, is test/e2e/backup.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DatabaseSync } from 'node:sqlite';
import { runCli } from '../support/hako.ts';
import { END, entryHeader, entryPadding, readArchive } from '../../src/cli/backup-archive.ts';
import { MIGRATIONS, Store } from '../../src/core/store.ts';

function scratch(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A HAKO_HOME with a database (made by the real CLI), a token, and a HAKO_CONFIG with secrets. */
async function installation(dir: string): Promise<{ home: string; config: string; env: Record<string, string> }> {
  const home = path.join(dir, 'home');
  const config = path.join(dir, 'config');
  const env = { HAKO_HOME: home, HAKO_CONFIG: config };
  const r = await runCli(['groups', 'add', 'sales'], env);
  assert.equal(r.code, 0, r.stderr);
  fs.writeFileSync(path.join(home, 'http-token'), 'token-value-1234567890\n', { mode: 0o600 });
  fs.mkdirSync(config, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(config, 'secrets.env'), 'TELEGRAM_BOT_TOKEN=bot-secret-0987654321\n', { mode: 0o600 });
  fs.writeFileSync(path.join(config, 'hako.env'), 'OPENAI_API_KEY=sk-model-secret-1122334455\n', { mode: 0o600 });
  fs.writeFileSync(path.join(home, 'groups', 'sales', 'notes.txt'), 'sales notes\n');
  return { home, config, env };
}

function listing(file: string): string[] {
  return execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** Every path under `dir` (recursively), relative; [] when it does not exist. */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** A gzip tar made of the given header/data parts, as a hostile or damaged archive would be. */
function archiveOf(entries: { path: string; type?: 'file' | 'dir'; data?: string }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(entryHeader({ path: e.path, type: e.type ?? 'file', mode: 0o644, size: e.type === 'dir' ? 0 : data.length, mtime: 0 }));
    if (e.type !== 'dir') parts.push(data, entryPadding(data.length));
  }
  parts.push(END);
  return gzipSync(Buffer.concat(parts));
}

test('backup - without --with-secrets the file holds no secret: no token, secrets.env or hako.env, by name or by value', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { env } = await installation(dir);
  const file = path.join(dir, 'plain.tar.gz');
  const r = await runCli(['backup', file], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /it holds no secrets/);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const names = listing(file);
  assert.ok(names.includes('hako.db') && names.includes('hako-backup.json') && names.includes('groups/sales/notes.txt'), names.join('\n'));
  assert.deepEqual(names.filter((n) => /secret|token|hako\.env/.test(n)), []);
  const bytes = execFileSync('tar', ['-xzOf', file], { maxBuffer: 64 * 1024 * 1024 }).toString('latin1');
  for (const secret of ['token-value-1234567890', 'bot-secret-0987654321', 'sk-model-secret-1122334455']) assert.ok(!bytes.includes(secret), `${secret} is in the backup`);
});

test('backup --with-secrets - the file is 0600, says it holds secrets, and restore puts each secret back with mode 600', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { home, config, env } = await installation(dir);
  const file = path.join(dir, 'full.tar.gz');
  const r = await runCli(['backup', file, '--with-secrets'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /it HOLDS SECRETS/);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(listing(file).filter((n) => n.startsWith('secrets/')).sort(), ['secrets/', 'secrets/hako.env', 'secrets/http-token', 'secrets/secrets.env']);

  const to = { HAKO_HOME: path.join(dir, 'home2'), HAKO_CONFIG: path.join(dir, 'config2') };
  const back = await runCli(['restore', file], to);
  assert.equal(back.code, 0, back.stderr);
  for (const [restored, original] of [
    [path.join(to.HAKO_HOME, 'http-token'), path.join(home, 'http-token')],
    [path.join(to.HAKO_CONFIG, 'secrets.env'), path.join(config, 'secrets.env')],
    [path.join(to.HAKO_CONFIG, 'hako.env'), path.join(config, 'hako.env')],
  ] as const) {
    assert.equal(fs.readFileSync(restored, 'utf8'), fs.readFileSync(original, 'utf8'));
    assert.equal(fs.statSync(restored).mode & 0o777, 0o600, restored);
  }
  assert.equal(fs.existsSync(path.join(to.HAKO_HOME, 'secrets')), false, 'no secrets folder is left in HAKO_HOME');
});

test('backup - links and special files in a group folder are skipped and counted, never followed', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { home, env } = await installation(dir);
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'private.txt'), 'owner-only-text-5566');
  const folder = path.join(home, 'groups', 'sales');
  fs.symlinkSync(path.join(outside, 'private.txt'), path.join(folder, 'file-link'));
  fs.symlinkSync(outside, path.join(folder, 'dir-link'));
  execFileSync('mkfifo', [path.join(folder, 'pipe')]);
  const file = path.join(dir, 'b.tar.gz');
  const r = await runCli(['backup', file], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /skipped {4}2 links and 1 special file/);
  const names = listing(file);
  assert.deepEqual(names.filter((n) => /link|pipe|private/.test(n)), []);
  assert.ok(!execFileSync('tar', ['-xzOf', file]).toString('latin1').includes('owner-only-text-5566'));
});

test('backup - a FILE inside HAKO_HOME is refused, since agents could read it', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { home, env } = await installation(dir);
  const r = await runCli(['backup', path.join(home, 'groups', 'sales', 'b.tar.gz')], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /lies inside HAKO_HOME .* write it elsewhere/);
  assert.equal(fs.existsSync(path.join(home, 'groups', 'sales', 'b.tar.gz')), false);
});

test('restore - a HAKO_HOME that is not empty is refused with how to restore instead, and left as it was', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { home, env } = await installation(dir);
  const file = path.join(dir, 'b.tar.gz');
  assert.equal((await runCli(['backup', file], env)).code, 0);
  const before = tree(home);
  const r = await runCli(['restore', file], env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not empty \(it holds .*hako\.db.*\): restore into an empty folder, e.g\. HAKO_HOME=.* hako restore FILE/);
  assert.deepEqual(tree(home), before);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('restore')), [], 'no staging folder is left');
});

test('restore - an archive with a "../" entry is refused before anything is written', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { env } = await installation(dir);
  const good = path.join(dir, 'good.tar.gz');
  assert.equal((await runCli(['backup', good], env)).code, 0);
  // The valid backup's entries first, so a restore that wrote as it read would already have written them.
  const manifest = execFileSync('tar', ['-xzOf', good, 'hako-backup.json'], { encoding: 'utf8' });
  const hostile = path.join(dir, 'hostile.tar.gz');
  fs.writeFileSync(hostile, archiveOf([
    { path: 'hako-backup.json', data: manifest }, { path: 'hako.db', data: 'x' },
    { path: 'groups', type: 'dir' }, { path: 'groups/../../escaped.txt', data: 'pwned' },
  ]));
  const to = { HAKO_HOME: path.join(dir, 'fresh', 'home'), HAKO_CONFIG: path.join(dir, 'fresh', 'config') };
  const r = await runCli(['restore', hostile], to);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /was refused, nothing was written: the archive holds a path that climbs out with "\.\."/);
  assert.deepEqual(tree(path.join(dir, 'fresh')), []);
  assert.equal(fs.existsSync(path.join(dir, 'escaped.txt')), false);
});

test('restore - an archive with a symbolic link entry is refused before anything is written', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const { env } = await installation(dir);
  const good = path.join(dir, 'good.tar.gz');
  assert.equal((await runCli(['backup', good], env)).code, 0);
  // Made by the system tar from the real backup with a link added to a group folder.
  const unpacked = path.join(dir, 'unpacked');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', good, '-C', unpacked]);
  fs.symlinkSync('/etc', path.join(unpacked, 'groups', 'sales', 'etc'));
  const hostile = path.join(dir, 'link.tar.gz');
  execFileSync('tar', ['-czf', hostile, '-C', unpacked, 'hako-backup.json', 'hako.db', 'groups', 'global']);
  const to = { HAKO_HOME: path.join(dir, 'fresh', 'home'), HAKO_CONFIG: path.join(dir, 'fresh', 'config') };
  const r = await runCli(['restore', hostile], to);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /was refused, nothing was written: the archive holds a symbolic link \("groups\/sales\/etc"\)/);
  assert.deepEqual(tree(path.join(dir, 'fresh')), []);
});

test('restore - an archive without a known manifest is refused, naming what is wrong', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const to = { HAKO_HOME: path.join(dir, 'home'), HAKO_CONFIG: path.join(dir, 'config') };
  const cases: [string, Buffer, RegExp][] = [
    ['no manifest', archiveOf([{ path: 'hako.db', data: 'x' }]), /has no hako-backup\.json/],
    ['a newer format', archiveOf([{ path: 'hako-backup.json', data: JSON.stringify({ format: 'hako-backup', formatVersion: 99, hakoVersion: '9.0.0' }) }, { path: 'hako.db', data: 'x' }]), /format version is 99; this hako reads version 1/],
    ['a newer schema', archiveOf([{ path: 'hako-backup.json', data: JSON.stringify({ format: 'hako-backup', formatVersion: 1, hakoVersion: '9.0.0', schemaVersion: MIGRATIONS.length + 1, audit: { seq: 0, head: '0'.repeat(64) } }) }]), /newer than this hako's .*: upgrade hako/],
    ['an unknown top-level name', archiveOf([{ path: 'ipc', type: 'dir' }]), /holds "ipc", which no hako backup holds/],
    ['not gzip at all', Buffer.from('plain text, not a backup'), /was refused, nothing was written/],
  ];
  for (const [what, data, message] of cases) {
    const file = path.join(dir, `${what}.tar.gz`);
    fs.writeFileSync(file, data);
    const r = await runCli(['restore', file], to);
    assert.equal(r.code, 1, what);
    assert.match(r.stderr, message, what);
    assert.equal(fs.existsSync(to.HAKO_HOME), false, what);
  }
});

test('archive - a long, non-ASCII path survives the round trip and the system tar reads it too', async (t) => {
  const dir = scratch(t, 'hako-bk-');
  const long = `groups/${'ü'.repeat(80)}/${'x'.repeat(120)}.txt`;
  const file = path.join(dir, 'a.tar.gz');
  fs.writeFileSync(file, archiveOf([{ path: 'groups', type: 'dir' }, { path: path.posix.dirname(long), type: 'dir' }, { path: long, data: 'hello' }]));
  assert.ok(listing(file).includes(long));
  const seen: [string, string][] = [];
  for await (const e of readArchive(Readable.from([fs.readFileSync(file)]))) {
    let text = '';
    await e.data((c) => { text += c.toString(); });
    seen.push([e.path, text]);
  }
  assert.deepEqual(seen, [['groups', ''], [path.posix.dirname(long), ''], [long, 'hello']]);
});

test('upgrading a database - the database as it was is copied to HAKO_HOME/backups (mode 600) before it is migrated', (t) => {
  const dir = scratch(t, 'hako-upgrade-');
  const file = path.join(dir, 'hako.db');
  const old = new DatabaseSync(file);
  for (const m of MIGRATIONS.slice(0, 3)) old.exec(m);
  old.exec("PRAGMA user_version = 3; INSERT INTO groups (name, is_main, created_at) VALUES ('main', 1, 'then');");
  old.close();
  const store = new Store(file);
  store.close();
  const copies = fs.readdirSync(path.join(dir, 'backups'));
  assert.equal(copies.length, 1);
  assert.match(copies[0]!, /^hako-schema3-\d{4}-\d{2}-\d{2}T[\d-]+Z\.db$/);
  const copy = path.join(dir, 'backups', copies[0]!);
  assert.equal(fs.statSync(copy).mode & 0o777, 0o600);
  const db = new DatabaseSync(copy, { readOnly: true });
  try {
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 3);
    assert.deepEqual({ ...db.prepare('SELECT name, created_at FROM groups').get() }, { name: 'main', created_at: 'then' });
  } finally {
    db.close();
  }
  const now = new DatabaseSync(file, { readOnly: true });
  try {
    assert.equal((now.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, MIGRATIONS.length);
  } finally {
    now.close();
  }
});

test('upgrading a database - a new database and one already current leave no copy', (t) => {
  const dir = scratch(t, 'hako-upgrade-');
  const file = path.join(dir, 'hako.db');
  new Store(file).close();
  new Store(file).close();
  assert.equal(fs.existsSync(path.join(dir, 'backups')), false);
});
