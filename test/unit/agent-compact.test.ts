// The context budget through the real turn (agent/turn.ts runBatch) in-process: a scripted
// provider answers summary requests and turns; the history file, the requests and the
// archive are checked as the agent left them.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { HISTORY_FILE } from '../../protocol/container.ts';
import type { BatchFile } from '../../protocol/ipc.ts';
import { archiveFile } from '../../agent/archive.ts';
import { estimateTokens, messagesTokens, planBudget, toolsTokens } from '../../agent/budget.ts';
import { SUMMARY_HEADING } from '../../agent/compact.ts';
import { loadHistory } from '../../agent/history.ts';
import { Outbox } from '../../agent/outbox.ts';
import type { Message, ModelRequest, ModelResult, Provider } from '../../agent/providers/provider.ts';
import { runBatch, type TurnSettings } from '../../agent/turn.ts';

const BUDGET = 8192;
const text = (t: string): ModelResult => ({ stopReason: 'stop', text: t, toolCalls: [] });
const isSummaryRequest = (req: ModelRequest) => req.system.startsWith('You are summarising');

/** Answers summary requests with `summary` and every other request with `answer`; records all. */
class ScriptedProvider implements Provider {
  readonly requests: ModelRequest[] = [];
  #summary: (req: ModelRequest) => ModelResult | Promise<ModelResult>;
  #answer: (req: ModelRequest) => ModelResult;
  constructor(o: { summary?: (req: ModelRequest) => ModelResult | Promise<ModelResult>; answer?: (req: ModelRequest) => ModelResult } = {}) {
    this.#summary = o.summary ?? (() => text('Alice planned the Acme offer; quote sent on turn 3.'));
    this.#answer = o.answer ?? (() => text('done'));
  }
  async complete(req: ModelRequest): Promise<ModelResult> {
    this.requests.push({ ...req, messages: [...req.messages] });
    return isSummaryRequest(req) ? this.#summary(req) : this.#answer(req);
  }
  turns() { return this.requests.filter((r) => !isSummaryRequest(r)); }
  summaries() { return this.requests.filter(isSummaryRequest); }
}

/** One past turn: a question, a bash call with ~`resultBytes` of output, and an answer. */
function pastTurn(n: number, resultBytes = 600): Message[] {
  return [
    { role: 'user', text: `[2025-01-01T00:00:00.000Z] alice: question ${n}` },
    { role: 'assistant', text: '', toolCalls: [{ id: `c${n}`, name: 'bash', args: { command: `cat notes/${n}.md` } }] },
    { role: 'tool', toolCallId: `c${n}`, name: 'bash', text: `result ${n} `.padEnd(resultBytes, '.'), isError: false },
    { role: 'assistant', text: `answer ${n}`, toolCalls: [] },
  ];
}

async function setup(t: TestContext, history: readonly Message[] = []) {
  const root = await mkdtemp(join(tmpdir(), 'hako-compact-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const workspace = join(root, 'group');
  const globalDir = join(root, 'global');
  const outDir = join(root, 'out');
  for (const d of [workspace, globalDir, outDir]) await mkdir(d, { recursive: true });
  const historyFile = join(workspace, HISTORY_FILE);
  if (history.length) {
    await mkdir(dirname(historyFile), { recursive: true });
    await writeFile(historyFile, JSON.stringify({ v: 1, messages: history }));
  }
  let n = 0;
  const run = async (provider: Provider, input: string, settings: Partial<TurnSettings> = {}) => {
    const logs: { event: string; [k: string]: unknown }[] = [];
    const batch: BatchFile = { v: 1, id: `b${++n}`, type: 'batch', messages: [{ id: `m${n}`, sender: 'alice', text: input, ts: '2025-01-02T03:04:05.000Z' }] };
    const result = await runBatch(batch, {
      provider,
      outbox: new Outbox(outDir),
      requests: { send: async () => { throw new Error('no host in this test'); } },
      log: (event, fields = {}) => { logs.push({ event, ...fields }); },
      signal: new AbortController().signal,
      settings: { assistantName: 'hako', group: 'team', isMain: true, workspace, globalDir, maxSteps: 4, contextTokens: BUDGET, ...settings },
    });
    const outs = await Promise.all((await readdir(outDir)).sort().map(async (f) => JSON.parse(await readFile(join(outDir, f), 'utf8')) as { type: string; batch?: string; text?: string }));
    return { result, logs, outs: outs.filter((o) => o.batch === batch.id) };
  };
  return { root, workspace, historyFile, run };
}

/** What a request carries, estimated as the agent does. */
function requestTokens(req: ModelRequest): number {
  return estimateTokens(req.system) + toolsTokens(req.tools) + messagesTokens(req.messages);
}

/** The request's input budget (the whole budget minus the answer's room). */
const inputBudget = planBudget(BUDGET, 0).input;

const oldHistory = Array.from({ length: 40 }, (_, i) => pastTurn(i + 1)).flat();

test('compaction - the oldest turns are replaced by one summary message and every request stays under the budget', async (t) => {
  const { historyFile, run } = await setup(t, oldHistory);
  const p = new ScriptedProvider();
  const { result, logs, outs } = await run(p, 'what did we decide about Acme?');
  assert.equal(result.stopReason, 'stop');
  assert.deepEqual(outs.map((o) => o.type), ['reply', 'done']);

  // One summary call first, with the oldest turns as a transcript that shows the tools.
  assert.equal(p.summaries().length, 1);
  assert.equal(p.requests[0], p.summaries()[0]);
  const transcript = p.summaries()[0]!.messages[0]!;
  assert.ok(transcript.role === 'user');
  assert.match(transcript.text, /question 1\b/);
  assert.match(transcript.text, /\*\*tool call\*\* `bash`[\s\S]*cat notes\/1\.md/);
  assert.match(transcript.text, /\*\*tool result\*\* `bash`[\s\S]*result 1 /);

  // The saved history: the summary, then the newest turns whole, then this turn.
  const saved = (await loadHistory(historyFile)).messages;
  const first = saved[0]!;
  assert.ok(first.role === 'user' && first.text.startsWith(SUMMARY_HEADING));
  assert.match(first.text, /Alice planned the Acme offer/);
  assert.ok(!saved.some((m) => m.role === 'user' && m.text.endsWith('question 1')), 'the oldest turn is folded into the summary');
  assert.ok(saved.some((m) => m.role === 'user' && m.text.endsWith('question 40')), 'the newest turn is kept verbatim');
  const kept = saved.slice(1, -2);
  assert.deepEqual(kept, oldHistory.slice(oldHistory.length - kept.length), 'the kept turns are the newest ones, whole');
  assert.deepEqual(saved.slice(-2).map((m) => m.role), ['user', 'assistant']);
  assert.ok(logs.some((l) => l.event === 'history_compacted' && l.folded === oldHistory.length - kept.length));

  for (const req of p.requests) assert.ok(requestTokens(req) <= inputBudget, `a request of ${requestTokens(req)} tokens exceeds ${inputBudget}`);
  // The turn's request carries the summary first.
  const turnReq = p.turns()[0]!;
  assert.ok(turnReq.messages[0]?.role === 'user' && turnReq.messages[0].text.startsWith(SUMMARY_HEADING));
});

test('compaction - a history within its share is sent as it is, without a summary call', async (t) => {
  const small = [...pastTurn(1), ...pastTurn(2)];
  const { run } = await setup(t, small);
  const p = new ScriptedProvider();
  await run(p, 'hi');
  assert.equal(p.summaries().length, 0);
  assert.deepEqual(p.turns()[0]!.messages.slice(0, small.length), small);
});

test('compaction - a failed summary call leaves out the oldest turns for this request only; the file keeps them and the turn is answered', async (t) => {
  const { historyFile, run } = await setup(t, oldHistory);
  const p = new ScriptedProvider({ summary: () => ({ stopReason: 'error', text: '', toolCalls: [], error: 'openai: 503 overloaded', retryable: true }) });
  const { result, logs, outs } = await run(p, 'still there?');
  assert.equal(result.stopReason, 'stop');
  assert.deepEqual(outs.map((o) => o.type), ['reply', 'done']);
  assert.ok(logs.some((l) => l.event === 'history_cut' && /503 overloaded/.test(String(l.reason))));
  const sent = p.turns()[0]!.messages;
  assert.ok(!sent.some((m) => m.role === 'user' && m.text.endsWith('question 1')), 'the oldest turn is left out of the request');
  assert.ok(requestTokens(p.turns()[0]!) <= inputBudget);
  const saved = (await loadHistory(historyFile)).messages;
  assert.deepEqual(saved.slice(0, oldHistory.length), oldHistory, 'the file still holds every old turn, for the next compaction');
  assert.equal(saved.length, oldHistory.length + 2);
});

test('compaction - a summary call that throws leaves the history file byte for byte as it was', async (t) => {
  const { historyFile, run } = await setup(t, oldHistory);
  const before = await readFile(historyFile);
  const p = new ScriptedProvider({ summary: () => { throw new Error('provider crashed mid-summary'); } });
  await assert.rejects(run(p, 'hello'), /provider crashed mid-summary/);
  assert.deepEqual(await readFile(historyFile), before);
});

test('compaction - an agent killed during the summary call leaves the old history, and the next run compacts it', async (t) => {
  const { workspace, historyFile, root, run } = await setup(t, oldHistory);
  const before = await readFile(historyFile);
  // A separate process runs the real turn; its summary call never returns, and it is killed there.
  const script = join(root, 'crash.ts');
  await writeFile(script, [
    `import { runBatch } from ${JSON.stringify(new URL('../../agent/turn.ts', import.meta.url).pathname)};`,
    `import { Outbox } from ${JSON.stringify(new URL('../../agent/outbox.ts', import.meta.url).pathname)};`,
    'const provider = { complete: (req) => { if (req.system.startsWith("You are summarising")) { process.stdout.write("summarising\\n"); return new Promise(() => {}); } return Promise.resolve({ stopReason: "stop", text: "x", toolCalls: [] }); } };',
    `await runBatch({ v: 1, id: 'b1', type: 'batch', messages: [{ id: 'm1', sender: 'alice', text: 'hi', ts: '2025-01-02T03:04:05.000Z' }] }, {`,
    `  provider, outbox: new Outbox(${JSON.stringify(join(root, 'out'))}), requests: { send: async () => { throw new Error('none'); } }, log: () => {}, signal: new AbortController().signal,`,
    `  settings: { assistantName: 'hako', group: 'team', isMain: true, workspace: ${JSON.stringify(workspace)}, globalDir: ${JSON.stringify(join(root, 'global'))}, maxSteps: 4, contextTokens: ${BUDGET} },`,
    '});',
  ].join('\n'));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  for await (const line of createInterface({ input: child.stdout! })) if (line === 'summarising') break;
  child.kill('SIGKILL');
  await exited;
  assert.deepEqual(await readFile(historyFile), before, 'the history file is untouched');

  const p = new ScriptedProvider();
  await run(p, 'and now?');
  assert.equal(p.summaries().length, 1);
  const saved = (await loadHistory(historyFile)).messages;
  assert.ok(saved[0]?.role === 'user' && saved[0].text.startsWith(SUMMARY_HEADING));
});

test('compaction - a summary of a summary: the earlier summary is part of the next transcript', async (t) => {
  const { historyFile, run } = await setup(t, oldHistory);
  const p = new ScriptedProvider();
  await run(p, 'first');
  // Grow the history past its share again, then run one more turn.
  const saved = (await loadHistory(historyFile)).messages;
  await writeFile(historyFile, JSON.stringify({ v: 1, messages: [...saved, ...Array.from({ length: 40 }, (_, i) => pastTurn(100 + i)).flat()] }));
  await run(p, 'second');
  assert.equal(p.summaries().length, 2);
  const transcript = p.summaries()[1]!.messages[0]!;
  assert.ok(transcript.role === 'user');
  assert.ok(transcript.text.includes(SUMMARY_HEADING), 'the earlier summary is folded into the new one');
});

test('budget - a tool result over its share of the budget is cut with a note, in the request and in the history', async (t) => {
  const { historyFile, run } = await setup(t);
  const p = new ScriptedProvider({
    answer: (req) => req.messages.at(-1)?.role === 'tool' ? text('it is long') : { stopReason: 'tool_use', text: '', toolCalls: [{ id: 'big', name: 'bash', args: { command: 'head -c 200000 /dev/zero | tr "\\0" x' } }] },
  });
  const { result } = await run(p, 'print a lot');
  assert.equal(result.stopReason, 'stop');
  const req = p.turns()[1]!;
  const tool = req.messages.at(-1)!;
  assert.ok(tool.role === 'tool');
  assert.ok(Buffer.byteLength(tool.text) < 20_000, `the tool result sent is ${Buffer.byteLength(tool.text)} bytes`);
  assert.match(tool.text, /more bytes cut to fit the context budget/);
  assert.ok(requestTokens(req) <= inputBudget);
  const saved = (await loadHistory(historyFile)).messages;
  assert.equal(saved.find((m) => m.role === 'tool')?.text, tool.text);
});

test('budget - many tool results in one turn: the oldest are replaced by a note so each request fits', async (t) => {
  const { run } = await setup(t);
  const p = new ScriptedProvider({
    answer: (req) => {
      const step = req.messages.filter((m) => m.role === 'assistant').length;
      return step < 5 ? { stopReason: 'tool_use', text: '', toolCalls: [{ id: `s${step}`, name: 'bash', args: { command: 'head -c 50000 /dev/zero | tr "\\0" y' } }] } : text('ok');
    },
  });
  const { result } = await run(p, 'five big commands', { maxSteps: 7 });
  assert.equal(result.stopReason, 'stop');
  assert.equal(p.turns().length, 6);
  for (const req of p.turns()) assert.ok(requestTokens(req) <= inputBudget, `a request of ${requestTokens(req)} tokens exceeds ${inputBudget}`);
  const last = p.turns().at(-1)!.messages;
  assert.ok(last.some((m) => m.role === 'tool' && /tool output removed to fit the context budget/.test(m.text)));
  assert.match((last.at(-1) as { text: string }).text, /^y+/, 'the newest result is kept');
});

test('archive - a compacted turn is still in the archive in full', async (t) => {
  const { workspace, run } = await setup(t, oldHistory);
  const p = new ScriptedProvider();
  await run(p, 'the turn that triggered compaction');
  const md = await readFile(archiveFile(workspace, new Date()), 'utf8');
  assert.match(md, /the turn that triggered compaction/);
});

test('budget - memory files larger than a small budget allows are cut at the end of the system prompt; the rules stay', async (t) => {
  const { workspace, run } = await setup(t);
  await writeFile(join(workspace, 'MEMORY.md'), 'Team facts. '.repeat(1800));
  const p = new ScriptedProvider();
  const { logs } = await run(p, 'hi');
  const req = p.turns()[0]!;
  assert.match(req.system, /^You are hako/);
  assert.match(req.system, /Team facts\./);
  assert.match(req.system, /bytes of memory and skill instructions left out to fit the context budget \(HAKO_CONTEXT_TOKENS\); keep MEMORY\.md short\]$/);
  assert.ok(requestTokens(req) <= inputBudget, `a request of ${requestTokens(req)} tokens exceeds ${inputBudget}`);
  assert.ok(logs.some((l) => l.event === 'system_prompt_cut'));
});
