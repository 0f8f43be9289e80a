// Property-based fuzzing of everything the proxy socket parses: request lines (method and
// target), headers and bodies, sent as raw bytes to a real proxy (model route + egress) on a
// Unix socket, and the pure deciders behind it. The properties: nothing a container sends
// throws out of a handler (node:test fails the run on an uncaught exception), every answer is
// a well-formed HTTP status or a closed socket, the key never comes back, the model upstream
// sees only the fixed model calls, and nothing connects anywhere but a checked address.
//
// Bounded in time: HAKO_FUZZ_SECONDS (default 15) per property that sends requests; set it
// higher for a longer local run. A failing input is printed by fast-check with its seed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { modelTarget, startGroupProxy } from '../../src/core/proxy.ts';
import { decide, type EgressOptions } from '../../src/core/egress.ts';
import { silentLogger } from '../../src/core/log.ts';
import { rawRequest } from '../support/raw-http.ts';

const KEY = 'sk-fuzz-key-never-in-an-answer';
const SECONDS = Number(process.env.HAKO_FUZZ_SECONDS ?? 15);
const PUBLIC = '203.0.113.10';

const fragment = fc.constantFrom(
  '/', '//', '\\', '\\\\', '/openai', '/anthropic', '/openai/', '/anthropic/', 'chat/completions', 'v1/messages', 'models',
  '..', '%2e%2e', '%2f', '%5c', '%00', '@', ':', ':443', ':0', ':99999', '[', ']', '[::1]', '[x', '?', '#', '*',
  'http://', 'https://', 'HTTP://', 'allowed.example', 'ALLOWED.example.', 'evil.example', '127.0.0.1', '0x7f.1', '169.254.169.254',
  '\u0000', '\t', ' ', '\u00ff', '\u2028', '😀', 'a'.repeat(300),
);
const target = fc.oneof(
  fc.array(fragment, { maxLength: 8 }).map((parts) => parts.join('')),
  fc.string({ maxLength: 80 }),
  fc.constantFrom('/openai/chat/completions', '/anthropic/v1/messages', 'http://allowed.example/x', 'allowed.example:443', 'https://allowed.example/'),
);
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE', 'get', 'M-SEARCH', 'PRI'), fc.string({ maxLength: 12 }));
const headerName = fc.oneof(
  fc.constantFrom('host', 'content-length', 'transfer-encoding', 'connection', 'authorization', 'x-api-key', 'proxy-authorization', 'expect', 'upgrade', 'te', 'content-type', 'Host'),
  fc.string({ maxLength: 20 }),
);
const headerValue = fc.oneof(
  fc.constantFrom('0', '2', '-1', '99999999999999999999', 'chunked', 'chunked, chunked', 'gzip, chunked', 'close', 'keep-alive, host', '100-continue', 'websocket', 'Bearer hako-secret:TOKEN', 'allowed.example', ''),
  fc.string({ maxLength: 60 }),
);
const rawRequestArb = fc.record({
  method, target,
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 x', ''),
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
  body: fc.oneof(fc.constant(''), fc.string({ maxLength: 40 }), fc.constant('0\r\n\r\n'), fc.constant('5\r\nhello\r\n0\r\n\r\n')),
}).map((r) => `${r.method} ${r.target} ${r.version}\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${r.body}`);

interface Rig { socketPath: string; modelSeen: string[]; connects: string[]; close(): Promise<void> }

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A real proxy with both routes live: a model upstream and one allowlisted egress host, both on loopback. */
async function startRig(provider: 'openai' | 'anthropic'): Promise<Rig> {
  const modelSeen: string[] = [];
  const connects: string[] = [];
  const model = http.createServer((req, res) => { modelSeen.push(`${req.method} ${req.url}`); req.resume(); res.end('{}'); });
  const site = http.createServer((req, res) => { req.resume(); res.end('site'); });
  const [modelPort, sitePort] = await Promise.all([listen(model), listen(site)]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-fuzz-'));
  const socketPath = path.join(dir, 'proxy.sock');
  const proxy = await startGroupProxy({
    group: 'team', socketPath, log: silentLogger, provider,
    providerConfig: { apiKey: KEY, baseURL: provider === 'openai' ? `http://127.0.0.1:${modelPort}/v1` : `http://127.0.0.1:${modelPort}`, keyOptional: false },
    egress: {
      group: 'team',
      policy: { allow: ['allowed.example'] },
      secrets: [{ name: 'TOKEN', value: 'secret-value-for-fuzzing', hosts: ['allowed.example'], headers: ['authorization'] }],
      onDecision: () => {},
      lookup: async (host) => (host === 'allowed.example' ? [{ address: PUBLIC, family: 4 as const }] : Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }))),
      connect: (address, port) => { connects.push(`${address}:${port}`); return net.connect({ host: '127.0.0.1', port: sitePort }); },
      tlsConnect: (address, port) => { connects.push(`tls ${address}:${port}`); return net.connect({ host: '127.0.0.1', port: sitePort }) as never; },
    },
  });
  return {
    socketPath, modelSeen, connects,
    close: async () => {
      await proxy.close();
      for (const s of [model, site]) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const MODEL_CALLS: Record<string, readonly string[]> = {
  openai: ['POST /v1/chat/completions', 'GET /v1/models'],
  anthropic: ['POST /v1/messages', 'GET /v1/models'],
};

for (const provider of ['openai', 'anthropic'] as const) {
  test(`fuzz - no raw request crashes the ${provider} proxy, leaks the key or reaches anything but the fixed model calls and checked addresses`, async (t) => {
    const rig = await startRig(provider);
    t.after(() => rig.close());
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(rawRequestArb, async (raw) => {
        runs++;
        const answer = await rawRequest(rig.socketPath, raw, { timeoutMs: 2000 });
        assert.ok(answer === '' || /^HTTP\/1\.1 \d{3} /.test(answer), `a status line or nothing: ${JSON.stringify(answer.slice(0, 80))}`);
        assert.ok(!answer.includes(KEY), 'the key never comes back');
        assert.ok(rig.modelSeen.every((s) => MODEL_CALLS[provider]!.includes(s)), `the model upstream saw only model calls: ${rig.modelSeen.join(', ')}`);
        assert.ok(rig.connects.every((c) => c.endsWith(`${PUBLIC}:80`) || c.endsWith(`${PUBLIC}:443`)), `connections only to the checked address: ${rig.connects.join(', ')}`);
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false },
    );
    assert.ok(runs >= 50, `the fuzzer ran (${runs} requests)`);
    // Still serving after everything it was sent.
    const models = provider === 'openai' ? '/openai/models' : '/anthropic/v1/models';
    const ok = await rawRequest(rig.socketPath, `GET ${models} HTTP/1.1\r\nhost: x\r\n\r\n`, { halfClose: false });
    assert.match(ok, /^HTTP\/1\.1 200/);
  });
}

test('fuzz - modelTarget never throws, and an accepted target is always the configured origin with a fixed path', () => {
  fc.assert(fc.property(fc.constantFrom('anthropic' as const, 'openai' as const), method, target, (provider, m, t) => {
    const r = modelTarget(provider, provider === 'openai' ? 'https://api.openai.com/v1' : 'https://api.anthropic.com', m, t);
    if (!r.ok) return;
    assert.ok(['https://api.openai.com/v1/chat/completions', 'https://api.openai.com/v1/models', 'https://api.anthropic.com/v1/messages', 'https://api.anthropic.com/v1/models'].includes(r.url.href), r.url.href);
  }), { numRuns: 20_000 });
});

test('fuzz - the egress decision never throws and never allows a host outside the allowlist or a blocked address', async () => {
  const lookups: string[] = [];
  const opts: EgressOptions = {
    group: 'team', policy: { allow: ['allowed.example', '*.wild.example'] }, secrets: [], onDecision: () => {},
    lookup: async (host) => { lookups.push(host); return [{ address: host.startsWith('a') ? PUBLIC : '10.1.2.3', family: 4 }]; },
  };
  await fc.assert(fc.asyncProperty(fc.oneof(fc.array(fragment, { maxLength: 5 }).map((p) => p.join('')), fc.string({ maxLength: 60 }), fc.ipV4(), fc.ipV6(), fc.domain()), fc.integer({ min: -1, max: 70_000 }), async (host, port) => {
    const d = await decide(host, port, opts);
    if (!d.allowed) return;
    assert.ok([80, 443].includes(port));
    assert.ok(['allowed.example'].includes(d.host) || d.host.endsWith('.wild.example'), `allowed only listed names, got ${d.host}`);
    assert.equal(d.address, PUBLIC);
  }), { numRuns: 5000 });
  assert.ok(lookups.every((h) => h === 'allowed.example' || h.endsWith('.wild.example')), 'only allowlisted names were ever looked up');
});
