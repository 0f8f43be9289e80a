// The agent's own model client (agent/providers/http.ts and the two stream folders): what
// reaches the proxy's socket, retries as the vendors' clients retry, aborts, the SSE rules,
// and vendor-shaped streams read the same by these clients and by the official SDKs.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { backoff, ConnectionError, HttpStatusError, postJson, serverSentEvents, serverWait } from '../../agent/providers/http.ts';
import { AnthropicProvider, AnthropicStream } from '../../agent/providers/anthropic.ts';
import { OpenAIProvider, OpenAIStream } from '../../agent/providers/openai.ts';
import type { Provider } from '../../agent/providers/provider.ts';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { startModelServer } from '../support/model-server.ts';

/** An HTTP server on a fresh Unix socket; returns the socket's path. */
async function socketServer(t: TestContext, handler: http.RequestListener): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-model-http-'));
  const socket = path.join(dir, 'proxy.sock');
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return socket;
}

/** An HTTP server on loopback TCP; returns its base URL. */
async function tcpServer(t: TestContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => resolve(body));
  });
}

async function events(chunks: string[]): Promise<{ event: string; data: string }[]> {
  const out: { event: string; data: string }[] = [];
  for await (const e of serverSentEvents(Readable.from(chunks.map((c) => Buffer.from(c))))) out.push(e);
  return out;
}

test('postJson - over a socket, only the path of the base URL is sent, whatever host it names, with the JSON body', async (t) => {
  let seen = { method: '', url: '', type: '', body: '' };
  const socket = await socketServer(t, async (req, res) => {
    seen = { method: req.method ?? '', url: req.url ?? '', type: req.headers['content-type'] ?? '', body: await readBody(req) };
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const res = await postJson({ baseURL: 'http://elsewhere.example:3128/openai/', socketPath: socket }, '/chat/completions', { authorization: 'Bearer x' }, '{"a":1}', { maxRetries: 0 });
  res.resume();
  assert.equal(res.statusCode, 200);
  assert.deepEqual(seen, { method: 'POST', url: '/openai/chat/completions', type: 'application/json', body: '{"a":1}' });
});

test('postJson - 429 with retry-after-ms is tried again after that wait; a 400 is not retried and keeps the API\'s message', async (t) => {
  let calls = 0;
  const base = await tcpServer(t, (req, res) => {
    calls++;
    req.resume();
    if (req.url === '/limited' && calls === 1) res.writeHead(429, { 'retry-after-ms': '20', 'content-type': 'application/json' }).end('{"error":{"message":"slow down"}}');
    else if (req.url === '/limited') res.writeHead(200).end('ok');
    else res.writeHead(400, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}');
  });
  const ok = await postJson({ baseURL: base }, '/limited', {}, '{}', { maxRetries: 2 });
  ok.resume();
  assert.deepEqual([ok.statusCode, calls], [200, 2]);
  calls = 0;
  await assert.rejects(postJson({ baseURL: base }, '/bad', {}, '{}', { maxRetries: 2 }), (err: unknown) =>
    err instanceof HttpStatusError && err.status === 400 && err.message === 'prompt is too long');
  assert.equal(calls, 1, 'a 400 is sent once');
});

test('postJson - x-should-retry: false stops retries of a 503; a socket nobody listens on is a ConnectionError after the retries', async (t) => {
  let calls = 0;
  const base = await tcpServer(t, (req, res) => {
    calls++;
    req.resume();
    res.writeHead(503, { 'x-should-retry': 'false' }).end('down for maintenance');
  });
  await assert.rejects(postJson({ baseURL: base }, '/x', {}, '{}', { maxRetries: 2 }), (err: unknown) =>
    err instanceof HttpStatusError && err.status === 503 && err.message === 'down for maintenance');
  assert.equal(calls, 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-model-http-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(postJson({ baseURL: 'http://127.0.0.1/openai', socketPath: path.join(dir, 'missing.sock') }, '/x', {}, '{}', { maxRetries: 0 }), ConnectionError);
});

test('postJson - an https: base URL without the proxy\'s socket is refused at once, never retried as an outage', async () => {
  const call = postJson({ baseURL: 'https://api.example.com/v1' }, '/chat/completions', {}, '{}', { maxRetries: 2 });
  // A retry would first wait 0.375–0.5 s on a timer: the answer must come before any timer.
  const first = await Promise.race([call.then(() => 'resolved', (err: unknown) => err), new Promise((r) => setImmediate(() => r('still waiting')))]);
  assert.ok(first instanceof Error && !(first instanceof ConnectionError), `expected a plain Error, got ${String(first)}`);
  assert.match(first.message, /^https: is not spoken here: the container reaches its model only through the host's proxy \(https:\/\/api\.example\.com\/v1\)$/);
});

test('postJson - the signal aborts a wait between retries at once', async (t) => {
  const base = await tcpServer(t, (req, res) => {
    req.resume();
    res.writeHead(503, { 'retry-after': '30' }).end();
  });
  const ctl = new AbortController();
  const pending = postJson({ baseURL: base }, '/x', {}, '{}', { maxRetries: 2, signal: ctl.signal });
  setTimeout(() => ctl.abort(new Error('stopped by the test')), 50);
  await assert.rejects(pending, /stopped by the test/);
});

test('retry waits - the server\'s retry-after (ms, seconds or a date) within 60 s, else 0.5 s doubling to 8 s with up to 25 % jitter', () => {
  const now = Date.parse('2026-11-30T12:00:00Z');
  assert.equal(serverWait({ 'retry-after-ms': '250' }, now), 250);
  assert.equal(serverWait({ 'retry-after': '2' }, now), 2000);
  assert.equal(serverWait({ 'retry-after': 'Mon, 30 Nov 2026 12:00:05 GMT' }, now), 5000);
  assert.equal(serverWait({ 'retry-after': '3600' }, now), undefined, 'an hour is not waited for in a turn');
  assert.equal(serverWait({ 'retry-after': 'soon' }, now), undefined);
  assert.equal(serverWait({}, now), undefined);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => backoff(n, 0)), [500, 1000, 2000, 4000, 8000, 8000]);
  assert.equal(backoff(0, 1), 375);
});

test('server-sent events - fields, comments, multi-line data, CRLF and CR line ends, and lines split across chunks', async () => {
  assert.deepEqual(await events([
    ': a comment\n',
    'event: message_start\ndata: {"a":',
    '1}\n\n',
    'data: line one\r\ndata: line two\r\n\r\n',
    'event:ping\rdata:{}\r',
    '\r',
    'data: after\n',
    '\nevent: lost\ndata: cut off',
  ]), [
    { event: 'message_start', data: '{"a":1}' },
    { event: 'message', data: 'line one\nline two' },
    { event: 'ping', data: '{}' },
    { event: 'message', data: 'after' },
  ]);
});

test('server-sent events - a multi-byte character split between chunks arrives whole', async () => {
  const bytes = Buffer.from('data: 箱\n\n');
  const out: string[] = [];
  for await (const e of serverSentEvents(Readable.from([bytes.subarray(0, 8), bytes.subarray(8)]))) out.push(e.data);
  assert.deepEqual(out, ['箱']);
});

// Streams in the vendors' documented shapes, with what a real server adds: keep-alive
// comments, a usage chunk, pings, a thinking block, tool arguments split mid-token.
const OPENAI_STREAM = [
  ': keep-alive\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me "},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"content":"look."},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read_file","arguments":""}}]},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"pa"}}]},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\\": \\"MEMORY.md\\"}"}}]},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"glob","arguments":"{\\"pattern\\":\\"*.md\\"}"}}]},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}\n\n',
  'data: [DONE]\n\n',
];

const ANTHROPIC_STREAM = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the file."}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"c2ln"}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
  'event: ping\ndata: {"type": "ping"}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me "}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"look."}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_a","name":"read_file","input":{}}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"pa"}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"th\\": \\"MEMORY.md\\"}"}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_b","name":"glob","input":{}}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\\"pattern\\":\\"*.md\\"}"}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":3}\n\n',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
];

/** A server that answers every POST with `chunks` as an event stream, a few bytes apart. */
async function streamServer(t: TestContext, chunks: string[]): Promise<string> {
  return tcpServer(t, async (req, res) => {
    await readBody(req);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    for (const c of chunks) {
      // Split inside lines too: a reader must not care where TCP cuts.
      res.write(c.slice(0, 7));
      await new Promise((r) => setImmediate(r));
      res.write(c.slice(7));
    }
    res.end();
  });
}

const EXPECTED_CALLS = (ids: [string, string]) => [
  { id: ids[0], name: 'read_file', args: { path: 'MEMORY.md' } },
  { id: ids[1], name: 'glob', args: { pattern: '*.md' } },
];

test('openai stream - our client and the official SDK read the same vendor-shaped stream to the same text and tool calls', async (t) => {
  const base = await streamServer(t, OPENAI_STREAM);
  const ours = await new OpenAIProvider({ model: 'gpt-oss:20b', stream: true, baseURL: base, maxRetries: 0 })
    .complete({ system: 's', messages: [{ role: 'user', text: 'read it' }], tools: TOOL_SPECS });
  assert.deepEqual(ours, { stopReason: 'tool_use', text: 'Let me look.', toolCalls: EXPECTED_CALLS(['call_a', 'call_b']) });

  const sdk = new OpenAI({ baseURL: base, apiKey: 'k', maxRetries: 0 });
  const stream = await sdk.chat.completions.create({ model: 'gpt-oss:20b', messages: [{ role: 'user', content: 'read it' }], stream: true });
  let text = '';
  const args = new Map<number, { id: string; name: string; args: string }>();
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    text += choice?.delta.content ?? '';
    for (const d of choice?.delta.tool_calls ?? []) {
      const c = args.get(d.index) ?? { id: '', name: '', args: '' };
      args.set(d.index, { id: d.id ?? c.id, name: c.name + (d.function?.name ?? ''), args: c.args + (d.function?.arguments ?? '') });
    }
  }
  assert.equal(text, ours.text);
  assert.deepEqual([...args.values()].map((c) => ({ id: c.id, name: c.name, args: JSON.parse(c.args) })), ours.toolCalls);
});

test('anthropic stream - our client and the official SDK read the same vendor-shaped stream to the same text and tool calls', async (t) => {
  const base = await streamServer(t, ANTHROPIC_STREAM);
  const ours = await new AnthropicProvider({ model: 'claude-sonnet-4-5', stream: true, baseURL: base, maxRetries: 0 })
    .complete({ system: 's', messages: [{ role: 'user', text: 'read it' }], tools: TOOL_SPECS });
  assert.deepEqual(ours, { stopReason: 'tool_use', text: 'Let me look.', toolCalls: EXPECTED_CALLS(['toolu_a', 'toolu_b']) });

  const sdk = new Anthropic({ baseURL: base, apiKey: 'k', maxRetries: 0 });
  const msg = await sdk.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'read it' }] }).finalMessage();
  const text = msg.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
  const calls = msg.content.flatMap((b) => (b.type === 'tool_use' ? [{ id: b.id, name: b.name, args: b.input }] : []));
  assert.equal(text, ours.text);
  assert.deepEqual(calls, ours.toolCalls);
  assert.equal(msg.stop_reason, 'tool_use');
});

test('stream folders - an error the stream reports mid-way is thrown; openai ignores whatever follows [DONE]', () => {
  const anthropic = new AnthropicStream();
  anthropic.push('{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}');
  assert.throws(() => anthropic.push('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'), /Overloaded/);
  const openai = new OpenAIStream();
  assert.throws(() => openai.push('{"error":{"message":"model crashed"}}'), /model crashed/);
  const done = new OpenAIStream();
  done.push('{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}');
  done.push('[DONE]');
  done.push('{"choices":[{"index":0,"delta":{"content":" and more"}}]}');
  assert.deepEqual(done.result(), { stopReason: 'stop', text: 'hi', toolCalls: [] });
});

test('providers - an overloaded event mid-stream is a retryable error result with the API\'s words', async (t) => {
  const base = await streamServer(t, [
    ANTHROPIC_STREAM[0]!,
    'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
  ]);
  const r = await new AnthropicProvider({ model: 'm', stream: true, baseURL: base, maxRetries: 0 })
    .complete({ system: 's', messages: [{ role: 'user', text: 'hi' }], tools: [] });
  assert.deepEqual(r, { stopReason: 'error', text: '', toolCalls: [], error: 'anthropic: Overloaded', retryable: true });
});

test('providers - a server that answers a streamed request with plain JSON is read as a whole reply', async (t) => {
  const base = await tcpServer(t, async (req, res) => {
    await readBody(req);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'whole' }, finish_reason: 'stop' }],
    }));
  });
  const r = await new OpenAIProvider({ model: 'm', stream: true, baseURL: base, maxRetries: 0 })
    .complete({ system: 's', messages: [{ role: 'user', text: 'hi' }], tools: [] });
  assert.deepEqual(r, { stopReason: 'stop', text: 'whole', toolCalls: [] });
});

test('providers - the signal aborts a stream mid-way: the result is aborted, not an error', async (t) => {
  const socket = await socketServer(t, async (req, res) => {
    await readBody(req);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(OPENAI_STREAM[1]!); // and never ends
  });
  const ctl = new AbortController();
  const p = new OpenAIProvider({ model: 'm', stream: true, socketPath: socket, maxRetries: 0 });
  const pending = p.complete({ system: 's', messages: [{ role: 'user', text: 'hi' }], tools: [], signal: ctl.signal });
  setTimeout(() => ctl.abort(), 50);
  const r = await pending;
  assert.equal(r.stopReason, 'aborted');
});

for (const kind of ['anthropic', 'openai'] as const) {
  test(`${kind} provider - through the proxy's socket it streams a tool call, then a text answer, on one kept-alive connection`, async (t) => {
    const model = await startModelServer();
    t.after(() => model.close());
    const upstream = new URL(model.url);
    // The proxy's place: maps /anthropic/… and /openai/… onto the scripted server's base paths.
    const base = new URL(kind === 'anthropic' ? model.anthropicBaseURL : model.openaiBaseURL).pathname.replace(/\/$/, '');
    const connections = new Set<unknown>();
    const socket = await socketServer(t, (req, res) => {
      connections.add(req.socket);
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, headers: req.headers, path: `${base}${req.url!.replace(/^\/(anthropic|openai)/, '')}` }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    const opts = { model: 'test-model', stream: true, maxRetries: 0, socketPath: socket };
    const p: Provider = kind === 'anthropic' ? new AnthropicProvider(opts) : new OpenAIProvider(opts);
    model.script({ toolCalls: [{ name: 'read_file', args: { path: 'MEMORY.md' } }] }, { text: 'all read' });
    const call = await p.complete({ system: 's', messages: [{ role: 'user', text: 'read it' }], tools: TOOL_SPECS });
    assert.equal(call.stopReason, 'tool_use');
    assert.deepEqual(call.toolCalls.map((c) => [c.name, c.args]), [['read_file', { path: 'MEMORY.md' }]]);
    const answer = await p.complete({ system: 's', messages: [{ role: 'user', text: 'and now?' }], tools: TOOL_SPECS });
    assert.deepEqual(answer, { stopReason: 'stop', text: 'all read', toolCalls: [] });
    assert.equal(model.requests.length, 2);
    assert.equal(connections.size, 1, 'the second request reused the first one\'s connection');
  });
}
