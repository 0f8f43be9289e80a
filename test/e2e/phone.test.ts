// "Reach it from your phone" (README.md), done for real: hako stays on loopback behind Caddy
// with the README's Caddyfile shape (plus `tls internal` and local ports), and a phone-sized
// Chromium signs in with a `hako web` link through https and chats. Also: hako refuses to
// listen off loopback unless told what protects it, and behind TLS its session cookie is Secure.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { HttpChannel } from '../../src/channels/http.ts';
import { silentLogger } from '../../src/core/log.ts';
import { loadConfig } from '../../src/core/config.ts';
import type { ChannelContext } from '../../src/core/channel.ts';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { freePort, HakoProcess, runCli } from '../support/hako.ts';

const CADDY = '/usr/bin/caddy';
const CHROMIUM = '/usr/bin/chromium';
const NAME = 'hako.test';

/** Whether something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

test('phone - hako start refuses a non-loopback HAKO_HTTP_BIND without TLS in front, names the fix, and listens on nothing', async () => {
  const home = tempDir('hako-home-');
  const configDir = tempDir('hako-config-');
  const port = await freePort();
  try {
    const r = await runCli(['start'], { HAKO_HOME: home, HAKO_CONFIG: configDir, HAKO_HTTP_PORT: String(port), HAKO_HTTP_BIND: '0.0.0.0' });
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /hako is running/);
    assert.match(r.stderr, /HAKO_HTTP_BIND=0\.0\.0\.0 is not a loopback address: the web chat and API would be served over plain HTTP beyond this machine/);
    assert.match(r.stderr, /Keep HAKO_HTTP_BIND=127\.0\.0\.1 and put a TLS proxy in front \(Caddy or tailscale serve: see "Reach it from your phone" in README\.md\)/);
    assert.match(r.stderr, /set HAKO_HTTP_BEHIND_TLS=1; to accept plain HTTP anyway, set HAKO_HTTP_ALLOW_INSECURE=1/);
    assert.equal(await listening(port), false);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(configDir, { recursive: true, force: true });
  }
});

test('phone - HAKO_HTTP_BIND and its TLS settings are checked once at start; a wrong value is refused with what to write instead', () => {
  const base = { HAKO_HOME: '/tmp/hako-bind-home', HAKO_CONFIG: '/tmp/hako-bind-config' };
  assert.equal(loadConfig(base).httpBind, '127.0.0.1');
  assert.equal(loadConfig(base).httpExposure, 'loopback');
  for (const bind of ['127.0.0.2', '::1', '[::1]', 'localhost']) assert.equal(loadConfig({ ...base, HAKO_HTTP_BIND: bind }).httpExposure, 'loopback', bind);
  for (const bind of ['0.0.0.0', '::', '192.168.1.20', '100.101.102.103']) {
    assert.throws(() => loadConfig({ ...base, HAKO_HTTP_BIND: bind }), /is not a loopback address: .* set HAKO_HTTP_BEHIND_TLS=1; to accept plain HTTP anyway, set HAKO_HTTP_ALLOW_INSECURE=1/, bind);
  }
  assert.equal(loadConfig({ ...base, HAKO_HTTP_BIND: '0.0.0.0', HAKO_HTTP_BEHIND_TLS: '1' }).httpExposure, 'behind-tls');
  assert.equal(loadConfig({ ...base, HAKO_HTTP_BIND: '0.0.0.0', HAKO_HTTP_ALLOW_INSECURE: '1' }).httpExposure, 'insecure');
  assert.equal(loadConfig({ ...base, HAKO_HTTP_BEHIND_TLS: '1' }).httpExposure, 'behind-tls', 'loopback behind a local proxy');
  assert.throws(() => loadConfig({ ...base, HAKO_HTTP_BIND: 'my-laptop.lan' }), /HAKO_HTTP_BIND="my-laptop\.lan" is not an IP address: use 127\.0\.0\.1 \(the default\)/);
  assert.throws(() => loadConfig({ ...base, HAKO_HTTP_BEHIND_TLS: 'yes' }), /HAKO_HTTP_BEHIND_TLS="yes" is invalid: use 1 or 0/);
  assert.throws(() => loadConfig({ ...base, HAKO_HTTP_BEHIND_TLS: '1', HAKO_HTTP_ALLOW_INSECURE: '1' }), /contradict each other: set only the one that is true/);
});

const ctx: ChannelContext = {
  accept: async () => { throw new Error('not used'); },
  receive: async () => { throw new Error('not used'); },
  groupFor: () => undefined,
  listMessages: () => [],
  listGroups: () => [],
  getGroup: () => undefined,
  subscribe: () => () => {},
  watchTurns: () => () => {},
  refused: () => {},
};

/** Signs in on `ch` over plain loopback HTTP as the page does; returns the Set-Cookie header. */
async function signInCookie(ch: HttpChannel): Promise<string> {
  const code = ch.signInLink().url.split('#code=')[1]!;
  const origin = `http://127.0.0.1:${ch.port}`;
  const res = await fetch(`${origin}/api/session`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(res.status, 200);
  return res.headers.get('set-cookie') ?? '';
}

test('phone - the HTTP channel itself fails closed: a non-loopback address needs behind-tls or insecure, and only behind TLS is the cookie Secure', async (t) => {
  const refused = new HttpChannel({ port: 0, token: 'x'.repeat(32), log: silentLogger, host: '0.0.0.0' });
  await assert.rejects(refused.start(ctx), /HAKO_HTTP_BIND=0\.0\.0\.0 is not a loopback address/);
  assert.equal(refused.address.address, '', 'it bound nothing');

  const insecure = new HttpChannel({ port: 0, token: 'x'.repeat(32), log: silentLogger, host: '0.0.0.0', exposure: 'insecure' });
  await insecure.start(ctx);
  t.after(() => insecure.stop());
  assert.equal(insecure.address.address, '0.0.0.0');
  assert.doesNotMatch(await signInCookie(insecure), /Secure/);

  const proxied = new HttpChannel({ port: 0, token: 'x'.repeat(32), log: silentLogger, exposure: 'behind-tls' });
  await proxied.start(ctx);
  t.after(() => proxied.stop());
  assert.equal(proxied.address.address, '127.0.0.1');
  assert.match(await signInCookie(proxied), /; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+; Secure$/);
});

/** Caddy with the README's site block, `tls internal`, on free local ports; its own HOME. */
async function startCaddy(upstream: number): Promise<{ child: ChildProcess; port: number; ca: string; dir: string; output: () => string }> {
  const dir = tempDir('hako-caddy-');
  const port = await freePort();
  const httpPort = await freePort();
  const caddyfile = path.join(dir, 'Caddyfile');
  fs.writeFileSync(caddyfile, `{
\tadmin off
\tskip_install_trust
\thttp_port ${httpPort}
\thttps_port ${port}
}

${NAME}:${port} {
\ttls internal
\treverse_proxy 127.0.0.1:${upstream}
}
`);
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: path.join(dir, 'data'), XDG_CONFIG_HOME: path.join(dir, 'config') };
  const child = spawn(CADDY, ['run', '--config', caddyfile, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const ca = path.join(dir, 'data', 'caddy', 'pki', 'authorities', 'local', 'root.crt');
  // Caddy writes its root certificate and then serves; both are needed before the first request.
  const deadline = Date.now() + 30_000;
  while (!(fs.existsSync(ca) && await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`caddy did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, ca, dir, output: () => out };
}

/** An https request to Caddy as a phone on the network would make it: by name, checking the certificate. */
function viaTls(caddy: { port: number; ca: string }, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: caddy.port, servername: NAME, ca: fs.readFileSync(caddy.ca), path: p, method: opts.method ?? 'GET',
      headers: { host: `${NAME}:${caddy.port}`, ...opts.headers },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('phone - hako on loopback behind Caddy with TLS (the README\'s Caddyfile)', () => {
  let model: ModelServer;
  let hako: HakoProcess;
  let caddy: Awaited<ReturnType<typeof startCaddy>>;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_HTTP_HOSTS: NAME, HAKO_HTTP_BEHIND_TLS: '1' } });
    caddy = await startCaddy(hako.port);
  });
  after(async () => {
    caddy.child.kill('SIGTERM');
    await hako.stop();
    hako.cleanup();
    await model.close();
    fs.rmSync(caddy.dir, { recursive: true, force: true });
  });

  /** The code of a fresh `hako web` link, run on the host machine as the README says. */
  async function webCode(): Promise<string> {
    const r = await hako.cli(['web']);
    assert.equal(r.code, 0, r.stderr);
    return /#code=([A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
  }

  test('phone - still bound to loopback only, a `hako web` code signs in through https with a Secure cookie that then reads the API', async () => {
    assert.equal(hako.logEvents().find((e) => e.msg === 'http channel listening')?.address, '127.0.0.1');
    const origin = `https://${NAME}:${caddy.port}`;
    const signIn = await viaTls(caddy, '/api/session', { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ code: await webCode() }) });
    assert.equal(signIn.status, 200, signIn.body);
    const cookie = String(signIn.headers['set-cookie']);
    assert.match(cookie, new RegExp(`^hako_session_${hako.port}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/; Max-Age=\\d+; Secure$`));
    const groups = await viaTls(caddy, '/api/groups', { headers: { cookie: cookie.split(';')[0]!, 'sec-fetch-site': 'same-origin' } });
    assert.equal(groups.status, 200, groups.body);
    assert.deepEqual(JSON.parse(groups.body).groups.map((g: { name: string }) => g.name), ['main']);
    const page = await viaTls(caddy, '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>/);
  });

  test('phone - a phone-sized Chromium opens the `hako web` link at the https name, signs in and chats', async (t) => {
    const profile = tempDir('hako-chromium-');
    // The name resolves to this machine; the certificate is Caddy's own CA, which this
    // throwaway profile does not trust (the Node test above checks the chain for real).
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
      args: ['--disable-gpu', '--disable-background-networking', `--host-resolver-rules=MAP ${NAME} 127.0.0.1`],
    });
    t.after(async () => {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    });
    const page = await context.newPage();
    // The link as the README says to make it: `hako web --base` with the phone's address.
    const web = await hako.cli(['web', '--base', `https://${NAME}:${caddy.port}`]);
    assert.equal(web.code, 0, web.stderr);
    const link = web.stdout.split('\n')[0]!;
    assert.match(link, new RegExp(`^https://${NAME.replace(/\./g, '\\.')}:${caddy.port}/#code=[A-Za-z0-9_-]+$`));
    await page.goto(link);
    await page.locator('#text').waitFor();
    model.script({ text: 'hello, phone' });
    await page.fill('#text', 'hello from my phone');
    await page.press('#text', 'Enter');
    await page.locator('.msg.assistant', { hasText: 'hello, phone' }).waitFor();
    if (process.env.HAKO_TEST_SCREENSHOT) await page.screenshot({ path: process.env.HAKO_TEST_SCREENSHOT });
    const cookies = await context.cookies();
    assert.deepEqual(cookies.map((c) => [c.name, c.secure, c.httpOnly, c.sameSite]), [[`hako_session_${hako.port}`, true, true, 'Strict']]);
    const stored = await hako.messages('main');
    assert.ok(stored.some((m) => m.role === 'user' && m.text === 'hello from my phone'), JSON.stringify(stored));
  });

  test('phone - behind TLS, the `hako web` link still works on the computer itself at http://127.0.0.1 (browsers keep a Secure cookie for loopback)', async (t) => {
    const profile = tempDir('hako-chromium-');
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--disable-gpu', '--disable-background-networking'] });
    t.after(async () => {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    });
    const r = await hako.cli(['web']);
    const page = await context.newPage();
    await page.goto(/^http:\/\/127\.0\.0\.1:\d+\/#code=\S+/m.exec(r.stdout)![0]);
    await page.locator('#text').waitFor();
    model.script({ text: 'hello, desk' });
    await page.fill('#text', 'hello from my desk');
    await page.press('#text', 'Enter');
    await page.locator('.msg.assistant', { hasText: 'hello, desk' }).waitFor();
    assert.deepEqual((await context.cookies()).map((c) => [c.name, c.secure]), [[`hako_session_${hako.port}`, true]]);
  });
});
