// Egress: the proxy's decision and forwarding half, served over a Unix socket like the real proxy.
// Network rule: every byte goes to 127.0.0.1. Upstreams are NAMED by documentation addresses
// (203.0.113.0/24) that an injected lookup returns and an injected connector maps onto local
// servers; a connector asked for anything else throws instead of connecting.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import zlib from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  blockedAddressReason, decide, handleConnect, handleHttp, hostAllowed, secretPlaceholder,
  type DecisionRecord, type EgressOptions,
} from '../../src/core/egress.ts';
import { TLS_CERT, TLS_HOST, TLS_KEY } from '../support/tls-fixture.ts';

const SECRET = 'ghp_real-token-value-never-in-container';
const PLACEHOLDER = secretPlaceholder('GITHUB_TOKEN');

// ---- Fixtures --------------------------------------------------------------------------------------

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

/** A local upstream: records requests; /hello answers with hop-by-hop headers, /echo-auth echoes Authorization. */
async function startUpstream(t: TestContext, secure = false) {
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url === '/echo-split') { // the echoed value arrives in two TCP writes, split mid-secret
        const auth = String(req.headers.authorization);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`[${auth.slice(0, 20)}`);
        setTimeout(() => res.end(`${auth.slice(20)}]`), 20);
        return;
      }
      if (req.url?.startsWith('/echo-encoded/')) { // echoes Authorization compressed, although identity was asked for
        const coding = decodeURIComponent(req.url.slice('/echo-encoded/'.length));
        const plain = Buffer.from(`you sent ${String(req.headers.authorization)}`);
        const body = coding === 'gzip' ? zlib.gzipSync(plain) : coding === 'br' ? zlib.brotliCompressSync(plain) : coding === 'gzip, br' ? zlib.brotliCompressSync(zlib.gzipSync(plain)) : plain;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': coding, 'content-length': body.length });
        res.end(body);
        return;
      }
      if (req.url === '/echo-auth') {
        res.writeHead(200, { 'x-echo': String(req.headers.authorization), 'content-type': 'text/plain' });
        res.end(`you sent ${String(req.headers.authorization)} and that is all`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'keep-alive': 'timeout=99', 'x-hop': 'drop me', connection: 'x-hop', 'x-kept': 'yes' });
      res.end(`hello from upstream: ${req.method} ${req.url} ${body}`);
    });
  };
  const server = secure ? https.createServer({ key: TLS_KEY, cert: TLS_CERT }, handler) : http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.closeAllConnections(); server.close(); });
  return { port: (server.address() as net.AddressInfo).port, seen };
}

/** A local TCP server for tunnels: answers every chunk with "echo:" + chunk. */
async function startEcho(t: TestContext) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d) => s.write(`echo:${d}`));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { for (const s of sockets) s.destroy(); server.close(); });
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

const DNS: Record<string, string[]> = {
  'api.example.test': ['203.0.113.10'],
  'example.com': ['203.0.113.20'],
  'sub.example.com': ['203.0.113.21'],
  'deep.sub.example.com': ['203.0.113.22'],
  'evilexample.com': ['203.0.113.23'],
  'elsewhere.test': ['203.0.113.30'],
  'rebind.example.test': ['10.0.0.5'],
  'mixed.example.test': ['203.0.113.40', '192.168.1.1'],
  'v6.example.test': ['2001:db8::10'],
  'meta.example.test': ['169.254.169.254'],
};

interface Harness {
  socketPath: string;
  decisions: DecisionRecord[];
  lookups: string[];
  connects: { address: string; port: number }[];
  tlsConnects: { address: string; port: number; servername: string }[];
  /** Maps "address:port" (a fake public upstream) to a port on 127.0.0.1. */
  routes: Map<string, number>;
}

/** The egress handlers on an http.Server listening on a temporary Unix socket, with counting fakes. */
async function startEgress(t: TestContext, overrides: Partial<EgressOptions> = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-egress-'));
  const h: Harness = { socketPath: path.join(dir, 'proxy.sock'), decisions: [], lookups: [], connects: [], tlsConnects: [], routes: new Map() };
  const local = (address: string, port: number) => {
    const to = h.routes.get(`${address}:${port}`);
    if (to === undefined) throw new Error(`test connector: no route for ${address}:${port}`);
    return to;
  };
  const opts: EgressOptions = {
    group: 'team',
    policy: { allow: ['api.example.test', '*.example.com', 'rebind.example.test', 'mixed.example.test', 'v6.example.test', 'meta.example.test', '203.0.113.50', '10.0.0.1', '127.0.0.1', '169.254.169.254', '::1'] },
    secrets: [{ name: 'GITHUB_TOKEN', value: SECRET, hosts: ['api.example.test'], headers: ['authorization'] }],
    onDecision: (d) => { h.decisions.push(d); },
    lookup: async (host) => {
      h.lookups.push(host);
      const addresses = DNS[host];
      if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return addresses.map((address) => ({ address, family: net.isIPv6(address) ? 6 as const : 4 as const }));
    },
    connect: (address, port) => {
      h.connects.push({ address, port });
      return net.connect({ host: '127.0.0.1', port: local(address, port) });
    },
    tlsConnect: (address, port, servername) => {
      h.tlsConnects.push({ address, port, servername });
      return tls.connect({ host: '127.0.0.1', port: local(address, port), servername, ca: TLS_CERT });
    },
    ...overrides,
  };
  const server = http.createServer((req, res) => handleHttp(req, res, opts));
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => handleConnect(req, socket, head, opts));
  server.listen(h.socketPath);
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

/** Sends an absolute-form request through the proxy socket, as curl with HTTP_PROXY does. */
function viaProxy(socketPath: string, target: string, init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: target, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Sends CONNECT authority through the proxy socket; resolves with the status line's code and the raw socket. */
function connectVia(socketPath: string, authority: string): Promise<{ status: number; socket: net.Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'CONNECT', path: authority, agent: false });
    req.on('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => resolve({ status: res.statusCode ?? 0, socket, head }));
    req.on('error', reject);
    req.end();
  });
}

async function readAll(socket: net.Socket, head: Buffer): Promise<string> {
  let text = head.toString();
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => { text += c; });
  await once(socket, 'close');
  return text;
}

/** The next chunk the socket receives. */
async function nextData(socket: net.Socket): Promise<string> {
  const [chunk] = await once(socket, 'data');
  return String(chunk);
}

const noSecretIn = (value: unknown) => assert.ok(!JSON.stringify(value).includes(SECRET), 'a secret value leaked');

// ---- Pure checks ----------------------------------------------------------------------------------

test('blockedAddressReason - IPv4: private, loopback, link-local, metadata, CGNAT and other special ranges are refused', () => {
  const table: [string, string | null][] = [
    ['93.184.215.14', null], ['1.1.1.1', null], ['203.0.113.7', null],
    ['10.0.0.1', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'],
    ['172.32.0.1', null], ['11.0.0.1', null], ['192.169.0.1', null],
    ['127.0.0.1', 'loopback'], ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'cloud metadata'], ['100.100.100.200', 'cloud metadata'], ['168.63.129.16', 'cloud metadata'],
    ['169.254.1.1', 'link-local'], ['100.64.0.1', 'CGNAT'], ['100.127.255.255', 'CGNAT'], ['100.128.0.1', null],
    ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'], ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'], ['198.18.0.1', 'reserved'], ['192.0.0.8', 'reserved'],
  ];
  for (const [ip, reason] of table) assert.equal(blockedAddressReason(ip), reason, ip);
});

test('blockedAddressReason - IPv6: loopback, ULA, link-local, multicast, metadata and everything outside 2000::/3 are refused', () => {
  const table: [string, string | null][] = [
    ['2606:4700:4700::1111', null], ['2001:4860:4860::8888', null], ['2001:db8::1', null],
    ['::1', 'loopback'], ['::', 'unspecified'], ['fd00::1', 'private'], ['fc00::1', 'private'], ['fec0::1', 'private'],
    ['fd00:ec2::254', 'cloud metadata'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'], ['FE80::ABCD', 'link-local'],
    ['ff02::1', 'multicast'], ['2001::1', 'reserved'], ['2002:a00:1::1', 'reserved'], ['100::1', 'reserved'],
    ['::2', 'reserved'], ['4000::1', 'reserved'], ['[::1]', 'loopback'],
  ];
  for (const [ip, reason] of table) assert.equal(blockedAddressReason(ip), reason, ip);
});

test('blockedAddressReason - IPv4-mapped and NAT64 addresses are judged by the IPv4 address inside', () => {
  const table: [string, string | null][] = [
    ['::ffff:10.0.0.1', 'IPv4-mapped private'], ['::ffff:a00:1', 'IPv4-mapped private'], ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:169.254.169.254', 'IPv4-mapped cloud metadata'], ['::ffff:93.184.215.14', null],
    ['64:ff9b::10.0.0.1', 'NAT64 private'], ['64:ff9b::93.184.215.14', null], ['::10.0.0.1', 'reserved'],
  ];
  for (const [ip, reason] of table) assert.equal(blockedAddressReason(ip), reason, ip);
});

test('blockedAddressReason - anything that is not an IP address is refused', () => {
  for (const bad of ['', 'example.com', '1.2.3', '999.1.1.1', '::g']) assert.equal(blockedAddressReason(bad), 'not an IP address', bad);
});

test('hostAllowed - exact names match case-insensitively with a tolerated trailing dot', () => {
  assert.equal(hostAllowed('API.Example.Test.', ['api.example.test']), true);
  assert.equal(hostAllowed('api.example.test', ['API.EXAMPLE.TEST.']), true);
  assert.equal(hostAllowed('www.api.example.test', ['api.example.test']), false);
  assert.equal(hostAllowed('api.example.test.evil.com', ['api.example.test']), false);
  assert.equal(hostAllowed('', ['']), false);
});

test('hostAllowed - "*.suffix" allows subdomains at any depth, never the apex or a lookalike', () => {
  const allow = ['*.example.com'];
  assert.equal(hostAllowed('sub.example.com', allow), true);
  assert.equal(hostAllowed('a.b.example.com', allow), true);
  assert.equal(hostAllowed('example.com', allow), false);
  assert.equal(hostAllowed('evilexample.com', allow), false);
  assert.equal(hostAllowed('example.com.evil.net', allow), false);
  assert.equal(hostAllowed('anything', ['*']), false, 'no allow-all wildcard');
  assert.equal(hostAllowed('com', ['*.']), false);
});

test('secretPlaceholder - a recognisable token; names must be identifier-like', () => {
  assert.equal(secretPlaceholder('GITHUB_TOKEN'), 'hako-secret:GITHUB_TOKEN');
  assert.throws(() => secretPlaceholder('bad name'), /secret names must match/);
  assert.throws(() => secretPlaceholder(''), /secret names must match/);
});

test('decide - normalises the host, resolves once and returns the address to connect to', async () => {
  const lookups: string[] = [];
  const opts: EgressOptions = {
    group: 'team', policy: { allow: ['api.example.test'] }, secrets: [], onDecision: () => {},
    lookup: async (host) => { lookups.push(host); return [{ address: '203.0.113.10', family: 4 }, { address: '2001:db8::10', family: 6 }]; },
  };
  assert.deepEqual(await decide('API.Example.Test.', 443, opts), { allowed: true, host: 'api.example.test', port: 443, address: '203.0.113.10' });
  assert.deepEqual(lookups, ['api.example.test']);
  const literal = await decide('[2001:db8::1]', 443, { ...opts, policy: { allow: ['2001:db8::1'] } });
  assert.deepEqual(literal, { allowed: true, host: '2001:db8::1', port: 443, address: '2001:db8::1' });
  assert.equal(lookups.length, 1, 'an IP literal needs no lookup');
});

test('decide - refuses a host outside the allowlist without any DNS query (no exfiltration by lookup)', async () => {
  let lookups = 0;
  const opts: EgressOptions = {
    group: 'team', policy: { allow: ['api.example.test'] }, secrets: [], onDecision: () => {},
    lookup: async () => { lookups++; return [{ address: '203.0.113.10', family: 4 }]; },
  };
  const d = await decide('secret-data.attacker.test', 443, opts);
  assert.equal(d.allowed, false);
  assert.match(d.allowed ? '' : d.reason, /not in the egress allowlist of group "team"/);
  assert.equal((await decide('bad host!', 443, opts)).allowed, false);
  assert.equal(lookups, 0);
});

test('regression: a name that resolves to an address of this host\'s own interfaces is refused like loopback, in any spelling', async () => {
  const own = ['203.0.113.77', '2001:db8::77'];
  const base = { group: 'team', policy: { allow: ['own.example.test', '203.0.113.77', '::ffff:203.0.113.77'] }, secrets: [], onDecision: () => {}, hostAddresses: () => own };
  const byName = await decide('own.example.test', 443, { ...base, lookup: async () => [{ address: '203.0.113.77', family: 4 as const }] });
  assert.equal(byName.allowed, false);
  assert.match(byName.allowed ? '' : byName.reason, /resolves to 203\.0\.113\.77, a blocked address \(an address of this host\)/);
  const v6 = await decide('own.example.test', 443, { ...base, lookup: async () => [{ address: '2001:0db8:0:0::77', family: 6 as const }] });
  assert.equal(v6.allowed, false, 'another spelling of the host\'s IPv6 address');
  assert.equal((await decide('203.0.113.77', 443, base)).allowed, false, 'as a literal');
  assert.equal((await decide('::ffff:203.0.113.77', 443, base)).allowed, false, 'IPv4-mapped');
  const other = await decide('own.example.test', 443, { ...base, lookup: async () => [{ address: '203.0.113.78', family: 4 as const }] });
  assert.equal(other.allowed, true, 'a neighbour is not this host');
});

test('decide - by default the host\'s interfaces are the ones the OS reports now', async () => {
  const mine = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).filter((i) => !i.internal).map((i) => i.address);
  if (mine.length === 0) return; // a machine with loopback only has nothing more to refuse
  for (const address of mine) {
    const d = await decide('own.example.test', 443, { group: 'team', policy: { allow: ['own.example.test'] }, secrets: [], onDecision: () => {}, lookup: async () => [{ address, family: net.isIPv6(address) ? 6 as const : 4 as const }] });
    assert.equal(d.allowed, false, `${address} is refused`);
  }
});

test('decide - a failed or empty lookup is a refusal, not an exception', async () => {
  const base = { group: 'team', policy: { allow: ['api.example.test'] }, secrets: [], onDecision: () => {} };
  const failed = await decide('api.example.test', 443, { ...base, lookup: async () => { throw Object.assign(new Error('x'), { code: 'ENOTFOUND' }); } });
  assert.deepEqual(failed, { allowed: false, host: 'api.example.test', port: 443, reason: 'cannot resolve api.example.test: ENOTFOUND' });
  const empty = await decide('api.example.test', 443, { ...base, lookup: async () => [] });
  assert.equal(empty.allowed, false);
});

// ---- Absolute-form HTTP ------------------------------------------------------------------------------

test('http - an allowlisted domain is forwarded to the checked address; the body arrives and hop-by-hop headers are stripped', async (t) => {
  const up = await startUpstream(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:80', up.port);
  const res = await viaProxy(h.socketPath, 'http://api.example.test/hello?x=1', {
    method: 'POST', body: 'ping',
    headers: { 'proxy-authorization': 'Basic c2VjcmV0', 'proxy-connection': 'keep-alive', connection: 'x-private', 'x-private': 'drop', 'x-app': 'kept', te: 'trailers' },
  });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'hello from upstream: POST /hello?x=1 ping');
  assert.equal(res.headers['x-kept'], 'yes');
  assert.equal(res.headers['x-hop'], undefined, 'a header named by Connection is hop-by-hop');
  assert.notEqual(res.headers['keep-alive'], 'timeout=99', 'the upstream\'s Keep-Alive is not relayed');
  const seen = up.seen[0];
  assert.ok(seen);
  assert.equal(seen.url, '/hello?x=1', 'the upstream gets origin-form');
  assert.equal(seen.headers.host, 'api.example.test');
  assert.equal(seen.headers['x-app'], 'kept');
  for (const name of ['proxy-authorization', 'proxy-connection', 'x-private', 'te']) assert.equal(seen.headers[name], undefined, name);
  assert.deepEqual(h.lookups, ['api.example.test']);
  assert.deepEqual(h.connects, [{ address: '203.0.113.10', port: 80 }]);
  assert.deepEqual(h.decisions, [{ allowed: true, host: 'api.example.test', port: 80, address: '203.0.113.10', method: 'POST', kind: 'http' }]);
});

test('http - a domain outside the allowlist gets 403 with the reason, and the refusal is recorded', async (t) => {
  const h = await startEgress(t);
  const res = await viaProxy(h.socketPath, 'http://elsewhere.test/');
  assert.equal(res.status, 403);
  assert.match(res.body, /elsewhere\.test is not in the egress allowlist of group "team"/);
  assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
  assert.deepEqual(h.decisions, [{ allowed: false, host: 'elsewhere.test', port: 80, reason: h.decisions[0]?.allowed === false ? h.decisions[0].reason : '', method: 'GET', kind: 'http' }]);
  assert.equal(h.lookups.length, 0);
  assert.equal(h.connects.length, 0);
});

test('http - "*.example.com" admits subdomains but refuses the apex and the lookalike evilexample.com', async (t) => {
  const up = await startUpstream(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.21:80', up.port);
  h.routes.set('203.0.113.22:80', up.port);
  assert.equal((await viaProxy(h.socketPath, 'http://sub.example.com/hello')).status, 200);
  assert.equal((await viaProxy(h.socketPath, 'http://DEEP.sub.example.com./hello')).status, 200);
  assert.equal((await viaProxy(h.socketPath, 'http://example.com/hello')).status, 403);
  assert.equal((await viaProxy(h.socketPath, 'http://evilexample.com/hello')).status, 403);
  assert.deepEqual(h.decisions.map((d) => [d.host, d.allowed]), [
    ['sub.example.com', true], ['deep.sub.example.com', true], ['example.com', false], ['evilexample.com', false],
  ]);
  assert.deepEqual(h.connects.map((c) => c.address), ['203.0.113.21', '203.0.113.22']);
});

test('http - private, loopback and metadata IP literals are refused even when allowlisted, in any spelling', async (t) => {
  const h = await startEgress(t);
  const cases: [string, RegExp][] = [
    ['http://10.0.0.1/', /10\.0\.0\.1 is a blocked address \(private\)/],
    ['http://127.0.0.1/', /\(loopback\)/],
    ['http://2130706433/', /127\.0\.0\.1 is a blocked address \(loopback\)/],
    ['http://0x7f.1/', /\(loopback\)/],
    ['http://169.254.169.254/latest/meta-data/', /\(cloud metadata\)/],
    ['http://[::1]/', /\(loopback\)/],
    ['http://[::ffff:10.0.0.1]/', /\(IPv4-mapped private\)/],
    ['http://[fd00:ec2::254]/', /\(cloud metadata\)/],
  ];
  for (const [url, reason] of cases) {
    const res = await viaProxy(h.socketPath, url);
    assert.equal(res.status, 403, url);
    assert.match(res.body, reason, url);
  }
  assert.equal(h.decisions.length, cases.length);
  assert.ok(h.decisions.every((d) => !d.allowed));
  assert.equal(h.connects.length, 0);
  assert.equal(h.lookups.length, 0);
});

test('http - an allowlisted public IP literal is reached without a lookup', async (t) => {
  const up = await startUpstream(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.50:80', up.port);
  const res = await viaProxy(h.socketPath, 'http://203.0.113.50/hello');
  assert.equal(res.status, 200);
  assert.equal(h.lookups.length, 0);
  assert.deepEqual(h.connects, [{ address: '203.0.113.50', port: 80 }]);
});

test('http - a name that resolves to a private or metadata address is refused (DNS rebinding)', async (t) => {
  const h = await startEgress(t);
  const rebind = await viaProxy(h.socketPath, 'http://rebind.example.test/');
  assert.equal(rebind.status, 403);
  assert.match(rebind.body, /rebind\.example\.test resolves to 10\.0\.0\.5, a blocked address \(private\)/);
  const meta = await viaProxy(h.socketPath, 'http://meta.example.test/');
  assert.match(meta.body, /\(cloud metadata\)/);
  assert.equal(h.connects.length, 0);
});

test('http - a name that resolves to [public, private] is refused: every address must be public', async (t) => {
  const up = await startUpstream(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.40:80', up.port);
  const res = await viaProxy(h.socketPath, 'http://mixed.example.test/hello');
  assert.equal(res.status, 403);
  assert.match(res.body, /resolves to 192\.168\.1\.1/);
  assert.equal(h.connects.length, 0);
  assert.equal(up.seen.length, 0);
});

test('http - the connector gets exactly the checked address: one lookup per request, never a second one', async (t) => {
  const up = await startUpstream(t);
  let calls = 0;
  const h = await startEgress(t, {
    // A rebinding resolver: public on the first query, loopback on any later one.
    lookup: async (host) => { h.lookups.push(host); return [{ address: calls++ === 0 ? '203.0.113.10' : '127.0.0.1', family: 4 }]; },
  });
  h.routes.set('203.0.113.10:80', up.port);
  const res = await viaProxy(h.socketPath, 'http://api.example.test/hello');
  assert.equal(res.status, 200);
  assert.deepEqual(h.lookups, ['api.example.test']);
  assert.deepEqual(h.connects, [{ address: '203.0.113.10', port: 80 }]);
});

test('http - IPv6 upstreams work: the connector gets the checked IPv6 address', async (t) => {
  const up = await startUpstream(t);
  const h = await startEgress(t);
  h.routes.set('2001:db8::10:80', up.port);
  assert.equal((await viaProxy(h.socketPath, 'http://v6.example.test/hello')).status, 200);
  assert.deepEqual(h.connects, [{ address: '2001:db8::10', port: 80 }]);
});

test('http - ports outside the policy are refused before any lookup', async (t) => {
  const h = await startEgress(t);
  const res = await viaProxy(h.socketPath, 'http://api.example.test:8080/');
  assert.equal(res.status, 403);
  assert.match(res.body, /port 8080 is not allowed \(allowed: 80, 443\)/);
  const custom = await startEgress(t, { policy: { allow: ['api.example.test'], ports: [8443] } });
  assert.equal((await viaProxy(custom.socketPath, 'http://api.example.test/')).status, 403, 'port 80 is not implied');
  assert.equal(h.lookups.length + custom.lookups.length, 0);
});

test('http - user info, other schemes, origin-form and a missing host are refused', async (t) => {
  const h = await startEgress(t);
  const cases: [string, RegExp][] = [
    ['http://user:pw@api.example.test/', /user info/],
    ['http://api.example.test@elsewhere.test/', /user info/],
    ['ftp://api.example.test/file', /only absolute http:\/\/ or https:\/\//],
    ['/anthropic/v1/messages', /only absolute/],
    ['http://:80/x', /malformed URL/],
  ];
  for (const [target, reason] of cases) {
    const res = await viaProxy(h.socketPath, target);
    assert.equal(res.status, 403, target);
    assert.match(res.body, reason, target);
  }
  assert.equal(h.decisions.length, cases.length, 'every refusal is recorded');
  assert.equal(h.lookups.length + h.connects.length, 0);
});

test('http - an unreachable upstream is a 502 that names the host', async (t) => {
  const h = await startEgress(t); // no route: the test connector throws
  const res = await viaProxy(h.socketPath, 'http://api.example.test/');
  assert.equal(res.status, 502);
  assert.match(res.body, /hako could not reach api\.example\.test:80/);
  assert.equal(h.decisions[0]?.allowed, true, 'the decision was an allow; the failure came after');
});

test('http - oversized headers are stopped by node before the handler runs', async (t) => {
  const h = await startEgress(t);
  const res = await viaProxy(h.socketPath, 'http://api.example.test/', { headers: { 'x-big': 'a'.repeat(64 * 1024) } }).catch(() => ({ status: 431 }));
  assert.equal(res.status, 431);
  assert.equal(h.decisions.length, 0);
});

test('http - when the audit callback throws, an allowed request is refused with 500 and nothing connects', async (t) => {
  const h = await startEgress(t, { onDecision: () => { throw new Error('audit log full'); } });
  const res = await viaProxy(h.socketPath, 'http://api.example.test/');
  assert.equal(res.status, 500);
  assert.match(res.body, /could not record the egress decision/);
  assert.equal(h.connects.length, 0);
});

// ---- Secrets -------------------------------------------------------------------------------------

test('secrets - the gateway form (https:// URL) replaces a placeholder for a bound host; the decision names the secret, not its value', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', up.port);
  const res = await viaProxy(h.socketPath, 'https://api.example.test/user', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
  assert.equal(res.status, 200);
  assert.equal(up.seen[0]?.headers.authorization, `Bearer ${SECRET}`, 'the upstream sees the real value');
  assert.deepEqual(h.tlsConnects, [{ address: '203.0.113.10', port: 443, servername: TLS_HOST }]);
  assert.deepEqual(h.decisions, [{ allowed: true, host: 'api.example.test', port: 443, address: '203.0.113.10', method: 'GET', kind: 'http', secrets: ['GITHUB_TOKEN'] }]);
  noSecretIn(h.decisions);
});

test('secrets - a secret the upstream echoes back is redacted to its placeholder in headers and body', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', up.port);
  const res = await viaProxy(h.socketPath, 'https://api.example.test/echo-auth', { headers: { authorization: `token ${PLACEHOLDER}` } });
  assert.equal(res.status, 200);
  assert.equal(up.seen[0]?.headers.authorization, `token ${SECRET}`);
  assert.equal(up.seen[0]?.headers['accept-encoding'], 'identity', 'no compression, so redaction sees the bytes');
  assert.equal(res.headers['x-echo'], `token ${PLACEHOLDER}`);
  assert.equal(res.body, `you sent token ${PLACEHOLDER} and that is all`);
  noSecretIn(res);
});

test('secrets - redaction holds even when the echoed secret is split across response chunks', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', up.port);
  const res = await viaProxy(h.socketPath, 'https://api.example.test/echo-split', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
  assert.equal(res.body, `[Bearer ${PLACEHOLDER}]`);
  noSecretIn(res);
});

test('regression: a secret the bound host echoes compressed (gzip, br, both), although identity was asked for, reaches the container only as its placeholder', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', up.port);
  for (const coding of ['gzip', 'br', 'gzip, br']) {
    const res = await viaProxy(h.socketPath, `https://api.example.test/echo-encoded/${encodeURIComponent(coding)}`, { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
    assert.equal(res.status, 200, coding);
    assert.equal(res.body, `you sent Bearer ${PLACEHOLDER}`, coding);
    assert.equal(res.headers['content-encoding'], undefined, 'the body is passed on decoded');
    noSecretIn(res);
  }
});

test('secrets - an answer in an encoding hako cannot decode is withheld (502) when a secret was injected', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', up.port);
  const res = await viaProxy(h.socketPath, 'https://api.example.test/echo-encoded/x-secret-cipher', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
  assert.equal(res.status, 502);
  assert.match(res.body, /withheld the answer of api\.example\.test: it is encoded as "x-secret-cipher"/);
  noSecretIn(res);
});

test('regression: a placeholder in a header the secret\'s rule does not name is refused with 403 and the upstream sees nothing', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', up.port);
  const res = await viaProxy(h.socketPath, 'https://api.example.test/echo-auth', { headers: { 'x-reflect-me': PLACEHOLDER } });
  assert.equal(res.status, 403);
  assert.match(res.body, /secret GITHUB_TOKEN may only be sent in the header authorization, not in x-reflect-me/);
  assert.equal(up.seen.length, 0);
  assert.equal(h.decisions[0]?.allowed, false);
});

test('secrets - a placeholder sent to a host the secret is not bound to is refused with 403 and the upstream sees nothing', async (t) => {
  const up = await startUpstream(t, true);
  const h = await startEgress(t);
  h.routes.set('203.0.113.21:443', up.port);
  const res = await viaProxy(h.socketPath, 'https://sub.example.com/steal', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
  assert.equal(res.status, 403);
  assert.match(res.body, /secret GITHUB_TOKEN is not bound to sub\.example\.com/);
  assert.equal(up.seen.length, 0);
  assert.equal(h.lookups.length + h.tlsConnects.length, 0);
  assert.equal(h.decisions[0]?.allowed, false);
  noSecretIn([res, h.decisions]);
});

test('secrets - a placeholder for a secret this group does not have is refused', async (t) => {
  const h = await startEgress(t);
  const res = await viaProxy(h.socketPath, 'https://api.example.test/', { headers: { 'x-api-key': secretPlaceholder('OTHER_GROUPS_KEY') } });
  assert.equal(res.status, 403);
  assert.match(res.body, /secret OTHER_GROUPS_KEY is not bound to api\.example\.test/);
  assert.equal(h.tlsConnects.length, 0);
});

test('secrets - a secret is never injected into plain http://, even for its bound host', async (t) => {
  const up = await startUpstream(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:80', up.port);
  const res = await viaProxy(h.socketPath, 'http://api.example.test/', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
  assert.equal(res.status, 403);
  assert.match(res.body, /would travel unencrypted: use an https:\/\/ URL/);
  assert.equal(up.seen.length + h.connects.length, 0);
});

test('secrets - a failing TLS upstream is a 502 whose message never contains a secret', async (t) => {
  const h = await startEgress(t, {
    tlsConnect: () => { throw new Error(`handshake failed while sending ${SECRET}`); },
  });
  const res = await viaProxy(h.socketPath, 'https://api.example.test/', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
  assert.equal(res.status, 502);
  assert.match(res.body, /hako could not reach api\.example\.test:443: handshake failed while sending hako-secret:GITHUB_TOKEN/);
  noSecretIn(res);
});

// ---- CONNECT tunnels ------------------------------------------------------------------------------

test('connect - an allowed CONNECT answers 200 and the tunnel carries bytes both ways', async (t) => {
  const echo = await startEcho(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', echo.port);
  const { status, socket } = await connectVia(h.socketPath, 'api.example.test:443');
  t.after(() => socket.destroy());
  assert.equal(status, 200);
  socket.write('client hello');
  assert.equal(await nextData(socket), 'echo:client hello');
  socket.write('second');
  assert.equal(await nextData(socket), 'echo:second');
  assert.deepEqual(h.connects, [{ address: '203.0.113.10', port: 443 }]);
  assert.deepEqual(h.lookups, ['api.example.test']);
  assert.deepEqual(h.decisions, [{ allowed: true, host: 'api.example.test', port: 443, address: '203.0.113.10', method: 'CONNECT', kind: 'connect' }]);
});

test('connect - closing the client closes the upstream side of the tunnel', async (t) => {
  const echo = await startEcho(t);
  const h = await startEgress(t);
  h.routes.set('203.0.113.10:443', echo.port);
  const { socket } = await connectVia(h.socketPath, 'api.example.test:443');
  socket.write('x');
  await nextData(socket);
  const [upstreamSide] = echo.sockets;
  assert.ok(upstreamSide);
  const closed = once(upstreamSide, 'close');
  socket.destroy();
  await closed;
});

test('connect - a refused CONNECT answers 403 with the reason, closes, and never calls the connector', async (t) => {
  const h = await startEgress(t);
  for (const authority of ['elsewhere.test:443', 'rebind.example.test:443', 'mixed.example.test:443', '10.0.0.1:443', '[::1]:443', 'api.example.test:22']) {
    const { status, socket, head } = await connectVia(h.socketPath, authority);
    assert.equal(status, 403, authority);
    assert.match(await readAll(socket, head), /hako refused/, authority);
  }
  assert.equal(h.connects.length, 0);
  assert.equal(h.decisions.length, 6);
  assert.ok(h.decisions.every((d) => !d.allowed && d.kind === 'connect' && d.method === 'CONNECT'));
});

test('a refused request for an over-long name keeps at most 253 characters of it in its record, over HTTP and CONNECT', async (t) => {
  const h = await startEgress(t);
  const name = `${'a'.repeat(15_500)}.com`;
  const { status, socket, head } = await connectVia(h.socketPath, `${name}:443`);
  assert.equal(status, 403);
  await readAll(socket, head);
  assert.equal((await viaProxy(h.socketPath, `http://${name}/`)).status, 403);
  assert.equal(h.decisions.length, 2);
  for (const d of h.decisions) {
    assert.equal(d.allowed, false);
    assert.equal(d.host, name.slice(0, 253));
    assert.ok(JSON.stringify(d).length < 1000, `a record of ${JSON.stringify(d).length} characters`);
  }
});

test('connect - malformed authorities are refused without a lookup', async (t) => {
  const h = await startEgress(t);
  for (const authority of ['api.example.test', 'user@api.example.test:443', 'api.example.test:443/x']) {
    const { status, socket, head } = await connectVia(h.socketPath, authority);
    assert.equal(status, 403, authority);
    await readAll(socket, head);
  }
  assert.equal(h.lookups.length + h.connects.length, 0);
});

test('connect - an unreachable upstream answers 502', async (t) => {
  const h = await startEgress(t); // no route: the test connector throws
  const { status, socket, head } = await connectVia(h.socketPath, 'api.example.test:443');
  assert.equal(status, 502);
  assert.match(await readAll(socket, head), /hako could not reach api\.example\.test:443/);
});

test('connect - aborting the signal tears down open tunnels (http.Server does not track them)', async (t) => {
  const echo = await startEcho(t);
  const controller = new AbortController();
  const h = await startEgress(t, { signal: controller.signal });
  h.routes.set('203.0.113.10:443', echo.port);
  const { socket } = await connectVia(h.socketPath, 'api.example.test:443');
  socket.write('x');
  await nextData(socket);
  const closed = once(socket, 'close');
  controller.abort();
  await closed;
});

// ---- The real connectors, on loopback only ---------------------------------------------------------

test('default connectors - reach 127.0.0.1 only when allowLoopback is set, and check TLS certificates', async (t) => {
  const up = await startUpstream(t);
  const secure = await startUpstream(t, true);
  const echo = await startEcho(t);
  const base = {
    group: 'team', secrets: [], policy: { allow: ['127.0.0.1'], ports: [up.port, secure.port, echo.port] },
  };
  const decisions: DecisionRecord[] = [];
  const open = await startEgress(t, { ...base, onDecision: (d) => { decisions.push(d); }, connect: undefined, tlsConnect: undefined, lookup: undefined, allowLoopback: true });
  const res = await viaProxy(open.socketPath, `http://127.0.0.1:${up.port}/hello`);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'hello from upstream: GET /hello ');

  const tunnel = await connectVia(open.socketPath, `127.0.0.1:${echo.port}`);
  assert.equal(tunnel.status, 200);
  tunnel.socket.write('ping');
  assert.equal(await nextData(tunnel.socket), 'echo:ping');
  tunnel.socket.destroy();

  const untrusted = await viaProxy(open.socketPath, `https://127.0.0.1:${secure.port}/hello`);
  assert.equal(untrusted.status, 502, 'a self-signed certificate is refused by the default tlsConnect');
  assert.match(untrusted.body, /self-signed certificate|certificate/);
  assert.equal(secure.seen.length, 0);

  const closed = await startEgress(t, { ...base, onDecision: () => {}, connect: undefined, tlsConnect: undefined, lookup: undefined });
  const refused = await viaProxy(closed.socketPath, `http://127.0.0.1:${up.port}/hello`);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /\(loopback\)/);
  assert.equal(up.seen.length, 1);
});
