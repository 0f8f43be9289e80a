// The model ↔ tool loop against a scripted fake Provider: events, tool round trips, failures as data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { runLoop, runToEnd, type LoopEvent, type LoopOptions } from '../../agent/loop.ts';
import type { ModelRequest, ModelResult, Provider } from '../../agent/providers/provider.ts';
import type { ToolExecutor } from '../../agent/tools/index.ts';

/** Answers each request with the next scripted result and records what it was sent. */
class FakeProvider implements Provider {
  requests: ModelRequest[] = [];
  #script: ModelResult[];
  constructor(...script: ModelResult[]) { this.#script = script; }
  async complete(req: ModelRequest): Promise<ModelResult> {
    this.requests.push({ ...req, messages: [...req.messages] });
    return this.#script.shift() ?? { stopReason: 'stop', text: 'script exhausted', toolCalls: [] };
  }
}

const text = (t: string): ModelResult => ({ stopReason: 'stop', text: t, toolCalls: [] });
const call = (name: string, args: unknown, id = `id-${name}`): ModelResult => ({ stopReason: 'tool_use', text: '', toolCalls: [{ id, name, args }] });

function options(provider: Provider, over: Partial<LoopOptions> = {}): LoopOptions {
  const execute: ToolExecutor = async (name, args) => ({ text: `${name} ran with ${JSON.stringify(args)}`, isError: false });
  return { provider, system: 'sys', history: [], input: 'hello', tools: TOOL_SPECS, execute, maxSteps: 5, ...over };
}

async function collect(o: LoopOptions) {
  const events: LoopEvent[] = [];
  const result = await runToEnd(o, (e) => events.push(e));
  return { events, result };
}

test('loop - a plain answer ends the turn with stop and the text', async () => {
  const p = new FakeProvider(text('hi there'));
  const { events, result } = await collect(options(p));
  assert.equal(result.stopReason, 'stop');
  assert.equal(result.text, 'hi there');
  assert.deepEqual(events.map((e) => e.type), ['turn_start', 'model_request', 'model_response', 'turn_end']);
  assert.deepEqual(p.requests[0]?.messages, [{ role: 'user', text: 'hello' }]);
  assert.equal(p.requests[0]?.system, 'sys');
  assert.equal(p.requests[0]?.tools, TOOL_SPECS);
  assert.deepEqual(result.messages, [{ role: 'user', text: 'hello' }, { role: 'assistant', text: 'hi there', toolCalls: [] }]);
});

test('loop - a tool call round trip: the model sees the result and answers', async () => {
  const p = new FakeProvider(call('bash', { command: 'ls' }), text('you have a.txt'));
  const { events, result } = await collect(options(p));
  assert.equal(result.stopReason, 'stop');
  assert.equal(result.text, 'you have a.txt');
  assert.deepEqual(events.map((e) => e.type), [
    'turn_start', 'model_request', 'model_response', 'tool_start', 'tool_end', 'model_request', 'model_response', 'turn_end',
  ]);
  assert.deepEqual(p.requests[1]?.messages.slice(1), [
    { role: 'assistant', text: '', toolCalls: [{ id: 'id-bash', name: 'bash', args: { command: 'ls' } }] },
    { role: 'tool', toolCallId: 'id-bash', name: 'bash', text: 'bash ran with {"command":"ls"}', isError: false },
  ]);
  assert.equal(result.messages.length, 4);
});

test('loop - history comes before the new user message and is not modified', async () => {
  const history = [{ role: 'user' as const, text: 'earlier' }, { role: 'assistant' as const, text: 'yes', toolCalls: [] }];
  const p = new FakeProvider(text('ok'));
  const { result } = await collect(options(p, { history }));
  assert.deepEqual(p.requests[0]?.messages, [...history, { role: 'user', text: 'hello' }]);
  assert.equal(history.length, 2);
  assert.equal(result.messages[0]?.role, 'user');
});

test('loop - an unknown tool is an error result the model sees, and the loop goes on', async () => {
  const p = new FakeProvider(call('launch_rockets', {}), text('sorry'));
  const { result } = await collect(options(p));
  assert.equal(result.stopReason, 'stop');
  const toolMsg = p.requests[1]?.messages.at(-1);
  assert.ok(toolMsg?.role === 'tool');
  assert.equal(toolMsg.isError, true);
  assert.match(toolMsg.text, /unknown tool "launch_rockets"; available tools: bash, read_file/);
});

test('loop - bad or unparseable arguments are error results, the tool is not run', async () => {
  let ran = 0;
  const execute: ToolExecutor = async () => { ran++; return { text: 'ran', isError: false }; };
  const p = new FakeProvider(
    { stopReason: 'tool_use', text: '', toolCalls: [{ id: 'a', name: 'read_file', args: { file: 'x' } }, { id: 'b', name: 'bash', args: '{"command": "ls"' }] },
    text('fixed'),
  );
  await collect(options(p, { execute }));
  assert.equal(ran, 0);
  const [a, b] = p.requests[1]?.messages.slice(-2) ?? [];
  assert.ok(a?.role === 'tool' && b?.role === 'tool');
  assert.deepEqual([a.isError, b.isError], [true, true]);
  assert.match(a.text, /read_file needs the argument "path"/);
  assert.match(b.text, /not valid JSON/);
});

test('loop - a throwing tool becomes an error result', async () => {
  const execute: ToolExecutor = async () => { throw new Error('disk on fire'); };
  const p = new FakeProvider(call('bash', { command: 'x' }), text('hmm'));
  const { events } = await collect(options(p, { execute }));
  const end = events.find((e) => e.type === 'tool_end');
  assert.ok(end?.type === 'tool_end');
  assert.deepEqual(end.result, { text: 'bash failed: disk on fire', isError: true });
});

test('loop - several tool calls in one response run in order', async () => {
  const order: string[] = [];
  const execute: ToolExecutor = async (name, args) => { order.push(String(args.path)); return { text: name, isError: false }; };
  const p = new FakeProvider(
    { stopReason: 'tool_use', text: 'reading', toolCalls: [1, 2, 3].map((i) => ({ id: `c${i}`, name: 'read_file', args: { path: `f${i}` } })) },
    text('done'),
  );
  const { result } = await collect(options(p, { execute }));
  assert.deepEqual(order, ['f1', 'f2', 'f3']);
  assert.deepEqual(result.messages.filter((m) => m.role === 'tool').map((m) => m.role === 'tool' && m.toolCallId), ['c1', 'c2', 'c3']);
});

test('loop - max steps ends the turn with what there is plus a note', async () => {
  const p = new FakeProvider(
    { stopReason: 'tool_use', text: 'step one', toolCalls: [{ id: '1', name: 'bash', args: { command: 'a' } }] },
    call('bash', { command: 'b' }, '2'),
    call('bash', { command: 'c' }, '3'),
  );
  const { result } = await collect(options(p, { maxSteps: 2 }));
  assert.equal(result.stopReason, 'max_steps');
  assert.equal(p.requests.length, 2);
  assert.match(result.text, /^step one\n\n\(I stopped after 2 steps/);
  // The turn's messages end with the last tool result, so the next turn's history stays paired.
  assert.equal(result.messages.at(-1)?.role, 'tool');
});

test('loop - a provider error ends the turn with stopReason error, carrying message and retryable', async () => {
  const p = new FakeProvider(call('bash', { command: 'ls' }), { stopReason: 'error', text: '', toolCalls: [], error: 'openai (HTTP 503): down', retryable: true });
  const { events, result } = await collect(options(p));
  assert.equal(result.stopReason, 'error');
  assert.equal(result.error, 'openai (HTTP 503): down');
  assert.equal(result.retryable, true);
  assert.equal(events.at(-1)?.type, 'turn_end');
});

test('loop - output cut at the length limit is returned with a note', async () => {
  const p = new FakeProvider({ stopReason: 'length', text: 'a long answ', toolCalls: [] });
  const { result } = await collect(options(p));
  assert.equal(result.stopReason, 'stop');
  assert.match(result.text, /^a long answ\n\n\(My reply was cut off/);
});

test('loop - an abort during a tool ends the turn as aborted without another model call', async () => {
  const ac = new AbortController();
  const execute: ToolExecutor = async () => { ac.abort(); return { text: 'stopped', isError: true }; };
  const p = new FakeProvider(call('bash', { command: 'sleep 100' }), text('never'));
  const { result } = await collect(options(p, { execute, signal: ac.signal }));
  assert.equal(result.stopReason, 'aborted');
  assert.equal(p.requests.length, 1);
});

test('loop - the signal reaches the provider and the tools', async () => {
  const ac = new AbortController();
  let toolSignal: AbortSignal | undefined;
  const execute: ToolExecutor = async (_n, _a, signal) => { toolSignal = signal; return { text: '', isError: false }; };
  const p = new FakeProvider(call('bash', { command: 'x' }), text('ok'));
  await collect(options(p, { execute, signal: ac.signal }));
  assert.equal(p.requests[0]?.signal, ac.signal);
  assert.equal(toolSignal, ac.signal);
});

test('loop - runLoop is an async generator whose return value is the result', async () => {
  const gen = runLoop(options(new FakeProvider(text('x'))));
  let r = await gen.next();
  while (!r.done) r = await gen.next();
  assert.equal(r.value.stopReason, 'stop');
});
