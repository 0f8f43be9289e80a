import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { modelTarget, startGroupProxy, upstreamHeaders, type ModelDecision, type ProxyOptions } from '../../src/core/proxy.ts';
import { silentLogger } from '../../src/core/log.ts';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { rawRequest, startRecordingServer } from '../support/raw-http.ts';

const KEY = 'sk-real-key-never-in-container';

test('proxy headers - container credentials are dropped and the real key added per provider', () => {
  const incoming = { authorization: 'Bearer hako-placeholder-key', 'x-api-key': 'hako-placeholder-key', connection: 'keep-alive', 'content-type': 'application/json' };
  const a = upstreamHeaders(incoming, 'anthropic', { apiKey: KEY, baseURL: 'https://api.anthropic.com', keyOptional: false }, 'api.anthropic.com');
  assert.equal(a['x-api-key'], KEY);
  assert.equal(a.authorization, undefined);
  assert.equal(a.connection, undefined);
  const o = upstreamHeaders(incoming, 'openai', { apiKey: KEY, baseURL: 'https://api.openai.com/v1', keyOptional: false }, 'api.openai.com');
  assert.equal(o.authorization, `Bearer ${KEY}`);
  assert.equal(o['x-api-key'], undefined);
  const local = upstreamHeaders(incoming, 'openai', { apiKey: undefined, baseURL: 'http://127.0.0.1:11434/v1', keyOptional: true }, '127.0.0.1:11434');
  assert.equal(local.authorization, undefined, 'no key configured: no credential at all, not the placeholder');
});

test('model route - the upstream URL is the configured origin plus a fixed path; nothing else is a route', () => {
  const ok = (p: ReturnType<typeof modelTarget>) => (p.ok ? p.url.href : `refused: ${p.reason}`);
  assert.equal(ok(modelTarget('anthropic', 'https://api.anthropic.com', 'POST', '/anthropic/v1/messages')), 'https://api.anthropic.com/v1/messages');
  assert.equal(ok(modelTarget('openai', 'https://api.openai.com/v1', 'POST', '/openai/chat/completions')), 'https://api.openai.com/v1/chat/completions');
  assert.equal(ok(modelTarget('openai', 'http://127.0.0.1:11434/v1/', 'GET', '/openai/models')), 'http://127.0.0.1:11434/v1/models');
  assert.equal(ok(modelTarget('anthropic', 'https://gw.example.com/llm/anthropic', 'POST', '/anthropic/v1/messages')), 'https://gw.example.com/llm/anthropic/v1/messages');
  for (const [method, target] of [
    ['POST', '/anthropic//attacker.example/x'], ['POST', '/anthropic/\\attacker.example/x'], ['POST', '/anthropic/v1/messages/batches'],
    ['DELETE', '/anthropic/v1/files/f1'], ['GET', '/anthropic/v1/messages'], ['POST', '/anthropic/v1/messages?x=//evil'],
    ['POST', '/anthropic/v1/messages/'], ['POST', '/anthropic/v1/../v1/messages'], ['POST', '/anthropic/v1%2fmessages'],
    ['POST', '/anthropic'], ['POST', '/anthropic//[x'], ['POST', '/other/v1/messages'], ['POST', 'http://evil/anthropic/v1/messages'],
  ]) {
    const r = modelTarget('anthropic', 'https://api.anthropic.com', method!, target!);
    assert.equal(r.ok, false, `${method} ${target} is refused`);
  }
  const other = modelTarget('openai', 'https://api.openai.com/v1', 'POST', '/anthropic/v1/messages');
  assert.ok(!other.ok && /served by openai; the anthropic route is closed/.test(other.reason));
});

interface Started { socketPath: string; decisions: ModelDecision[]; close(): Promise<void> }

async function startProxy(model: Pick<ModelServer, 'openaiBaseURL' | 'anthropicBaseURL'>, overrides: Partial<ProxyOptions> = {}): Promise<Started> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-proxy-'));
  const socketPath = path.join(dir, 'proxy.sock');
  const decisions: ModelDecision[] = [];
  const proxy = await startGroupProxy({
    group: 'main', socketPath, log: silentLogger,
    provider: 'openai', providerConfig: { apiKey: KEY, baseURL: model.openaiBaseURL, keyOptional: false },
    onModelDecision: (d) => decisions.push(d),
    ...overrides,
  });
  return { socketPath, decisions, close: async () => { await proxy.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

function request(socketPath: string, p: string, body: string, method = 'POST'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method, headers: { 'content-type': 'application/json', authorization: 'Bearer hako-placeholder-key' } }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('proxy - forwards POST /openai/chat/completions to the upstream base URL with the real key, over the group socket', async (t) => {
  const model = await startModelServer();
  const p = await startProxy(model);
  t.after(async () => { await p.close(); await model.close(); });
  assert.equal(fs.statSync(p.socketPath).mode & 0o777, 0o600);
  model.script({ text: 'hello through the proxy' });
  const res = await request(p.socketPath, '/openai/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(res.status, 200);
  assert.match(res.body, /hello through the proxy/);
  assert.equal(model.requests.at(-1)?.path, '/v1/chat/completions');
  assert.equal(model.requests.at(-1)?.headers.authorization, `Bearer ${KEY}`);
  const unknown = await request(p.socketPath, '/elsewhere', '{}');
  assert.equal(unknown.status, 404);
});

test('proxy - a provider without a key is a 503 that says which variable to set', async (t) => {
  const model = await startModelServer();
  const p = await startProxy(model, { provider: 'anthropic', providerConfig: { apiKey: undefined, baseURL: model.anthropicBaseURL, keyOptional: false } });
  t.after(async () => { await p.close(); await model.close(); });
  const noKey = await request(p.socketPath, '/anthropic/v1/messages', '{}');
  assert.equal(noKey.status, 503);
  assert.match(noKey.body, /no API key for anthropic: the owner must set ANTHROPIC_API_KEY/);
  assert.equal(model.requests.length, 0);
});

test('proxy - an unreachable upstream is a 502 that names the upstream but not the key', async (t) => {
  const p = await startProxy({ openaiBaseURL: 'http://127.0.0.1:1/v1', anthropicBaseURL: 'http://127.0.0.1:1' });
  t.after(() => p.close());
  const res = await request(p.socketPath, '/openai/chat/completions', '{}');
  assert.equal(res.status, 502);
  assert.match(res.body, /127\.0\.0\.1:1/);
  assert.ok(!res.body.includes(KEY));
});

test('regression: the model key is never sent to a host named in the path (//host, backslashes, encoded dots)', async (t) => {
  const model = await startModelServer();
  const attacker = await startRecordingServer();
  const p = await startProxy(model);
  t.after(async () => { await p.close(); await model.close(); await attacker.close(); });
  const to = `127.0.0.1:${attacker.port}`;
  for (const target of [`/openai//${to}/x`, `/openai/\\\\${to}/x`, `/openai/\\/${to}/x`, `/openai//${to}`, `/openai/..//${to}/x`, `/openai/%2e%2e//${to}/x`, `/openai/chat/completions/..//${to}/x`]) {
    const res = await rawRequest(p.socketPath, `POST ${target} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer hako-placeholder-key\r\ncontent-length: 2\r\n\r\n{}`);
    assert.match(res, /^HTTP\/1\.1 (404|400)/, `${target}: ${res.slice(0, 80)}`);
    assert.ok(!res.includes(KEY));
  }
  assert.deepEqual(attacker.seen, [], 'nothing reached the attacker');
  assert.equal(model.requests.length, 0, 'nor the model upstream');
});

test('model route - only the group\'s own provider and the calls a model turn needs are reachable', async (t) => {
  const model = await startModelServer();
  const p = await startProxy(model);
  t.after(async () => { await p.close(); await model.close(); });
  for (const [method, target] of [['DELETE', '/openai/files/file-1'], ['POST', '/openai/files'], ['POST', '/openai/batches'], ['GET', '/openai/chat/completions'], ['POST', '/anthropic/v1/messages'], ['POST', '/openai/chat/completions?api-version=x']]) {
    const res = await request(p.socketPath, target!, '{}', method);
    assert.equal(res.status, 404, `${method} ${target}`);
    assert.match(res.body, /hako refused/);
  }
  assert.equal(model.requests.length, 0, 'the upstream saw none of them');
  const list = await request(p.socketPath, '/openai/models', '', 'GET');
  assert.notEqual(list.status, 404, 'listing models is allowed');
  assert.equal(model.requests.at(-1)?.path, '/v1/models');
});

test('model route - every decision is reported once before anything connects; a failing report refuses the call', async (t) => {
  const model = await startModelServer();
  const p = await startProxy(model);
  t.after(async () => { await p.close(); await model.close(); });
  model.script({ text: 'ok' });
  await request(p.socketPath, '/openai/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
  await request(p.socketPath, '/openai//evil.example/x', '{}');
  assert.deepEqual(p.decisions.map((d) => [d.allowed, d.method, d.path, d.host]), [
    [true, 'POST', '/openai/chat/completions', '127.0.0.1'],
    [false, 'POST', '/openai//evil.example/x', '127.0.0.1'],
  ]);
  assert.ok(!JSON.stringify(p.decisions).includes(KEY));

  const strict = await startProxy(model, { onModelDecision: () => { throw new Error('audit down'); } });
  t.after(() => strict.close());
  const before = model.requests.length;
  const res = await request(strict.socketPath, '/openai/chat/completions', '{}');
  assert.equal(res.status, 500);
  assert.equal(model.requests.length, before, 'no model call without a record');
});

test('regression: a malformed request line (GET /anthropic//[x) is answered, and the proxy keeps serving', async (t) => {
  const model = await startModelServer();
  const p = await startProxy(model, { provider: 'anthropic', providerConfig: { apiKey: KEY, baseURL: model.anthropicBaseURL, keyOptional: false } });
  t.after(async () => { await p.close(); await model.close(); });
  for (const line of ['GET /anthropic//[x HTTP/1.1', 'GET /openai//[x HTTP/1.1', 'GET http://[x/ HTTP/1.1', 'GET //[::1 HTTP/1.1', 'CONNECT [x:1 HTTP/1.1', 'GET /anthropic/%ff%fe HTTP/1.1']) {
    const res = await rawRequest(p.socketPath, `${line}\r\nhost: x\r\n\r\n`);
    assert.match(res, /^HTTP\/1\.1 [45]\d\d/, `${line} → ${res.slice(0, 60)}`);
  }
  model.script({ text: 'still here' });
  const res = await request(p.socketPath, '/anthropic/v1/messages', JSON.stringify({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(res.status, 200);
  assert.match(res.body, /still here/);
});
