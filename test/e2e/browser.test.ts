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
import { groupPaths } from '../../src/core/paths.ts';

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
    await page.locator('.msg.assistant:not(.partial)', { hasText: 'hello from the agent' }).waitFor();
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

/** A page signed in with a fresh `hako web` link, showing `group` once connected. */
async function signedIn(t: { after(fn: () => Promise<void>): void }, hako: HakoProcess, group = 'main') {
  const r = await hako.cli(['web']);
  assert.equal(r.code, 0, r.stderr);
  const fresh = /^(http:\/\/127\.0\.0\.1:\d+\/#code=\S+)$/m.exec(r.stdout)![1]!;
  const { context } = await browser(t);
  const page = await context.newPage();
  // Counted from before the page's own script runs: any blocked inline script or handler, any dialog.
  await page.addInitScript(() => {
    (window as any).violations = [];
    document.addEventListener('securitypolicyviolation', (e) => (window as any).violations.push(`${e.violatedDirective}: ${e.sample}`));
  });
  const dialogs: string[] = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  await page.goto(fresh);
  await page.locator('#status', { hasText: 'connected' }).waitFor();
  if (group !== 'main') {
    await page.selectOption('#group', group);
    await page.locator('#status', { hasText: 'connected' }).waitFor();
  }
  return { page, dialogs };
}

const shots = process.env.HAKO_TEST_SCREENSHOTS;

describe('the web chat shows messages safely and clearly', () => {
  let model: ModelServer;
  let hako: HakoProcess;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL } });
  });
  after(async () => {
    await hako.stop();
    hako.cleanup();
    await model.close();
  });

  test('web chat - hostile HTML from the model or in a sender name never executes and is shown as text', async (t) => {
    const { page, dialogs } = await signedIn(t, hako);
    const hostile = [
      'Here you go <img src=x onerror="window.pwned=\'img\'">',
      '<script>window.pwned = "script"; alert(1)</script>',
      '[click me](javascript:window.pwned="md-link")',
      '**bold <a href="javascript:window.pwned=\'a-tag\'">a link</a>**',
      '<svg onload="window.pwned=\'svg\'"><circle r="5"/></svg>',
      '- an item <iframe srcdoc="<script>parent.pwned=1</script>"></iframe>',
      '[a good link](https://example.com/docs)',
      'end of the hostile reply',
    ].join('\n\n');
    model.script({ text: hostile });
    const sender = '<img src=x onerror="window.pwned=\'sender\'"><b>Mallory</b>';
    await hako.post('main', 'hi <svg onload="window.pwned=\'user\'">', sender);
    const reply = page.locator('.msg.assistant:not(.partial)', { hasText: 'end of the hostile reply' });
    await reply.waitFor();
    const found = await page.evaluate(() => {
      const all = [...document.querySelectorAll('#log *')];
      return {
        pwned: (window as any).pwned,
        violations: (window as any).violations,
        elements: all.map((e) => e.localName).filter((n) => ['img', 'script', 'svg', 'iframe', 'b'].includes(n)),
        handlers: all.flatMap((e) => [...e.attributes].map((a) => a.name)).filter((n) => n.startsWith('on')),
        links: [...document.querySelectorAll('#log a')].map((a) => [a.getAttribute('href'), a.getAttribute('rel'), a.getAttribute('target')]),
      };
    });
    assert.deepEqual(found, { pwned: undefined, violations: [], elements: [], handlers: [], links: [['https://example.com/docs', 'noopener noreferrer', '_blank']] });
    assert.deepEqual(dialogs, []);
    const text = await reply.locator('.body').textContent();
    for (const shown of ['<img src=x onerror="window.pwned=\'img\'">', '<script>window.pwned = "script"; alert(1)</script>', '[click me](javascript:window.pwned="md-link")', '<svg onload="window.pwned=\'svg\'">', '<iframe srcdoc=']) {
      assert.ok(text!.includes(shown), `not shown as text: ${shown}\nin: ${text}`);
    }
    assert.equal(await reply.locator('strong').textContent(), 'bold <a href="javascript:window.pwned=\'a-tag\'">a link</a>');
    const fromSender = page.locator('.msg', { hasText: 'hi <svg onload=' });
    assert.match(await fromSender.locator('.who').textContent() ?? '', /<img src=x onerror="window\.pwned='sender'"><b>Mallory<\/b>/);
    if (shots) {
      await page.setViewportSize({ width: 375, height: 740 });
      await fromSender.scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(shots, 'hostile-phone.png') });
    }
  });

  test('web chat - Markdown renders: a code block is <pre><code> kept verbatim in monospace, a list is a list, bold is <strong>', async (t) => {
    const { page } = await signedIn(t, hako);
    model.script({ text: [
      '## The plan', '',
      'Some **bold**, *italic* and `inline code`.', '',
      '```ts', 'const x = "<b>kept</b>";', '  indented **not bold**', '```', '',
      '- first', '- second', '  - nested', '',
      '1. one', '2. two', '',
      '> quoted', '',
      'line one', 'line two',
    ].join('\n') });
    await page.fill('#text', 'show me markdown');
    await page.press('#text', 'Enter');
    const reply = page.locator('.msg.assistant:not(.partial)', { hasText: 'The plan' });
    await reply.waitFor();
    const seen = await reply.evaluate((m) => {
      const q = (s: string) => m.querySelector(s);
      return {
        h2: q('.body > h2')?.textContent,
        strong: q('p strong')?.textContent,
        em: q('p em')?.textContent,
        inline: q('p > code')?.textContent,
        code: q('pre > code')?.textContent,
        font: getComputedStyle(q('pre')!).fontFamily,
        bullets: [...m.querySelectorAll('.body > ul > li')].map((li) => li.firstChild?.textContent),
        nested: q('.body > ul > li > ul > li')?.textContent,
        numbers: [...m.querySelectorAll('.body > ol > li')].map((li) => li.textContent),
        quote: q('blockquote')?.textContent,
        breaks: q('.body > p:last-child')?.innerHTML,
      };
    });
    assert.deepEqual({ ...seen, font: undefined }, {
      h2: 'The plan', strong: 'bold', em: 'italic', inline: 'inline code',
      code: 'const x = "<b>kept</b>";\n  indented **not bold**', font: undefined,
      bullets: ['first', 'second'], nested: 'nested', numbers: ['one', 'two'], quote: 'quoted', breaks: 'line one<br>line two',
    });
    assert.match(seen.font, /mono|menlo|consolas/i);
  });

  test('web chat - "working…" shows while a turn runs for the group, also on a page opened mid-turn, and goes when it ends', async (t) => {
    const release = path.join(hako.home, 'groups', 'main', '.release-turn');
    model.script(
      { toolCalls: [{ name: 'bash', args: { command: 'while [ ! -e /workspace/group/.release-turn ]; do sleep 0.2; done; echo released', timeout_ms: 120_000 } }] },
      { text: 'finished the long job' },
    );
    const { page } = await signedIn(t, hako);
    assert.equal(await page.locator('#working').isVisible(), false, 'working before anything was asked');
    await page.fill('#text', 'do the long job');
    await page.press('#text', 'Enter');
    await page.locator('#working').waitFor({ state: 'visible' });
    assert.match(await page.locator('#working').textContent() ?? '', /working/);
    const { page: late } = await signedIn(t, hako);
    await late.locator('#working').waitFor({ state: 'visible' });
    if (shots) await page.screenshot({ path: path.join(shots, 'working-desktop.png') });
    fs.writeFileSync(release, '');
    t.after(() => fs.rmSync(release, { force: true }));
    for (const p of [page, late]) {
      await p.locator('.msg.assistant:not(.partial)', { hasText: 'finished the long job' }).waitFor();
      await p.locator('#working').waitFor({ state: 'hidden' });
    }
  });

  test('web chat - the reply shows in a provisional bubble as the model writes it, and the committed message replaces it', async (t) => {
    const { page } = await signedIn(t, hako);
    const held = 'Streaming **now**: the first half';
    const reply = `${held}, and then the second half.`;
    let release!: () => void;
    model.script({ text: reply, pause: { at: held.length, until: new Promise<void>((r) => { release = r; }) } });
    await page.fill('#text', 'stream to me');
    await page.press('#text', 'Enter');
    // The model holds the rest of its reply: the page can only show this while it is being written.
    const partial = page.locator('.msg.partial');
    await partial.locator('.body', { hasText: 'the first half' }).waitFor();
    assert.equal(await partial.locator('.body').textContent(), 'Streaming now: the first half');
    assert.equal(await partial.locator('strong').textContent(), 'now', 'the partial text is rendered as Markdown');
    assert.equal(await page.locator('.msg.assistant:not(.partial)', { hasText: 'Streaming' }).count(), 0, 'a committed reply while the model still wrote');
    assert.equal(await page.locator('#log > .msg').last().getAttribute('class'), 'msg assistant partial', 'the reply being written is the last bubble');
    if (shots) await page.screenshot({ path: path.join(shots, 'streaming-desktop.png') });
    release();
    const committed = page.locator('.msg.assistant:not(.partial)', { hasText: 'the second half' });
    await committed.waitFor();
    assert.equal(await partial.count(), 0, 'the provisional bubble is still there next to the committed reply');
    assert.equal(await page.locator('.msg.assistant', { hasText: 'Streaming' }).count(), 1);
    assert.equal(await committed.locator('.body').textContent(), 'Streaming now: the first half, and then the second half.');
    assert.deepEqual(await page.evaluate(() => (window as any).violations), []);
  });

  test('web chat - a message that did not engage the agent is marked; one that did is not', async (t) => {
    const add = await hako.cli(['groups', 'add', 'team']);
    assert.equal(add.code, 0, add.stderr);
    const { page } = await signedIn(t, hako, 'team');
    const quiet = await hako.post('team', 'just chatting, no trigger word', 'alice');
    const stored = (await hako.messages('team')).find((m) => m.id === quiet) as unknown as { engaged: boolean; owner: boolean };
    assert.deepEqual([stored.engaged, stored.owner], [false, true]);
    const marked = page.locator('.msg', { hasText: 'just chatting' });
    await marked.waitFor();
    assert.equal(await marked.locator('.note').textContent(), 'did not engage the agent');
    assert.match(await marked.getAttribute('class') ?? '', /not-engaged/);
    model.script({ text: 'hello team' });
    await hako.post('team', '@hako hello', 'alice');
    await page.locator('.msg.assistant:not(.partial)', { hasText: 'hello team' }).waitFor();
    const engaged = page.locator('.msg', { hasText: '@hako hello' });
    assert.equal(await engaged.locator('.note').count(), 0);
    assert.equal(await engaged.locator('.who').textContent(), 'You (alice)');
    assert.equal(await page.locator('.msg.assistant .who').last().textContent(), 'hako');
    if (shots) {
      await page.setViewportSize({ width: 375, height: 740 });
      await page.screenshot({ path: path.join(shots, 'not-engaged-phone.png') });
    }
  });

  test('web chat - signed out, the page is only the sign-in explanation (hako web), with no chat behind it and a strict CSP', async (t) => {
    const { context } = await browser(t);
    const page = await context.newPage();
    const res = await page.goto(`${hako.base}/`);
    const csp = res!.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'nonce-[A-Za-z0-9+/=]+'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const signin = page.locator('#signin');
    await signin.waitFor({ state: 'visible' });
    assert.match(await signin.textContent() ?? '', /hako web[\s\S]*npm run hako -- web/);
    assert.equal(await page.locator('#app').isVisible(), false);
    assert.equal(await page.locator('#text').isVisible(), false);
    if (shots) {
      await page.screenshot({ path: path.join(shots, 'signin-desktop.png') });
      await page.setViewportSize({ width: 375, height: 740 });
      await page.screenshot({ path: path.join(shots, 'signin-phone.png') });
    }
  });

  test('web chat - a picked file and a pasted screenshot go with the message, are shown on it by name, and are saved in the group\'s inbox', async (t) => {
    const { page } = await signedIn(t, hako);
    model.script({ text: 'got your files' });
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    await page.setInputFiles('#file', { name: 'call notes.txt', mimeType: 'text/plain', buffer: Buffer.from('call Ada on Monday') });
    await page.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'image.png', { type: 'image/png' }));
      document.getElementById('text')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, [...png]);
    const waiting = await page.locator('#pending .file').allTextContents();
    assert.equal(waiting.length, 2, `files waiting to be sent: ${waiting.join(', ')}`);
    assert.equal(waiting[0], 'call notes.txt×');
    assert.match(waiting[1]!, /^screenshot-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.png×$/);
    await page.fill('#text', 'see attached');
    if (shots) await page.screenshot({ path: path.join(shots, 'attachments-pending.png') });
    await page.press('#text', 'Enter');
    const sent = page.locator('.msg.owner', { hasText: 'see attached' });
    await sent.locator('.files .file').nth(1).waitFor();
    const shown = await sent.locator('.files .file').allTextContents();
    assert.equal(shown[0], 'call_notes.txt');
    assert.match(shown[1]!, /^screenshot-[\dT-]+\.png$/);
    assert.equal((await sent.locator('.body').textContent())!.trim(), 'see attached', 'the [attached: …] lines are shown as files, not as text');
    assert.equal(await page.locator('#pending').isHidden(), true, 'the sent files still wait');
    await page.locator('.msg.assistant:not(.partial)', { hasText: 'got your files' }).waitFor();
    if (shots) await page.screenshot({ path: path.join(shots, 'attachments-sent.png') });
    const day = path.join(groupPaths(hako.home, 'main').folder, 'inbox', new Date().toISOString().slice(0, 10));
    assert.equal(fs.readFileSync(path.join(day, 'call_notes.txt'), 'utf8'), 'call Ada on Monday');
    assert.deepEqual(fs.readFileSync(path.join(day, shown[1]!)), png);
    const asked = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.ok(asked.includes(`inbox/${path.basename(day)}/call_notes.txt (text/plain, 18 bytes)`), asked);
    assert.deepEqual(await page.evaluate(() => (window as any).violations), []);
  });

  test('web chat - usable at phone width (375 px) and on a desktop (1280 px): nothing runs off the side, the message box and Send are on screen', async (t) => {
    // Its own conversation to lay out, so that it runs alone as well as after the others.
    model.script({ text: '## Layout check\n\nA reply with **bold** text, `code` and a list:\n\n- one\n- two' });
    await hako.waitForReplies('main', await hako.post('main', 'check the layout'));
    const { page } = await signedIn(t, hako);
    await page.locator('.msg.assistant:not(.partial)', { hasText: 'Layout check' }).waitFor();
    for (const [name, width, height] of [['desktop', 1280, 800], ['phone', 375, 740]] as const) {
      await page.setViewportSize({ width, height });
      const box = await page.evaluate(() => {
        const r = (id: string) => document.getElementById(id)!.getBoundingClientRect();
        return { scroll: document.documentElement.scrollWidth, text: r('text'), send: r('send'), attach: r('attach'), log: r('log') };
      });
      assert.ok(box.scroll <= width, `${name}: the page is ${box.scroll} px wide`);
      for (const [what, b] of [['message box', box.text], ['Send', box.send], ['Attach', box.attach]] as const) {
        assert.ok(b.left >= 0 && b.right <= width && b.bottom <= height && b.width > 40, `${name}: ${what} is off screen: ${JSON.stringify(b)}`);
      }
      if (shots) await page.screenshot({ path: path.join(shots, `chat-${name}.png`) });
    }
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
