// Attacks 35 and 36 in a real browser (headless Chromium through playwright-core) against a
// real host: the web chat signs in with the one-time link that `hako start` prints, and the
// long-lived API token must then be in no file of the browser's profile (history, cookies,
// storage, caches); a link works once; and a DNS-rebinding page gets nothing at all.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const CHROMIUM = '/usr/bin/chromium';

/** A browser with a fresh profile folder of its own, as a person's would be. */
async function browser(t: { after(fn: () => Promise<void>): void }, args: string[] = []): Promise<{ context: BrowserContext; profile: string }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ['--disable-gpu', '--disable-background-networking', ...args],
  });
  t.after(async () => {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  });
  return { context, profile };
}

/** Every file under `dir` that holds `secret`, as UTF-8/Latin-1 or UTF-16 (how Chromium keeps storage values). */
function filesHolding(dir: string, secret: string): string[] {
  const needles = [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le')];
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const data = fs.readFileSync(file);
    if (needles.some((n) => data.includes(n))) found.push(path.relative(dir, file));
  }
  return found;
}

describe('the web chat in a real browser', () => {
  let model: ModelServer;
  let hako: HakoProcess;
  let link: string;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL } });
    link = /web chat:\s+(\S+)/.exec(hako.output)![1]!;
  });
  after(async () => {
    await hako.stop();
    hako.cleanup();
    await model.close();
  });

  test('attack 35 - after signing in with the start link and chatting, no file of the browser profile holds the API token', async (t) => {
    assert.ok(!link.includes(hako.token), 'the printed link holds the token');
    const { context, profile } = await browser(t);
    const page = await context.newPage();
    await page.goto(link);
    await page.locator('#status', { hasText: 'connected' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the code is still in the address bar');
    model.script({ text: 'hello from the agent' });
    await page.fill('#text', 'hello from the browser');
    await page.press('#text', 'Enter');
    await page.locator('.msg.assistant', { hasText: 'hello from the agent' }).waitFor();
    if (process.env.HAKO_TEST_SCREENSHOT) await page.screenshot({ path: process.env.HAKO_TEST_SCREENSHOT });
    const cookies = await context.cookies();
    assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly, c.sameSite, c.path]), [[`hako_session_${hako.port}`, true, 'Strict', '/']]);
    assert.equal(await page.evaluate(() => document.cookie), '', 'page scripts can read the session');
    await context.close(); // writes history, cookies and storage out to the profile
    const files = fs.readdirSync(profile, { recursive: true });
    assert.ok(files.some((f) => String(f).endsWith('History')), `no History file was written: ${files.join(', ')}`);
    assert.deepEqual(filesHolding(profile, hako.token), []);
  });

  test('attack 35 - a sign-in link works once: opened again, it is refused and nothing is shown', async (t) => {
    const { context } = await browser(t);
    const page = await context.newPage();
    await page.goto(link);
    await page.locator('#why', { hasText: 'already used' }).waitFor();
    assert.equal(await page.locator('.msg').count(), 0);
    assert.deepEqual(await context.cookies(), []);
  });

  test('hako web prints a new one-time link that signs a browser in', async (t) => {
    const r = await hako.cli(['web']);
    assert.equal(r.code, 0, r.stderr);
    const fresh = /^(http:\/\/127\.0\.0\.1:\d+\/#code=\S+)$/m.exec(r.stdout)?.[1];
    assert.ok(fresh && fresh !== link && !fresh.includes(hako.token), r.stdout);
    const { context } = await browser(t);
    const page = await context.newPage();
    await page.goto(fresh);
    await page.locator('#status', { hasText: 'connected' }).waitFor();
    assert.equal(await page.locator('#group option').first().textContent(), 'main (main)');
  });

  test('attack 36 - a DNS-rebinding page gets nothing: the page, the API and the event stream all answer 421', async (t) => {
    // The attacker's name resolves to 127.0.0.1, so its page is "same-origin" with hako.
    const { context } = await browser(t, ['--host-resolver-rules=MAP rebind.test 127.0.0.1']);
    const page = await context.newPage();
    const res = await page.goto(`http://rebind.test:${hako.port}/`);
    assert.equal(res!.status(), 421);
    assert.doesNotMatch(await page.content(), /<textarea/);
    const seen = await page.evaluate(async (token) => Promise.all(['/api/groups', '/api/groups/main/events', '/api/groups/main/messages'].map(async (p) => {
      const r = await fetch(p, { headers: { authorization: `Bearer ${token}` } });
      return [p, r.status, (await r.text()).slice(0, 200)];
    })), hako.token);
    for (const [p, status, body] of seen) {
      assert.equal(status, 421, `${p}: ${body}`);
      assert.doesNotMatch(String(body), /"groups"|"messages"|connected/);
    }
    const post = await page.evaluate(async () => (await fetch('/api/groups/main/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"from the rebinding page"}' })).status);
    assert.equal(post, 421);
    assert.deepEqual((await hako.messages('main')).filter((m) => m.text.includes('rebinding')), []);
  });
});

describe('the web chat header when the model cannot be used', () => {
  test('web chat - the header says the model is not ready (no key) instead of a plain "connected"', async (t) => {
    const hako = await HakoProcess.start({ env: { HAKO_MODEL: 'anthropic/test-claude' } });
    t.after(async () => { await hako.stop(); hako.cleanup(); });
    const link = /web chat:\s+(\S+)/.exec(hako.output)![1]!;
    const { context } = await browser(t);
    const page = await context.newPage();
    await page.goto(link);
    const header = page.locator('#status', { hasText: 'model not ready' });
    await header.waitFor();
    assert.match(await header.textContent() ?? '', /^connected — model not ready: model anthropic\/test-claude needs ANTHROPIC_API_KEY/);
  });
});
