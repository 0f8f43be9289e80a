import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/core/config.ts';
import { CODE_TTL_MS, SESSION_IDLE_MS, SESSION_MAX_MS, WebAuth, cookieRequestProblem, cookieValue, hostAllowed, sameOrigin } from '../../src/channels/web-auth.ts';

test('web auth - attack 36: only loopback names with the port, or configured names, are accepted as Host', () => {
  for (const h of ['127.0.0.1:7878', 'localhost:7878', 'LOCALHOST:7878', '[::1]:7878']) assert.ok(hostAllowed(h, 7878), h);
  for (const h of [undefined, '', 'evil.example:7878', 'evil.example', '127.0.0.1', '127.0.0.1:80', 'localhost:7879', '127.0.0.2:7878', 'localhost.:7878', '127.0.0.1.nip.io:7878', '0.0.0.0:7878']) {
    assert.equal(hostAllowed(h, 7878), false, String(h));
  }
  assert.ok(hostAllowed('localhost', 80), 'port 80 may be left out');
  assert.ok(hostAllowed('hako.lan:443', 7878, ['hako.lan']), 'a configured name, any port');
  assert.ok(hostAllowed('localhost:9000', 7878, ['localhost:9000']), 'a configured name with its port');
  assert.equal(hostAllowed('localhost:9001', 7878, ['localhost:9000']), false);
  assert.equal(hostAllowed('evil.hako.lan:7878', 7878, ['hako.lan']), false);
});

test('web auth - Origin must be exactly this server', () => {
  assert.ok(sameOrigin('http://127.0.0.1:7878', '127.0.0.1:7878'));
  assert.ok(sameOrigin('https://hako.lan', 'hako.lan'));
  for (const o of [undefined, 'null', 'http://127.0.0.1:9999', 'http://evil.example', 'http://127.0.0.1:7878/x', 'file://', 'http://127.0.0.1:7878.evil.example']) {
    assert.equal(sameOrigin(o, '127.0.0.1:7878'), false, String(o));
  }
});

test('web auth - cookie values are found by exact name', () => {
  assert.equal(cookieValue('a=1; hako_session_7878=abc; b=2', 'hako_session_7878'), 'abc');
  assert.equal(cookieValue('xhako_session_7878=abc', 'hako_session_7878'), undefined);
  assert.equal(cookieValue(undefined, 'hako_session_7878'), undefined);
});

test('web auth - a cookie request from another page of the same host is refused; writes need this Origin', () => {
  const req = (method: string, headers: Record<string, string>) => ({ method, headers: { host: '127.0.0.1:7878', ...headers } });
  assert.equal(cookieRequestProblem(req('GET', { 'sec-fetch-site': 'same-origin' })), null);
  assert.equal(cookieRequestProblem(req('GET', {})), null);
  assert.match(cookieRequestProblem(req('GET', { 'sec-fetch-site': 'same-site' }))!, /same-site request/);
  assert.match(cookieRequestProblem(req('GET', { 'sec-fetch-site': 'cross-site' }))!, /cross-site/);
  assert.equal(cookieRequestProblem(req('POST', { origin: 'http://127.0.0.1:7878', 'sec-fetch-site': 'same-origin' })), null);
  assert.match(cookieRequestProblem(req('POST', {}))!, /needs the Origin of this page \(got none\)/);
  assert.match(cookieRequestProblem(req('POST', { origin: 'http://127.0.0.1:9999' }))!, /got http:\/\/127\.0\.0\.1:9999/);
});

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test('web auth - attack 35: a sign-in code works once', () => {
  const auth = new WebAuth();
  const { code } = auth.issueCode();
  const first = auth.redeem(code);
  assert.ok(first.ok);
  assert.ok(auth.check(first.session));
  assert.deepEqual(auth.redeem(code), { ok: false, reason: 'this sign-in link is unknown or was already used' });
  assert.equal(auth.redeem('made-up').ok, false);
});

test('web auth - attack 35: an expired code is refused, and spent by the attempt', () => {
  const c = clock();
  const auth = new WebAuth({ now: c.now });
  const { code, expiresAt } = auth.issueCode();
  assert.equal(expiresAt, c.now() + CODE_TTL_MS);
  c.advance(CODE_TTL_MS);
  const r = auth.redeem(code);
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /expired/);
  c.advance(-1);
  assert.equal(auth.redeem(code).ok, false, 'a refused code is gone');
});

test('web auth - a session ends when unused for SESSION_IDLE_MS, and after SESSION_MAX_MS in any case', () => {
  const c = clock();
  const auth = new WebAuth({ now: c.now });
  const idle = auth.redeem(auth.issueCode().code) as { session: string };
  const busy = auth.redeem(auth.issueCode().code) as { session: string };
  for (let used = 0; used + SESSION_IDLE_MS / 2 < SESSION_MAX_MS; used += SESSION_IDLE_MS / 2) {
    assert.ok(auth.check(busy.session));
    c.advance(SESSION_IDLE_MS / 2);
  }
  assert.equal(auth.check(idle.session), false, 'idle session expired');
  c.advance(SESSION_IDLE_MS / 2);
  assert.equal(auth.check(busy.session), false, 'a busy session still ends at SESSION_MAX_MS');
  assert.equal(auth.check(undefined), false);
  assert.equal(auth.check('not-a-session'), false);
});

test('web auth - codes and sessions kept in memory are bounded', () => {
  const auth = new WebAuth();
  const codes = Array.from({ length: 40 }, () => auth.issueCode().code);
  assert.equal(auth.redeem(codes[0]!).ok, false, 'the oldest codes were dropped');
  assert.ok(auth.redeem(codes.at(-1)!).ok);
});

test('web auth - HAKO_HTTP_HOSTS is read once at start; a value that is not a host name is refused with a hint', () => {
  const base = { HAKO_HOME: '/tmp/hako-h', HAKO_CONFIG: '/tmp/hako-c' };
  assert.deepEqual(loadConfig(base).httpHosts, []);
  assert.deepEqual(loadConfig({ ...base, HAKO_HTTP_HOSTS: 'hako.lan, localhost:9000,[::1]:9000' }).httpHosts, ['hako.lan', 'localhost:9000', '[::1]:9000']);
  for (const bad of ['http://hako.lan', 'hako.lan/x', '*', 'a b']) {
    assert.throws(() => loadConfig({ ...base, HAKO_HTTP_HOSTS: bad }), /HAKO_HTTP_HOSTS: ".*" is not a host name: use names like hako\.lan or localhost:9000/);
  }
});
