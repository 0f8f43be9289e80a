// The archive (agent/archive.ts): every turn appended as Markdown to conversations/<day>.md,
// through the real turn (runBatch) and directly; links in the agent's folder are not followed.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchFile } from '../../protocol/ipc.ts';
import { archiveFile, archiveTurn } from '../../agent/archive.ts';
import { Outbox } from '../../agent/outbox.ts';
import type { Message, ModelRequest, ModelResult, Provider } from '../../agent/providers/provider.ts';
import { runBatch } from '../../agent/turn.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-archive-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Answers "run <cmd>" with one bash call, then with "ran it"; anything else with "ok <n>". */
class ScriptedProvider implements Provider {
  n = 0;
  async complete(req: ModelRequest): Promise<ModelResult> {
    const last = req.messages.at(-1);
    if (last?.role === 'tool') return { stopReason: 'stop', text: 'ran it', toolCalls: [] };
    const cmd = last?.role === 'user' ? /run (.+)$/.exec(last.text)?.[1] : undefined;
    if (cmd) return { stopReason: 'tool_use', text: 'running it', toolCalls: [{ id: 'c1', name: 'bash', args: { command: cmd } }] };
    return { stopReason: 'stop', text: `ok ${++this.n}`, toolCalls: [] };
  }
}

async function runTurn(root: string, id: string, input: string, provider: Provider) {
  const workspace = join(root, 'group');
  const globalDir = join(root, 'global');
  const outDir = join(root, 'out');
  for (const d of [workspace, globalDir, outDir]) await mkdir(d, { recursive: true });
  const batch: BatchFile = { v: 1, id, type: 'batch', messages: [{ id: `m-${id}`, sender: 'alice', text: input, ts: '2025-01-02T03:04:05.000Z' }] };
  return runBatch(batch, {
    provider, outbox: new Outbox(outDir), requests: { send: async () => { throw new Error('no host'); } }, log: () => {},
    signal: new AbortController().signal,
    settings: { assistantName: 'hako', group: 'team', isMain: true, workspace, globalDir, maxSteps: 4, contextTokens: 32_768 },
  });
}

test('archive - every turn is appended in order as readable Markdown, tool calls and results included', async (t) => {
  const root = await tempDir(t);
  const p = new ScriptedProvider();
  await runTurn(root, 'b1', 'first question', p);
  await runTurn(root, 'b2', 'run echo hello-from-bash', p);
  await runTurn(root, 'b3', 'third question', p);
  const dir = join(root, 'group', 'conversations');
  const files = await readdir(dir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^\d{4}-\d{2}-\d{2}\.md$/);
  const md = await readFile(join(dir, files[0]!), 'utf8');
  const headings = [...md.matchAll(/^## \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC · (.+)$/gm)].map((m) => m[1]);
  assert.deepEqual(headings, ['batch b1', 'batch b2', 'batch b3']);
  const order = ['first question', 'ok 1', 'run echo hello-from-bash', 'running it', '**tool call** `bash`', '"command": "echo hello-from-bash"', '**tool result** `bash`', 'hello-from-bash\n', 'ran it', 'third question', 'ok 2'];
  let at = 0;
  for (const piece of order) {
    const i = md.indexOf(piece, at);
    assert.ok(i >= 0, `"${piece}" appears after position ${at}`);
    at = i + piece.length;
  }
  assert.equal((await lstat(join(dir, files[0]!))).mode & 0o777, 0o600);
});

test('archive - a failed turn is archived too, marked with its stop reason', async (t) => {
  const root = await tempDir(t);
  const failing: Provider = { complete: async () => ({ stopReason: 'error', text: '', toolCalls: [], error: 'openai: 500', retryable: true }) };
  await runTurn(root, 'b1', 'this one fails', failing);
  const md = await readFile(archiveFile(join(root, 'group'), new Date()), 'utf8');
  assert.match(md, /· batch b1 \(error\)\n\n\*\*user\*\*\n\n\[2025-01-02T03:04:05\.000Z\] alice: this one fails/);
});

test('archive - output containing a code fence stays inside its block', async (t) => {
  const dir = await tempDir(t);
  const at = new Date('2026-03-04T05:06:07Z');
  const messages: Message[] = [
    { role: 'user', text: 'show it' },
    { role: 'tool', toolCallId: 'c', name: 'read_file', text: 'before\n```\n## not a heading\n```\nafter', isError: false },
  ];
  await archiveTurn(dir, { at, title: 'fences', messages });
  const md = await readFile(join(dir, 'conversations', '2026-03-04.md'), 'utf8');
  assert.match(md, /^## 2026-03-04 05:06:07 UTC · fences$/m);
  assert.match(md, /\n````\nbefore\n```\n## not a heading\n```\nafter\n````\n/);
});

test('archive - a conversations folder that is a link is refused: nothing is written through it, and the turn still answers', async (t) => {
  const root = await tempDir(t);
  const elsewhere = join(root, 'elsewhere');
  await mkdir(join(root, 'group'), { recursive: true });
  await mkdir(elsewhere);
  await symlink(elsewhere, join(root, 'group', 'conversations'));
  const result = await runTurn(root, 'b1', 'hello', new ScriptedProvider());
  assert.equal(result.stopReason, 'stop');
  assert.deepEqual(await readdir(elsewhere), []);
});

test('archive - a day file that is a link is not followed', async (t) => {
  const dir = await tempDir(t);
  const at = new Date('2026-03-04T05:06:07Z');
  const target = join(dir, 'victim.txt');
  await writeFile(target, 'untouched');
  await mkdir(join(dir, 'conversations'));
  await symlink(target, archiveFile(dir, at));
  await archiveTurn(dir, { at, title: 't', messages: [{ role: 'user', text: 'x' }] });
  assert.equal(await readFile(target, 'utf8'), 'untouched');
});

test('archive - a group folder that cannot be written is logged, not thrown', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'not-a-folder');
  await writeFile(file, '');
  await archiveTurn(file, { at: new Date(), title: 't', messages: [{ role: 'user', text: 'x' }] });
});
