// The model SDKs' fetch straight to the group proxy's Unix socket (agent/proxy-fetch.ts):
// what reaches the socket, streamed bodies, aborts, bodiless answers, and both providers
// through it against the scripted model server behind a socket pass-through.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { socketFetch } from '../../agent/proxy-fetch.ts';
import { AnthropicProvider } from '../../agent/providers/anthropic.ts';
import { OpenAIProvider } from '../../agent/providers/openai.ts';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { startModelServer } from '../support/model-server.ts';

/** An HTTP server on a fresh Unix socket; returns the socket's path. */
async function socketServer(t: TestContext, handler: http.RequestListener): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-proxy-fetch-'));
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

test('socketFetch - sends the method, path, query, headers and body to the socket, whatever host the URL names', async (t) => {
  let seen: { method?: string; url?: string; host?: string; type?: string; body: string } = { body: '' };
  const socket = await socketServer(t, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      seen = { method: req.method, url: req.url, host: req.headers.host, type: req.headers['content-type'], body };
      res.writeHead(201, { 'x-answer': 'yes' }).end('made');
    });
  });
  const res = await socketFetch(socket)('http://elsewhere.example:3128/openai/chat/completions?x=1', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}',
  });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('x-answer'), 'yes');
  assert.equal(await res.text(), 'made');
  assert.deepEqual({ method: seen.method, url: seen.url, type: seen.type, body: seen.body }, { method: 'POST', url: '/openai/chat/completions?x=1', type: 'application/json', body: '{"a":1}' });
});

test('socketFetch - a body is readable as it streams, and the request signal aborts it mid-stream', async (t) => {
  const socket = await socketServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n'); // and never ends
  });
  const ctl = new AbortController();
  const res = await socketFetch(socket)('http://127.0.0.1/stream', { signal: ctl.signal });
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.equal(Buffer.from(first.value!).toString(), 'data: first\n\n');
  ctl.abort();
  await assert.rejects(reader.read(), 'an aborted request ends its body with an error');
});

test('socketFetch - an answer without a body (204) has a null body; a socket nobody listens on rejects', async (t) => {
  const socket = await socketServer(t, (_req, res) => { res.writeHead(204).end(); });
  const res = await socketFetch(socket)('http://127.0.0.1/none');
  assert.equal(res.status, 204);
  assert.equal(res.body, null);
  await assert.rejects(socketFetch(path.join(path.dirname(socket), 'missing.sock'))('http://127.0.0.1/'), /ENOENT/);
});

for (const kind of ['anthropic', 'openai'] as const) {
  test(`socketFetch - the ${kind} provider streams a tool call and a text answer through it`, async (t) => {
    const model = await startModelServer();
    t.after(() => model.close());
    const upstream = new URL(model.url);
    // The proxy's place: maps /anthropic/… and /openai/… onto the scripted server's base paths.
    const base = new URL(kind === 'anthropic' ? model.anthropicBaseURL : model.openaiBaseURL).pathname.replace(/\/$/, '');
    const socket = await socketServer(t, (req, res) => {
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, headers: req.headers, path: `${base}${req.url!.replace(/^\/(anthropic|openai)/, '')}` }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    const opts = { model: 'test-model', stream: true, maxRetries: 0, baseURL: `http://127.0.0.1:3128/${kind}`, fetch: socketFetch(socket) };
    const p = kind === 'anthropic' ? new AnthropicProvider(opts) : new OpenAIProvider(opts);
    model.script({ toolCalls: [{ name: 'read_file', args: { path: 'MEMORY.md' } }] }, { text: 'all read' });
    const call = await p.complete({ system: 's', messages: [{ role: 'user', text: 'read it' }], tools: TOOL_SPECS });
    assert.equal(call.stopReason, 'tool_use');
    assert.deepEqual(call.toolCalls.map((c) => [c.name, c.args]), [['read_file', { path: 'MEMORY.md' }]]);
    const answer = await p.complete({ system: 's', messages: [{ role: 'user', text: 'and now?' }], tools: TOOL_SPECS });
    assert.deepEqual(answer, { stopReason: 'stop', text: 'all read', toolCalls: [] });
    assert.equal(model.requests.length, 2);
  });
}
