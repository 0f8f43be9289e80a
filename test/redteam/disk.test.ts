// Red-team attack 37: fill the disk. A real host whose HAKO_HOME is a small tmpfs (so the
// disk really fills), a real container per group, and the scripted model. One group writes
// until it is stopped; the others must keep being served, and nothing accepted may be lost.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const MiB = 2 ** 20;
const DISK_MB = 160;
const RESERVE_MB = 24;
const FILLER_LIMIT_MB = 24;
const isRoot = process.getuid?.() === 0;

let home: string;
let model: ModelServer;
let hako: HakoProcess;

const free = (): number => { const s = fs.statfsSync(home); return s.bavail * s.bsize; };

/** Writes `bytes` (or until the disk is full, when undefined) into `file`, from outside any container. */
function fillFromOutside(file: string, bytes?: number): void {
  const chunk = Buffer.alloc(MiB, 7);
  const fd = fs.openSync(file, 'w');
  try {
    for (let left = bytes ?? Infinity; left > 0; left -= chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC' || bytes !== undefined) throw err;
  } finally {
    fs.closeSync(fd);
  }
}

async function assistantAfter(group: string, after: string): Promise<string[]> {
  return (await hako.messages(group, after)).filter((m) => m.role === 'assistant').map((m) => m.text);
}

async function status(): Promise<{ groups: { name: string; waiting: number }[]; disk: { low: string | null } }> {
  const r = await hako.api('/api/status');
  assert.equal(r.status, 200);
  return r.body;
}

async function audited(kind: string, group: string): Promise<{ group: string; data: Record<string, unknown> }[]> {
  const r = await hako.cli(['audit', '--kind', kind, '--group', group, '--json', '--limit', '10000']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('attack 37 - fill the disk', { skip: !isRoot && 'needs root: HAKO_HOME must be a small tmpfs mounted for the test' }, () => {
  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-disk-home-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MB}m,mode=0700`, 'tmpfs', home]);
    model = await startModelServer();
    hako = await HakoProcess.start({
      home,
      env: {
        HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-disk-test-key',
        HAKO_CONTAINER_MEMORY: '256m', HAKO_CONTAINER_PIDS: '64', HAKO_MAX_ATTEMPTS: '1', HAKO_DISK_RESERVE: `${RESERVE_MB}m`,
      },
    });
    for (const g of ['filler', 'bystander']) {
      const r = await hako.cli(['groups', 'add', g]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await hako?.stop();
    if (hako) fs.rmSync(hako.configDir, { recursive: true, force: true });
    await model?.close();
    if (home) {
      execFileSync('umount', [home]);
      fs.rmdirSync(home);
    }
  });

  test('attack 37 - a group that writes until it is stopped is stopped at its disk limit and told; another group is still answered, nothing lost', async (t) => {
    const set = await hako.cli(['groups', 'set', 'filler', '--disk', `${FILLER_LIMIT_MB}m`]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, new RegExp(`disk ${FILLER_LIMIT_MB}m`));
    // 1 MiB every ~50 ms, up to 300 MiB: without a stop it fills this whole disk.
    model.script({ toolCalls: [{ name: 'bash', args: {
      command: 'i=0; while [ $i -lt 300 ]; do dd if=/dev/zero of=/workspace/group/fill-$i bs=1M count=1 status=none || break; i=$((i+1)); sleep 0.05; done; echo "wrote $i MiB"',
      timeout_ms: 300_000,
    } }] });
    const id = await hako.post('filler', '@hako fill the disk');
    const [stopped] = await hako.waitForReplies('filler', id, 1, 120_000);
    assert.match(stopped!.text, new RegExp(`^I stopped this turn: your folder uses \\d+ MiB of its ${FILLER_LIMIT_MB} MiB limit: ask the owner to free space in it or to raise the limit \\(hako groups set filler --disk SIZE\\); until then your messages wait\\.$`));
    await hako.waitForLog((e) => e.msg === 'container exited' && e.group === 'filler');
    assert.ok(free() > RESERVE_MB * MiB, `the disk kept its reserve: ${Math.round(free() / MiB)} MiB free`);
    const written = fs.readdirSync(path.join(home, 'groups', 'filler')).filter((n) => n.startsWith('fill-')).length;
    assert.ok(written < DISK_MB - RESERVE_MB, `the writer was stopped long before the disk was full (${written} MiB written)`);
    t.diagnostic(`the writer was stopped after ${written} MiB (limit ${FILLER_LIMIT_MB} MiB)`);
    const over = (await audited('disk', 'filler')).filter((r) => r.data.event === 'over');
    assert.equal(over.length, 1, 'audited once');
    assert.match(String(over[0]!.data.problem), new RegExp(`of its ${FILLER_LIMIT_MB} MiB limit`));

    // Another group is accepted and answered.
    const other = await hako.post('bystander', '@hako are you there');
    const [answer] = await hako.waitForReplies('bystander', other, 1, 120_000);
    assert.match(answer!.text, /^echo: .*@hako are you there$/);

    // The filler's next message is kept, its turn refused, and the group is not told again.
    const kept = await hako.post('filler', '@hako one more');
    await hako.waitForLog((e) => e.msg === 'turn refused for lack of disk space; messages wait' && e.group === 'filler');
    assert.deepEqual(await assistantAfter('filler', id), [stopped!.text], 'told once: no second notice');
    assert.equal((await status()).groups.find((g) => g.name === 'filler')!.waiting, 1, 'the message is kept');

    // The owner raises the limit: the kept message is answered.
    assert.equal((await hako.cli(['groups', 'set', 'filler', '--disk', '200m'])).code, 0);
    const [late] = await hako.waitForReplies('filler', kept, 1, 120_000);
    assert.match(late!.text, /^echo: .*@hako one more$/);
    for (const n of fs.readdirSync(path.join(home, 'groups', 'filler'))) if (n.startsWith('fill-')) fs.rmSync(path.join(home, 'groups', 'filler', n));
  });

  test('attack 37 - a disk filled from outside: below the reserve a message is kept and no container starts; full, a message gets 507 and nothing is stored; with room again the kept message is answered', async () => {
    const anchor = await hako.post('main', 'hello before the disk fills');
    await hako.waitForReplies('main', anchor, 1, 120_000);
    const starts = (await audited('container.start', 'bystander')).length;

    // Below the reserve: accepted and kept, the owner told in main, no container started.
    fillFromOutside(path.join(home, 'outside-1'), free() - Math.round(RESERVE_MB / 2) * MiB);
    const kept = await hako.post('bystander', '@hako answer me when there is room');
    const [, notice] = await hako.waitForReplies('main', anchor, 2, 60_000);
    assert.match(notice!.text, new RegExp(`^the disk that holds hako's data has \\d+ MiB free, less than its reserve of ${RESERVE_MB} MiB\\. I stopped running turns and start no containers until there is room again; messages are kept\\.`));
    const s = await status();
    assert.match(s.disk.low ?? '', /less than its reserve/);
    assert.equal(s.groups.find((g) => g.name === 'bystander')!.waiting, 1);
    assert.equal((await audited('container.start', 'bystander')).length, starts, 'no container started');
    const lowRecords = JSON.parse((await hako.cli(['audit', '--kind', 'disk', '--json'])).stdout) as { group: string | null; data: { event: string } }[];
    assert.equal(lowRecords.filter((r) => r.data.event === 'low' && r.group === null).length, 1, 'the low disk is audited once');

    // Full: the database cannot store a message; the caller gets 507 with the reason, nothing is stored, the host lives on.
    fillFromOutside(path.join(home, 'outside-2'));
    const before = (await hako.messages('bystander')).length;
    const refused = await hako.api('/api/groups/bystander/messages', { method: 'POST', body: JSON.stringify({ text: '@hako lost?', sender: 'tester' }) });
    assert.equal(refused.status, 507, JSON.stringify(refused.body));
    assert.match(refused.body.error, /not stored: the disk that holds hako's data is full/);
    assert.equal((await hako.messages('bystander')).length, before, 'nothing was stored');
    assert.equal(hako.child.exitCode, null, 'the host is still running');
    assert.equal((await hako.api('/api/status')).status, 200);

    // Room again: the kept message is answered and the owner told.
    fs.rmSync(path.join(home, 'outside-2'));
    fs.rmSync(path.join(home, 'outside-1'));
    const [answer] = await hako.waitForReplies('bystander', kept, 1, 120_000);
    assert.match(answer!.text, /^echo: .*@hako answer me when there is room$/);
    assert.ok((await assistantAfter('main', anchor)).some((t) => /^There is room on the disk again/.test(t)), 'the owner was told');
    assert.equal((await status()).disk.low, null);
  });
});
