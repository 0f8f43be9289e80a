import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import {
  DiskGuard, formatBytes, isDiskFull, isLow, measureUsage, parseSize, reserveBytes, reserveProblem, tickDelay, usageProblem, walkDelay,
  type Space,
} from '../../src/core/disk.ts';
import { limitProblem, loadConfig, ConfigError } from '../../src/core/config.ts';
import { InputError } from '../../src/core/channel.ts';
import { silentLogger } from '../../src/core/log.ts';
import { groupPaths } from '../../src/core/paths.ts';
import { createRouter } from '../../src/core/router.ts';
import type { Group, Store } from '../../src/core/store.ts';

const MiB = 2 ** 20;

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-disk-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real SQLITE_FULL error as node:sqlite throws it (a database capped at its current size). */
function sqliteFullError(): unknown {
  const db = new DatabaseSync(':memory:');
  db.exec('CREATE TABLE t (x TEXT)');
  const pages = Number((db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
  db.exec(`PRAGMA max_page_count = ${pages}`);
  try {
    db.prepare('INSERT INTO t VALUES (?)').run('x'.repeat(100_000));
  } catch (err) {
    return err;
  } finally {
    db.close();
  }
  throw new Error('the capped database accepted the insert');
}

test('sizes - limits and the reserve are sizes like 512m, the reserve also a share like 5%', () => {
  assert.equal(parseSize('512m'), 512 * MiB);
  assert.equal(parseSize('1.5g'), 1.5 * 2 ** 30);
  assert.equal(parseSize('64k'), 64 * 1024);
  assert.throws(() => parseSize('12'), /not a size: "12" \(expected e\.g\. 512m or 2g\)/);
  assert.equal(reserveBytes('5%', 1000 * MiB), 50 * MiB);
  assert.equal(reserveBytes('16m', 1000 * MiB), 16 * MiB);
  assert.equal(reserveProblem('5%'), null);
  assert.match(reserveProblem('80%')!, /at most 50/);
  assert.match(reserveProblem('lots')!, /512m or 1g, or a share like 5%/);
  assert.equal(formatBytes(1.2 * 2 ** 30), '1.2 GiB');
  assert.equal(formatBytes(24 * MiB), '24 MiB');
  assert.equal(limitProblem('disk', '2g'), null);
  assert.match(limitProblem('disk', 'big')!, /disk must be a size like 500m or 2g/);
});

test('config - HAKO_GROUP_DISK defaults to 1g and HAKO_DISK_RESERVE to 512m; a bad reserve names the variable', () => {
  const base = { HAKO_HOME: '/tmp/hako-disk-home', HAKO_CONFIG: '/tmp/hako-disk-config' };
  const c = loadConfig(base);
  assert.equal(c.limits.disk, '1g');
  assert.equal(c.diskReserve, '512m');
  assert.equal(loadConfig({ ...base, HAKO_GROUP_DISK: '2g', HAKO_DISK_RESERVE: '3%' }).diskReserve, '3%');
  assert.throws(() => loadConfig({ ...base, HAKO_DISK_RESERVE: 'half' }), (err: unknown) => err instanceof ConfigError && /HAKO_DISK_RESERVE="half" is invalid/.test(err.message));
  assert.throws(() => loadConfig({ ...base, HAKO_GROUP_DISK: 'huge' }), /disk must be a size/);
});

test('measureUsage - counts allocated blocks, so a sparse file costs what it occupies', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'real'), Buffer.alloc(2 * MiB, 1));
  const sparse = fs.openSync(path.join(dir, 'sparse'), 'w');
  fs.ftruncateSync(sparse, 2 ** 40); // claims 1 TiB, occupies nothing
  fs.closeSync(sparse);
  const u = await measureUsage([dir]);
  assert.ok(u.bytes >= 2 * MiB, `the real file counts (${u.bytes})`);
  assert.ok(u.bytes < 3 * MiB, `the sparse file's size does not (${u.bytes})`);
  assert.equal(u.incomplete, null);
});

test('measureUsage - never follows a link, to a file or to a folder', async (t) => {
  const dir = tempDir(t);
  const outside = tempDir(t);
  fs.writeFileSync(path.join(outside, 'big'), Buffer.alloc(4 * MiB, 1));
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.symlinkSync(path.join(outside, 'big'), path.join(dir, 'sub', 'link-to-file'));
  fs.symlinkSync(outside, path.join(dir, 'link-to-folder'));
  fs.symlinkSync(dir, path.join(dir, 'sub', 'loop'));
  const u = await measureUsage([dir]);
  assert.ok(u.bytes < MiB, `nothing behind the links was counted (${u.bytes})`);
  assert.equal(u.incomplete, null);
  const root = await measureUsage([path.join(dir, 'link-to-folder')]);
  assert.equal(root.bytes, 0, 'a root that is a link is not entered either');
});

test('measureUsage - a hard-linked file is counted once', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'a'), Buffer.alloc(2 * MiB, 1));
  for (const n of ['b', 'c', 'd']) fs.linkSync(path.join(dir, 'a'), path.join(dir, n));
  const u = await measureUsage([dir]);
  assert.ok(u.bytes < 3 * MiB, `one copy counted (${u.bytes})`);
});

test('measureUsage - a walk past its bounds is incomplete, and incomplete counts as over any limit', async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
  const wide = await measureUsage([dir], { maxEntries: 5 });
  assert.equal(wide.incomplete, 'more than 5 files');
  fs.mkdirSync(path.join(dir, 'a', 'b', 'c'), { recursive: true });
  const deep = await measureUsage([dir], { maxDepth: 2 });
  assert.equal(deep.incomplete, 'folders nested deeper than 2');
  assert.match(usageProblem(deep, 2 ** 40)!, /^your folder cannot be measured: it has folders nested deeper than 2$/);
  assert.equal(usageProblem({ bytes: 30 * MiB, entries: 3, incomplete: null }, 24 * MiB), 'your folder uses 30 MiB of its 24 MiB limit');
  assert.equal(usageProblem({ bytes: 20 * MiB, entries: 3, incomplete: null }, 24 * MiB), null);
});

test('measureUsage - a folder the host cannot read makes the walk incomplete (fail closed)', { skip: process.getuid?.() === 0 && 'root reads every folder' }, async (t) => {
  const dir = tempDir(t);
  const hidden = path.join(dir, 'hidden');
  fs.mkdirSync(hidden);
  fs.writeFileSync(path.join(hidden, 'f'), 'x');
  try {
    fs.chmodSync(hidden, 0);
    assert.match((await measureUsage([dir])).incomplete ?? '', /a folder hako cannot read \(EACCES\)/);
    fs.chmodSync(hidden, 0o444); // listable, but its entries cannot be looked at
    assert.match((await measureUsage([dir])).incomplete ?? '', /a folder hako cannot read \(EACCES\)/);
  } finally {
    fs.chmodSync(hidden, 0o700);
  }
});

test('pace - walks a few seconds apart in a turn, never more than 5% of the time spent walking; sleeps when idle', () => {
  assert.equal(walkDelay('turn', 10), 2000);
  assert.equal(walkDelay('turn', 500), 10_000);
  assert.equal(walkDelay('warm', 10), 10_000);
  assert.equal(walkDelay('over', 10), 30_000);
  assert.equal(tickDelay({ turn: true, warm: true, low: true, over: true }), 1000);
  assert.equal(tickDelay({ turn: false, warm: false, low: true, over: false }), 5000);
  assert.equal(tickDelay({ turn: false, warm: false, low: false, over: true }), 30_000);
  assert.equal(tickDelay({ turn: false, warm: false, low: false, over: false }), null);
});

test('low space - below the reserve is low; it recovers only a quarter above it (no flapping)', () => {
  assert.equal(isLow(false, 99, 100), true);
  assert.equal(isLow(false, 100, 100), false);
  assert.equal(isLow(true, 110, 100), true);
  assert.equal(isLow(true, 125, 100), false);
});

test('isDiskFull - recognises SQLite\'s SQLITE_FULL and ENOSPC, nothing else', () => {
  assert.equal(isDiskFull(sqliteFullError()), true);
  assert.equal(isDiskFull(Object.assign(new Error('write'), { code: 'ENOSPC' })), true);
  assert.equal(isDiskFull(Object.assign(new Error('constraint'), { code: 'ERR_SQLITE_ERROR', errcode: 19 })), false);
  assert.equal(isDiskFull(undefined), false);
});

test('router - a message the database cannot store for lack of space is a 507 with the reason, not a 500', async () => {
  const group: Group = { name: 'team', isMain: false, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '' };
  const full = sqliteFullError();
  const stored: unknown[] = [];
  const router = createRouter({
    store: { getGroup: () => group, addUserMessage: () => { throw full; } } as unknown as Store,
    assistantName: 'hako', maxChars: 1000, onStored: (m) => stored.push(m), enqueue: () => stored.push('enqueued'), modelProblem: () => null, unknownChat: () => {},
  });
  await assert.rejects(router.accept({ group: 'team', sender: 'amy', text: '@hako hi', direct: false }), (err: unknown) =>
    err instanceof InputError && err.status === 507 && /not stored: the disk that holds hako's data is full/.test(err.message));
  assert.deepEqual(stored, [], 'nothing was published or queued');
});

/** A guard over a temporary HAKO_HOME with a scripted free space; records what it reported. */
function guardFor(t: { after: (fn: () => void) => void }, opts: { limit: number; space: { free: number; total: number } | Error }) {
  const home = tempDir(t);
  for (const g of ['team', 'other']) fs.mkdirSync(groupPaths(home, g).folder, { recursive: true });
  const events: string[] = [];
  const space = { current: opts.space };
  const guard = new DiskGuard({
    home, reserve: '10m', log: silentLogger,
    limit: (g) => (g === 'gone' ? undefined : opts.limit),
    active: () => new Map(),
    onOver: (g, problem) => events.push(`over ${g}: ${problem}`),
    onUnder: (g) => events.push(`under ${g}`),
    onLow: (problem) => events.push(`low: ${problem}`),
    onSpace: () => events.push('space'),
    statSpace: async (): Promise<Space> => {
      if (space.current instanceof Error) throw space.current;
      return space.current;
    },
  });
  t.after(() => guard.close());
  return { home, guard, events, space };
}

test('DiskGuard - a group over its limit is refused and reported once; under it again it is reported and admitted', async (t) => {
  const { home, guard, events } = guardFor(t, { limit: 1 * MiB, space: { free: 500 * MiB, total: 1000 * MiB } });
  assert.equal(await guard.admit('team'), null);
  fs.writeFileSync(path.join(groupPaths(home, 'team').folder, 'fill'), Buffer.alloc(2 * MiB, 1));
  assert.match((await guard.check('team'))!, /^your folder uses 2 MiB of its 1 MiB limit$/);
  assert.match((await guard.admit('team'))!, /your folder uses 2 MiB/, 'the next turn is refused');
  assert.match((await guard.admit('team'))!, /your folder uses 2 MiB/);
  assert.equal(await guard.admit('other'), null, 'another group is not affected');
  assert.deepEqual(events, ['over team: your folder uses 2 MiB of its 1 MiB limit'], 'told once, not at every refusal');
  fs.rmSync(path.join(groupPaths(home, 'team').folder, 'fill'));
  assert.equal(await guard.admit('team'), null);
  assert.deepEqual(events.slice(1), ['under team']);
  assert.equal(guard.status().groups.team!.over, null);
});

test('DiskGuard - files in IPC out/ count toward the group\'s limit', async (t) => {
  const { home, guard } = guardFor(t, { limit: 1 * MiB, space: { free: 500 * MiB, total: 1000 * MiB } });
  fs.mkdirSync(groupPaths(home, 'team').ipcOut, { recursive: true });
  fs.writeFileSync(path.join(groupPaths(home, 'team').ipcOut, '.tmp-x'), Buffer.alloc(2 * MiB, 1));
  assert.match((await guard.admit('team'))!, /your folder uses 2 MiB/);
});

test('DiskGuard - free space below the reserve refuses every group, is reported once, and recovers with a margin', async (t) => {
  const { guard, events, space } = guardFor(t, { limit: 100 * MiB, space: { free: 8 * MiB, total: 100 * MiB } });
  const reason = /^the disk that holds hako's data has 8 MiB free, less than its reserve of 10 MiB$/;
  assert.match((await guard.admit('team'))!, reason);
  assert.match((await guard.admit('other'))!, reason);
  assert.deepEqual(events, ["low: the disk that holds hako's data has 8 MiB free, less than its reserve of 10 MiB"]);
  space.current = { free: 11 * MiB, total: 100 * MiB };
  assert.match((await guard.admit('team'))!, /11 MiB free/, 'just above the reserve is not enough to recover');
  space.current = { free: 13 * MiB, total: 100 * MiB };
  assert.equal(await guard.admit('team'), null);
  assert.deepEqual(events.slice(1), ['space']);
  assert.equal(guard.low, null);
});

test('DiskGuard - a turn refused for low space keeps the guard watching: space coming back is noticed without another turn', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { guard, events, space } = guardFor(t, { limit: 100 * MiB, space: { free: 8 * MiB, total: 100 * MiB } });
  assert.match((await guard.admit('team'))!, /8 MiB free/);
  space.current = { free: 50 * MiB, total: 100 * MiB };
  t.mock.timers.tick(5000);
  for (let i = 0; i < 10 && !events.includes('space'); i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(events.slice(1), ['space'], 'told that there is room again, so the kept messages are served');
  assert.equal(guard.low, null);
});

test('DiskGuard - free space that cannot be read counts as low (fail closed)', async (t) => {
  const { guard, events } = guardFor(t, { limit: 100 * MiB, space: new Error('EIO: statfs failed') });
  assert.match((await guard.admit('team'))!, /free space of .* cannot be read \(Error: EIO: statfs failed\)/);
  assert.equal(events.length, 1);
});

test('DiskGuard - a group that no longer exists is forgotten, not refused', async (t) => {
  const { guard, events } = guardFor(t, { limit: 100 * MiB, space: { free: 500 * MiB, total: 1000 * MiB } });
  assert.equal(await guard.check('gone'), null);
  assert.deepEqual(events, []);
});
