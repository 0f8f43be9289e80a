import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/core/store.ts';
import { createTaskService, TaskError, type Actor } from '../../src/core/tasks.ts';

const NOW = Date.parse('2026-11-24T10:00:00Z');

function setup(t: { after(fn: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-tasks-'));
  const store = new Store(path.join(dir, 'hako.db'));
  t.after(() => { store.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  store.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  store.addGroup({ name: 'sales', isMain: false, trigger: null, model: null });
  store.addGroup({ name: 'ops', isMain: false, trigger: null, model: null });
  let changes = 0;
  const queued: string[] = [];
  const service = createTaskService({ store, tz: 'UTC', now: () => NOW, changed: () => { changes++; }, queued: (g) => queued.push(g) });
  return { store, service, changes: () => changes, queued };
}

const main: Actor = { kind: 'group', group: 'main', isMain: true };
const sales: Actor = { kind: 'group', group: 'sales', isMain: false };
const ops: Actor = { kind: 'group', group: 'ops', isMain: false };

test('tasks - a group schedules for itself; the first run is computed in the owner\'s time zone', (t) => {
  const { service, changes } = setup(t);
  const v = service.schedule(sales, { prompt: 'summarise the pipeline', cron: '0 9 * * 1-5' });
  assert.equal(v.group, 'sales');
  assert.equal(v.state, 'active');
  assert.equal(v.nextRun, '2026-11-25T09:00:00.000Z');
  assert.equal(v.context, 'group');
  assert.equal(changes(), 1, 'the scheduler is re-armed');
});

test('tasks - a non-main group cannot schedule for, see, pause or cancel another group\'s tasks', (t) => {
  const { service } = setup(t);
  assert.throws(() => service.schedule(sales, { prompt: 'x', every_seconds: 60, group: 'ops' }), (e: unknown) => e instanceof TaskError && /only the main group may schedule for "ops"/.test(e.message));
  const opsTask = service.schedule(ops, { prompt: 'ops job', every_seconds: 60 });
  assert.deepEqual(service.list(sales), []);
  for (const action of ['pause', 'cancel', 'runNow'] as const) {
    assert.throws(() => service[action](sales, opsTask.id), /no task/, `${action} is refused as if the task did not exist`);
  }
  assert.equal(service.list(ops)[0]!.state, 'active');
});

test('tasks - the main group and the owner manage every group\'s tasks', (t) => {
  const { service, queued } = setup(t);
  const v = service.schedule(main, { prompt: 'remind sales', every_seconds: 600, group: 'sales' });
  assert.equal(v.group, 'sales');
  assert.equal(service.list(main).length, 1);
  assert.equal(service.pause(main, v.id).state, 'paused');
  assert.equal(service.resume({ kind: 'owner' }, v.id).state, 'active');
  service.runNow({ kind: 'owner' }, v.id);
  assert.deepEqual(queued, ['sales']);
  assert.equal(service.cancel({ kind: 'owner' }, v.id).state, 'cancelled');
  assert.deepEqual(service.list(main), [], 'cancelled tasks are not listed');
});

test('tasks - invalid schedules are refused with a reason the agent can act on', (t) => {
  const { service } = setup(t);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ cron: '61 * * * *' }, /cron/],
    [{ every_seconds: 1 }, /every_seconds/],
    [{ at: '2020-01-01T00:00:00Z' }, /past/],
    [{ at: 'tomorrow' }, /at/],
    [{}, /exactly one|cron|every_seconds|at/],
    [{ cron: '* * * * *', every_seconds: 60 }, /exactly one|one of/],
  ];
  for (const [input, reason] of bad) {
    assert.throws(() => service.schedule(sales, { prompt: 'p', ...input }), (e: unknown) => e instanceof TaskError && reason.test(e.message), JSON.stringify(input));
  }
  assert.throws(() => service.schedule(sales, { prompt: '   ', every_seconds: 60 }), /empty/);
  assert.throws(() => service.schedule(main, { prompt: 'p', every_seconds: 60, group: 'nosuch' }), /no group "nosuch"/);
});

test('tasks - pause and resume say what state a task is in when the action does not fit', (t) => {
  const { service } = setup(t);
  const v = service.schedule(sales, { prompt: 'p', every_seconds: 60 });
  assert.throws(() => service.resume(sales, v.id), /is active, not paused/);
  service.pause(sales, v.id);
  assert.throws(() => service.pause(sales, v.id), /is paused, not active/);
});
