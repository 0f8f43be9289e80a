// spawn_agents through the real turn (agent/turn.ts runBatch) in-process: a scripted provider
// answers the parent and each sub-agent by conversation; a barrier proves concurrency by
// answering no sub-agent until all of them have asked.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HISTORY_FILE } from '../../protocol/container.ts';
import { parseAgentOutput, type AgentToHost, type BatchFile } from '../../protocol/ipc.ts';
import { readConfig } from '../../agent/config.ts';
import { Outbox } from '../../agent/outbox.ts';
import type { Message, ModelRequest, ModelResult, Provider } from '../../agent/providers/provider.ts';
import { runBatch, type TurnSettings } from '../../agent/turn.ts';
import { SUBAGENT_TOOLS } from '../../agent/tools/spawn.ts';

type Respond = (req: ModelRequest, who: string, step: number) => ModelResult | Promise<ModelResult>;

const PARENT = 'parent';
const text = (t: string): ModelResult => ({ stopReason: 'stop', text: t, toolCalls: [] });
const call = (name: string, args: unknown, id = `call-${name}`): ModelResult => ({ stopReason: 'tool_use', text: '', toolCalls: [{ id, name, args }] });
const spawnCall = (prompts: string[], extra: Record<string, unknown> = {}) => call('spawn_agents', { tasks: prompts.map((prompt) => ({ prompt })), ...extra });

/** Routes each request by its conversation: the parent's holds the batch line, a sub-agent's starts with its task. */
class ScriptedProvider implements Provider {
  readonly requests: { who: string; req: ModelRequest }[] = [];
  #respond: Respond;
  constructor(respond: Respond) { this.#respond = respond; }
  async complete(req: ModelRequest): Promise<ModelResult> {
    const first = req.messages[0];
    const isParent = req.messages.some((m) => m.role === 'user' && m.text.includes('] alice: '));
    const who = isParent ? PARENT : first?.role === 'user' ? first.text : '?';
    this.requests.push({ who, req: { ...req, messages: [...req.messages] } });
    const lastUser = req.messages.findLastIndex((m) => m.role === 'user');
    const step = req.messages.slice(lastUser).filter((m) => m.role === 'assistant').length + 1;
    return this.#respond(req, who, step);
  }
  of(who: string) { return this.requests.filter((r) => r.who === who).map((r) => r.req); }
}

/**
 * Resolves every caller once `n` have arrived. Not a timing check: if the sub-agents ran one
 * after another the first would wait alone; after `breakMs` it gets false so the test fails
 * with a message instead of hanging.
 */
function barrier(n: number, breakMs = 5000) {
  let arrived = 0;
  let release!: (v: boolean) => void;
  const all = new Promise<boolean>((r) => { release = r; });
  const timer = setTimeout(() => release(false), breakMs);
  return async (): Promise<boolean> => {
    arrived++;
    if (arrived === n) { clearTimeout(timer); release(true); }
    return all;
  };
}

/** A model call that only ends when its signal fires, as a real provider's does. */
const hang = (req: ModelRequest): Promise<ModelResult> => new Promise((resolve) => {
  const aborted = () => resolve({ stopReason: 'aborted', text: '', toolCalls: [], error: 'aborted' });
  if (req.signal?.aborted) aborted();
  else req.signal?.addEventListener('abort', aborted, { once: true });
});

interface Run { outs: AgentToHost[]; logs: { event: string; [k: string]: unknown }[]; workspace: string; stopReason: string }

async function setup(t: TestContext) {
  const root = await mkdtemp(join(tmpdir(), 'hako-spawn-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const workspace = join(root, 'group');
  const globalDir = join(root, 'global');
  const outDir = join(root, 'out');
  for (const d of [workspace, globalDir, outDir]) await mkdir(d, { recursive: true });
  await writeFile(join(workspace, 'MEMORY.md'), 'This team ships on Fridays.');
  await writeFile(join(globalDir, 'MEMORY.md'), 'The owner likes haiku.');
  const run = async (provider: Provider, input: string, over: Partial<TurnSettings> & { signal?: AbortSignal } = {}): Promise<Run> => {
    const { signal, ...settings } = over;
    const logs: Run['logs'] = [];
    const batch: BatchFile = { v: 1, id: 'b1', type: 'batch', messages: [{ id: 'm1', sender: 'alice', text: input, ts: '2025-01-02T03:04:05.000Z' }] };
    const r = await runBatch(batch, {
      provider,
      outbox: new Outbox(outDir),
      requests: { send: async () => { throw new Error('no host in this test'); } },
      log: (event, fields = {}) => { logs.push({ event, ...fields }); },
      signal: signal ?? new AbortController().signal,
      settings: { assistantName: 'hako', group: 'team', isMain: true, workspace, globalDir, maxSteps: 4, maxSubagents: 4, turnTimeoutSeconds: 600, ...settings },
    });
    const names = (await readdir(outDir)).sort();
    const outs = await Promise.all(names.map(async (n) => {
      const p = parseAgentOutput(JSON.parse(await readFile(join(outDir, n), 'utf8')));
      assert.ok(p.ok);
      return p.value;
    }));
    return { outs, logs, workspace, stopReason: r.stopReason };
  };
  return { run, workspace };
}

/** The spawn_agents result the parent saw (the tool message of its second request). */
function toolResult(p: ScriptedProvider): Extract<Message, { role: 'tool' }> {
  const m = p.of(PARENT)[1]?.messages.at(-1);
  assert.ok(m?.role === 'tool', 'the parent made a second request with the tool result');
  return m;
}

const TASKS = ['Summarise the Q3 sales notes', 'List the open invoices', 'Draft a reply to Bob'];

test('spawn_agents - three sub-agents run at once: no sub-agent is answered until all three have asked, and the parent gets all three answers', async (t) => {
  const { run } = await setup(t);
  const allThere = barrier(3);
  const p = new ScriptedProvider(async (req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(TASKS) : text('Here is everything.');
    const together = await allThere();
    return text(together ? `answer to: ${who}` : 'ran alone: the sub-agents did not run concurrently');
  });
  const r = await run(p, 'do three things');
  const result = toolResult(p);
  assert.equal(result.isError, false);
  assert.equal(result.text, TASKS.map((task, i) => `## Sub-agent ${i + 1} of 3: ok\n\nanswer to: ${task}`).join('\n\n'));
  assert.deepEqual(r.outs.map((o) => o.type), ['reply', 'done']);
});

test('spawn_agents - the request of a sub-agent carries only its own task and the memory of the group, never the history of the parent or the other tasks', async (t) => {
  const { run, workspace } = await setup(t);
  const history: Message[] = [{ role: 'user', text: 'EARLIER-CHAT: my PIN is 4711' }, { role: 'assistant', text: 'noted', toolCalls: [] }];
  await mkdir(dirname(join(workspace, HISTORY_FILE)), { recursive: true });
  await writeFile(join(workspace, HISTORY_FILE), JSON.stringify({ v: 1, messages: history }));
  const p = new ScriptedProvider((_req, who, step) => who === PARENT ? (step === 1 ? spawnCall(TASKS) : text('done')) : text('ok'));
  await run(p, 'PARENT-INPUT: split this up');
  assert.ok(p.of(PARENT)[0]!.messages.some((m) => m.role === 'user' && m.text.includes('EARLIER-CHAT')), 'the parent did get its history (the test is meaningful)');
  for (const task of TASKS) {
    const [req, ...more] = p.of(task);
    assert.ok(req, `sub-agent for "${task}" asked the model`);
    assert.equal(more.length, 0);
    assert.deepEqual(req.messages, [{ role: 'user', text: task }]);
    assert.match(req.system, /This team ships on Fridays\./);
    assert.match(req.system, /The owner likes haiku\./);
    const everything = JSON.stringify(req);
    assert.doesNotMatch(everything, /EARLIER-CHAT|4711|PARENT-INPUT/);
    for (const other of TASKS.filter((x) => x !== task)) assert.ok(!everything.includes(other), `"${task}" does not see "${other}"`);
  }
});

test('spawn_agents - a sub-agent that runs out of steps is cut off and reported; the others still answer', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((_req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(TASKS) : text('done');
    if (who === TASKS[1]) return { ...call('glob', { pattern: '*' }, `g${step}`), text: `still looking (${step})` };
    return text(`answer to: ${who}`);
  });
  await run(p, 'go', { maxSteps: 3 });
  assert.equal(p.of(TASKS[1]!).length, 3, 'the looping sub-agent made exactly its 3 steps');
  const sections = toolResult(p).text.split('\n\n## ');
  assert.match(sections[0]!, /^## Sub-agent 1 of 3: ok\n\nanswer to: Summarise/);
  assert.match(sections[1]!, /^Sub-agent 2 of 3: cut off after 3 steps\n\nstill looking \(3\)/);
  assert.match(sections[2]!, /^Sub-agent 3 of 3: ok\n\nanswer to: Draft/);
});

test('spawn_agents - a failing sub-agent is reported with its reason, and the parent still answers', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((_req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(TASKS) : text('Two of three done.');
    if (who === TASKS[0]) return { stopReason: 'error', text: '', toolCalls: [], error: 'HTTP 500 upstream broke', retryable: false };
    return text('fine');
  });
  const r = await run(p, 'go');
  const result = toolResult(p);
  assert.equal(result.isError, false);
  assert.match(result.text, /^## Sub-agent 1 of 3: failed: HTTP 500 upstream broke\n/);
  assert.match(result.text, /## Sub-agent 2 of 3: ok\n\nfine/);
  assert.deepEqual(r.outs.map((o) => o.type), ['reply', 'done']);
});

test('spawn_agents - recursion is impossible: a sub-agent is not offered spawn_agents and is refused when it calls it anyway', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(['nested']) : text('done');
    return step === 1 ? spawnCall(['deeper', 'deeper still']) : text(`refused: ${(req.messages.at(-1) as { text: string }).text}`);
  });
  await run(p, 'go');
  const sub = p.of('nested');
  assert.equal(sub.length, 2);
  assert.ok(!sub[0]!.tools.some((s) => s.name === 'spawn_agents'));
  assert.ok(p.of(PARENT)[0]!.tools.some((s) => s.name === 'spawn_agents'), 'the parent is offered it');
  const refusal = sub[1]!.messages.at(-1);
  assert.ok(refusal?.role === 'tool' && refusal.isError);
  assert.match(refusal.text, /unknown tool "spawn_agents"/);
  assert.deepEqual(p.of('deeper'), []);
  assert.deepEqual(p.of('deeper still'), []);
});

test('spawn_agents - a sub-agent cannot message any chat or reach the scheduler: those tools are not offered, calls are refused, nothing reaches out/', async (t) => {
  const { run } = await setup(t);
  const forbidden = ['send_message', 'schedule_task', 'cancel_task', 'pause_task', 'resume_task', 'list_tasks', 'register_group', 'spawn_agents'];
  const p = new ScriptedProvider((_req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(['try to talk']) : text('done');
    if (step === 1) {
      return { stopReason: 'tool_use', text: '', toolCalls: [
        { id: 's1', name: 'send_message', args: { text: 'hi from the sub-agent' } },
        { id: 's2', name: 'send_message', args: { text: 'hi', group: 'other' } },
        { id: 's3', name: 'schedule_task', args: { prompt: 'later', every_seconds: 60 } },
      ] };
    }
    return text('gave up');
  });
  const r = await run(p, 'go');
  const offered = p.of('try to talk')[0]!.tools.map((s) => s.name);
  assert.deepEqual(offered, [...SUBAGENT_TOOLS]);
  for (const name of forbidden) assert.ok(!offered.includes(name), `${name} is not offered to a sub-agent`);
  const results = p.of('try to talk')[1]!.messages.filter((m) => m.role === 'tool');
  assert.equal(results.length, 3);
  for (const m of results) assert.ok(m.role === 'tool' && m.isError && /unknown tool/.test(m.text));
  assert.deepEqual(r.outs.map((o) => o.type), ['reply', 'done'], 'only the parent\'s reply went out');
});

test('spawn_agents - at most HAKO_MAX_SUBAGENTS run per call: more tasks are refused before any sub-agent starts, that many run at once', async (t) => {
  const { run } = await setup(t);
  const twoTogether = barrier(2);
  const p = new ScriptedProvider(async (_req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(['a', 'b', 'c']) : step === 2 ? spawnCall(['a', 'b'], {}) : text('done');
    return text((await twoTogether()) ? `ok ${who}` : 'alone');
  });
  await run(p, 'go', { maxSubagents: 2 });
  const refused = p.of(PARENT)[1]!.messages.at(-1);
  assert.ok(refused?.role === 'tool' && refused.isError);
  assert.match(refused.text, /3 tasks given; at most 2 sub-agents run per call \(HAKO_MAX_SUBAGENTS\)/);
  assert.deepEqual(p.of('c'), []);
  const second = p.of(PARENT)[2]!.messages.at(-1);
  assert.ok(second?.role === 'tool');
  assert.equal(second.text, '## Sub-agent 1 of 2: ok\n\nok a\n\n## Sub-agent 2 of 2: ok\n\nok b');
});

test('spawn_agents - HAKO_MAX_SUBAGENTS=0 turns the tool off with a message saying so', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((_req, who, step) => who === PARENT ? (step === 1 ? spawnCall(['a']) : text('done')) : text('should not run'));
  await run(p, 'go', { maxSubagents: 0 });
  assert.match(toolResult(p).text, /sub-agents are turned off \(HAKO_MAX_SUBAGENTS=0\)/);
  assert.deepEqual(p.of('a'), []);
});

test('spawn_agents - the tools argument narrows a sub-agent\'s tools; a tool sub-agents may not use is refused', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((_req, who, step) => {
    if (who === PARENT) {
      if (step === 1) return spawnCall(['x'], { tools: ['read_file', 'send_message'] });
      if (step === 2) return spawnCall(['read only'], { tools: ['read_file', 'grep'] });
      return text('done');
    }
    return text('ok');
  });
  await run(p, 'go');
  const refused = p.of(PARENT)[1]!.messages.at(-1);
  assert.ok(refused?.role === 'tool' && refused.isError);
  assert.match(refused.text, /sub-agents cannot use send_message; they may use bash, read_file/);
  assert.deepEqual(p.of('x'), []);
  assert.deepEqual(p.of('read only')[0]!.tools.map((s) => s.name), ['read_file', 'grep']);
});

test('spawn_agents - stopping the turn stops every sub-agent, and the batch ends with an error, not a half answer', async (t) => {
  const { run } = await setup(t);
  const stop = new AbortController();
  const started = barrier(2);
  const p = new ScriptedProvider(async (req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(['slow a', 'slow b']) : text('should not get here');
    if (await started()) stop.abort();
    return hang(req);
  });
  const r = await run(p, 'go', { signal: stop.signal });
  assert.equal(r.stopReason, 'aborted');
  assert.deepEqual(r.outs.map((o) => o.type), ['error']);
  const ends = r.logs.filter((l) => l.event === 'subagent_end');
  assert.deepEqual(ends.map((l) => l.stopReason), ['aborted', 'aborted']);
});

test('spawn_agents - a sub-agent past its time limit is stopped and reported; the parent still answers in time', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(['never ends', 'quick']) : text('partial answer');
    return who === 'quick' ? text('quick answer') : hang(req);
  });
  // A 1-second turn: a sub-agent gets three quarters of what is left (at least 1 s).
  const r = await run(p, 'go', { turnTimeoutSeconds: 1 });
  const result = toolResult(p);
  assert.match(result.text, /^## Sub-agent 1 of 2: failed: it reached its time limit\n/);
  assert.match(result.text, /## Sub-agent 2 of 2: ok\n\nquick answer$/);
  assert.deepEqual(r.outs.map((o) => o.type), ['reply', 'done']);
});

test('config - HAKO_MAX_SUBAGENTS defaults to 4, accepts 0 to 16, and a wrong value says what was expected', () => {
  const d = readConfig({ HAKO_MODEL: 'openai/x' });
  assert.ok(d.ok);
  assert.equal(d.config.maxSubagents, 4);
  assert.equal(d.config.turnTimeoutSeconds, 600);
  const set = readConfig({ HAKO_MODEL: 'openai/x', HAKO_MAX_SUBAGENTS: '0', HAKO_TURN_TIMEOUT: '90' });
  assert.ok(set.ok);
  assert.equal(set.config.maxSubagents, 0);
  assert.equal(set.config.turnTimeoutSeconds, 90);
  const bad = readConfig({ HAKO_MODEL: 'openai/x', HAKO_MAX_SUBAGENTS: '17' });
  assert.ok(!bad.ok);
  assert.match(bad.problems.join('\n'), /HAKO_MAX_SUBAGENTS is "17"; expected a whole number from 0 to 16 \(default 4\)/);
});

test('prompt - the parent is told when sub-agents help and how many per call; a sub-agent is told its answer goes back to the parent', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider((_req, who, step) => who === PARENT ? (step === 1 ? spawnCall(['helper']) : text('done')) : text('ok'));
  await run(p, 'go', { maxSubagents: 3 });
  const parent = p.of(PARENT)[0]!.system;
  const sub = p.of('helper')[0]!.system;
  assert.match(parent, /spawn_agents runs up to 3 sub-agents at once/);
  assert.doesNotMatch(parent, /You are a sub-agent/);
  assert.match(sub, /## You are a sub-agent\n\n.*goes back to that agent, not to the chat/);
  assert.doesNotMatch(sub, /spawn_agents runs up to/);
  const off = new ScriptedProvider(() => text('ok'));
  await run(off, 'go', { maxSubagents: 0 });
  assert.doesNotMatch(off.of(PARENT)[0]!.system, /spawn_agents/, 'a switched-off tool is not advertised');
});

test('spawn_agents - each sub-agent\'s transcript is archived, titled with its place in the parent turn', async (t) => {
  const { run, workspace } = await setup(t);
  const tasks = ['Find the Q3 report in the shared drive and quote its total', 'Check the pears'];
  const p = new ScriptedProvider((_req, who, step) => {
    if (who === PARENT) return step === 1 ? spawnCall(tasks) : text('done');
    return step === 1 ? call('glob', { pattern: '*.md' }, `g-${who.length}`) : text(`answer for: ${who}`);
  });
  await run(p, 'go');
  const [day] = await readdir(join(workspace, 'conversations'));
  const md = await readFile(join(workspace, 'conversations', day!), 'utf8');
  assert.match(md, /· sub-agent 1 of 2 of turn b1: Find the Q3 report in the shared drive …\n\n\*\*user\*\*\n\nFind the Q3 report/);
  assert.match(md, /· sub-agent 2 of 2 of turn b1: Check the pears\n/);
  assert.match(md, /\*\*tool call\*\* `glob`/);
  assert.match(md, /answer for: Check the pears/);
  assert.match(md, /· batch b1\n/, 'the parent turn is archived as well');
});
