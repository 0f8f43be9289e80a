// Conformance suite for the scripted model server: the official OpenAI and Anthropic SDKs must
// accept every reply it produces, streamed or not, exactly as they accept the real APIs'.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startModelServer } from '../support/model-server.ts';
import type { ModelServer, RecordedRequest, ScriptedTurn } from '../support/model-server.ts';

async function start(
  t: TestContext,
  opts?: { fallback?: (req: RecordedRequest) => ScriptedTurn },
): Promise<{ s: ModelServer; openai: OpenAI; anthropic: Anthropic }> {
  const s = await startModelServer(opts);
  t.after(() => s.close());
  // Retries would hide error turns behind the next scripted turn and add seconds of backoff.
  const openai = new OpenAI({ apiKey: 'test', baseURL: s.openaiBaseURL, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'test', baseURL: s.anthropicBaseURL, maxRetries: 0 });
  return { s, openai, anthropic };
}

const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};
const anthropicWeather = {
  name: 'get_weather',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } },
};

// --- OpenAI ------------------------------------------------------------------------------

test('model server - openai non-streaming text is a chat.completion echoing the model', async (t) => {
  const { s, openai } = await start(t);
  s.script({ text: 'hello there' });
  const res = await openai.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, 'gpt-test');
  assert.equal(res.choices[0]?.message.content, 'hello there');
  assert.equal(res.choices[0]?.finish_reason, 'stop');
  assert.ok((res.usage?.total_tokens ?? 0) > 0);
});

test('model server - openai streaming text arrives in several deltas and ends with usage and [DONE]', async (t) => {
  const { s, openai } = await start(t);
  s.script({ text: 'the quick brown fox' });
  const stream = await openai.chat.completions.create({
    model: 'gpt-test',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const pieces: string[] = [];
  let finish: string | null | undefined;
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (choice?.delta.content) pieces.push(choice.delta.content);
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(pieces.join(''), 'the quick brown fox');
  assert.ok(pieces.length > 1, `expected several content deltas, got ${pieces.length}`);
  assert.equal(finish, 'stop');
  assert.ok((usage?.completion_tokens ?? 0) > 0);
  assert.equal(s.requests[0]?.stream, true);
});

test('model server - openai non-streaming tool call has a JSON-string arguments the SDK can parse', async (t) => {
  const { s, openai } = await start(t);
  s.script({ toolCalls: [{ name: 'get_weather', args: { city: 'Kyoto' } }] });
  const res = await openai.chat.completions.create({
    model: 'gpt-test',
    messages: [{ role: 'user', content: 'weather?' }],
    tools: [weather],
  });
  const choice = res.choices[0];
  assert.equal(choice?.finish_reason, 'tool_calls');
  assert.equal(choice?.message.content, null);
  const call = choice?.message.tool_calls?.[0];
  assert.ok(call?.type === 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Kyoto' });
});

test('model server - openai streaming tool call arrives as deltas the SDK assembles', async (t) => {
  const { s, openai } = await start(t);
  const turn: ScriptedTurn = {
    text: 'checking',
    toolCalls: [
      { name: 'get_weather', args: { city: 'Kyoto', days: 3 }, id: 'call_fixed' },
      { name: 'get_weather', args: { city: 'Osaka' } },
    ],
  };
  s.script(turn, turn);

  // Raw chunks: the arguments of each call are split over several deltas keyed by index.
  const raw = await openai.chat.completions.create({
    model: 'gpt-test',
    messages: [{ role: 'user', content: 'weather?' }],
    tools: [weather],
    stream: true,
  });
  const argPieces = new Map<number, string[]>();
  for await (const chunk of raw) {
    for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
      argPieces.set(d.index, [...(argPieces.get(d.index) ?? []), d.function?.arguments ?? '']);
    }
  }
  assert.ok((argPieces.get(0)?.length ?? 0) > 2, 'arguments of call 0 should arrive in several pieces');
  assert.deepEqual(JSON.parse(argPieces.get(1)?.join('') ?? ''), { city: 'Osaka' });

  // The SDK's stream helper folds the same deltas into a complete message.
  const final = await openai.chat.completions
    .stream({ model: 'gpt-test', messages: [{ role: 'user', content: 'weather?' }], tools: [weather] })
    .finalChatCompletion();
  const message = final.choices[0]?.message;
  assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
  assert.equal(message?.content, 'checking');
  const calls = message?.tool_calls ?? [];
  assert.equal(calls.length, 2);
  const [first, second] = calls;
  assert.ok(first?.type === 'function' && second?.type === 'function');
  assert.equal(first.id, 'call_fixed');
  assert.equal(first.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(first.function.arguments), { city: 'Kyoto', days: 3 });
  assert.deepEqual(JSON.parse(second.function.arguments), { city: 'Osaka' });
});

test('model server - openai function turn decides from the recorded request', async (t) => {
  const { s, openai } = await start(t);
  s.script((req) => ({ text: `saw ${req.json.messages.length} messages from ${req.provider}` }));
  const res = await openai.chat.completions.create({
    model: 'gpt-test',
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
    ],
  });
  assert.equal(res.choices[0]?.message.content, 'saw 2 messages from openai');
});

test('model server - openai default turn echoes the last user text, string or parts, and answers tool results with done', async (t) => {
  const { openai } = await start(t);
  const text = async (messages: OpenAI.ChatCompletionMessageParam[]): Promise<string | null | undefined> =>
    (await openai.chat.completions.create({ model: 'gpt-test', messages })).choices[0]?.message.content;

  assert.equal(await text([{ role: 'user', content: 'first' }, { role: 'assistant', content: 'x' }, { role: 'user', content: 'second' }]), 'echo: second');
  assert.equal(await text([{ role: 'user', content: [{ type: 'text', text: 'from parts' }] }]), 'echo: from parts');
  const afterTool: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
  ];
  assert.equal(await text(afterTool), 'done');
});

test('model server - the fallback option replaces the echo once the script is empty', async (t) => {
  const { s, openai } = await start(t, { fallback: () => ({ text: 'fallback' }) });
  s.script({ text: 'scripted' });
  const ask = async (): Promise<string | null | undefined> =>
    (await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).choices[0]?.message.content;
  assert.equal(await ask(), 'scripted');
  assert.equal(await ask(), 'fallback');
});

test('model server - openai error turn surfaces as an APIError with status and error body', async (t) => {
  const { s, openai } = await start(t);
  s.script({ status: 429, error: 'slow down' }, { text: 'recovered' });
  const ask = () => openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(ask(), (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 429);
    assert.match(err.message, /slow down/);
    assert.equal(err.code, 'rate_limit_exceeded');
    return true;
  });
  assert.equal((await ask()).choices[0]?.message.content, 'recovered');
});

test('model server - openai setDown(true) answers 503 without consuming the script', async (t) => {
  const { s, openai } = await start(t);
  s.script({ text: 'after outage' });
  s.setDown(true);
  const ask = () => openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(ask(), (err: unknown) => err instanceof OpenAI.APIError && err.status === 503);
  await assert.rejects(openai.models.list(), (err: unknown) => err instanceof OpenAI.APIError && err.status === 503);
  s.setDown(false);
  assert.equal((await ask()).choices[0]?.message.content, 'after outage');
  assert.equal(s.requests.length, 3);
});

test('model server - openai requests are recorded with the bearer token and raw body', async (t) => {
  const { s, openai } = await start(t);
  const models = await openai.models.list();
  assert.equal(models.data[0]?.id, 'test-model');
  await openai.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
  const [list, chat] = s.requests;
  assert.equal(list?.method, 'GET');
  assert.equal(list?.path, '/v1/models');
  assert.equal(chat?.provider, 'openai');
  assert.equal(chat?.method, 'POST');
  assert.equal(chat?.path, '/v1/chat/completions');
  assert.equal(chat?.headers['authorization'], 'Bearer test');
  assert.equal(chat?.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(chat?.body ?? ''), chat?.json);
  assert.equal(chat?.json.model, 'gpt-test');
  assert.equal(chat?.stream, false);
});

// --- Anthropic ---------------------------------------------------------------------------

test('model server - anthropic non-streaming text is a message with end_turn', async (t) => {
  const { s, anthropic } = await start(t);
  s.script({ text: 'hello there' });
  const msg = await anthropic.messages.create({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, 'claude-test');
  assert.deepEqual(msg.content.map((b) => (b.type === 'text' ? b.text : b.type)), ['hello there']);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
});

test('model server - anthropic streaming text arrives as text deltas the SDK assembles', async (t) => {
  const { s, anthropic } = await start(t);
  s.script({ text: 'the quick brown fox' });
  const stream = anthropic.messages.stream({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
  const pieces: string[] = [];
  stream.on('text', (delta) => pieces.push(delta));
  const msg = await stream.finalMessage();
  assert.ok(pieces.length > 1, `expected several text deltas, got ${pieces.length}`);
  assert.equal(pieces.join(''), 'the quick brown fox');
  assert.deepEqual(msg.content.map((b) => (b.type === 'text' ? b.text : b.type)), ['the quick brown fox']);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.ok(msg.usage.output_tokens > 0);
  assert.equal(s.requests[0]?.stream, true);
});

test('model server - anthropic non-streaming tool call is a tool_use block with parsed input', async (t) => {
  const { s, anthropic } = await start(t);
  s.script({ text: 'let me check', toolCalls: [{ name: 'get_weather', args: { city: 'Kyoto' } }] });
  const msg = await anthropic.messages.create({
    model: 'claude-test',
    max_tokens: 100,
    tools: [anthropicWeather],
    messages: [{ role: 'user', content: 'weather?' }],
  });
  assert.equal(msg.stop_reason, 'tool_use');
  const [text, use] = msg.content;
  assert.ok(text?.type === 'text' && use?.type === 'tool_use');
  assert.equal(text.text, 'let me check');
  assert.match(use.id, /^toolu_/);
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Kyoto' });
});

test('model server - anthropic streaming tool call arrives as input_json deltas the SDK assembles', async (t) => {
  const { s, anthropic } = await start(t);
  s.script({ toolCalls: [{ name: 'get_weather', args: { city: 'Kyoto', days: 3 }, id: 'toolu_fixed' }, { name: 'get_weather', args: { city: 'Osaka' } }] });
  const stream = anthropic.messages.stream({
    model: 'claude-test',
    max_tokens: 100,
    tools: [anthropicWeather],
    messages: [{ role: 'user', content: 'weather?' }],
  });
  const partials: string[] = [];
  const events: string[] = [];
  stream.on('streamEvent', (event) => {
    events.push(event.type);
    if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') partials.push(event.delta.partial_json);
  });
  const msg = await stream.finalMessage();
  assert.ok(partials.length > 2, `expected several input_json deltas, got ${partials.length}`);
  assert.deepEqual([events[0], events.at(-1)], ['message_start', 'message_stop']);
  assert.equal(msg.stop_reason, 'tool_use');
  const uses = msg.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(
    uses.map((u) => [u.id, u.name, u.input]),
    [
      ['toolu_fixed', 'get_weather', { city: 'Kyoto', days: 3 }],
      [uses[1]?.id, 'get_weather', { city: 'Osaka' }],
    ],
  );
  assert.match(uses[1]?.id ?? '', /^toolu_/);
});

test('model server - anthropic function turn decides from the recorded request', async (t) => {
  const { s, anthropic } = await start(t);
  s.script((req) => (req.json.tools ? { toolCalls: [{ name: req.json.tools[0].name, args: {} }] } : { text: 'no tools' }));
  const msg = await anthropic.messages.create({
    model: 'claude-test',
    max_tokens: 100,
    tools: [anthropicWeather],
    messages: [{ role: 'user', content: 'weather?' }],
  });
  assert.equal(msg.content[0]?.type === 'tool_use' && msg.content[0].name, 'get_weather');
});

test('model server - anthropic default turn echoes user text blocks and answers bare tool results with done', async (t) => {
  const { anthropic } = await start(t);
  const reply = async (messages: Anthropic.MessageParam[]): Promise<string | undefined> => {
    const msg = await anthropic.messages.create({ model: 'claude-test', max_tokens: 100, messages });
    return msg.content[0]?.type === 'text' ? msg.content[0].text : undefined;
  };
  assert.equal(await reply([{ role: 'user', content: 'plain' }]), 'echo: plain');
  assert.equal(
    await reply([{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'x' }, { type: 'text', text: 'and this' }] }]),
    'echo: and this',
  );
  assert.equal(
    await reply([
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] },
    ]),
    'done',
  );
});

test('model server - anthropic error turn surfaces as an APIError with the anthropic error shape', async (t) => {
  const { s, anthropic } = await start(t);
  s.script({ status: 400, error: 'max_tokens too large' });
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => {
      assert.ok(err instanceof Anthropic.APIError);
      assert.equal(err.status, 400);
      assert.match(err.message, /max_tokens too large/);
      assert.deepEqual(err.error, { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens too large' } });
      return true;
    },
  );
});

test('model server - anthropic error turn rejects a streaming request before any event', async (t) => {
  const { s, anthropic } = await start(t);
  s.script({ status: 529, error: 'overloaded' });
  const stream = anthropic.messages.stream({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(stream.finalMessage(), (err: unknown) => err instanceof Anthropic.APIError && err.status === 529);
});

test('model server - anthropic setDown(true) answers 503 to every request', async (t) => {
  const { s, anthropic } = await start(t);
  s.setDown(true);
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof Anthropic.APIError && err.status === 503,
  );
  await assert.rejects(anthropic.models.list(), (err: unknown) => err instanceof Anthropic.APIError && err.status === 503);
  assert.equal(s.requests.length, 2);
  assert.ok(s.requests.every((r) => r.provider === 'anthropic'));
});

test('model server - anthropic requests are recorded with the SDK auth header and anthropic-version', async (t) => {
  const { s, anthropic } = await start(t);
  const models = await anthropic.models.list();
  assert.equal(models.data[0]?.id, 'test-model');
  await anthropic.messages.create({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
  const [list, msg] = s.requests;
  assert.equal(list?.provider, 'anthropic');
  assert.equal(list?.path.split('?')[0], '/v1/models');
  assert.equal(msg?.path, '/v1/messages');
  // @anthropic-ai/sdk 1.x sends `apiKey` as a bearer token, not as x-api-key.
  assert.equal(msg?.headers['authorization'], 'Bearer test');
  assert.equal(msg?.headers['x-api-key'], undefined);
  assert.ok(msg?.headers['anthropic-version']);
  assert.equal(msg?.json.max_tokens, 100);
});

test('model server - anthropic requests with a hand-set x-api-key are recorded with it', async (t) => {
  const { s } = await start(t);
  const client = new Anthropic({
    baseURL: s.anthropicBaseURL,
    maxRetries: 0,
    defaultHeaders: { 'x-api-key': 'test', authorization: null },
  });
  await client.messages.create({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(s.requests[0]?.headers['x-api-key'], 'test');
  assert.equal(s.requests[0]?.headers['authorization'], undefined);
});

// --- Protocol edges ----------------------------------------------------------------------

test('model server - malformed JSON gets a 400 in the provider error shape and is still recorded', async (t) => {
  const { s } = await start(t);
  s.script({ text: 'kept for later' });
  const post = (path: string) => fetch(s.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  const o = await post('/v1/chat/completions');
  assert.equal(o.status, 400);
  assert.equal((await o.json()).error.type, 'invalid_request_error');
  const a = await post('/v1/messages');
  assert.equal(a.status, 400);
  assert.equal((await a.json()).type, 'error');
  assert.deepEqual(s.requests.map((r) => [r.provider, r.body, r.json]), [['openai', '{nope', undefined], ['anthropic', '{nope', undefined]]);
});

test('model server - unknown paths get 404', async (t) => {
  const { s } = await start(t);
  const res = await fetch(`${s.url}/v1/embeddings`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 404);
  assert.match((await res.json()).error.message, /no route for POST \/v1\/embeddings/);
  assert.equal(s.requests.length, 1);
});

test('model server - a scripted turn of the wrong shape is refused when scripted', async (t) => {
  const { s } = await start(t);
  assert.throws(() => s.script({ status: 200, error: 'not an error' }), /scripted turn must be/);
  assert.throws(() => s.script({} as ScriptedTurn), /scripted turn must be/);
});

test('model server - a throwing function turn becomes a 500 the client sees', async (t) => {
  const { s, openai } = await start(t);
  s.script(() => {
    throw new Error('bad test script');
  });
  await assert.rejects(
    openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof OpenAI.APIError && err.status === 500 && /bad test script/.test(err.message),
  );
});

test('model server - waitForRequests resolves on arrival and rejects with a count on timeout', async (t) => {
  const { s, openai } = await start(t);
  const waiting = s.waitForRequests(2);
  await openai.models.list();
  await openai.models.list();
  await waiting;
  await assert.rejects(s.waitForRequests(3, 20), /expected 3 requests within 20ms, got 2/);
});

test('model server - a paused stream writes the text before `at`, holds the rest until `until` settles, and is a whole reply after; onTextWritten is told each piece', async (t) => {
  const written: string[] = [];
  const s = await startModelServer({ onTextWritten: (piece) => written.push(piece) });
  t.after(() => s.close());
  const openai = new OpenAI({ apiKey: 'test', baseURL: s.openaiBaseURL, maxRetries: 0 });
  let release!: () => void;
  s.script({ text: 'held here, then the rest', pause: { at: 'held here'.length, until: new Promise<void>((r) => { release = r; }) } });
  const stream = await openai.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], stream: true });
  let text = '';
  let heldAt: string | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    // The model holds the rest: the client can only get this far before the release.
    if (text === 'held here') {
      heldAt = written.join('');
      release();
    }
  }
  assert.equal(heldAt, 'held here', 'the stream never stopped where it was held');
  assert.equal(text, 'held here, then the rest');
  assert.equal(written.join(''), 'held here, then the rest');
});

test('model server - a pause outside the text or without a promise is refused when scripted', async (t) => {
  const { s } = await start(t);
  assert.throws(() => s.script({ text: 'short', pause: { at: 6, until: Promise.resolve() } }), /pause: \{ at: 0…text length, until: a promise \}/);
  assert.throws(() => s.script({ text: 'short', pause: { at: 1, until: 'later' as never } }), /scripted turn must be/);
});
