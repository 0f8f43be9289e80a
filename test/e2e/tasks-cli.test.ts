// `hako tasks add`: the owner schedules a task from the terminal. Run against a real host
// process (the task reaches its scheduler at once and runs in a real container) and with the
// host stopped (stored in the database, runs once hako starts). Refusals carry the
// schedule_task tool's reasons, and name CLI commands, never the agent's tools.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const TASK_ID = /task-[0-9a-f]{8}/;

test('hako tasks add - an owner-made task is active at once, listed, audited, and runs on the running host', async (t) => {
  const model = await startModelServer();
  const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_TZ: 'UTC' } });
  t.after(async () => { await h.stop(); await model.close(); h.cleanup(); });

  const added = await h.cli(['tasks', 'add', 'main', '--every', '10s', 'ping from the owner']);
  assert.equal(added.code, 0, added.stderr);
  const id = TASK_ID.exec(added.stdout)?.[0];
  assert.ok(id, added.stdout);
  assert.match(added.stdout, new RegExp(`added ${id} to group main: every 10 s, next run \\d{4}-`));
  assert.match(added.stdout, new RegExp(`hako tasks list --group main .* hako tasks pause ${id}`));
  assert.doesNotMatch(added.stdout, /not running/, 'the running host took the task');

  const list = await h.cli(['tasks', 'list']);
  assert.match(list.stdout, new RegExp(`${id} +main +active +every 10 s`), 'owner-made tasks are not pending');

  // No message was posted: the only way a reply appears in main is the task's run.
  const [reply] = await h.waitForReplies('main', '', 1, 90_000);
  assert.match(reply!.text, new RegExp(`\\[scheduled task ${id}, run run-.*\\] ping from the owner`));

  const audit = JSON.parse((await h.cli(['audit', '--kind', 'policy.change', '--json'])).stdout) as { data: Record<string, unknown> }[];
  assert.ok(audit.some((e) => e.data.by === 'owner' && e.data.action === 'task.schedule' && e.data.task === id && e.data.ok === true), JSON.stringify(audit));
  assert.equal((await h.cli(['tasks', 'cancel', id!])).code, 0);
});

test('hako tasks add - bad input is refused with the schedule_task reason or a usage error, naming CLI commands', async (t) => {
  const h = await HakoProcess.start({ env: { HAKO_TZ: 'UTC' } });
  t.after(async () => { await h.stop(); h.cleanup(); });

  const refusals: [string[], number, RegExp][] = [
    [['--every', '10m', '--cron', '0 9 * * *', 'two'], 2, /got --cron and --every: set exactly one of --cron, --every or --at/],
    [['none'], 2, /no schedule given: set exactly one of --cron/],
    [['--every', 'soon', 'x'], 2, /--every "soon" is not a duration/],
    [['--every', '5s', 'x'], 1, /cannot schedule the task: "every_seconds" 5 is too short: scheduled tasks run at most every 10 s/],
    [['--at', '2020-01-01T09:00:00Z', 'x'], 1, /"at" 2020-01-01T09:00:00Z is in the past/],
    [['--cron', '0 25 * * *', 'x'], 1, /cron "0 25 \* \* \*" is invalid: hour must be 0-23/],
    [['--every', '1h', ''], 1, /the task prompt is empty/],
    [['--every', '1h', 'two', 'words'], 2, /unexpected argument "words": quote the prompt/],
  ];
  for (const [args, code, reason] of refusals) {
    const r = await h.cli(['tasks', 'add', 'main', ...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
  }
  const unknown = await h.cli(['tasks', 'add', 'nope', '--every', '1h', 'x']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no group "nope" \(see hako groups list\)/);

  const missing = await h.cli(['tasks', 'pause', 'task-00000000']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no task "task-00000000" \(see hako tasks list\)/);
  assert.doesNotMatch(missing.stderr + unknown.stderr, /list_tasks|cancel_task/, 'the owner is not pointed at the agent\'s tools');
  assert.match((await h.cli(['tasks', 'list']).then((r) => r.stdout)), /^no tasks$/m, 'nothing refused was stored');

  const help = await h.cli(['tasks', 'add', '--help']);
  assert.match(help.stdout, /hako tasks add <group> \(--cron EXPR \| --every DURATION \| --at TIME\) \[--isolated\] <prompt>/);

  // With the host stopped the task is stored directly, audited alike, and said to wait for a start.
  await h.stop();
  const at = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16); // wall-clock in HAKO_TZ=UTC
  const offline = await h.cli(['tasks', 'add', 'main', '--at', at, '--isolated', 'report once']);
  assert.equal(offline.code, 0, offline.stderr);
  assert.match(offline.stdout, new RegExp(`added task-[0-9a-f]{8} to group main: once at ${at}:00.000Z, next run ${at}:00.000Z, isolated`));
  assert.match(offline.stdout, /hako is not running: the task runs once it starts/);
  assert.match((await h.cli(['tasks', 'list'])).stdout, /active +once at .*\n +\[isolated\] report once/);
});
