// End to end against the real Docker engine and the real agent image: a message posted
// through the HTTP API is answered by an agent in a hardened container, tools work on the
// group folder, the conversation continues, and the model key never enters the container.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const CANARY = `sk-canary-${Math.random().toString(36).slice(2)}-must-never-leak`;

function containersOf(home: string, group: string): string[] {
  const out = execFileSync('docker', ['ps', '--filter', `label=dev.hako.home=${home}`, '--filter', `label=dev.hako.group=${group}`, '--format', '{{.Names}}'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

describe('openai provider, one host', () => {
  let model: ModelServer;
  let hako: HakoProcess;

  before(async () => {
    model = await startModelServer();
    hako = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: CANARY } });
  });

  after(async () => {
    const code = await hako?.stop();
    assert.equal(code, 0, `hako should exit cleanly on SIGTERM:\n${hako?.output.slice(-3000)}`);
    assert.deepEqual(containersOf(hako.home, 'main'), [], 'graceful shutdown stops the containers');
    hako.cleanup();
    await model?.close();
  });

  test('a message posted through the HTTP API is answered by the agent', async () => {
    model.script({ text: 'Hello from the container!' });
    const id = await hako.post('main', 'hi there');
    const [reply] = await hako.waitForReplies('main', id);
    assert.equal(reply!.text, 'Hello from the container!');
    assert.equal(reply!.role, 'assistant');
    const all = await hako.messages('main');
    assert.deepEqual(all.map((m) => [m.role, m.text]), [['user', 'hi there'], ['assistant', 'Hello from the container!']]);
    const req = model.requests.find((r) => r.path.startsWith('/v1/chat/completions'))!;
    assert.match(JSON.stringify(req.json.messages), /tester: hi there/);
    assert.equal(req.json.model, 'test-model');
    assert.equal(req.stream, true, 'the agent streams by default');
  });

  test('the container runs with the hardened flags and only the declared mounts', async () => {
    const [name] = containersOf(hako.home, 'main');
    assert.ok(name, 'the container stays warm after the turn');
    const info = JSON.parse(execFileSync('docker', ['inspect', name!], { encoding: 'utf8' }))[0];
    assert.equal(info.HostConfig.NetworkMode, 'none');
    // A network namespace of its own that holds nothing but its loopback (the forwarder's).
    assert.equal(execFileSync('docker', ['exec', name!, 'ls', '/sys/class/net'], { encoding: 'utf8' }).trim(), 'lo');
    assert.notEqual(execFileSync('docker', ['exec', name!, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).trim(), fs.readlinkSync('/proc/self/ns/net'));
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.ok(info.HostConfig.SecurityOpt.includes('no-new-privileges'));
    assert.ok(info.HostConfig.PidsLimit > 0 && info.HostConfig.Memory > 0 && info.HostConfig.NanoCpus > 0);
    assert.notEqual(info.Config.User.split(':')[0], '0');
    const targets = info.Mounts.map((m: { Destination: string; RW: boolean }) => `${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort();
    // Global memory is writable in the main group's container only (test/redteam/memory.test.ts covers the others).
    assert.deepEqual(targets, ['/ipc/in:ro', '/ipc/out:rw', '/run/hako:ro', '/workspace/global:rw', '/workspace/group:rw']);
  });

  test('the agent writes a file with a tool and it appears in the group folder on the host', async () => {
    model.script(
      { toolCalls: [{ name: 'write_file', args: { path: 'notes/todo.md', content: '- buy milk\n' } }] },
      { toolCalls: [{ name: 'bash', args: { command: 'cat notes/todo.md && id -u' } }] },
      { text: 'Saved your note.' },
    );
    const id = await hako.post('main', 'note: buy milk');
    const [reply] = await hako.waitForReplies('main', id);
    assert.equal(reply!.text, 'Saved your note.');
    assert.equal(fs.readFileSync(path.join(hako.home, 'groups', 'main', 'notes', 'todo.md'), 'utf8'), '- buy milk\n');
    const last = model.requests.at(-1)!;
    const toolResults = last.json.messages.filter((m: { role: string }) => m.role === 'tool').map((m: { content: string }) => m.content).join('\n');
    assert.match(toolResults, /- buy milk/);
    assert.doesNotMatch(toolResults, /^0$/m, 'the tool ran as a non-root user');
  });

  test('a second message sees the first in the conversation', async () => {
    model.script({ text: 'Noted: your favourite colour is teal.' });
    const first = await hako.post('main', 'my favourite colour is teal');
    await hako.waitForReplies('main', first);
    model.script((req) => ({ text: JSON.stringify(req.json.messages).includes('favourite colour is teal') ? 'It is teal.' : 'I do not know.' }));
    const second = await hako.post('main', 'what is my favourite colour?');
    const [reply] = await hako.waitForReplies('main', second);
    assert.equal(reply!.text, 'It is teal.');
    const history = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(history, /Noted: your favourite colour is teal\./, 'the previous answer is part of the context');
  });

  test('the real key reaches the model server in the header but appears nowhere in the container', async () => {
    model.script(
      { toolCalls: [{ name: 'bash', args: { command: 'env; cat /proc/1/environ /proc/self/environ | tr "\\0" "\\n"; grep -rIl "sk-canary" / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; echo scanned' } }] },
      { text: 'checked' },
    );
    const id = await hako.post('main', 'show me your environment');
    await hako.waitForReplies('main', id);
    const modelCalls = model.requests.filter((r) => r.path.startsWith('/v1/chat/completions'));
    assert.ok(modelCalls.length >= 2);
    for (const r of modelCalls) {
      assert.equal(r.headers.authorization, `Bearer ${CANARY}`, 'the proxy injects the real key');
      assert.ok(!r.body.includes(CANARY), 'no request body carries the key');
    }
    assert.match(model.requests.at(-1)!.body, /scanned/, 'the scan really ran');
    assert.match(model.requests.at(-1)!.body, /HAKO_MODEL=openai\/test-model/, 'the environment really was listed');
    const [name] = containersOf(hako.home, 'main');
    const inspect = execFileSync('docker', ['inspect', name!], { encoding: 'utf8' });
    assert.ok(!inspect.includes(CANARY), 'docker inspect shows no key');
    const env = execFileSync('docker', ['exec', name!, 'env'], { encoding: 'utf8' });
    assert.ok(!env.includes(CANARY));
    assert.match(env, /hako-placeholder|HAKO_MODEL/);
  });

  test('the main group registers a new group with its tool; the group gets its folder', async () => {
    model.script(
      { toolCalls: [{ name: 'register_group', args: { name: 'book-club', trigger: '@books' } }] },
      (req) => ({ text: /registered group \\"book-club\\"; its trigger is @books/.test(JSON.stringify(req.json.messages)) ? 'Registered.' : 'failed' }),
    );
    const id = await hako.post('main', 'please set up a group for the book club');
    const [reply] = await hako.waitForReplies('main', id);
    assert.equal(reply!.text, 'Registered.');
    const groups = await hako.api('/api/groups');
    assert.ok(groups.body.groups.some((g: { name: string; trigger: string }) => g.name === 'book-club' && g.trigger === '@books'));
    assert.ok(fs.existsSync(path.join(hako.home, 'groups', 'book-club', 'MEMORY.md')));
  });

  test('a non-main group cannot message another group, even by forging the IPC file', async () => {
    const add = await hako.cli(['groups', 'add', 'team']);
    assert.equal(add.code, 0, add.stderr);
    const mainBefore = (await hako.messages('main')).length;
    // The tool refuses (defence in depth); a compromised agent writes the file itself.
    const forged = JSON.stringify({ v: 1, id: 'forged1', type: 'send_message', text: 'pwned', group: 'main' });
    const name = '000000000000001-000000-forged1.json';
    model.script(
      { toolCalls: [{ name: 'send_message', args: { text: 'via the tool', group: 'main' } }] },
      { toolCalls: [{ name: 'bash', args: { command: `printf '%s' '${forged}' > /ipc/out/.x && mv /ipc/out/.x /ipc/out/${name} && echo planted` } }] },
      { text: 'tried' },
    );
    const id = await hako.post('team', '@hako please message main');
    const replies = await hako.waitForReplies('team', id);
    assert.deepEqual(replies.map((m) => m.text), ['tried']);
    const sent = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(sent, /only the main group may message other groups/, 'the tool refused');
    assert.match(sent, /planted/, 'the forged file was written');
    const rejected = path.join(hako.home, 'ipc', 'team', 'rejected');
    const reasons = fs.readdirSync(rejected).filter((f) => f.endsWith('.reason')).map((f) => fs.readFileSync(path.join(rejected, f), 'utf8'));
    assert.ok(reasons.some((r) => /group "team" may not message group "main"/.test(r)), reasons.join('\n'));
    const main = await hako.messages('main');
    assert.equal(main.length, mainBefore, 'main got nothing');
    assert.ok(!main.some((m) => m.text === 'pwned'));
  });
});

describe('anthropic provider', () => {
  test('the agent answers through the Anthropic messages format with the key as x-api-key', async (t) => {
    const model = await startModelServer();
    const hako = await HakoProcess.start({ env: { HAKO_MODEL: 'anthropic/test-claude', ANTHROPIC_BASE_URL: model.anthropicBaseURL, ANTHROPIC_API_KEY: CANARY } });
    t.after(async () => { await hako.stop(); hako.cleanup(); await model.close(); });
    model.script(
      { toolCalls: [{ name: 'write_file', args: { path: 'a.txt', content: 'from claude' } }] },
      { text: 'Done with Claude.' },
    );
    const id = await hako.post('main', 'write a.txt');
    const [reply] = await hako.waitForReplies('main', id);
    assert.equal(reply!.text, 'Done with Claude.');
    assert.equal(fs.readFileSync(path.join(hako.home, 'groups', 'main', 'a.txt'), 'utf8'), 'from claude');
    const calls = model.requests.filter((r) => r.path.startsWith('/v1/messages'));
    assert.equal(calls.length, 2);
    for (const r of calls) {
      assert.equal(r.headers['x-api-key'], CANARY);
      assert.equal(r.headers.authorization, undefined, 'the placeholder bearer token is stripped');
      assert.ok(!r.body.includes(CANARY));
      assert.equal(r.json.model, 'test-claude');
    }
    assert.ok(calls[1]!.body.includes('tool_result'), 'the tool result went back to the model');
  });
});
