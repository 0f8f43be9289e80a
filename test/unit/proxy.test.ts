import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startGroupProxy, upstreamHeaders } from '../../src/core/proxy.ts';
import { silentLogger } from '../../src/core/log.ts';
import { startModelServer } from '../support/model-server.ts';

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

function request(socketPath: string, p: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer hako-placeholder-key' } }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('proxy - forwards /openai/* to the upstream base URL with the real key, over the group socket', async (t) => {
  const model = await startModelServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-proxy-'));
  const socketPath = path.join(dir, 'proxy.sock');
  const proxy = await startGroupProxy({
    group: 'main', socketPath, log: silentLogger,
    providers: {
      openai: { apiKey: KEY, baseURL: model.openaiBaseURL, keyOptional: false },
      anthropic: { apiKey: undefined, baseURL: model.anthropicBaseURL, keyOptional: false },
    },
  });
  t.after(async () => { await proxy.close(); await model.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  model.script({ text: 'hello through the proxy' });
  const res = await request(socketPath, '/openai/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(res.status, 200);
  assert.match(res.body, /hello through the proxy/);
  assert.equal(model.requests.at(-1)?.path, '/v1/chat/completions');
  assert.equal(model.requests.at(-1)?.headers.authorization, `Bearer ${KEY}`);

  const noKey = await request(socketPath, '/anthropic/v1/messages', '{}');
  assert.equal(noKey.status, 503);
  assert.match(noKey.body, /no API key for anthropic/);
  const unknown = await request(socketPath, '/elsewhere', '{}');
  assert.equal(unknown.status, 404);
});

test('proxy - an unreachable upstream is a 502 that names the upstream but not the key', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-proxy-'));
  const socketPath = path.join(dir, 'proxy.sock');
  const proxy = await startGroupProxy({
    group: 'main', socketPath, log: silentLogger,
    providers: {
      openai: { apiKey: KEY, baseURL: 'http://127.0.0.1:1/v1', keyOptional: false },
      anthropic: { apiKey: KEY, baseURL: 'http://127.0.0.1:1', keyOptional: false },
    },
  });
  t.after(async () => { await proxy.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  const res = await request(socketPath, '/openai/chat/completions', '{}');
  assert.equal(res.status, 502);
  assert.match(res.body, /127\.0\.0\.1:1/);
  assert.ok(!res.body.includes(KEY));
});
