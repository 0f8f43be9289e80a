// Both providers against the scripted model server, which speaks the real wire formats (the
// official SDKs hold it to them in model-server.test.ts): text, tool calls, tool results,
// streaming or not, and failures as data.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { PLACEHOLDER_API_KEY } from '../../protocol/container.ts';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { AnthropicProvider } from '../../agent/providers/anthropic.ts';
import { OpenAIProvider } from '../../agent/providers/openai.ts';
import { parseModel, providerFor } from '../../agent/providers/index.ts';
import { parseArguments, type Message, type Provider } from '../../agent/providers/provider.ts';

type Kind = 'anthropic' | 'openai';

async function setup(t: TestContext, kind: Kind, stream: boolean): Promise<{ s: ModelServer; p: Provider }> {
  const s = await startModelServer();
  t.after(() => s.close());
  // No retries: an error turn must not be hidden behind the next scripted turn.
  const opts = { model: 'test-model', stream, maxRetries: 0 };
  const p = kind === 'anthropic'
    ? new AnthropicProvider({ ...opts, baseURL: s.anthropicBaseURL })
    : new OpenAIProvider({ ...opts, baseURL: s.openaiBaseURL });
  return { s, p };
}

const user = (text: string): Message => ({ role: 'user', text });

for (const kind of ['anthropic', 'openai'] as const) {
  for (const stream of [false, true]) {
    const name = `${kind} provider (${stream ? 'streaming' : 'not streaming'})`;

    test(`${name} - text answer is stop with the text, and the request carries system, model and tool specs`, async (t) => {
      const { s, p } = await setup(t, kind, stream);
      s.script({ text: 'hello from the model' });
      const r = await p.complete({ system: 'be brief', messages: [user('hi')], tools: TOOL_SPECS });
      assert.deepEqual(r, { stopReason: 'stop', text: 'hello from the model', toolCalls: [] });
      const req = s.requests[0]!;
      assert.equal(req.provider, kind);
      assert.equal(req.stream, stream);
      assert.equal(req.json.model, 'test-model');
      const auth = `${req.headers['authorization'] ?? ''} ${req.headers['x-api-key'] ?? ''}`;
      assert.ok(auth.includes(PLACEHOLDER_API_KEY), `the placeholder key is sent (${auth})`);
      if (kind === 'anthropic') {
        assert.equal(req.json.system, 'be brief');
        assert.equal(req.json.max_tokens, 4096);
        assert.deepEqual(req.json.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
        assert.deepEqual(req.json.tools.map((x: { name: string }) => x.name), TOOL_SPECS.map((x) => x.name));
        assert.deepEqual(req.json.tools[0].input_schema, TOOL_SPECS[0]!.parameters);
      } else {
        assert.deepEqual(req.json.messages, [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
        assert.deepEqual(req.json.tools.map((x: { function: { name: string } }) => x.function.name), TOOL_SPECS.map((x) => x.name));
        assert.deepEqual(req.json.tools[0], { type: 'function', function: { name: 'bash', description: TOOL_SPECS[0]!.description, parameters: TOOL_SPECS[0]!.parameters } });
      }
    });

    test(`${name} - tool calls come back with ids, names and parsed arguments`, async (t) => {
      const { s, p } = await setup(t, kind, stream);
      s.script({ toolCalls: [{ name: 'bash', args: { command: 'ls -la' } }, { name: 'read_file', args: { path: 'ünï/cödé.md' } }], text: 'let me look' });
      const r = await p.complete({ system: 's', messages: [user('what is here?')], tools: TOOL_SPECS });
      assert.equal(r.stopReason, 'tool_use');
      assert.equal(r.text, 'let me look');
      assert.deepEqual(r.toolCalls.map((c) => [c.name, c.args]), [['bash', { command: 'ls -la' }], ['read_file', { path: 'ünï/cödé.md' }]]);
      for (const c of r.toolCalls) assert.ok(c.id.length > 0);
    });

    test(`${name} - a conversation with tool results goes out in the provider's wire shape`, async (t) => {
      const { s, p } = await setup(t, kind, stream);
      s.script({ text: 'you have a.txt' });
      const messages: Message[] = [
        user('list'),
        { role: 'assistant', text: '', toolCalls: [{ id: 'call_1', name: 'bash', args: { command: 'ls' } }, { id: 'call_2', name: 'glob', args: { pattern: '*' } }] },
        { role: 'tool', toolCallId: 'call_1', name: 'bash', text: 'a.txt', isError: false },
        { role: 'tool', toolCallId: 'call_2', name: 'glob', text: 'bad pattern', isError: true },
      ];
      const r = await p.complete({ system: 's', messages, tools: TOOL_SPECS });
      assert.equal(r.text, 'you have a.txt');
      const sent = s.requests[0]!.json.messages;
      if (kind === 'anthropic') {
        assert.deepEqual(sent.slice(1), [
          { role: 'assistant', content: [
            { type: 'tool_use', id: 'call_1', name: 'bash', input: { command: 'ls' } },
            { type: 'tool_use', id: 'call_2', name: 'glob', input: { pattern: '*' } },
          ] },
          // Consecutive tool results travel as one user message.
          { role: 'user', content: [
            { type: 'tool_result', tool_use_id: 'call_1', content: 'a.txt', is_error: false },
            { type: 'tool_result', tool_use_id: 'call_2', content: 'bad pattern', is_error: true },
          ] },
        ]);
      } else {
        assert.deepEqual(sent.slice(2), [
          { role: 'assistant', content: null, tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'bash', arguments: '{"command":"ls"}' } },
            { id: 'call_2', type: 'function', function: { name: 'glob', arguments: '{"pattern":"*"}' } },
          ] },
          { role: 'tool', tool_call_id: 'call_1', content: 'a.txt' },
          { role: 'tool', tool_call_id: 'call_2', content: 'Error: bad pattern' },
        ]);
      }
    });

    test(`${name} - HTTP 400 is a non-retryable error result, not a throw`, async (t) => {
      const { s, p } = await setup(t, kind, stream);
      s.script({ status: 400, error: 'prompt is too long' });
      const r = await p.complete({ system: 's', messages: [user('hi')], tools: [] });
      assert.equal(r.stopReason, 'error');
      assert.equal(r.retryable, false);
      assert.match(r.error ?? '', new RegExp(`^${kind} \\(HTTP 400\\): .*prompt is too long`));
    });

    test(`${name} - 503, 429 and overloaded are retryable errors`, async (t) => {
      const { s, p } = await setup(t, kind, stream);
      s.setDown(true);
      const down = await p.complete({ system: 's', messages: [user('hi')], tools: [] });
      assert.deepEqual([down.stopReason, down.retryable], ['error', true]);
      s.setDown(false);
      s.script({ status: 429, error: 'slow down' }, { status: 529, error: 'Overloaded' });
      const limited = await p.complete({ system: 's', messages: [user('hi')], tools: [] });
      assert.deepEqual([limited.stopReason, limited.retryable], ['error', true]);
      const overloaded = await p.complete({ system: 's', messages: [user('hi')], tools: [] });
      assert.deepEqual([overloaded.stopReason, overloaded.retryable], ['error', true]);
    });

    test(`${name} - an aborted signal ends with stopReason aborted`, async (t) => {
      const { s, p } = await setup(t, kind, stream);
      s.script({ text: 'never seen' });
      const ac = new AbortController();
      ac.abort();
      const r = await p.complete({ system: 's', messages: [user('hi')], tools: [], signal: ac.signal });
      assert.equal(r.stopReason, 'aborted');
    });
  }

  test(`${kind} provider - an unreachable server is a retryable error`, async () => {
    const port = await freePort();
    const opts = { model: 'm', stream: true, maxRetries: 0, baseURL: `http://127.0.0.1:${port}` };
    const p = kind === 'anthropic' ? new AnthropicProvider(opts) : new OpenAIProvider(opts);
    const r = await p.complete({ system: 's', messages: [user('hi')], tools: [] });
    assert.equal(r.stopReason, 'error');
    assert.equal(r.retryable, true);
  });
}

test('providers - tool arguments that are not valid JSON stay a raw string for the loop to report', () => {
  assert.deepEqual(parseArguments('{"command":"ls"}'), { command: 'ls' });
  assert.deepEqual(parseArguments(''), {});
  assert.deepEqual(parseArguments(undefined), {});
  assert.equal(parseArguments('{"command": "ls"'), '{"command": "ls"');
});

test('providerFor - parses provider/model, keeping slashes and colons in the model name', async () => {
  assert.deepEqual(parseModel('openai/gpt-oss:20b'), { ok: true, value: { provider: 'openai', model: 'gpt-oss:20b' } });
  assert.deepEqual(parseModel('openai/meta-llama/Llama-3.1-8B:free'), { ok: true, value: { provider: 'openai', model: 'meta-llama/Llama-3.1-8B:free' } });
  assert.deepEqual(parseModel('anthropic/claude-sonnet-4-5'), { ok: true, value: { provider: 'anthropic', model: 'claude-sonnet-4-5' } });
  for (const bad of [undefined, '', 'gpt-4o', 'google/gemini', 'openai/', 'anthropic']) {
    const r = parseModel(bad);
    assert.equal(r.ok, false, String(bad));
    assert.match(r.ok ? '' : r.reason, /HAKO_MODEL/);
  }
  assert.ok((await providerFor('anthropic/x')) instanceof AnthropicProvider);
  assert.ok((await providerFor('openai/gpt-oss:20b')) instanceof OpenAIProvider);
  await assert.rejects(providerFor('nope'), /HAKO_MODEL is "nope"/);
});

test('providerFor - loads only the configured provider\'s module and no package: the agent needs node: and its own files only', () => {
  // A fresh process records every module it loads; the agent's cold start pays for each.
  const index = new URL('../../agent/providers/index.ts', import.meta.url).href;
  const loaded = (model: string): string[] => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });
      const { providerFor } = await import(${JSON.stringify(index)});
      await providerFor(${JSON.stringify(model)});
      console.log(JSON.stringify(seen));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    return JSON.parse(out) as string[];
  };
  for (const [model, own, other] of [['openai/gpt-oss:20b', 'openai.ts', 'anthropic.ts'], ['anthropic/claude-sonnet-4-5', 'anthropic.ts', 'openai.ts']] as const) {
    const seen = loaded(model);
    assert.ok(seen.some((u) => u.endsWith(`/agent/providers/${own}`)), `${own} is loaded for ${model}`);
    assert.ok(!seen.some((u) => u.endsWith(`/agent/providers/${other}`)), `${other} is not loaded for ${model}`);
    assert.deepEqual(seen.filter((u) => u.includes('/node_modules/')), [], `no package is loaded for ${model}`);
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
