// Durable before acknowledged, seen at the system-call level: a commit itself pays no fsync;
// `sync()` makes every commit before it reach the disk (an fdatasync of the WAL, in the thread
// pool, and of its folder the first time) before it resolves, so a power cut right after
// the 202 loses nothing. Concurrent callers share syncs. Needs strace (installed by .ci/run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const STRACE = ['/usr/bin/strace', '/bin/strace'].find((p) => fs.existsSync(p));

const SCRIPT = `
import fs from 'node:fs';
import { Store } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../src/core/store.ts'))};
const store = new Store(process.argv[2]);
store.addGroup({ name: 'g', isMain: true, trigger: null, model: null });
const phase = (p) => fs.writeSync(2, 'PHASE ' + p + '\\n');
phase('accept');
store.addUserMessage({ group: 'g', sender: 'amy', text: 'keep me', engage: true });
phase('sync');
await store.sync();
phase('notice');
store.addNotice('g', 'a notice', null);
phase('again');
store.addUserMessage({ group: 'g', sender: 'amy', text: 'me too', engage: true });
await store.sync();
phase('burst');
store.addUserMessage({ group: 'g', sender: 'amy', text: 'five at once', engage: true });
await Promise.all([store.sync(), store.sync(), store.sync(), store.sync(), store.sync()]);
phase('end');
store.close();
`;

/** The fsync-like calls strace saw (with the file each was on), per phase of the script. */
function syncsByPhase(lines: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let phase = 'setup';
  for (const line of lines) {
    const m = /write\(2<[^>]*>, "PHASE (\w+)/.exec(line);
    if (m) { phase = m[1]!; continue; }
    const s = /\b(fsync|fdatasync)\(\d+<([^>]*)>\)/.exec(line);
    if (s) (out[phase] ??= []).push(`${s[1]} ${path.basename(s[2]!)}`);
  }
  return out;
}

test('store durability - a commit pays no fsync; sync() puts the WAL (and once its folder) on disk before it resolves; callers at once share syncs', { skip: STRACE ? false : 'needs strace' }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-durable-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'run.mts');
  fs.writeFileSync(script, SCRIPT);
  const trace = path.join(dir, 'trace');
  const r = spawnSync(STRACE!, ['-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync,write', '-o', trace, process.execPath, script, path.join(dir, 'hako.db')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const phases = syncsByPhase(fs.readFileSync(trace, 'utf8').split('\n'));
  const seen = JSON.stringify(phases);
  assert.deepEqual(phases.accept ?? [], [], `the accepted message's commit itself waits for no disk: ${seen}`);
  assert.deepEqual(phases.sync, ['fdatasync hako.db-wal', `fsync ${path.basename(dir)}`], `sync() flushed the WAL, and the folder that names it: ${seen}`);
  assert.deepEqual(phases.notice ?? [], [], `a notice commit pays no fsync: ${seen}`);
  assert.deepEqual(phases.again, ['fdatasync hako.db-wal'], `the WAL's name is on disk already: ${seen}`);
  // The first caller's sync runs; it may have started before another caller's commit, so
  // the other four share one more after it: two, not five.
  assert.deepEqual(phases.burst, ['fdatasync hako.db-wal', 'fdatasync hako.db-wal'], `five callers at once shared two syncs: ${seen}`);
});
