// Scheduled tasks end to end: an agent schedules them with its tool, they fire on
// schedule in real containers, each run is answered once — also across kill -9 and a
// restart, where runs missed while the host was down fire once — and bad schedules come
// back to the agent with a reason it can act on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startModelServer, type RecordedRequest } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const RUN_ID = /run (run-[0-9a-f-]+)\]/;

function lastUser(req: RecordedRequest): string {
  const users = ((req.json?.messages ?? []) as { role: string; content: unknown }[]).filter((m) => m.role === 'user');
  return JSON.stringify(users.at(-1)?.content ?? '');
}

test('an agent-scheduled every_seconds task and a cron task fire on schedule, once per run, across kill -9 and a restart', async (t) => {
  const model = await startModelServer();
  const env = { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_TZ: 'UTC' };
  const first = await HakoProcess.start({ env });
  t.after(() => first.cleanup());
  model.script(
    { toolCalls: [
      { name: 'schedule_task', args: { prompt: 'say tick', every_seconds: 10 } },
      { name: 'schedule_task', args: { prompt: 'say tock', cron: '*/10 * * * * *' } },
    ] },
    (req) => ({ text: (JSON.stringify(req.json.messages).match(/task-[0-9a-f]{8}/g) ?? []).length >= 2 ? 'Scheduled.' : 'task ids missing' }),
  );
  const id = await first.post('main', 'say tick every 10 seconds, and tock on every tenth second');
  const [ack] = await first.waitForReplies('main', id);
  assert.equal(ack!.text, 'Scheduled.');
  const early = await first.waitForReplies('main', id, 3, 40_000);
  assert.ok(early.slice(1).every((m) => /\[scheduled task task-[0-9a-f]{8}, run run-.*\] say t[io]ck/.test(m.text)), JSON.stringify(early));

  first.child.kill('SIGKILL');
  await first.exited();
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 21_000)); // two slots of each task pass while the host is down

  const second = await HakoProcess.start({ home: first.home, configDir: first.configDir, env });
  t.after(async () => { await second.stop(); await model.close(); });
  const all = await second.waitForReplies('main', id, 7, 45_000); // ack, 2 before, 2 catch-ups, 2 on schedule
  const runIds = all.filter((m) => RUN_ID.test(m.text)).map((m) => RUN_ID.exec(m.text)![1]);
  assert.equal(new Set(runIds).size, runIds.length, 'no run answered twice');

  const taskIds = (await second.cli(['tasks', 'list'])).stdout.match(/task-[0-9a-f]{8}/g) ?? [];
  assert.equal(taskIds.length, 2);
  for (const taskId of taskIds) {
    const log = await second.cli(['tasks', 'log', taskId]);
    const runs = log.stdout.split('\n').filter((l) => /^\d{4}-/.test(l)).map((l) => ({ at: Date.parse(l.slice(0, 24)), state: l.slice(25).split(' ')[0] }));
    const scheduled = runs.map((r) => r.at);
    assert.ok(runs.length >= 3, `${taskId} ran before, at and after the restart: ${log.stdout}`);
    assert.equal(new Set(scheduled).size, scheduled.length, `${taskId}: each slot was claimed once`);
    const missed = runs.filter((r) => r.at > killedAt && r.at < killedAt + 20_000);
    assert.equal(missed.length, 1, `${taskId}: the runs missed while down fired once, not per missed slot: ${log.stdout}`);
    for (const at of scheduled) assert.equal(Math.abs(at - scheduled[0]!) % 10_000, 0, `${taskId}: every run, the catch-up too, is on the 10 s grid`);
    assert.ok(runs.filter((r) => r.state !== 'queued' && r.state !== 'running').every((r) => r.state === 'done'), log.stdout);
  }
  const status = (await second.api('/api/status')).body;
  assert.ok(taskIds.includes(status.nextRuns[0].id), 'hako status shows the next run');
});

test('an isolated cron task runs without the chat history; a bad schedule returns its reason to the agent', async (t) => {
  const model = await startModelServer();
  const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_TZ: 'UTC' } });
  t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
  model.script(
    { toolCalls: [{ name: 'schedule_task', args: { prompt: 'bad one', cron: '61 * * * *' } }] },
    { toolCalls: [{ name: 'schedule_task', args: { prompt: 'report isolated', cron: '*/10 * * * * *', context: 'isolated' } }] },
    { text: 'done scheduling' },
  );
  const id = await h.post('main', 'remember: the secret word is plum');
  await h.waitForReplies('main', id);
  const sawReason = model.requests.some((r) => /minute must be 0-59/.test(JSON.stringify(r.json?.messages ?? '')));
  assert.ok(sawReason, 'the agent saw why the cron was refused');

  await h.waitForReplies('main', id, 2, 30_000);
  const run = model.requests.find((r) => /report isolated/.test(lastUser(r)) && /scheduled task/.test(lastUser(r)))!;
  assert.ok(run, 'the cron task ran');
  const seen = JSON.stringify(run.json.messages);
  assert.doesNotMatch(seen, /secret word is plum/, 'an isolated run does not see the chat');
  assert.equal((run.json.messages as unknown[]).filter((m) => (m as { role: string }).role === 'user').length, 1);

  const taskId = /task-[0-9a-f]{8}/.exec((await h.cli(['tasks', 'list'])).stdout)![0];
  const paused = await h.cli(['tasks', 'pause', taskId]);
  assert.match(paused.stdout, new RegExp(`${taskId} is now paused`));
  const manual = await h.cli(['tasks', 'run', taskId]);
  assert.match(manual.stdout, /queued run run-/);
  await h.waitForReplies('main', id, 3, 30_000);
  const badId = await h.cli(['tasks', 'pause', 'task-nope']);
  assert.equal(badId.code, 1);
  assert.match(badId.stderr, /no task "task-nope"/);
});
