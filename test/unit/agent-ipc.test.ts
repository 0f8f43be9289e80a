// The agent's side of the IPC and its start-up pieces: inbox order and dedupe, input checks,
// atomic outputs, reply splitting, configuration, the prompt, and the network forwarder.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipcFileName, isIpcFileName, MAX_IPC_FILE_BYTES } from '../../protocol/ipc.ts';
import { CONTAINER_PATHS, FORWARDER_PORT } from '../../protocol/container.ts';
import { Inbox, takeInput } from '../../agent/inbox.ts';
import { Outbox, splitText } from '../../agent/outbox.ts';
import { readConfig } from '../../agent/config.ts';
import { buildSystemPrompt, formatBatch, MEMORY_MAX_CHARS } from '../../agent/prompt.ts';
import { startForwarder } from '../../agent/forwarder.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-ipc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves with `pending`'s value, or 'nothing' when it has not settled within `ms`. */
function within<T>(pending: Promise<T>, ms: number): Promise<T | 'nothing'> {
  return Promise.race([pending, new Promise<'nothing'>((resolve) => setTimeout(() => resolve('nothing'), ms))]);
}

test('inbox - hands out existing files in name order, skipping temporaries and foreign names', async (t) => {
  const dir = await tempDir(t);
  const names = ['c', 'a', 'b'].map((id, i) => ipcFileName(id, 1000 + i));
  for (const n of [...names].reverse()) await writeFile(join(dir, n), '{}');
  await writeFile(join(dir, `.tmp-${ipcFileName('t')}`), '{}');
  await writeFile(join(dir, 'notes.txt'), '');
  const errors: unknown[] = [];
  const inbox = new Inbox({ dir, poll: { fastMs: 20 }, onError: (e) => errors.push(e) });
  inbox.start();
  assert.deepEqual([await inbox.next(), await inbox.next(), await inbox.next()], names);
  assert.equal(await within(inbox.next(), 100), 'nothing');
  inbox.close();
  assert.deepEqual(errors, []);
});

test('inbox - never hands out a name twice while the file stays (read-only in/), and finds new files', async (t) => {
  const dir = await tempDir(t);
  const first = ipcFileName('one');
  await writeFile(join(dir, first), '{}');
  const errors: unknown[] = [];
  const inbox = new Inbox({ dir, poll: { fastMs: 10 }, onError: (e) => errors.push(e) });
  inbox.start();
  assert.equal(await inbox.next(), first);
  const pending = inbox.next();
  assert.equal(await within(pending, 100), 'nothing'); // ten polls later, still not again
  const second = ipcFileName('two');
  await writeFile(join(dir, second), '{}');
  assert.equal(await pending, second);
  inbox.close();
  assert.deepEqual(errors, []);
});


test('inbox - once a new file arrives by a watch event, the safety poll slows down', async (t) => {
  const dir = await tempDir(t);
  const first = ipcFileName('already-there');
  await writeFile(join(dir, first), '{}');
  const inbox = new Inbox({ dir, poll: { fastMs: 60_000, slowMs: 120_000 }, onError: () => {} });
  t.after(() => inbox.close());
  inbox.start();
  assert.equal(await inbox.next(), first); // the start-up scan is done
  assert.equal(inbox.pollMs, 60_000, 'fast until events are seen');
  const name = ipcFileName('by-watch');
  await writeFile(join(dir, name), '{}');
  assert.equal(await within(inbox.next(), 5_000), name, 'found without any poll tick: inotify works');
  assert.equal(inbox.pollMs, 120_000);
});

test('inbox - without watch events (gVisor) the safety poll finds every file and stays fast', async (t) => {
  const dir = await tempDir(t);
  const inbox = new Inbox({ dir, watch: false, poll: { fastMs: 20, slowMs: 60_000 }, onError: () => {} });
  t.after(() => inbox.close());
  inbox.start();
  for (const id of ['one', 'two']) {
    const name = ipcFileName(id);
    await writeFile(join(dir, name), '{}');
    assert.equal(await within(inbox.next(), 2_000), name);
  }
  assert.equal(inbox.pollMs, 20);
});
test('inbox - close wakes a waiting next() with null', async (t) => {
  const inbox = new Inbox({ dir: await tempDir(t), onError: () => {} });
  inbox.start();
  const waiting = inbox.next();
  inbox.close();
  assert.equal(await waiting, null);
});

test('takeInput - parses, validates and consumes the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, ipcFileName('c1'));
  await writeFile(path, JSON.stringify({ v: 1, id: 'c1', type: 'close' }));
  assert.deepEqual(await takeInput(path), { ok: true, value: { v: 1, id: 'c1', type: 'close' } });
  assert.deepEqual(await readdir(dir), []);
});

test('takeInput - oversized files are refused without being parsed', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, ipcFileName('big'));
  await writeFile(path, ' '.repeat(MAX_IPC_FILE_BYTES + 1));
  assert.deepEqual(await takeInput(path), { ok: false, reason: `file is ${MAX_IPC_FILE_BYTES + 1} bytes; the limit is ${MAX_IPC_FILE_BYTES}` });
});

test('outbox - writes a valid output under an ordered IPC name, leaving no temporary file', async (t) => {
  const dir = await tempDir(t);
  const outbox = new Outbox(dir);
  const a = await outbox.write({ type: 'reply', batch: 'b1', text: 'hi' });
  const b = await outbox.write({ type: 'done', batch: 'b1' });
  assert.ok(isIpcFileName(a) && isIpcFileName(b));
  assert.deepEqual(await readdir(dir), [a, b].sort());
  assert.ok(a < b, 'names sort in creation order');
  const file = JSON.parse(await readFile(join(dir, a), 'utf8'));
  assert.equal(file.v, 1);
  assert.match(file.id, /^[0-9a-f-]{36}$/);
  assert.deepEqual({ ...file, id: 'x' }, { v: 1, id: 'x', type: 'reply', batch: 'b1', text: 'hi' });
});

test('outbox - an output the protocol would reject is refused before it is written', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(new Outbox(dir).write({ type: 'reply', batch: 'not a valid id!', text: 'x' }), /refusing to write an invalid output/);
  assert.deepEqual(await readdir(dir), []);
});

test('splitText - long replies split at line breaks into chunks under the limit, losing nothing', () => {
  assert.deepEqual(splitText('short', 10), ['short']);
  assert.deepEqual(splitText('aaaa\nbbbb\ncccc', 10), ['aaaa\nbbbb', 'cccc']);
  assert.deepEqual(splitText('x'.repeat(25), 10), ['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(5)]);
  // A surrogate pair is never cut in half.
  const emoji = `${'x'.repeat(9)}😀yy`;
  assert.deepEqual(splitText(emoji, 10), ['x'.repeat(9), '😀yy']);
});

test('config - defaults are the container paths and documented values', () => {
  const r = readConfig({ HAKO_MODEL: 'openai/gpt-oss:20b' });
  assert.ok(r.ok);
  assert.deepEqual(r.config, {
    model: { provider: 'openai', model: 'gpt-oss:20b' },
    group: 'unknown', isMain: false, assistantName: 'hako', maxSteps: 30, stream: true,
    maxSubagents: 4, turnTimeoutSeconds: 600,
    ipcDir: CONTAINER_PATHS.ipc, workspace: CONTAINER_PATHS.group, globalDir: CONTAINER_PATHS.global,
    proxySocket: CONTAINER_PATHS.proxySocket, forwarderPort: FORWARDER_PORT,
    contextTokens: 32_768, modelImages: false, transcribeModel: null, ipcEvents: null,
  });
});

test('config - every variable is read, and every problem is reported with what was expected', () => {
  const ok = readConfig({
    HAKO_MODEL: 'anthropic/claude', HAKO_GROUP: 'main', HAKO_IS_MAIN: '1', HAKO_ASSISTANT_NAME: 'Andy', HAKO_MAX_STEPS: '5',
    HAKO_STREAM: '0', HAKO_IPC_DIR: '/i', HAKO_WORKSPACE: '/w', HAKO_GLOBAL_DIR: '/g', HAKO_PROXY_SOCKET: '/p.sock', HAKO_FORWARDER_PORT: '0',
    HAKO_MAX_SUBAGENTS: '2', HAKO_TURN_TIMEOUT: '90', HAKO_CONTEXT_TOKENS: '16384', HAKO_MODEL_IMAGES: 'on', HAKO_TRANSCRIBE_MODEL: 'whisper-1',
    HAKO_IPC_EVENTS: '1',
  });
  assert.ok(ok.ok);
  assert.deepEqual(ok.config, {
    model: { provider: 'anthropic', model: 'claude' }, group: 'main', isMain: true, assistantName: 'Andy', maxSteps: 5,
    stream: false, ipcDir: '/i', workspace: '/w', globalDir: '/g', proxySocket: '/p.sock', forwarderPort: 0,
    maxSubagents: 2, turnTimeoutSeconds: 90, contextTokens: 16_384, modelImages: true, transcribeModel: 'whisper-1', ipcEvents: true,
  });
  const bad = readConfig({ HAKO_MAX_STEPS: 'lots', HAKO_STREAM: 'yes', HAKO_GROUP: 'Bad Name', HAKO_IPC_DIR: '/i', HAKO_IPC_EVENTS: 'maybe' });
  assert.ok(!bad.ok);
  assert.equal(bad.ipcDir, '/i');
  assert.equal(bad.problems.length, 5);
  assert.match(bad.problems.join('\n'), /HAKO_IPC_EVENTS is "maybe"; expected 1 or 0/);
  assert.match(bad.problems.join('\n'), /HAKO_MODEL is not set/);
  assert.match(bad.problems.join('\n'), /HAKO_MAX_STEPS is "lots"; expected a whole number from 1 to 1000 \(default 30\)/);
  assert.match(bad.problems.join('\n'), /HAKO_STREAM is "yes"; expected 1 or 0/);
  assert.match(bad.problems.join('\n'), /HAKO_GROUP: group name "Bad Name" is invalid/);
});

test('prompt - identity, rules and both memory files, re-read every time and capped', async (t) => {
  const dir = await tempDir(t);
  const o = { assistantName: 'Andy', group: 'family', isMain: false, workspace: join(dir, 'group'), globalDir: join(dir, 'global') };
  const bare = await buildSystemPrompt(o);
  assert.match(bare, /^You are Andy, .* chat group "family"\. This is not the main group/);
  assert.match(bare, /send_message only to report progress/);
  assert.doesNotMatch(bare, /## (Global|Group) memory/, 'missing memory files are left out');
  await mkdir(o.workspace, { recursive: true });
  await mkdir(o.globalDir, { recursive: true });
  await writeFile(join(o.globalDir, 'MEMORY.md'), 'global fact');
  await writeFile(join(o.workspace, 'MEMORY.md'), 'g'.repeat(MEMORY_MAX_CHARS + 10));
  const full = await buildSystemPrompt({ ...o, isMain: true });
  assert.match(full, /This is the main group/);
  assert.match(full, /## Global memory \(.*global\/MEMORY\.md\)\n\nglobal fact/);
  assert.match(full, /## Group memory/);
  assert.ok(full.includes(`${'g'.repeat(MEMORY_MAX_CHARS)}\n[… truncated`));
  assert.ok(full.indexOf('Global memory') < full.indexOf('Group memory'));
});

test('formatBatch - one line per message: [ts] sender: text', () => {
  assert.equal(formatBatch([
    { id: '1', sender: 'alice', text: 'hi', ts: '2025-01-01T00:00:00Z' },
    { id: '2', sender: 'bob', text: 'and me\ntoo', ts: '2025-01-01T00:01:00Z' },
  ]), '[2025-01-01T00:00:00Z] alice: hi\n[2025-01-01T00:01:00Z] bob: and me\ntoo');
});

test('forwarder - pipes a TCP connection to the Unix socket both ways, including half-close', async (t) => {
  const dir = await tempDir(t);
  const socketPath = join(dir, 'proxy.sock');
  // An upstream that answers only after the client has finished sending (FIN), like a request body reader.
  const upstream = createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`got: ${Buffer.concat(chunks).toString()}`));
  });
  upstream.listen(socketPath);
  await once(upstream, 'listening');
  t.after(() => upstream.close());
  const fwd = await startForwarder({ port: 0, socketPath, onError: () => {} });
  t.after(() => fwd.close());
  const c = connect({ port: fwd.port, host: '127.0.0.1', allowHalfOpen: true });
  c.end('ping');
  const reply: Buffer[] = [];
  c.on('data', (d: Buffer) => reply.push(d));
  await once(c, 'end');
  assert.equal(Buffer.concat(reply).toString(), 'got: ping');
});

test('forwarder - a missing proxy socket closes the client connection instead of hanging', async (t) => {
  const dir = await tempDir(t);
  const errors: unknown[] = [];
  const fwd = await startForwarder({ port: 0, socketPath: join(dir, 'absent.sock'), onError: (e) => errors.push(e) });
  t.after(() => fwd.close());
  const c = connect({ port: fwd.port, host: '127.0.0.1' });
  c.on('error', () => {});
  c.resume();
  await once(c, 'close');
  assert.match(String(errors[0]), /ENOENT/);
});
