import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ipc } from '../../src/core/ipc.ts';
import { silentLogger } from '../../src/core/log.ts';
import { groupPaths } from '../../src/core/paths.ts';
import { ipcFileName, type AgentToHost } from '../../protocol/ipc.ts';
import { REJECTED_KEEP, rejectedToDrop } from '../../src/core/rejected.ts';

function setup(t: { after(fn: () => void): void }, onOutput?: (g: string, o: AgentToHost) => Promise<void>) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-ipc-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const p = groupPaths(home, 'team');
  for (const d of [p.ipcIn, p.ipcOut, p.ipcRejected]) fs.mkdirSync(d, { recursive: true });
  const applied: AgentToHost[] = [];
  const rejected: string[] = [];
  const ipc = new Ipc({
    home, log: silentLogger,
    onOutput: onOutput ?? (async (_g, o) => { applied.push(o); }),
    onRejected: (_g, file, reason) => rejected.push(`${file}: ${reason}`),
  });
  return { home, p, ipc, applied, rejected };
}

const reply = (id: string) => ({ v: 1, id, type: 'reply', batch: 'b1', text: `text ${id}` });

test('host ipc - valid outputs are applied in name order and then removed', async (t) => {
  const { p, ipc, applied } = setup(t);
  const names = ['a', 'b', 'c'].map((id) => ipcFileName(id));
  for (const [i, n] of [...names].reverse().entries()) fs.writeFileSync(path.join(p.ipcOut, n), JSON.stringify(reply(['c', 'b', 'a'][i]!)));
  await ipc.drain('team');
  assert.deepEqual(applied.map((o) => o.id), ['a', 'b', 'c']);
  assert.deepEqual(fs.readdirSync(p.ipcOut), []);
});

test('host ipc - a symlink in out/ is moved to rejected/ without reading its target', async (t) => {
  const { home, p, ipc, applied, rejected } = setup(t);
  const target = path.join(home, 'host-secret.json');
  fs.writeFileSync(target, JSON.stringify(reply('from-link')));
  const name = ipcFileName('link');
  fs.symlinkSync(target, path.join(p.ipcOut, name));
  await ipc.drain('team');
  assert.deepEqual(applied, []);
  assert.match(rejected.join('\n'), /symbolic link/);
  assert.ok(fs.readdirSync(p.ipcRejected).some((f) => f.endsWith(name)), 'the link itself was moved');
  assert.equal(fs.readFileSync(target, 'utf8'), JSON.stringify(reply('from-link')), 'the target is untouched');
});

test('host ipc - junk is rejected with a reason: bad names, folders, bad JSON, unknown types, oversized files', async (t) => {
  const { p, ipc, applied, rejected } = setup(t);
  fs.writeFileSync(path.join(p.ipcOut, 'not-ipc.json'), JSON.stringify(reply('x')));
  fs.mkdirSync(path.join(p.ipcOut, ipcFileName('dir')));
  fs.writeFileSync(path.join(p.ipcOut, ipcFileName('json')), '{"v":1,');
  fs.writeFileSync(path.join(p.ipcOut, ipcFileName('type')), JSON.stringify({ v: 1, id: 'type', type: 'group.delete', name: 'evil' }));
  fs.writeFileSync(path.join(p.ipcOut, ipcFileName('big')), JSON.stringify({ ...reply('big'), text: 'x'.repeat(300 * 1024) }));
  await ipc.drain('team');
  assert.deepEqual(applied, []);
  const all = rejected.join('\n');
  for (const reason of [/naming rule/, /not a regular file/, /not valid JSON/, /unknown type "group.delete"/, /limit is 262144/]) assert.match(all, reason);
  assert.deepEqual(fs.readdirSync(p.ipcOut), []);
  const reasons = fs.readdirSync(p.ipcRejected).filter((f) => f.endsWith('.reason'));
  assert.equal(reasons.length, 5);
});

test('host ipc - temporaries (dot files) are left alone until renamed', async (t) => {
  const { p, ipc, applied } = setup(t);
  fs.writeFileSync(path.join(p.ipcOut, '.tmp-partial'), '{"v":1');
  await ipc.drain('team');
  assert.deepEqual(applied, []);
  assert.deepEqual(fs.readdirSync(p.ipcOut), ['.tmp-partial']);
});

test('host ipc - an output the host refuses to apply is rejected, not retried forever', async (t) => {
  const { p, ipc, rejected } = setup(t, async () => { throw new Error('batch b1 does not belong to group "team"'); });
  fs.writeFileSync(path.join(p.ipcOut, ipcFileName('x')), JSON.stringify({ v: 1, id: 'x', type: 'done', batch: 'b1' }));
  await ipc.drain('team');
  assert.match(rejected.join('\n'), /could not be applied.*does not belong/);
  assert.deepEqual(fs.readdirSync(p.ipcOut), []);
});

test('host ipc - inputs are written atomically into in/ as valid IPC files', async (t) => {
  const { p, ipc } = setup(t);
  const name = await ipc.send('team', { v: 1, id: 'b9', type: 'batch', messages: [{ id: 'm', sender: 's', text: 't', ts: 'now' }] });
  assert.deepEqual(fs.readdirSync(p.ipcIn), [name]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(p.ipcIn, name), 'utf8')).id, 'b9');
});

test('host ipc - the watcher picks up a file written after it started', async (t) => {
  const { p, ipc, applied } = setup(t);
  let seen!: () => void;
  const got = new Promise<void>((r) => { seen = r; });
  const ipc2 = new Ipc({ home: path.dirname(path.dirname(p.ipc)), log: silentLogger, onOutput: async (_g, o) => { applied.push(o); seen(); } });
  ipc2.watch('team');
  t.after(() => { ipc2.close(); ipc.close(); });
  fs.writeFileSync(path.join(p.ipcOut, '.tmp-w'), JSON.stringify(reply('w')));
  fs.renameSync(path.join(p.ipcOut, '.tmp-w'), path.join(p.ipcOut, ipcFileName('w')));
  await got;
  assert.deepEqual(applied.map((o) => o.id), ['w']);
});

test('host ipc - once an output arrives by a watch event, the safety poll of out/ slows down', async (t) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-ipc-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  const p = groupPaths(home, 'team');
  for (const d of [p.ipcIn, p.ipcOut, p.ipcRejected]) fs.mkdirSync(d, { recursive: true });
  let seen!: () => void;
  const applied = new Promise<void>((r) => { seen = r; });
  const ipc = new Ipc({ home, log: silentLogger, poll: { fastMs: 60_000, slowMs: 120_000 }, onOutput: async () => seen() });
  t.after(() => ipc.close());
  ipc.watch('team');
  await ipc.drain('team'); // the pass watch() starts is over
  assert.equal(ipc.pollMs('team'), 60_000, 'fast until events are seen');
  fs.writeFileSync(path.join(p.ipcOut, ipcFileName('w')), JSON.stringify(reply('w')));
  await applied; // no poll tick can have run: the watch event found it
  assert.equal(ipc.pollMs('team'), 120_000);
  ipc.unwatch('team');
  assert.equal(ipc.pollMs('team'), null);
});


test('host ipc - rejected/ keeps only the newest files and their reasons: a flood cannot fill the disk', async (t) => {
  const { p, ipc, rejected } = setup(t);
  const flood = REJECTED_KEEP + 120;
  for (let i = 0; i < flood; i++) fs.writeFileSync(path.join(p.ipcOut, ipcFileName(`junk${i}`)), '{junk');
  await ipc.drain('team');
  assert.equal(rejected.length, flood, 'each file was rejected with a reason');
  assert.deepEqual(fs.readdirSync(p.ipcOut), []);
  const kept = fs.readdirSync(p.ipcRejected);
  const bodies = kept.filter((n) => !n.endsWith('.reason'));
  assert.ok(bodies.length >= REJECTED_KEEP && bodies.length < REJECTED_KEEP + 50, `${bodies.length} rejected files kept`);
  assert.ok(bodies.every((n) => kept.includes(`${n}.reason`)), 'every kept file keeps its reason');
  assert.ok(bodies.some((n) => n.endsWith(`-junk${flood - 1}.json`)), 'the newest is kept');
  assert.ok(!bodies.some((n) => n.endsWith('-junk0.json')), 'the oldest is gone');
});

test('host ipc - a rejected folder is not kept, only its reason; a link is kept as the link itself', async (t) => {
  const { home, p, ipc } = setup(t);
  const dir = ipcFileName('dir');
  fs.mkdirSync(path.join(p.ipcOut, dir));
  fs.writeFileSync(path.join(p.ipcOut, dir, 'inside'), 'x');
  const link = ipcFileName('link');
  fs.symlinkSync(path.join(home, 'elsewhere'), path.join(p.ipcOut, link));
  await ipc.drain('team');
  const kept = fs.readdirSync(p.ipcRejected);
  assert.equal(kept.filter((n) => n.endsWith('.reason')).length, 2);
  assert.deepEqual(kept.filter((n) => !n.endsWith('.reason')).map((n) => n.slice(n.indexOf('-') + 1)), [link], 'the folder was deleted with what it held');
});

test('host ipc - temporaries are moved aside only when asked (no writer is left), with a reason', async (t) => {
  const { p, ipc, rejected } = setup(t);
  fs.writeFileSync(path.join(p.ipcOut, '.tmp-stale'), '{"v":1');
  fs.mkdirSync(path.join(p.ipcOut, '.tmp-dir'));
  await ipc.drain('team');
  assert.deepEqual(fs.readdirSync(p.ipcOut).sort(), ['.tmp-dir', '.tmp-stale'], 'a drain leaves them to their writer');
  await ipc.clearTemporaries('team');
  assert.deepEqual(fs.readdirSync(p.ipcOut), []);
  assert.match(rejected.join('\n'), /\.tmp-stale: a temporary file left behind after its turn ended/);
  await ipc.drain('team');
  fs.writeFileSync(path.join(p.ipcOut, '.tmp-new'), '{');
  await ipc.drain('team');
  assert.deepEqual(fs.readdirSync(p.ipcOut), ['.tmp-new'], 'asking once does not make later drains take temporaries');
});

test('rejected/ pruning - keeps the newest items by count and bytes, reasons before bodies, never a folder', () => {
  const e = (name: string, bytes = 10, folder = false) => ({ name, bytes, folder });
  const entries = [
    e('1000-a.json'), e('1000-a.json.reason'),
    e('2000-b.json', 500), e('2000-b.json.reason'),
    e('3000-c.json', 10, true), e('3000-c.json.reason'),
    e('4000-d.json'), e('4000-d.json.reason'),
  ];
  assert.deepEqual(rejectedToDrop(entries, 10, 10_000).sort(), ['3000-c.json']);
  assert.deepEqual(rejectedToDrop(entries, 2, 10_000).sort(), ['1000-a.json', '1000-a.json.reason', '2000-b.json', '2000-b.json.reason', '3000-c.json']);
  assert.deepEqual(rejectedToDrop(entries, 10, 100).sort(), ['2000-b.json', '3000-c.json'], 'a body over the byte budget goes, its reason stays');
});
