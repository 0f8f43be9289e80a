// The contract of the IPC file transport both ends share (protocol/transport.ts): what a
// reader sees of a half-written file, a link, a FIFO, a folder or an oversized file; that a
// write is atomic, refuses a planted link, leaves no temporary behind on failure and fsyncs
// exactly when asked; and that a watched folder's passes never overlap or lose a request.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { watch } from 'node:fs';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipcFileName, isIpcFileName, MAX_IPC_FILE_BYTES, parseHostInput, type Parsed } from '../../protocol/ipc.ts';
import { DirWatch, readIpcFile, writeFileAtomic } from '../../protocol/transport.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'hako-transport-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const asIs = (json: unknown): Parsed<unknown> => ({ ok: true, value: json });
const close = { v: 1, id: 'c1', type: 'close' };

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

// ---- reading -------------------------------------------------------------------------

test('transport read - a whole file is parsed and validated; a truncated one is "not valid JSON", never half a message', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(join(dir, 'whole.json'), JSON.stringify(close));
  await fs.writeFile(join(dir, 'half.json'), JSON.stringify(close).slice(0, 12));
  await fs.writeFile(join(dir, 'other.json'), JSON.stringify({ v: 1, id: 'x', type: 'launch' }));
  assert.deepEqual(await readIpcFile(dir, 'whole.json', parseHostInput), { ok: true, value: close });
  assert.deepEqual(await readIpcFile(dir, 'half.json', parseHostInput), { ok: false, reason: 'not valid JSON' });
  assert.deepEqual(await readIpcFile(dir, 'other.json', parseHostInput), { ok: false, reason: 'unknown type "launch"' });
});

test('transport read - a symbolic link is refused without reading its target, even one to a valid file', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(join(dir, 'target.json'), JSON.stringify(close));
  await fs.symlink(join(dir, 'target.json'), join(dir, 'link.json'));
  assert.deepEqual(await readIpcFile(dir, 'link.json', parseHostInput), { ok: false, reason: 'is a symbolic link' });
});

test('transport read - a FIFO is refused at once instead of waiting for a writer; a folder is refused too', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  execFileSync('mkfifo', [join(dir, 'fifo.json')]);
  await fs.mkdir(join(dir, 'folder.json'));
  assert.deepEqual(await readIpcFile(dir, 'fifo.json', asIs), { ok: false, reason: 'not a regular file' });
  assert.deepEqual(await readIpcFile(dir, 'folder.json', asIs), { ok: false, reason: 'not a regular file' });
});

test('transport read - a file of exactly MAX_IPC_FILE_BYTES is read; one byte more is refused unparsed', async (t) => {
  const dir = await tempDir(t);
  const atLimit = JSON.stringify(close).padEnd(MAX_IPC_FILE_BYTES, ' ');
  await fs.writeFile(join(dir, 'limit.json'), atLimit);
  await fs.writeFile(join(dir, 'over.json'), `${atLimit} `);
  assert.deepEqual(await readIpcFile(dir, 'limit.json', parseHostInput), { ok: true, value: close });
  let parsed = false;
  const r = await readIpcFile(dir, 'over.json', (json) => { parsed = true; return asIs(json); });
  assert.deepEqual(r, { ok: false, reason: `file is ${MAX_IPC_FILE_BYTES + 1} bytes; the limit is ${MAX_IPC_FILE_BYTES}` });
  assert.equal(parsed, false);
});

test('transport read - a file gone before it is opened is reported as vanished (someone else took it)', async (t) => {
  const dir = await tempDir(t);
  assert.deepEqual(await readIpcFile(dir, 'gone.json', asIs), { ok: false, reason: 'vanished before it could be read', vanished: true });
});

// ---- writing -------------------------------------------------------------------------

test('transport write - the file appears whole under its name; only a dot-prefixed temporary exists before', async (t) => {
  const dir = await tempDir(t);
  await writeFileAtomic(dir, 'a.json', JSON.stringify(close), { fsync: false, mode: 0o600 });
  assert.deepEqual(await fs.readdir(dir), ['a.json']);
  assert.equal(await fs.readFile(join(dir, 'a.json'), 'utf8'), JSON.stringify(close));
  assert.equal((await fs.stat(join(dir, 'a.json'))).mode & 0o777, 0o600);
});

test('transport write - a writer killed with SIGKILL mid-write leaves a temporary that no reader takes, never a partial file', async (t) => {
  // A child writes one large file as the agent writes its outputs (rename only, no fsync);
  // it is killed as soon as its first directory entry appears, long before 64 MiB are written.
  const dir = await tempDir(t);
  const transport = new URL('../../protocol/transport.ts', import.meta.url).href;
  const name = ipcFileName('big');
  const size = 64 * 1024 * 1024;
  const script = `
    const { writeFileAtomic } = await import(${JSON.stringify(transport)});
    await writeFileAtomic(process.argv[1], ${JSON.stringify(name)}, 'x'.repeat(${size}), { fsync: false });`;
  const created = new Promise<void>((resolve) => {
    const watcher = watch(dir, () => { watcher.close(); resolve(); });
  });
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: 'inherit' });
  t.after(() => child.kill('SIGKILL'));
  await created;
  child.kill('SIGKILL');
  await once(child, 'exit');
  const names = await fs.readdir(dir);
  assert.deepEqual(names, [`.tmp-${name}`], 'the write was cut short: only its temporary exists');
  assert.ok((await fs.stat(join(dir, names[0]!))).size < size);
  assert.equal(isIpcFileName(names[0]!), false, 'readers skip it');
});

test('transport write - a link planted at the temporary name is never written through', async (t) => {
  const dir = await tempDir(t);
  const target = join(dir, 'host-file');
  await fs.writeFile(target, 'untouched');
  await fs.symlink(target, join(dir, '.tmp-a.json'));
  await assert.rejects(writeFileAtomic(dir, 'a.json', '{}', { fsync: true }), { code: 'EEXIST' });
  assert.equal(await fs.readFile(target, 'utf8'), 'untouched');
  assert.equal((await fs.readdir(dir)).includes('a.json'), false);
});

test('transport write - a write that fails leaves no temporary behind', async (t) => {
  const dir = await tempDir(t);
  await fs.mkdir(join(dir, 'a.json'));
  await fs.writeFile(join(dir, 'a.json', 'keep'), ''); // a non-empty folder cannot be renamed over
  await assert.rejects(writeFileAtomic(dir, 'a.json', '{}', { fsync: false }));
  assert.deepEqual(await fs.readdir(dir), ['a.json']);
});

test('transport write - fsync: true flushes the data before the rename; fsync: false never calls fsync', async (t) => {
  const dir = await tempDir(t);
  const probe = await fs.open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const original = proto.sync;
  const syncs: string[][] = [];
  proto.sync = async function (this: unknown) {
    syncs.push((await fs.readdir(dir)).sort()); // what a reader could see at the moment of the fsync
    return original.call(this);
  };
  t.after(() => { proto.sync = original; });
  await writeFileAtomic(dir, 'durable.json', '{}', { fsync: true });
  assert.deepEqual(syncs, [['.tmp-durable.json', 'probe']], 'one fsync, of the temporary, before the name exists');
  await writeFileAtomic(dir, 'fast.json', '{}', { fsync: false });
  assert.equal(syncs.length, 1);
});

// ---- the watched folder --------------------------------------------------------------

test('transport watch - requests during a pass coalesce into one more pass; passes never overlap', async (t) => {
  const dir = await tempDir(t);
  const gates = [deferred(), deferred()];
  let passes = 0;
  let running = 0;
  let overlapped = false;
  const w = new DirWatch({
    dir, watch: false, onError: (err) => assert.fail(String(err)),
    pass: async () => {
      overlapped ||= running > 0;
      running++;
      await gates[passes++]!.promise;
      running--;
    },
  });
  const first = w.scan();
  const more = [w.scan(), w.scan(), w.scan()];
  gates[0]!.resolve();
  gates[1]!.resolve();
  await Promise.all([first, ...more]);
  assert.equal(passes, 2, 'three requests during the first pass make one more pass');
  assert.equal(overlapped, false);
  await w.scan();
  assert.equal(passes, 3, 'a request after the passes ended starts a new one');
});

test('transport watch - a failed pass is reported and ends the round; the next request runs again', async (t) => {
  const dir = await tempDir(t);
  const errors: [string, string][] = [];
  let calls = 0;
  const w = new DirWatch({
    dir, watch: false, onError: (err, during) => errors.push([during, (err as Error).message]),
    pass: async () => { if (++calls === 1) throw new Error('EIO'); },
  });
  await w.scan();
  assert.deepEqual(errors, [['pass', 'EIO']]);
  await w.scan();
  assert.equal(calls, 2);
});

test('transport watch - a new file is found by the watcher; each start begins with a fresh, fast poll', async (t) => {
  const dir = await tempDir(t);
  let found = deferred<string>();
  const w = new DirWatch({
    dir, poll: { fastMs: 60_000, slowMs: 120_000 }, onError: (err) => assert.fail(String(err)),
    pass: async (saw) => {
      const name = (await fs.readdir(dir)).find((n) => !n.startsWith('.'));
      if (name) { saw(); found.resolve(name); }
    },
  });
  t.after(() => w.stop());
  assert.equal(w.pollMs, null, 'not watching yet');
  w.start();
  await w.scan();
  assert.equal(w.pollMs, 60_000);
  await writeFileAtomic(dir, 'new.json', '{}', { fsync: false });
  assert.equal(await found.promise, 'new.json'); // no poll tick can have run: the watch event found it
  assert.equal(w.pollMs, 120_000, 'events arrive: the poll slows down');
  w.stop();
  assert.equal(w.pollMs, null);
  found = deferred<string>();
  w.start();
  assert.equal(w.pollMs, 60_000, 'a new start does not trust the old pace');
});
