// `hako chat` the way a user meets it: in a real terminal (tmux) against a real host, with
// other clients writing to the same group, the host going away and coming back, and a
// model that is not ready when the chat is driven by a script.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess, runCli } from '../support/hako.ts';
import { Terminal } from '../support/terminal.ts';

function openaiEnv(model: ModelServer): Record<string, string> {
  return { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test' };
}

/** A terminal whose `hako` commands talk to this host (same home, config and port). */
function terminalFor(h: HakoProcess): Terminal {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(HAKO_|ANTHROPIC_|OPENAI_|TMUX)/.test(k)) env[k] = v;
  return new Terminal({ ...env, HAKO_HOME: h.home, HAKO_CONFIG: h.configDir, HAKO_HTTP_PORT: String(h.port) });
}

const rows = (screen: string) => screen.split('\n');

describe('hako chat in a terminal', () => {
  test('hako chat - it opens with the recent conversation, every message with its sender, and shows another client\'s question with its answer', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    const term = terminalFor(h);
    t.after(async () => { term.close(); await h.stop(); h.cleanup(); await model.close(); });
    model.script({ text: 'earlier answer' });
    await h.waitForReplies('main', await h.post('main', 'earlier question', 'alice'));

    term.run('chat', ['chat', 'main', '--sender', 'owner']);
    let screen = await term.waitFor('chat', (s) => s.includes('chatting with "main" as owner'), 'the chat prompt');
    const opened = rows(screen);
    assert.ok(opened.includes('alice: earlier question'), screen);
    assert.ok(opened.includes('hako: earlier answer'), screen);

    model.script({ text: 'answer for bob' });
    await h.post('main', 'question from the web', 'bob');
    screen = await term.waitFor('chat', (s) => s.includes('hako: answer for bob'), 'the other client\'s answer');
    const later = rows(screen);
    assert.ok(later.indexOf('bob: question from the web') >= 0, `the other client's question is not shown:\n${screen}`);
    assert.ok(later.indexOf('bob: question from the web') < later.indexOf('hako: answer for bob'), screen);

    model.script({ text: 'answer for the owner' });
    term.tmux('send-keys', '-t', 'hako:chat', 'my own line', 'Enter');
    screen = await term.waitFor('chat', (s) => s.includes('hako: answer for the owner'), 'the answer to the typed line');
    assert.deepEqual(rows(screen).filter((r) => r.startsWith('owner: my own line')), [], 'the line typed here is not shown twice');
  });

  test('hako chat - when hako stops it says so and keeps what is typed; when hako is back it reconnects by itself, sends it and shows the answer; Ctrl+D then leaves', async (t) => {
    const model = await startModelServer();
    const first = await HakoProcess.start({ env: openaiEnv(model) });
    const term = terminalFor(first);
    let second: HakoProcess | undefined;
    t.after(async () => { term.close(); await first.stop(); await second?.stop(); first.cleanup(); await model.close(); });
    term.run('chat', ['chat', 'main', '--sender', 'owner'], { reportExit: true });
    await term.waitFor('chat', (s) => s.includes('chatting with "main"'), 'the chat prompt');

    assert.equal(await first.stop(), 0);
    await term.waitFor('chat', (s) => /-- lost the connection to hako \((hako closed it|hako is not running)\); reconnecting…/.test(s), 'the lost-connection notice');
    term.tmux('send-keys', '-t', 'hako:chat', 'typed while away', 'Enter');
    await term.waitFor('chat', (s) => s.includes('it is sent when hako is back'), 'the kept-line notice');
    assert.equal(term.show('chat', '#{pane_dead}'), '0', 'the chat is still running');

    model.script({ text: 'welcome back' });
    second = await HakoProcess.start({ home: first.home, configDir: first.configDir, env: { ...openaiEnv(model), HAKO_HTTP_PORT: String(first.port) } });
    const screen = await term.waitFor('chat', (s) => s.includes('hako: welcome back'), 'the answer to the kept line', 120_000);
    assert.ok(rows(screen).includes('-- reconnected to hako'), screen);
    const asked = model.requests.at(-1)!;
    assert.match(JSON.stringify(asked.body), /typed while away/, 'the kept line reached the agent');

    term.tmux('send-keys', '-t', 'hako:chat', 'C-d');
    const ended = await term.waitFor('chat', (s) => /\[exit \d+\]/.test(s), 'the chat exiting after Ctrl+D');
    assert.match(ended, /\[exit 0\]/, 'it exited 0');
  });

  test('hako chat - piped, with no model key, it says so and exits at once instead of waiting out --timeout; the message is kept', { timeout: 60_000 }, async (t) => {
    const h = await HakoProcess.start({ env: { HAKO_MODEL: 'anthropic/test-claude' } });
    t.after(async () => { await h.stop(); h.cleanup(); });
    const r = await runCli(['chat', 'main', '--sender', 'cli', '--timeout', '300'], { HAKO_HOME: h.home, HAKO_CONFIG: h.configDir, HAKO_HTTP_PORT: String(h.port) }, 'note this for later\n');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /needs ANTHROPIC_API_KEY/);
    assert.match(r.stderr, /not waiting for answers: the model is not ready \(1 message\(s\) kept/);
    assert.ok((await h.messages('main')).some((m) => m.text === 'note this for later'), 'the message is stored');
  });
});
