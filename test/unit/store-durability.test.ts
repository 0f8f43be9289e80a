// Durable before acknowledged, seen at the system-call level: the commit of an accepted
// message reaches the disk (an fsync of the database's files) before addUserMessage returns,
// so a power cut right after the 202 loses nothing; the other commits of a turn do not pay
// for an fsync each. Needs strace (installed by .ci/run).
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
fs.writeSync(2, 'PHASE accept\\n');
store.addUserMessage({ group: 'g', sender: 'amy', text: 'keep me', engage: true });
fs.writeSync(2, 'PHASE notice\\n');
store.addNotice('g', 'a notice', null);
fs.writeSync(2, 'PHASE end\\n');
store.close();
`;

/** The fsync-like calls strace saw, per phase of the script. */
function syncsByPhase(lines: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  let phase = 'setup';
  for (const line of lines) {
    const m = /write\(2, "PHASE (\w+)/.exec(line);
    if (m) { phase = m[1]!; continue; }
    if (/\b(fsync|fdatasync)\(/.test(line)) out[phase] = (out[phase] ?? 0) + 1;
  }
  return out;
}

test('store durability - an accepted message is fsynced before addUserMessage returns; a notice commit is not', { skip: STRACE ? false : 'needs strace' }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-durable-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'run.mts');
  fs.writeFileSync(script, SCRIPT);
  const trace = path.join(dir, 'trace');
  const r = spawnSync(STRACE!, ['-f', '-qq', '-e', 'trace=fsync,fdatasync,write', '-o', trace, process.execPath, script, path.join(dir, 'hako.db')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const phases = syncsByPhase(fs.readFileSync(trace, 'utf8').split('\n'));
  assert.ok((phases.accept ?? 0) >= 1, `the accept commit was fsynced: ${JSON.stringify(phases)}`);
  assert.equal(phases.notice ?? 0, 0, `a notice commit pays no fsync: ${JSON.stringify(phases)}`);
});
