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
import { ipcFileName, parseAgentOutput, type AgentToHost, type HostToAgent } from '../../protocol/ipc.ts';
import { HISTORY_FILE } from '../../protocol/container.ts';
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
  assert.equal(req.json.tools.length, 7);
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
  assert.ok(rejected.some((r) => /invalid JSON/.test(r)));
  assert.ok(rejected.some((r) => /unknown type "launch"/.test(r)));
  assert.ok(rejected.includes('not a regular file'));
  const starts = a.logs.filter((l) => l.event === 'batch_start').map((l) => l.batch);
  assert.deepEqual(starts, ['b1', 'b2']);
  // b1 was finished (done written) before b2 started.
  const doneB1 = a.logs.findIndex(isDone('b1'));
  const startB2 = a.logs.findIndex((l) => l.event === 'batch_start' && l.batch === 'b2');
  assert.ok(doneB1 < startB2);
  assert.deepEqual(await readdir(a.inDir), ['.tmp-000000000000001-000000-x.json']);
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
