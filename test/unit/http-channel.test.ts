import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { HttpChannel } from '../../src/channels/http.ts';
import { CODE_TTL_MS, WebAuth } from '../../src/channels/web-auth.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { ChannelContext } from '../../src/core/channel.ts';

const TOKEN = 't'.repeat(32);

const ctx: ChannelContext = {
  accept: async () => { throw new Error('not used'); },
  receive: async () => { throw new Error('not used'); },
  groupFor: () => undefined,
  listMessages: () => [],
  listGroups: () => [{ name: 'main', isMain: true, trigger: null } as never],
  getGroup: (name) => (name === 'main' ? { name: 'main', isMain: true, trigger: null } as never : undefined),
  subscribe: () => () => {},
  watchTurns: () => () => {},
  refused: () => {},
};

/** A raw request, so that Host, Origin and Cookie are exactly what a browser or an attacker sends. */
function request(port: number, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: opts.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      // An event stream never ends by itself: its first bytes are enough.
      res.on('data', (c: string) => { body += c; if (res.headers['content-type']?.startsWith('text/event-stream')) res.destroy(); });
      res.on('close', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function started(t: { after(fn: () => Promise<void>): void }, opts: { auth?: WebAuth; allowedHosts?: string[] } = {}): Promise<HttpChannel> {
  const ch = new HttpChannel({ port: 0, token: TOKEN, log: silentLogger, ...opts });
  await ch.start(ctx);
  t.after(() => ch.stop());
  return ch;
}

/** Signs in as the web page does; returns the Cookie header to send back. */
async function signIn(ch: HttpChannel): Promise<string> {
  const code = new URL(ch.signInLink().url).hash.replace('#code=', '');
  const r = await request(ch.port, '/api/session', { method: 'POST', headers: { origin: `http://127.0.0.1:${ch.port}`, 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(r.status, 200, r.body);
  return String(r.headers['set-cookie']).split(';')[0]!;
}

test('http channel - listens on the loopback address only', async (t) => {
  const ch = await started(t);
  assert.equal(ch.address.address, '127.0.0.1');
});

test('http channel - a port in use is a clear error', async (t) => {
  const a = await started(t);
  const b = new HttpChannel({ port: a.port, token: 'x', log: silentLogger });
  await assert.rejects(b.start(ctx), /port \d+ is in use: is hako already running\?/);
});

test('http channel - attack 36: a DNS-rebinding Host gets 421 for the page, the API and the event stream, token or not', async (t) => {
  const ch = await started(t);
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const p of ['/', '/api/groups', '/api/groups/main/events', '/api/groups/main/messages', '/nothing']) {
    for (const host of ['rebind.evil.example:' + ch.port, 'rebind.evil.example', `127.0.0.1:${ch.port + 1}`]) {
      const r = await request(ch.port, p, { headers: { ...auth, host } });
      assert.equal(r.status, 421, `${host} ${p}`);
      assert.doesNotMatch(r.body, /<title>|"groups"|connected/);
      assert.match(r.body, /answers only to 127\.0\.0\.1:\d+, localhost:\d+ and \[::1\]:\d+ \(add other names to HAKO_HTTP_HOSTS\)/);
    }
  }
  for (const host of [`localhost:${ch.port}`, `[::1]:${ch.port}`, `127.0.0.1:${ch.port}`]) {
    assert.equal((await request(ch.port, '/api/groups', { headers: { ...auth, host } })).status, 200, host);
  }
  assert.equal((await request(ch.port, '/api/groups/main/events', { headers: auth })).status, 200);
});

test('http channel - a name in HAKO_HTTP_HOSTS is answered', async (t) => {
  const ch = await started(t, { allowedHosts: ['hako.lan'] });
  assert.equal((await request(ch.port, '/', { headers: { host: 'hako.lan' } })).status, 200);
  assert.equal((await request(ch.port, '/', { headers: { host: 'other.lan' } })).status, 421);
});

test('http channel - attack 35: a sign-in code becomes an HttpOnly, SameSite=Strict session cookie; the link holds no token', async (t) => {
  const ch = await started(t);
  const link = ch.signInLink();
  assert.match(link.url, new RegExp(`^http://127\\.0\\.0\\.1:${ch.port}/#code=[A-Za-z0-9_-]{32}$`));
  assert.ok(!link.url.includes(TOKEN));
  const code = link.url.split('#code=')[1]!;
  const r = await request(ch.port, '/api/session', { method: 'POST', headers: { origin: `http://127.0.0.1:${ch.port}`, 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(r.status, 200, r.body);
  const cookie = String(r.headers['set-cookie']);
  assert.match(cookie, new RegExp(`^hako_session_${ch.port}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/; Max-Age=\\d+$`));
  assert.ok(!cookie.includes(TOKEN) && !cookie.includes(code));
  const groups = await request(ch.port, '/api/groups', { headers: { cookie: cookie.split(';')[0]!, 'sec-fetch-site': 'same-origin' } });
  assert.equal(groups.status, 200, groups.body);
  const again = await request(ch.port, '/api/session', { method: 'POST', headers: { origin: `http://127.0.0.1:${ch.port}`, 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(again.status, 401);
  assert.match(again.body, /unknown or was already used: run \\"hako web\\" for a new link/);
});

test('http channel - attack 35: an expired sign-in code is refused', async (t) => {
  let now = 0;
  const ch = await started(t, { auth: new WebAuth({ now: () => now }) });
  const code = ch.signInLink().url.split('#code=')[1]!;
  now += CODE_TTL_MS + 1;
  const r = await request(ch.port, '/api/session', { method: 'POST', headers: { origin: `http://127.0.0.1:${ch.port}`, 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(r.status, 401);
  assert.match(r.body, /expired/);
  assert.equal(r.headers['set-cookie'], undefined);
});

test('http channel - signing in needs the Origin of the page itself', async (t) => {
  const ch = await started(t);
  for (const origin of [undefined, 'http://127.0.0.1:1', 'http://evil.example']) {
    const code = ch.signInLink().url.split('#code=')[1]!;
    const r = await request(ch.port, '/api/session', { method: 'POST', headers: { ...(origin ? { origin } : {}), 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
    assert.equal(r.status, 403, String(origin));
    assert.equal(r.headers['set-cookie'], undefined);
  }
});

test('http channel - with the session cookie, a write needs the Origin of the page and another local page is refused (CSRF)', async (t) => {
  const ch = await started(t);
  const cookie = await signIn(ch);
  const post = (headers: Record<string, string>) => request(ch.port, '/api/tasks/x/run', { method: 'POST', headers: { cookie, ...headers } });
  assert.equal((await post({ origin: `http://127.0.0.1:${ch.port}`, 'sec-fetch-site': 'same-origin' })).status, 404, 'the page itself gets through to the route');
  assert.equal((await post({})).status, 403);
  assert.equal((await post({ origin: `http://127.0.0.1:${ch.port + 1}`, 'sec-fetch-site': 'same-site' })).status, 403);
  assert.equal((await request(ch.port, '/api/groups', { headers: { cookie, 'sec-fetch-site': 'same-site' } })).status, 403);
  assert.equal((await request(ch.port, '/api/groups', { headers: { cookie, 'sec-fetch-site': 'cross-site' } })).status, 403);
  assert.equal((await request(ch.port, '/api/groups', { headers: { cookie: `hako_session_${ch.port}=forged` } })).status, 401);
});

test('http channel - only the bearer token can make a sign-in link through the API', async (t) => {
  const ch = await started(t);
  const cookie = await signIn(ch);
  const byCookie = await request(ch.port, '/api/session-codes', { method: 'POST', headers: { cookie, origin: `http://127.0.0.1:${ch.port}` } });
  assert.equal(byCookie.status, 403);
  const byToken = await request(ch.port, '/api/session-codes', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(byToken.status, 201);
  assert.match(JSON.parse(byToken.body).url, /#code=/);
  assert.equal((await request(ch.port, '/api/session-codes', { method: 'POST' })).status, 401);
});
