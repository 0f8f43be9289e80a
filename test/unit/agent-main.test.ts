// agent/main.ts end to end on the host (no Docker): the real process, its IPC directories,
// its forwarder and a Unix-socket stand-in for the host proxy in front of the model server.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ipcFileName, parseAgentOutput, type AgentToHost, type HostToAgent, type TaskRequest } from '../../protocol/ipc.ts';
import { HISTORY_FILE } from '../../protocol/container.ts';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { startModelServer, type ModelServer } from '../support/model-server.ts';

const AGENT = new URL('../../agent/main.ts', import.meta.url).pathname;

interface LogLine { event: string; [k: string]: unknown }

/** Forwards `/openai/*` and `/anthropic/*` to the model server, as the host proxy does. */
async function startSocketProxy(socketPath: string, s: ModelServer): Promise<Server> {
  const server = createServer((req, res) => {
    const m = /^\/(openai|anthropic)(\/.*)$/.exec(req.url ?? '');
    if (!m) { res.writeHead(404).end(); return; }
    const target = new URL((m[1] === 'openai' ? s.openaiBaseURL : s.anthropicBaseURL) + m[2]);
    const up = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return server;
}

interface Agent {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  readonly root: string;
  readonly inDir: string;
  readonly outDir: string;
  readonly workspace: string;
  readonly s: ModelServer;
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  send(message: HostToAgent): Promise<string>;
  outputs(): Promise<AgentToHost[]>;
  exited: Promise<number | null>;
}

async function startAgent(t: TestContext, env: Record<string, string> = {}, before?: (dirs: { root: string; inDir: string }) => Promise<void>): Promise<Agent> {
  const root = await mkdtemp(join(tmpdir(), 'hako-agent-'));
  const inDir = join(root, 'ipc/in');
  const outDir = join(root, 'ipc/out');
  const workspace = join(root, 'group');
  const globalDir = join(root, 'global');
  for (const d of [inDir, outDir, workspace, globalDir]) await mkdir(d, { recursive: true });
  await writeFile(join(globalDir, 'MEMORY.md'), 'The owner likes haiku.');
  await writeFile(join(workspace, 'MEMORY.md'), 'This team ships on Fridays.');
  const s = await startModelServer();
  const proxy = await startSocketProxy(join(root, 'proxy.sock'), s);

  const send = async (message: HostToAgent): Promise<string> => {
    const name = ipcFileName(message.id);
    await writeFile(join(inDir, `.tmp-${name}`), JSON.stringify(message));
    await rename(join(inDir, `.tmp-${name}`), join(inDir, name));
    return name;
  };
  if (before) await before({ root, inDir });

  const child = spawn(process.execPath, [AGENT], {
    cwd: workspace,
    stdio: ['ignore', 'inherit', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HAKO_MODEL: 'openai/test-model',
      HAKO_GROUP: 'team',
      HAKO_IPC_DIR: join(root, 'ipc'),
      HAKO_WORKSPACE: workspace,
      HAKO_GLOBAL_DIR: globalDir,
      HAKO_PROXY_SOCKET: join(root, 'proxy.sock'),
      HAKO_FORWARDER_PORT: '0',
      // As a host at debug level asks: every progress line (agent/log.ts).
      HAKO_LOG_LEVEL: 'debug',
      ...env,
    },
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const logs: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    let parsed: LogLine;
    try { parsed = JSON.parse(line) as LogLine; } catch { parsed = { event: 'raw', line }; }
    logs.push(parsed);
    for (const w of [...waiters]) if (w.match(parsed)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(parsed); }
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; }
    proxy.close();
    await s.close();
    await rm(root, { recursive: true, force: true });
  });

  return {
    child, logs, root, inDir, outDir, workspace, s, send, exited,
    waitForLog(match, timeoutMs = 10_000) {
      const past = logs.find(match);
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line in ${timeoutMs} ms; got:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
      });
    },
    async outputs() {
      const names = (await readdir(outDir)).sort();
      assert.ok(names.every((n) => !n.startsWith('.')), `no temporary files left: ${names.join(', ')}`);
      return Promise.all(names.map(async (n) => {
        const parsed = parseAgentOutput(JSON.parse(await readFile(join(outDir, n), 'utf8')));
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
        return parsed.value;
      }));
    },
  };
}

const batch = (id: string, text: string, sender = 'alice'): HostToAgent => ({
  v: 1, id, type: 'batch', messages: [{ id: `m-${id}`, sender, text, ts: '2025-01-02T03:04:05.000Z' }],
});
const isDone = (batchId: string) => (l: LogLine) => l.event === 'output' && l.type === 'done' && l.batch === batchId;

test('agent main - a batch gets a reply and a done in out/, and the input file is consumed', async (t) => {
  const a = await startAgent(t);
  await a.send(batch('b1', 'hello there'));
  await a.waitForLog(isDone('b1'));
  const outs = await a.outputs();
  assert.deepEqual(outs.map((o) => [o.type, 'batch' in o ? o.batch : undefined]), [['reply', 'b1'], ['done', 'b1']]);
  const reply = outs[0]!;
  assert.ok(reply.type === 'reply');
  // The scripted server echoes the last user text: the batch reached the model formatted.
  assert.equal(reply.text, 'echo: [2025-01-02T03:04:05.000Z] alice: hello there');
  assert.deepEqual(await readdir(a.inDir), []);
  // The system prompt carried identity and both memory files; the tools were offered.
  const req = a.s.requests[0]!;
  const system = req.json.messages[0].content as string;
  assert.match(system, /You are hako/);
  assert.match(system, /group "team"/);
  assert.match(system, /The owner likes haiku\./);
  assert.match(system, /This team ships on Fridays\./);
  assert.equal(req.json.tools.length, TOOL_SPECS.length);
  assert.equal(req.stream, true);
  assert.ok(a.logs.some((l) => l.event === 'agent_start'));
});

test('agent main - tool calls run in the workspace, send_message goes out mid-turn, history carries to the next batch', async (t) => {
  const a = await startAgent(t, { HAKO_MODEL: 'anthropic/test-model', HAKO_STREAM: '0' });
  a.s.script(
    { toolCalls: [{ name: 'send_message', args: { text: 'on it' } }, { name: 'bash', args: { command: 'echo filed > note.txt && cat note.txt' } }] },
    { text: 'Filed your note.' },
  );
  await a.send(batch('b1', 'file this'));
  await a.waitForLog(isDone('b1'));
  assert.equal(await readFile(join(a.workspace, 'note.txt'), 'utf8'), 'filed\n');
  const outs = await a.outputs();
  assert.deepEqual(outs.map((o) => o.type), ['send_message', 'reply', 'done']);
  assert.deepEqual({ ...outs[0], id: undefined, v: undefined }, { v: undefined, id: undefined, type: 'send_message', batch: 'b1', text: 'on it' });
  assert.equal(outs[1]!.type === 'reply' && outs[1]!.text, 'Filed your note.');
  const toolResults = a.s.requests[1]!.json.messages.at(-1).content;
  assert.match(toolResults[1].content, /^filed\n\[exit code 0\]$/);
  assert.equal(a.s.requests[1]!.stream, false);

  a.s.script({ text: 'You asked me to file a note.' });
  await a.send(batch('b2', 'what did I ask?'));
  await a.waitForLog(isDone('b2'));
  const sent = a.s.requests[2]!.json.messages as { role: string }[];
  assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
  const history = JSON.parse(await readFile(join(a.workspace, HISTORY_FILE), 'utf8'));
  // Turn 1: user, assistant (2 calls), 2 tool results, assistant; turn 2: user, assistant.
  assert.equal(history.messages.length, 7);
});

test('agent main - a model failure writes an error and no done; the agent keeps serving', async (t) => {
  const a = await startAgent(t);
  a.s.script({ status: 400, error: 'bad request from the test' });
  await a.send(batch('b1', 'hi'));
  await a.waitForLog((l) => l.event === 'output' && l.type === 'error');
  const [err, ...rest] = await a.outputs();
  assert.deepEqual(rest, []);
  assert.ok(err?.type === 'error');
  assert.equal(err.batch, 'b1');
  assert.equal(err.retryable, false);
  assert.match(err.message, /HTTP 400.*bad request from the test/);
  // A failed turn is not saved: the host re-runs the batch, which must not appear twice.
  await assert.rejects(readFile(join(a.workspace, HISTORY_FILE)), { code: 'ENOENT' });
  await a.send(batch('b2', 'again'));
  await a.waitForLog(isDone('b2'));
});

test('agent main - invalid inputs are skipped and consumed; batches run one at a time in name order', async (t) => {
  const a = await startAgent(t, {}, async ({ root, inDir }) => {
    // Written before the agent starts, so the initial scan sees them all at once.
    await writeFile(join(inDir, ipcFileName('junk')), '{not json');
    await writeFile(join(inDir, ipcFileName('wrong')), JSON.stringify({ v: 1, id: 'x', type: 'launch' }));
    await writeFile(join(root, 'secret.json'), JSON.stringify(batch('evil', 'via symlink')));
    await symlink(join(root, 'secret.json'), join(inDir, ipcFileName('link')));
    await writeFile(join(inDir, '.tmp-000000000000001-000000-x.json'), JSON.stringify(batch('tmp', 'half written')));
  });
  await a.send(batch('b1', 'first'));
  await a.send(batch('b2', 'second'));
  await a.waitForLog(isDone('b2'));
  const rejected = a.logs.filter((l) => l.event === 'input_rejected').map((l) => String(l.reason));
  assert.equal(rejected.length, 3);
  assert.ok(rejected.some((r) => /not valid JSON/.test(r)));
  assert.ok(rejected.some((r) => /unknown type "launch"/.test(r)));
  assert.ok(rejected.includes('is a symbolic link'));
  const starts = a.logs.filter((l) => l.event === 'batch_start').map((l) => l.batch);
  assert.deepEqual(starts, ['b1', 'b2']);
  // b1 was finished (done written) before b2 started.
  const doneB1 = a.logs.findIndex(isDone('b1'));
  const startB2 = a.logs.findIndex((l) => l.event === 'batch_start' && l.batch === 'b2');
  assert.ok(doneB1 < startB2);
  assert.deepEqual(await readdir(a.inDir), ['.tmp-000000000000001-000000-x.json']);
});

test('agent main - at the host\'s default level the agent writes no progress lines, only its start, warnings and errors', async (t) => {
  const a = await startAgent(t, { HAKO_LOG_LEVEL: 'info' }, async ({ inDir }) => {
    await writeFile(join(inDir, ipcFileName('junk')), '{not json');
  });
  await a.send(batch('b1', 'first'));
  await a.send({ v: 1, id: 'c1', type: 'close' });
  assert.equal(await a.exited, 0);
  assert.deepEqual((await a.outputs()).map((o) => o.type), ['reply', 'done'], 'the turn ran');
  assert.deepEqual(a.logs.map((l) => `${String(l.level)} ${String(l.event)}`), ['info agent_start', 'warn input_rejected', 'info agent_exit']);
});

test('agent main - at debug level each line names its level, and a turn\'s progress is written', async (t) => {
  const a = await startAgent(t);
  await a.send(batch('b1', 'first'));
  await a.waitForLog(isDone('b1'));
  const levels = new Map(a.logs.map((l) => [String(l.event), l.level]));
  assert.equal(levels.get('agent_start'), 'info');
  for (const e of ['batch_start', 'turn_start', 'model_request', 'model_response', 'turn_end', 'output']) assert.equal(levels.get(e), 'debug', e);
});

test('agent main - close finishes and exits 0', async (t) => {
  const a = await startAgent(t);
  await a.send(batch('b1', 'hi'));
  await a.send({ v: 1, id: 'c1', type: 'close' });
  assert.equal(await a.exited, 0);
  assert.deepEqual((await a.outputs()).map((o) => o.type), ['reply', 'done']);
});

test('agent main - an invalid HAKO_MODEL answers waiting batches with a non-retryable error and exits 2', async (t) => {
  const a = await startAgent(t, { HAKO_MODEL: 'gpt-4o' }, async ({ inDir }) => {
    await writeFile(join(inDir, ipcFileName('b1')), JSON.stringify(batch('b1', 'hi')));
  });
  assert.equal(await a.exited, 2);
  const [err, ...rest] = await a.outputs();
  assert.deepEqual(rest, []);
  assert.ok(err?.type === 'error');
  assert.equal(err.retryable, false);
  assert.match(err.message, /HAKO_MODEL is "gpt-4o"; expected "anthropic\/<model>" or "openai\/<model>"/);
  assert.ok(a.logs.some((l) => l.event === 'config_error'));
});

test('agent main - SIGTERM during a turn aborts it with a retryable error', async (t) => {
  const a = await startAgent(t);
  a.s.script({ toolCalls: [{ name: 'bash', args: { command: 'sleep 30' } }] });
  await a.send(batch('b1', 'take your time'));
  await a.waitForLog((l) => l.event === 'tool_start');
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0);
  const outs = await a.outputs();
  assert.deepEqual(outs.map((o) => o.type), ['error']);
  assert.equal(outs[0]!.type === 'error' && outs[0]!.retryable, true);
});

// ---- scheduled tasks: requests, responses and task runs through the real process ----------

type Answer = { ok: boolean; result?: unknown; error?: string };

/**
 * Plays the host for task requests: each task.* file that appears in out/ is answered once,
 * with a `response` written atomically into in/. `answer` may first do other host things.
 */
function actAsHost(t: TestContext, a: Agent, answer: (req: TaskRequest) => Answer | Promise<Answer>): TaskRequest[] {
  const seen: TaskRequest[] = [];
  let stopped = false;
  t.after(() => { stopped = true; });
  void (async () => {
    while (!stopped) {
      const names = await readdir(a.outDir).catch(() => null);
      if (names === null) return; // the test is over and its folder gone
      for (const name of names.sort()) {
        if (name.startsWith('.')) continue;
        const text = await readFile(join(a.outDir, name), 'utf8').catch(() => null);
        if (text === null) return;
        const parsed = parseAgentOutput(JSON.parse(text));
        if (!parsed.ok || !parsed.value.type.startsWith('task.') || seen.some((s) => s.id === parsed.value.id)) continue;
        const req = parsed.value as TaskRequest;
        seen.push(req);
        const reply = await answer(req);
        if (stopped) return;
        await a.send({ v: 1, id: `resp-${seen.length}`, type: 'response', request: req.id, ...reply });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })().catch((err: unknown) => { if (!stopped) throw err; });
  return seen;
}

const taskView = (over: Record<string, unknown> = {}) => ({
  id: 'task-42', group: 'team', state: 'active', schedule: 'at 09:00 every day', nextRun: '2026-01-02T09:00:00.000Z',
  prompt: 'Water the plants', context: 'group', ...over,
});
const headerless = (o: AgentToHost) => ({ ...o, v: undefined, id: undefined });

test('agent main - schedule_task: the response reaches the waiting tool mid-batch, ahead of a queued batch', async (t) => {
  const a = await startAgent(t);
  const requests = actAsHost(t, a, async () => {
    // Before answering, the host queues the next batch and a stray response: both sort before
    // the real response, which must still reach the tool while b1 is running.
    await a.send(batch('b2', 'and another thing'));
    await a.send({ v: 1, id: 'stray', type: 'response', request: 'nobody-asked', ok: true });
    return { ok: true, result: { task: taskView() } };
  });
  a.s.script({ toolCalls: [{ name: 'schedule_task', args: { prompt: 'Water the plants', cron: '0 9 * * *' } }] }, { text: 'Scheduled daily at 9.' });
  await a.send(batch('b1', 'remind me to water the plants every morning'));
  await a.waitForLog(isDone('b2'));

  assert.deepEqual(requests.map(headerless), [{ v: undefined, id: undefined, type: 'task.schedule', prompt: 'Water the plants', cron: '0 9 * * *' }]);
  const toolResult = a.s.requests[1]!.json.messages.at(-1);
  assert.equal(toolResult.role, 'tool');
  assert.equal(toolResult.content, 'scheduled task task-42 (at 09:00 every day), active, context group, next run 2026-01-02T09:00:00.000Z');
  assert.ok(a.logs.some((l) => l.event === 'response' && l.request === requests[0]!.id && l.ok === true));
  assert.ok(a.logs.some((l) => l.event === 'response_unknown' && l.request === 'nobody-asked'), 'a response nobody waits for is logged and dropped');
  // b2 was read while b1 ran, but ran only after b1 was done.
  assert.deepEqual(a.logs.filter((l) => l.event === 'batch_start').map((l) => l.batch), ['b1', 'b2']);
  assert.ok(a.logs.findIndex(isDone('b1')) < a.logs.findIndex((l) => l.event === 'batch_start' && l.batch === 'b2'));
  const outs = await a.outputs();
  assert.deepEqual(outs.map((o) => [o.type, 'batch' in o ? o.batch : undefined]), [['task.schedule', undefined], ['reply', 'b1'], ['done', 'b1'], ['reply', 'b2'], ['done', 'b2']]);
  assert.equal(outs[0]!.id, requests[0]!.id);
});

test('agent main - list_tasks round trip, and a refusal reaches the model verbatim', async (t) => {
  const a = await startAgent(t, { HAKO_MODEL: 'anthropic/test-model' });
  const refusal = 'no task "task-404" (use list_tasks to see the ids you can manage)';
  const requests = actAsHost(t, a, (req) => req.type === 'task.list'
    ? { ok: true, result: { tasks: [taskView(), taskView({ id: 'task-43', state: 'paused', nextRun: null, schedule: 'every 3600 seconds', prompt: 'Check the build', context: 'isolated' })] } }
    : { ok: false, error: refusal });
  a.s.script({ toolCalls: [{ name: 'list_tasks', args: {} }, { name: 'pause_task', args: { id: 'task-404' } }] }, { text: 'You have two tasks.' });
  await a.send(batch('b1', 'what is scheduled?'));
  await a.waitForLog(isDone('b1'));

  assert.deepEqual(requests.map((r) => r.type === 'task.pause' ? [r.type, r.task] : [r.type]), [['task.list'], ['task.pause', 'task-404']]);
  const [list, pause] = a.s.requests[1]!.json.messages.at(-1).content as { type: string; content: string; is_error?: boolean }[];
  assert.equal(list!.type, 'tool_result');
  assert.equal(list!.content, [
    '2 tasks:',
    'id | state | schedule | next run | context | prompt',
    'task-42 | active | at 09:00 every day | 2026-01-02T09:00:00.000Z | group | Water the plants',
    'task-43 | paused | every 3600 seconds | - | isolated | Check the build',
  ].join('\n'));
  assert.equal(pause!.content, refusal);
  assert.equal(pause!.is_error, true);
});

const taskBatch = (id: string, task: string, context: 'group' | 'isolated'): HostToAgent => ({
  v: 1, id, type: 'batch', task: { id: task, run: `run-${id}`, context },
  messages: [{ id: `run-${id}`, sender: 'scheduler', text: 'Summarize the day', ts: '2025-01-02T18:00:00.000Z' }],
});

test('agent main - an isolated task run starts fresh and stays out of history; a group one continues it', async (t) => {
  const a = await startAgent(t);
  await a.send(batch('b1', 'hello'));
  await a.waitForLog(isDone('b1'));
  const historyFile = join(a.workspace, HISTORY_FILE);
  const before = await readFile(historyFile, 'utf8');
  assert.equal(JSON.parse(before).messages.length, 2);

  await a.send(taskBatch('t1', 'task-iso', 'isolated'));
  await a.waitForLog(isDone('t1'));
  const iso = a.s.requests[1]!.json.messages as { role: string; content: string }[];
  assert.deepEqual(iso.map((m) => m.role), ['system', 'user'], 'no earlier conversation');
  assert.equal(iso[1]!.content, '[scheduled task task-iso, run run-t1] Summarize the day');
  assert.match(iso[0]!.content, /posted to the chat unprompted/);
  assert.match(iso[0]!.content, /will not be added to it/);
  assert.equal(await readFile(historyFile, 'utf8'), before, 'history.json is untouched');
  assert.ok(a.logs.some((l) => l.event === 'batch_start' && l.batch === 't1' && l.task === 'task-iso' && l.run === 'run-t1' && l.context === 'isolated'));

  await a.send(taskBatch('t2', 'task-grp', 'group'));
  await a.waitForLog(isDone('t2'));
  const grp = a.s.requests[2]!.json.messages as { role: string; content: string }[];
  assert.deepEqual(grp.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  assert.match(grp[0]!.content, /continues this chat's conversation/);
  const history = JSON.parse(await readFile(historyFile, 'utf8')).messages as { role: string; text: string }[];
  assert.deepEqual(history.map((m) => m.text), [
    '[2025-01-02T03:04:05.000Z] alice: hello', 'echo: [2025-01-02T03:04:05.000Z] alice: hello',
    '[scheduled task task-grp, run run-t2] Summarize the day', 'echo: [scheduled task task-grp, run run-t2] Summarize the day',
  ]);
  // Both runs answered like any batch: a reply, then done.
  assert.deepEqual((await a.outputs()).map((o) => [o.type, 'batch' in o ? o.batch : undefined]), [
    ['reply', 'b1'], ['done', 'b1'], ['reply', 't1'], ['done', 't1'], ['reply', 't2'], ['done', 't2'],
  ]);
});
