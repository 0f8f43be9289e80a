// The agent's side of scheduled tasks, piece by piece: the task tools against a fake request
// callback, the request registry, the input router that delivers responses mid-batch, and
// the task-run prompt. The end-to-end round trips through agent/main.ts are in agent-main.test.ts.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentOutput, type HostToAgent, type Parsed, type ResponseFile } from '../../protocol/ipc.ts';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { argsProblem } from '../../agent/tools/args.ts';
import { createToolExecutor, TOOL_HANDLERS } from '../../agent/tools/index.ts';
import { formatTaskTable, makeTaskTools, TASK_REQUEST_TIMEOUT_MS } from '../../agent/tools/tasks.ts';
import type { HostRequest, ToolContext } from '../../agent/tools/types.ts';
import { Requests } from '../../agent/requests.ts';
import { Outbox } from '../../agent/outbox.ts';
import { Inputs, type RunnableInput } from '../../agent/inputs.ts';
import { buildSystemPrompt, formatTaskRun } from '../../agent/prompt.ts';

type Answer = Omit<ResponseFile, 'v' | 'id' | 'type' | 'request'> | 'never' | Error;

/** A tool executor whose ctx.request records each request and answers from a script. */
function harness(o: { answers?: Answer[]; isMain?: boolean; group?: string; timeoutMs?: number } = {}) {
  const answers = [...(o.answers ?? [])];
  const sent: { req: HostRequest; signal: AbortSignal }[] = [];
  const ctx: ToolContext = {
    workspace: '/nonexistent',
    group: o.group ?? 'team',
    isMain: o.isMain ?? false,
    sendMessage: async () => { throw new Error('not in this test'); },
    request: async (req, signal) => {
      sent.push({ req, signal });
      const a = answers.shift() ?? 'never';
      if (a === 'never') return new Promise<ResponseFile>(() => {}); // ignores the signal on purpose
      if (a instanceof Error) throw a;
      return { v: 1, id: `resp-${sent.length}`, type: 'response', request: `req-${sent.length}`, ...a };
    },
  };
  const exec = createToolExecutor(ctx, { ...TOOL_HANDLERS, ...makeTaskTools(o.timeoutMs ?? 2000) });
  const run = (name: string, args: Record<string, unknown>, signal = new AbortController().signal) => {
    const problem = argsProblem(TOOL_SPECS.find((s) => s.name === name)!, args);
    assert.equal(problem, null, `the loop would refuse these arguments: ${problem}`);
    return exec(name, args, signal);
  };
  return { run, sent };
}

const view = (over: Record<string, unknown> = {}) => ({
  id: 'task-1', group: 'team', state: 'active', schedule: 'every 60 seconds', nextRun: '2026-01-01T09:00:00.000Z',
  prompt: 'Check the build', context: 'group', ...over,
});

// ---- schedule_task -------------------------------------------------------------------

test('schedule_task - sends one task.schedule request and reports the task id, schedule and next run', async () => {
  const h = harness({ answers: [{ ok: true, result: { task: view() } }] });
  const r = await h.run('schedule_task', { prompt: 'Check the build', every_seconds: 60 });
  assert.deepEqual(h.sent.map((s) => s.req), [{ type: 'task.schedule', prompt: 'Check the build', every_seconds: 60 }]);
  assert.equal(r.isError, false);
  assert.equal(r.text, 'scheduled task task-1 (every 60 seconds), active, context group, next run 2026-01-01T09:00:00.000Z');
});

test('schedule_task - passes cron, at, context and another group (main only); its own group is left out', async () => {
  const h = harness({ isMain: true, group: 'main', answers: [
    { ok: true, result: { task: view({ id: 't-cron', group: 'family', schedule: 'at 09:00 on weekdays', context: 'isolated' }) } },
    { ok: true, result: { task: view({ id: 't-at', group: 'main', nextRun: null, state: 'active' }) } },
  ] });
  const a = await h.run('schedule_task', { prompt: 'Morning summary', cron: ' 0 9 * * 1-5 ', context: 'isolated', group: 'family' });
  assert.match(a.text, /^scheduled task t-cron \(at 09:00 on weekdays\), active, context isolated, group family, next run /);
  const b = await h.run('schedule_task', { prompt: 'Once', at: '2026-12-01T09:00:00+01:00', group: 'main' });
  assert.match(b.text, /task t-at .*next run none$/);
  assert.deepEqual(h.sent.map((s) => s.req), [
    { type: 'task.schedule', prompt: 'Morning summary', cron: '0 9 * * 1-5', context: 'isolated', group: 'family' },
    { type: 'task.schedule', prompt: 'Once', at: '2026-12-01T09:00:00+01:00' },
  ]);
});

test('schedule_task - a refusal from the host is a tool error with its text verbatim', async () => {
  const error = 'invalid cron expression "61 * * * *": minute must be 0-59';
  const h = harness({ answers: [{ ok: false, error }, { ok: false }] });
  assert.deepEqual(await h.run('schedule_task', { prompt: 'x', cron: '61 * * * *' }), { text: error, isError: true });
  assert.deepEqual(await h.run('schedule_task', { prompt: 'x', cron: '* * * * *' }), { text: 'the host refused the request without saying why', isError: true });
});

test('schedule_task - wrong argument shapes are refused locally, without a request', async () => {
  const h = harness();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ prompt: 'x' }, /give one of cron, every_seconds or at/],
    [{ prompt: 'x', cron: '* * * * *', every_seconds: 60 }, /exactly one of cron, every_seconds or at \(got cron and every_seconds\)/],
    [{ prompt: 'x', cron: '* * * * *', at: 'tomorrow', every_seconds: 60 }, /got cron and every_seconds and at/],
    [{ prompt: '   ', every_seconds: 60 }, /prompt is empty/],
    [{ prompt: 'p'.repeat(8001), every_seconds: 60 }, /prompt is 8001 characters; the limit is 8000/],
    [{ prompt: 'x', cron: '  ' }, /cron is empty/],
    [{ prompt: 'x', cron: '*'.repeat(201) }, /cron is longer than 200/],
    [{ prompt: 'x', at: '' }, /at is empty/],
    [{ prompt: 'x', every_seconds: 60, context: 'shared' }, /context must be "group" or "isolated" \(got "shared"\)/],
    [{ prompt: 'x', every_seconds: 60, group: 'family' }, /only the main group may schedule tasks for other groups/],
    [{ prompt: 'x', every_seconds: 60, group: '../etc' }, /group name "..\/etc" is invalid/],
  ];
  for (const [args, expected] of cases) {
    const r = await h.run('schedule_task', args);
    assert.equal(r.isError, true, JSON.stringify(args));
    assert.match(r.text, expected);
  }
  // null counts as absent (some models send every property); the schedule itself is the host's to judge.
  const ok = harness({ answers: [{ ok: true, result: { task: view() } }] });
  await ok.run('schedule_task', { prompt: 'x', cron: null, every_seconds: 5, at: null, context: null, group: null });
  assert.deepEqual(ok.sent.map((s) => s.req), [{ type: 'task.schedule', prompt: 'x', every_seconds: 5 }]);
  assert.equal(h.sent.length, 0);
});

test('schedule_task - no answer within the deadline is an error saying the host did not answer', async () => {
  const h = harness({ timeoutMs: 100, answers: ['never'] });
  const started = Date.now();
  const r = await h.run('schedule_task', { prompt: 'x', every_seconds: 60 });
  assert.ok(Date.now() - started < 1500, 'returns soon after the deadline even though the callback ignores its signal');
  assert.equal(r.isError, true);
  assert.equal(r.text, 'the host did not answer the task.schedule request within 100 ms; it may still be applied, so check with list_tasks before trying again');
  assert.equal(h.sent[0]!.signal.aborted, true, 'the callback is told to give up (so the registry forgets the id)');
  assert.equal(TASK_REQUEST_TIMEOUT_MS, 30_000);
});

test('task tools - an aborted turn stops the wait; a failed write is reported', async () => {
  const h = harness({ answers: ['never', new Error('EROFS: read-only file system')] });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  assert.deepEqual(await h.run('list_tasks', {}, ac.signal), { text: 'stopped: the turn was aborted', isError: true });
  assert.deepEqual(await h.run('pause_task', { id: 'task-1' }), { text: 'could not send the task.pause request: EROFS: read-only file system', isError: true });
});

// ---- list_tasks ----------------------------------------------------------------------

test('list_tasks - a compact table: id, state, schedule, next run, context and a prompt excerpt', async () => {
  const long = `Read the three newest files in notes/ and | summarize\nthem ${'very '.repeat(20)}briefly`;
  const h = harness({ answers: [
    { ok: true, result: { tasks: [view(), view({ id: 'task-2', state: 'paused', nextRun: null, prompt: long, context: 'isolated' })] } },
    { ok: true, result: { tasks: [] } },
  ] });
  const r = await h.run('list_tasks', {});
  assert.deepEqual(h.sent.map((s) => s.req), [{ type: 'task.list' }]);
  assert.equal(r.isError, false);
  const lines = r.text.split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    '2 tasks:',
    'id | state | schedule | next run | context | prompt',
    'task-1 | active | every 60 seconds | 2026-01-01T09:00:00.000Z | group | Check the build',
  ]);
  // Newlines and runs of spaces fold, "|" cannot break the table, and the excerpt ends in an ellipsis.
  assert.match(lines[3]!, /^task-2 \| paused \| every 60 seconds \| - \| isolated \| Read the three newest files in notes\/ and \/ summarize them …$/);
  assert.equal(lines[3]!.split(' | ').at(-1)!.length, 60);
  assert.deepEqual(await h.run('list_tasks', {}), { text: 'no scheduled tasks', isError: false });
});

test('list_tasks - the group column appears when another group\'s task is listed (main); odd results are shown raw', async () => {
  assert.match(formatTaskTable([view(), view({ id: 'task-9', group: 'family' })], 'team'), /^2 tasks:\nid \| group \| state .*\ntask-1 \| team \| active .*\ntask-9 \| family \| active/);
  const h = harness({ answers: [{ ok: true, result: { surprise: true } }] });
  assert.deepEqual(await h.run('list_tasks', {}), { text: 'listed; the host answered: {"surprise":true}', isError: false });
});

// ---- pause / resume / cancel ---------------------------------------------------------

test('pause_task, resume_task, cancel_task - one request each, the task described in the answer', async () => {
  const h = harness({ answers: [
    { ok: true, result: { task: view({ state: 'paused', nextRun: null }) } },
    { ok: true, result: { task: view() } },
    { ok: true, result: { task: view({ state: 'cancelled', nextRun: null }) } },
    { ok: false, error: 'no task "task-7" (use list_tasks to see the ids you can manage)' },
  ] });
  assert.equal((await h.run('pause_task', { id: 'task-1' })).text, 'paused task task-1 (every 60 seconds), paused, context group, next run none');
  assert.equal((await h.run('resume_task', { id: ' task-1 ' })).text, 'resumed task task-1 (every 60 seconds), active, context group, next run 2026-01-01T09:00:00.000Z');
  assert.match((await h.run('cancel_task', { id: 'task-1' })).text, /^cancelled task task-1 .*cancelled/);
  assert.deepEqual(await h.run('cancel_task', { id: 'task-7' }), { text: 'no task "task-7" (use list_tasks to see the ids you can manage)', isError: true });
  assert.deepEqual(h.sent.map((s) => s.req), [
    { type: 'task.pause', task: 'task-1' }, { type: 'task.resume', task: 'task-1' },
    { type: 'task.cancel', task: 'task-1' }, { type: 'task.cancel', task: 'task-7' },
  ]);
});

test('pause_task and friends - an empty or malformed id is refused locally', async () => {
  const h = harness();
  assert.deepEqual(await h.run('pause_task', { id: '  ' }), { text: 'id is empty; use list_tasks to see the task ids', isError: true });
  assert.match((await h.run('cancel_task', { id: 'task 1; rm -rf' })).text, /^"task 1; rm -rf" is not a task id/);
  assert.match((await h.run('resume_task', { id: 'x'.repeat(101) })).text, /is not a task id/);
  assert.equal(h.sent.length, 0);
});

// ---- the request registry ------------------------------------------------------------

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-tasks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('requests - the request file carries the request id; its response settles the waiter, once', async (t) => {
  const dir = await tempDir(t);
  const logs: [string, Record<string, unknown>][] = [];
  const requests = new Requests(new Outbox(dir), (event, fields = {}) => logs.push([event, { ...fields }]));
  const pending = requests.send({ type: 'task.pause', task: 'task-1' }, new AbortController().signal);
  let names: string[] = [];
  while (names.length === 0) { names = (await readdir(dir)).filter((n) => !n.startsWith('.')); await new Promise((r) => setTimeout(r, 5)); }
  const file = parseAgentOutput(JSON.parse(await readFile(join(dir, names[0]!), 'utf8')));
  assert.ok(file.ok && file.value.type === 'task.pause');
  assert.equal(requests.pending, 1);
  const response: ResponseFile = { v: 1, id: 'r1', type: 'response', request: file.value.id, ok: true, result: { task: view() } };
  assert.equal(requests.deliver({ ...response, request: 'someone-else' }), false);
  assert.equal(requests.deliver(response), true);
  assert.deepEqual(await pending, response);
  assert.equal(requests.deliver(response), false, 'a repeated response finds nobody');
  assert.equal(requests.pending, 0);
  assert.deepEqual(logs.map(([e, f]) => [e, f.type, f.request]), [['output', 'task.pause', file.value.id]]);
});

test('requests - an aborted wait is forgotten (a late response finds nobody); a failed write rejects; close rejects the rest', async (t) => {
  const dir = await tempDir(t);
  const requests = new Requests(new Outbox(dir), () => {});
  const ac = new AbortController();
  const waiting = requests.send({ type: 'task.list' }, ac.signal);
  let name: string | undefined;
  while (!name) { name = (await readdir(dir)).find((n) => !n.startsWith('.')); await new Promise((r) => setTimeout(r, 5)); }
  const id = JSON.parse(await readFile(join(dir, name), 'utf8')).id as string;
  ac.abort(new Error('deadline'));
  await assert.rejects(waiting, /deadline/);
  assert.equal(requests.deliver({ v: 1, id: 'late', type: 'response', request: id, ok: true }), false);

  const broken = new Requests(new Outbox(join(dir, 'missing')), () => {});
  await assert.rejects(broken.send({ type: 'task.list' }, new AbortController().signal), /ENOENT/);
  assert.equal(broken.pending, 0);

  const open = requests.send({ type: 'task.list' }, new AbortController().signal);
  requests.close();
  await assert.rejects(open, /shutting down/);
  assert.equal(requests.pending, 0);
  // Its file is still being written; let it land before the folder is removed.
  while ((await readdir(dir)).filter((n) => !n.startsWith('.')).length < 2) await new Promise((r) => setTimeout(r, 5));
});

// ---- the input router ----------------------------------------------------------------

/** A scripted inbox: names are pushed by the test; next() waits for one. */
function fakeInbox() {
  const names: (string | null)[] = [];
  let wake: (() => void) | null = null;
  return {
    push(name: string | null) { names.push(name); wake?.(); },
    async next(): Promise<string | null> {
      while (names.length === 0) await new Promise<void>((r) => { wake = r; });
      return names.shift()!;
    },
    closed: false,
    close() { this.closed = true; this.push(null); },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

test('inputs - responses are delivered at once while batches wait in order for next()', async () => {
  const inbox = fakeInbox();
  const files: Record<string, Parsed<HostToAgent>> = {
    '/in/1': { ok: true, value: { v: 1, id: 'b1', type: 'batch', messages: [{ id: 'm', sender: 'a', text: 'hi', ts: 't' }] } },
    '/in/2': { ok: true, value: { v: 1, id: 'b2', type: 'batch', messages: [{ id: 'm', sender: 'a', text: 'hi', ts: 't' }] } },
    '/in/3': { ok: true, value: { v: 1, id: 'r1', type: 'response', request: 'q1', ok: true } },
    '/in/4': { ok: false, reason: 'invalid JSON' },
    '/in/5': { ok: true, value: { v: 1, id: 'c1', type: 'close' } },
  };
  const responses: string[] = [];
  const rejected: string[] = [];
  const inputs = new Inputs({
    inbox, dir: '/in', take: async (p) => files[p]!,
    onResponse: (r) => responses.push(r.request), onRejected: (f, reason) => rejected.push(`${f}: ${reason}`),
  });
  inputs.start();
  inbox.push('1');
  const first = await inputs.next();
  assert.equal(first?.id, 'b1');
  // b1 is "running" (nobody calls next()); b2 queues, and the response still gets through.
  inbox.push('2');
  inbox.push('3');
  inbox.push('4');
  await tick();
  assert.deepEqual(responses, ['q1']);
  assert.deepEqual(rejected, ['4: invalid JSON']);
  inbox.push('5');
  const order: (RunnableInput | null)[] = [await inputs.next(), await inputs.next()];
  assert.deepEqual(order.map((i) => i?.id), ['b2', 'c1']);
  inputs.close();
  assert.equal(inbox.closed, true);
  assert.equal(await inputs.next(), null);
});

test('inputs - a closing inbox ends next() with null, even with nothing queued; a throwing take is a rejection', async () => {
  const inbox = fakeInbox();
  const rejected: string[] = [];
  const inputs = new Inputs({ inbox, dir: '/in', take: async () => { throw new Error('EIO'); }, onResponse: () => {}, onRejected: (f, r) => rejected.push(`${f}: ${r}`) });
  inputs.start();
  const waiting = inputs.next();
  inbox.push('x');
  await tick();
  inbox.push(null);
  assert.equal(await waiting, null);
  assert.deepEqual(rejected, ['x: EIO']);
});

// ---- the task-run prompt -------------------------------------------------------------

test('prompt - a task run is framed with its ids, and the system prompt says the answer is posted unprompted', async (t) => {
  const dir = await tempDir(t);
  const task = { id: 'task-1', run: 'run-7', context: 'isolated' as const };
  assert.equal(formatTaskRun(task, [{ id: 'm', sender: 'scheduler', text: 'Summarize the news', ts: 't' }]), '[scheduled task task-1, run run-7] Summarize the news');
  const o = { assistantName: 'Andy', group: 'team', isMain: false, workspace: join(dir, 'g'), globalDir: join(dir, 'global') };
  const chat = await buildSystemPrompt(o);
  assert.match(chat, /use schedule_task/);
  assert.doesNotMatch(chat, /scheduled task/);
  const isolated = await buildSystemPrompt({ ...o, task });
  assert.match(isolated, /run run-7 of scheduled task task-1/);
  assert.match(isolated, /posted to the chat unprompted, so make it self-contained/);
  assert.match(isolated, /will not be added to it/);
  assert.match(await buildSystemPrompt({ ...o, task: { ...task, context: 'group' } }), /continues this chat's conversation/);
});
