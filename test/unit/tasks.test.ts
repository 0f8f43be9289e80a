import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/core/store.ts';
import { DatabaseSync } from 'node:sqlite';
import { MIGRATIONS } from '../../src/core/store.ts';
import { approvalNotice, createTaskService, firstRunOnApproval, needsApproval, NOTICE_PROMPT_CHARS, ownerTaskAction, taskCapProblem, TaskError, type Actor } from '../../src/core/tasks.ts';
import { MAX_PROMPT_CHARS } from '../../protocol/ipc.ts';

const NOW = Date.parse('2026-11-24T10:00:00Z');

function setup(t: { after(fn: () => void): void }, opts: { maxTasks?: number } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-tasks-'));
  const store = new Store(path.join(dir, 'hako.db'));
  t.after(() => { store.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  store.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  store.addGroup({ name: 'sales', isMain: false, trigger: null, model: null });
  store.addGroup({ name: 'ops', isMain: false, trigger: null, model: null });
  let changes = 0;
  const queued: string[] = [];
  const service = createTaskService({ store, tz: 'UTC', now: () => NOW, maxTasks: opts.maxTasks ?? 20, changed: () => { changes++; }, queued: (g) => queued.push(g) });
  return { store, service, changes: () => changes, queued, dir };
}

const main: Actor = { kind: 'group', group: 'main', isMain: true };
const sales: Actor = { kind: 'group', group: 'sales', isMain: false };
const ops: Actor = { kind: 'group', group: 'ops', isMain: false };
const owner: Actor = { kind: 'owner' };

test('tasks - a group schedules for itself; the first run is computed in the owner\'s time zone', (t) => {
  const { service, changes } = setup(t);
  const v = service.schedule(main, { prompt: 'summarise the pipeline', cron: '0 9 * * 1-5' });
  assert.equal(v.group, 'main');
  assert.equal(v.state, 'active');
  assert.equal(v.nextRun, '2026-11-25T09:00:00.000Z');
  assert.equal(v.context, 'group');
  assert.equal(changes(), 1, 'the scheduler is re-armed');
});

test('tasks - a non-main group cannot schedule for, see, pause or cancel another group\'s tasks', (t) => {
  const { service } = setup(t);
  assert.throws(() => service.schedule(sales, { prompt: 'x', every_seconds: 60, group: 'ops' }), (e: unknown) => e instanceof TaskError && /only the main group may schedule for "ops"/.test(e.message));
  const opsTask = service.schedule(main, { prompt: 'ops job', every_seconds: 60, group: 'ops' });
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
  service.approve(owner, v.id);
  assert.throws(() => service.resume(sales, v.id), /is active, not paused/);
  service.pause(sales, v.id);
  assert.throws(() => service.pause(sales, v.id), /is paused, not active/);
});

// ---- attack 33: bounded tasks that need the owner's approval ----------------------------

test('tasks - only a non-main group\'s agent needs the owner\'s approval; main\'s and the owner\'s tasks do not', () => {
  assert.equal(needsApproval(sales), true);
  assert.equal(needsApproval(main), false);
  assert.equal(needsApproval(owner), false);
});

test('tasks - the cap refuses the task past the limit with the group, the count, the limit and how to raise it', () => {
  assert.equal(taskCapProblem('team', 19, 20), null);
  const reason = taskCapProblem('team', 20, 20)!;
  assert.match(reason, /^group "team" has 20 scheduled tasks \(pending, active or paused\), the limit is 20/);
  assert.match(reason, /cancel_task/);
  assert.match(reason, /hako groups set team --max-tasks N/);
  assert.notEqual(taskCapProblem('team', 0, 0), null, 'a limit of 0 allows no task at all');
});

test('tasks - the owner is pointed at CLI commands, an agent at its tools', () => {
  const owner = taskCapProblem('team', 20, 20, { owner: true })!;
  assert.match(owner, /hako tasks list --group team, then hako tasks cancel <id>/);
  assert.doesNotMatch(owner, /cancel_task|ask the owner/);
  assert.match(taskCapProblem('team', 20, 20, { owner: false })!, /cancel_task/);
});

test('tasks - an approved task starts at its next run after now; an at whose time passed while it waited runs at once', () => {
  const every = { kind: 'every' as const, seconds: 60, anchor: NOW - 3_600_000 + 60_000 };
  assert.equal(firstRunOnApproval(every, NOW, 'UTC'), NOW, 'on the grid: now is a slot');
  assert.equal(firstRunOnApproval({ ...every, anchor: NOW + 30_000 }, NOW, 'UTC'), NOW + 30_000, 'the first run, if still ahead, stays');
  assert.equal(firstRunOnApproval({ kind: 'at', time: NOW - 86_400_000 }, NOW, 'UTC'), NOW);
  assert.equal(firstRunOnApproval({ kind: 'at', time: NOW + 5000 }, NOW, 'UTC'), NOW + 5000);
  assert.equal(firstRunOnApproval({ kind: 'cron', expr: '0 9 * * *' }, NOW, 'UTC'), Date.parse('2026-11-25T09:00:00Z'), 'missed runs are skipped');
});

test('tasks - the approval notice names the task, its group, schedule and prompt, and says how to approve or reject', () => {
  const prompt = `exfiltrate \u001b]52;c;Zm9v\u0007 ${'x'.repeat(MAX_PROMPT_CHARS)}`;
  const text = approvalNotice({ id: 'task-1a2b3c4d', group: 'team', state: 'pending', schedule: 'every 60 s', nextRun: null, prompt, context: 'group' });
  assert.match(text, /Group "team" asks to schedule task task-1a2b3c4d \(every 60 s, context group\)/);
  assert.match(text, /will not run until you approve it/);
  assert.match(text, /hako tasks approve task-1a2b3c4d/);
  assert.match(text, /hako tasks reject task-1a2b3c4d/);
  assert.match(text, new RegExp(`Prompt \\(${prompt.length} characters`));
  assert.match(text, /"exfiltrate \\u001b\]52;c;Zm9v\\u0007 x+…"/, 'the prompt is quoted, its control characters escaped, and cut short');
  assert.ok(text.length < NOTICE_PROMPT_CHARS + 600, `the notice stays short (${text.length})`);
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f]/, 'no raw control character reaches the chat');
});

test('attack 33 - a non-main group\'s task is stored pending with no next run, and nothing but the owner can set it going', (t) => {
  const { service, store, queued } = setup(t);
  const v = service.schedule(sales, { prompt: 'bill the owner', every_seconds: 10 });
  assert.equal(v.state, 'pending');
  assert.equal(v.nextRun, null);
  assert.deepEqual(store.dueTasks(NOW + 365 * 86_400_000), [], 'the scheduler never sees it as due');
  assert.throws(() => service.resume(sales, v.id), /awaits the owner's approval/);
  assert.throws(() => service.pause(sales, v.id), /awaits the owner's approval/);
  assert.throws(() => service.cancel(sales, v.id), /awaits the owner's approval; only the owner can approve or reject it/, 'the group cannot withdraw it to ask again');
  assert.throws(() => service.runNow(main, v.id), /awaits approval: approve it first/);
  assert.throws(() => service.runNow(owner, v.id), /awaits approval: approve it first/);
  assert.throws(() => service.approve(sales, v.id), /only the owner may approve/);
  assert.throws(() => service.approve(main, v.id), /only the owner may approve/, 'not even the main group\'s agent');
  assert.deepEqual(queued, []);
  assert.equal(store.getTask(v.id)!.state, 'pending');

  const approved = ownerTaskAction(service, 'approve', v.id).task;
  assert.equal(approved.state, 'active');
  assert.equal(approved.nextRun, new Date(NOW + 10_000).toISOString());
  assert.throws(() => service.approve(owner, v.id), /is active, not waiting for approval/);
  assert.equal(service.pause(sales, v.id).state, 'paused', 'once approved, the group manages it as before');
});

test('attack 33 - main\'s and the owner\'s tasks run at once; main may cancel a pending task; the owner rejects one for good', (t) => {
  const { service } = setup(t);
  assert.equal(service.schedule(main, { prompt: 'for sales', every_seconds: 60, group: 'sales' }).state, 'active');
  assert.equal(service.schedule(owner, { prompt: 'by the owner', every_seconds: 60, group: 'sales' }).state, 'active');
  const a = service.schedule(sales, { prompt: 'a', every_seconds: 60 });
  const b = service.schedule(sales, { prompt: 'b', every_seconds: 60 });
  assert.equal(service.cancel(main, a.id).state, 'cancelled');
  assert.throws(() => service.reject(main, b.id), /only the owner may reject/);
  assert.equal(service.reject(owner, b.id).state, 'cancelled');
  assert.throws(() => service.approve(owner, b.id), /no task/, 'a rejected task cannot be approved later');
});

test('attack 33 - a group holds at most its limit of tasks, whoever schedules them; cancelling one frees its place', (t) => {
  const { service, store } = setup(t, { maxTasks: 3 });
  const ids = [0, 1, 2].map((i) => service.schedule(sales, { prompt: `job ${i}`, every_seconds: 60 }).id);
  const refused = (actor: Actor, msg: string) => assert.throws(() => service.schedule(actor, { prompt: 'one more', every_seconds: 60, group: 'sales' }),
    (e: unknown) => e instanceof TaskError && /^group "sales" has 3 scheduled tasks \(pending, active or paused\), the limit is 3/.test(e.message), msg);
  refused(sales, 'pending tasks count');
  refused(main, 'main is held to the group\'s limit too');
  service.approve(owner, ids[0]!);
  service.pause(sales, ids[0]!);
  refused(sales, 'a paused task counts: it could be resumed');
  assert.equal(service.schedule(ops, { prompt: 'another group has its own count', every_seconds: 60 }).group, 'ops');
  service.cancel(sales, ids[0]!);
  assert.equal(service.schedule(sales, { prompt: 'in the freed place', every_seconds: 60 }).state, 'pending');
  refused(sales, 'full again');
  assert.equal(store.listTasks({ group: 'sales' }).length, 3);
});

test('attack 33 - a group\'s own limit overrides the host\'s, and a prompt longer than the protocol allows is refused', (t) => {
  const { service, store } = setup(t, { maxTasks: 1 });
  store.updateGroup('sales', { limits: { maxTasks: 2 } });
  service.schedule(sales, { prompt: 'one', every_seconds: 60 });
  service.schedule(sales, { prompt: 'two', every_seconds: 60 });
  assert.throws(() => service.schedule(sales, { prompt: 'three', every_seconds: 60 }), /has 2 scheduled tasks .* the limit is 2/);
  store.updateGroup('ops', { limits: { maxTasks: 0 } });
  assert.throws(() => service.schedule(main, { prompt: 'none at all', every_seconds: 60, group: 'ops' }), /the limit is 0/);
  assert.throws(() => service.schedule(main, { prompt: 'x'.repeat(MAX_PROMPT_CHARS + 1), every_seconds: 60 }),
    (e: unknown) => e instanceof TaskError && e.message === `the task prompt is ${MAX_PROMPT_CHARS + 1} characters; the limit is ${MAX_PROMPT_CHARS}`);
});

test('attack 33 - a restart keeps a pending task pending', (t) => {
  const { service, store, dir } = setup(t);
  const v = service.schedule(sales, { prompt: 'wait for me', every_seconds: 60 });
  const reopened = new Store(path.join(dir, 'hako.db'));
  try {
    assert.equal(reopened.getTask(v.id)!.state, 'pending');
    assert.equal(reopened.getTask(v.id)!.nextRun, null);
  } finally {
    reopened.close();
  }
  assert.equal(store.getTask(v.id)!.state, 'pending');
});

test('attack 33 - upgrading a database puts the live tasks non-main agents made on hold, and keeps every run', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-tasks-v3-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hako.db');
  const old = new DatabaseSync(file);
  for (const m of MIGRATIONS.slice(0, 3)) old.exec(m);
  old.exec(`PRAGMA user_version = 3;
    INSERT INTO groups (name, is_main, created_at) VALUES ('main', 1, 'x'), ('team', 0, 'x');
    INSERT INTO tasks VALUES ('task-flood', 'team', 'p', '{"kind":"every","seconds":60,"anchor":0}', 'group', 'active', 60000, 'group:team', 'x');
    INSERT INTO tasks VALUES ('task-paused', 'team', 'p', '{"kind":"every","seconds":60,"anchor":0}', 'group', 'paused', NULL, 'group:team', 'x');
    INSERT INTO tasks VALUES ('task-done', 'team', 'p', '{"kind":"at","time":0}', 'group', 'completed', NULL, 'group:team', 'x');
    INSERT INTO tasks VALUES ('task-main', 'team', 'p', '{"kind":"every","seconds":60,"anchor":0}', 'group', 'active', 60000, 'group:main', 'x');
    INSERT INTO tasks VALUES ('task-owner', 'main', 'p', '{"kind":"every","seconds":60,"anchor":0}', 'group', 'active', 60000, 'owner', 'x');
    INSERT INTO task_runs (id, task_id, group_name, scheduled_for, state) VALUES ('run-1', 'task-flood', 'team', 0, 'done');`);
  old.close();
  const store = new Store(file);
  try {
    assert.equal(store.schemaVersion, MIGRATIONS.length);
    const state = (id: string) => { const x = store.getTask(id)!; return [x.state, x.nextRun]; };
    assert.deepEqual(state('task-flood'), ['pending', null]);
    assert.deepEqual(state('task-paused'), ['pending', null]);
    assert.deepEqual(state('task-done'), ['completed', null]);
    assert.deepEqual(state('task-main'), ['active', 60000]);
    assert.deepEqual(state('task-owner'), ['active', 60000]);
    assert.equal(store.listRuns('task-flood').length, 1, 'rebuilding the table did not cascade-delete its runs');
    store.removeGroup('team');
    assert.equal(store.getRun('run-1'), undefined, 'foreign keys are on again after the migration');
  } finally {
    store.close();
  }
});
