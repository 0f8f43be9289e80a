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
  const users = (req.json.messages as { role: string; content: unknown }[]).filter((m) => m.role === 'user');
  return JSON.stringify(users.at(-1)?.content ?? '');
}

test('an agent-scheduled every_seconds task fires on its grid, once per run, across kill -9 and a restart', async (t) => {
  const model = await startModelServer();
  const env = { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_TZ: 'UTC' };
  const first = await HakoProcess.start({ env });
  t.after(() => first.cleanup());
  model.script(
    { toolCalls: [{ name: 'schedule_task', args: { prompt: 'say tick', every_seconds: 10 } }] },
    (req) => ({ text: /task-[0-9a-f]{8}/.test(JSON.stringify(req.json.messages)) ? 'Scheduled.' : 'no task id came back' }),
  );
  const id = await first.post('main', 'say tick every 10 seconds');
  const [ack] = await first.waitForReplies('main', id);
  assert.equal(ack!.text, 'Scheduled.');
  const tick = (await first.waitForReplies('main', id, 2, 40_000))[1]!;
  assert.match(tick.text, /\[scheduled task task-[0-9a-f]{8}, run run-.*\] say tick/);

  first.child.kill('SIGKILL');
  await first.exited();
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 21_000)); // two grid points pass while the host is down

  const second = await HakoProcess.start({ home: first.home, configDir: first.configDir, env });
  t.after(async () => { await second.stop(); await model.close(); });
  const after = await second.waitForReplies('main', id, 4, 40_000); // ack, tick, catch-up, next on the grid
  const ticks = after.filter((m) => RUN_ID.test(m.text));
  const runIds = ticks.map((m) => RUN_ID.exec(m.text)![1]);
  assert.equal(new Set(runIds).size, runIds.length, 'no run answered twice');

  const list = await second.cli(['tasks', 'list']);
  const taskId = /task-[0-9a-f]{8}/.exec(list.stdout)![0];
  const log = await second.cli(['tasks', 'log', taskId]);
  const runs = log.stdout.split('\n').filter((l) => /^\d{4}-/.test(l)).map((l) => ({ at: Date.parse(l.slice(0, 24)), state: l.slice(25).split(' ')[0] }));
  const scheduled = runs.map((r) => r.at);
  assert.equal(new Set(scheduled).size, scheduled.length, 'each grid point was claimed once');
  const missed = runs.filter((r) => r.at > killedAt && r.at < killedAt + 20_000);
  assert.equal(missed.length, 1, `the runs missed while down fired once, not per missed slot: ${log.stdout}`);
  for (const at of scheduled) assert.equal(Math.abs(at - scheduled[0]!) % 10_000, 0, 'every run, the catch-up too, is on the 10 s grid');
  assert.ok(runs.every((r) => r.state === 'done'), log.stdout);
  const status = (await second.api('/api/status')).body;
  assert.equal(status.nextRuns[0].id, taskId, 'hako status shows the next run');
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
