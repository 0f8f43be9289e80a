// The group's conversation history: persistence, reload, trimming at turn boundaries, recovery.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HISTORY_FILE } from '../../protocol/container.ts';
import { appendHistory, loadHistory, trimHistory, HISTORY_TOOL_RESULT_CHARS } from '../../agent/history.ts';
import type { Message } from '../../agent/providers/provider.ts';

async function historyFile(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-history-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, HISTORY_FILE);
}

/** One turn: a user message, `tools` tool round trips, and a final answer. */
function turn(n: number, tools = 1): Message[] {
  const out: Message[] = [{ role: 'user', text: `question ${n}` }];
  for (let i = 0; i < tools; i++) {
    out.push({ role: 'assistant', text: '', toolCalls: [{ id: `c${n}-${i}`, name: 'bash', args: { command: 'ls' } }] });
    out.push({ role: 'tool', toolCallId: `c${n}-${i}`, name: 'bash', text: 'a.txt', isError: false });
  }
  out.push({ role: 'assistant', text: `answer ${n}`, toolCalls: [] });
  return out;
}

function assertNoSplitPairs(messages: readonly Message[]): void {
  assert.equal(messages[0]?.role, 'user', 'history starts with a user message');
  const calls = new Set<string>();
  for (const m of messages) {
    if (m.role === 'assistant') for (const c of m.toolCalls) calls.add(c.id);
    if (m.role === 'tool') assert.ok(calls.has(m.toolCallId), `tool result ${m.toolCallId} lost its call`);
  }
}

test('history - a missing file loads as empty', async (t) => {
  assert.deepEqual(await loadHistory(await historyFile(t)), { messages: [] });
});

test('history - appended turns are saved and reload in order', async (t) => {
  const file = await historyFile(t);
  const saved = await appendHistory(file, [], turn(1));
  const reloaded = await loadHistory(file);
  assert.deepEqual(reloaded.messages, saved);
  await appendHistory(file, reloaded.messages, turn(2));
  const again = await loadHistory(file);
  assert.deepEqual(again.messages, [...turn(1), ...turn(2)]);
  // Atomic save: no temporary file is left next to the history.
  assert.deepEqual(await readdir(join(file, '..')), ['history.json']);
});

test('history - trimming keeps the most recent messages and cuts only before a user message', () => {
  const messages: Message[] = [];
  for (let n = 0; n < 60; n++) messages.push(...turn(n, 1 + (n % 3))); // turns of 4, 6 and 8 messages
  const trimmed = trimHistory(messages);
  assert.ok(trimmed.length <= 200, `${trimmed.length} messages kept`);
  assert.ok(trimmed.length > 190, `${trimmed.length} messages kept: more was dropped than needed`);
  assert.deepEqual(trimmed.at(-1), messages.at(-1));
  assertNoSplitPairs(trimmed);
});

test('history - a cut that would land between a tool call and its result moves to the next user message', () => {
  // 3 turns of 8 messages; a limit of 10 falls inside the second turn.
  const messages = [...turn(1, 3), ...turn(2, 3), ...turn(3, 3)];
  const trimmed = trimHistory(messages, { maxMessages: 10 });
  assert.deepEqual(trimmed, turn(3, 3));
});

test('history - a single turn larger than the limit is kept whole', () => {
  const messages = [...turn(1), ...turn(2, 20)];
  assert.deepEqual(trimHistory(messages, { maxMessages: 10 }), turn(2, 20));
});

test('history - the character budget also drops old turns', () => {
  const big: Message[] = [{ role: 'user', text: 'x'.repeat(1000) }, { role: 'assistant', text: 'ok', toolCalls: [] }];
  const messages = [...big, ...turn(2), ...turn(3)];
  assert.deepEqual(trimHistory(messages, { maxChars: 500 }), [...turn(2), ...turn(3)]);
});

test('history - long tool results are shortened when saved', async (t) => {
  const file = await historyFile(t);
  const long: Message[] = [
    { role: 'user', text: 'read it' },
    { role: 'assistant', text: '', toolCalls: [{ id: 'c1', name: 'read_file', args: { path: 'big' } }] },
    { role: 'tool', toolCallId: 'c1', name: 'read_file', text: 'y'.repeat(HISTORY_TOOL_RESULT_CHARS + 5000), isError: false },
  ];
  const [, , tool] = await appendHistory(file, [], long);
  assert.ok(tool?.role === 'tool');
  assert.ok(tool.text.length < HISTORY_TOOL_RESULT_CHARS + 100);
  assert.match(tool.text, /\[… 5000 characters cut from history\]$/);
});

test('history - a corrupt file is moved aside and loads as empty', async (t) => {
  const file = await historyFile(t);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, '{"v":1,"messages":[{"role":"user"');
  const r = await loadHistory(file);
  assert.deepEqual(r.messages, []);
  assert.ok(r.recovered);
  assert.match(r.recovered.reason, /invalid JSON/);
  assert.equal(await readFile(r.recovered.movedTo, 'utf8'), '{"v":1,"messages":[{"role":"user"');
  // The next save starts a fresh file and leaves the corrupt copy alone.
  await appendHistory(file, r.messages, turn(1));
  assert.deepEqual((await loadHistory(file)).messages, turn(1));
  assert.equal((await readdir(join(file, '..'))).length, 2);
});

test('history - a well-formed file with a message of the wrong shape counts as corrupt', async (t) => {
  const file = await historyFile(t);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, JSON.stringify({ v: 1, messages: [{ role: 'user', text: 'hi' }, { role: 'robot' }] }));
  const r = await loadHistory(file);
  assert.deepEqual(r.messages, []);
  assert.match(r.recovered?.reason ?? '', /message 1 has an unexpected shape/);
});
