// Owner task actions in the audit log: a change is a `policy.change`; a refused action (an
// unknown task, a task in the wrong state) changed nothing and is a `policy.refused`, with
// the host running (HTTP API) and stopped (the database directly).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HakoProcess } from '../support/hako.ts';

interface Rec { kind: string; group: string | null; data: Record<string, unknown> }

async function audit(h: HakoProcess, kind: string): Promise<Rec[]> {
  const r = await h.cli(['audit', '--kind', kind, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Rec[];
}

test('task audit - a failed pause of an unknown task, or of a paused one, is audited as refused, never as a policy change', async (t) => {
  const h = await HakoProcess.start({ env: { HAKO_TZ: 'UTC' } });
  t.after(async () => { await h.stop(); h.cleanup(); });

  const unknown = await h.cli(['tasks', 'pause', 'task-00000000']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no task "task-00000000"/);
  const added = await h.cli(['tasks', 'add', 'main', '--every', '1h', 'report']);
  assert.equal(added.code, 0, added.stderr);
  const id = /task-[0-9a-f]{8}/.exec(added.stdout)![0];
  assert.equal((await h.cli(['tasks', 'pause', id])).code, 0);
  const again = await h.cli(['tasks', 'pause', id]);
  assert.equal(again.code, 1, 'pausing a paused task is refused');
  assert.match(again.stderr, /is paused, not active/);

  await h.stop();
  const offline = await h.cli(['tasks', 'pause', 'task-11111111']);
  assert.equal(offline.code, 1);

  const changes = await audit(h, 'policy.change');
  assert.deepEqual(changes.map((r) => [r.data.action, r.data.task, r.data.ok]), [['task.schedule', id, true], ['task.pause', id, true]], 'only what changed');
  const refused = await audit(h, 'policy.refused');
  assert.deepEqual(refused.map((r) => [r.group, r.data.by, r.data.action, r.data.task, r.data.ok]), [
    [null, 'owner', 'task.pause', 'task-00000000', false],
    ['main', 'owner', 'task.pause', id, false],
    [null, 'owner', 'task.pause', 'task-11111111', false],
  ]);
  assert.match(String(refused[1]!.data.error), /is paused, not active/);
  assert.equal((await audit(h, 'policy')).length, 5, '`--kind policy` shows both');
  const verify = await h.cli(['audit', 'verify']);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});
