// The agent's tools against a real temporary workspace: bash, files, glob, grep, send_message.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { TOOL_SPECS } from '../../protocol/tools.ts';
import { AGENT_TOOLS, createToolExecutor, TOOL_HANDLERS } from '../../agent/tools/index.ts';
import type { OutgoingMessage, ToolContext } from '../../agent/tools/types.ts';
import { argsProblem } from '../../agent/tools/args.ts';

/** The task tools have their own tests (agent-tasks.test.ts); here a request always fails. */
const noRequests: ToolContext['request'] = async () => { throw new Error('no host in this test'); };

async function workspace(t: TestContext, over: Partial<ToolContext> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'hako-tools-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sent: OutgoingMessage[] = [];
  const ctx: ToolContext = { workspace: dir, group: 'team', isMain: false, sendMessage: async (m) => { sent.push(m); }, request: noRequests, ...over };
  const exec = createToolExecutor(ctx);
  const run = (name: string, args: Record<string, unknown>) => exec(name, args, new AbortController().signal);
  return { dir, run, sent };
}

const hasRg = spawnSync('rg', ['--version']).status === 0;

test('tools - every tool in protocol TOOL_SPECS has a handler and is offered to the model', () => {
  for (const spec of TOOL_SPECS) assert.ok(TOOL_HANDLERS[spec.name], `no handler for ${spec.name}`);
  assert.deepEqual(AGENT_TOOLS.map((s) => s.name), TOOL_SPECS.map((s) => s.name));
});

test('tools - argsProblem names the missing, unknown or mistyped argument', () => {
  const bashSpec = TOOL_SPECS.find((s) => s.name === 'bash')!;
  assert.equal(argsProblem(bashSpec, { command: 'ls' }), null);
  assert.match(argsProblem(bashSpec, {})!, /needs the argument "command"/);
  assert.match(argsProblem(bashSpec, { command: 'ls', cwd: '/' })!, /no argument "cwd"/);
  assert.match(argsProblem(bashSpec, { command: 'ls', timeout_ms: 1.5 })!, /"timeout_ms" of bash must be an integer/);
  assert.match(argsProblem(bashSpec, '{"command": ')!, /not valid JSON/);
  assert.match(argsProblem(bashSpec, [1])!, /must be a JSON object/);
});

test('bash - runs in the workspace and reports output and exit code', async (t) => {
  const { dir, run } = await workspace(t);
  const r = await run('bash', { command: 'pwd; echo out; echo err >&2' });
  assert.equal(r.isError, false);
  assert.match(r.text, new RegExp(`^${dir}\n`));
  assert.match(r.text, /out\n/);
  assert.match(r.text, /err\n/);
  assert.match(r.text, /\[exit code 0\]$/);
});

test('bash - a non-zero exit code is an error result that still shows the output', async (t) => {
  const { run } = await workspace(t);
  const r = await run('bash', { command: 'echo nope; exit 3' });
  assert.equal(r.isError, true);
  assert.match(r.text, /nope\n\[exit code 3\]/);
});

test('bash - timeout_ms kills the whole process group', async (t) => {
  const { dir, run } = await workspace(t);
  const started = Date.now();
  // The background child would keep writing the file if only bash itself were killed.
  const r = await run('bash', { command: '(sleep 1; echo late > late.txt) & echo started; sleep 30', timeout_ms: 300 });
  assert.equal(r.isError, true);
  assert.match(r.text, /started/);
  assert.match(r.text, /timed out after 300 ms/);
  assert.ok(Date.now() - started < 5000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await assert.rejects(readFile(join(dir, 'late.txt')), { code: 'ENOENT' });
});

test('bash - background processes are killed when the command ends, and do not hang the tool', async (t) => {
  const { dir, run } = await workspace(t);
  const started = Date.now();
  const r = await run('bash', { command: '(sleep 1; echo late > late.txt) & echo hi' });
  assert.equal(r.isError, false);
  assert.match(r.text, /^hi\n\[exit code 0\]$/);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await assert.rejects(readFile(join(dir, 'late.txt')), { code: 'ENOENT' });
});

test('bash - timeout_ms outside 1..600000 is refused', async (t) => {
  const { run } = await workspace(t);
  const r = await run('bash', { command: 'true', timeout_ms: 600_001 });
  assert.equal(r.isError, true);
  assert.match(r.text, /between 1 and 600000/);
});

test('bash - long output keeps the head and the tail and says how much was cut', async (t) => {
  const { run } = await workspace(t);
  const r = await run('bash', { command: 'printf "A%.0s" $(seq 1 20000); printf "B%.0s" $(seq 1 20000); echo' });
  assert.equal(r.isError, false);
  assert.ok(r.text.length < 30_200, `result is ${r.text.length} characters`);
  // assert.ok, not match: a failing match would print 30 000 characters.
  assert.ok(r.text.startsWith(`${'A'.repeat(15_000)}\n[… 10001 characters cut …]\n`), r.text.slice(14_990, 15_050));
  // The kept tail is the last 15 000 characters: 14 999 B and echo's newline.
  assert.ok(r.text.endsWith(`${'B'.repeat(14_999)}\n[exit code 0]`), r.text.slice(-40));
});

test('bash - the abort signal stops the command', async (t) => {
  const { dir } = await workspace(t);
  const exec = createToolExecutor({ workspace: dir, group: 'g', isMain: false, sendMessage: async () => {}, request: noRequests });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const r = await exec('bash', { command: 'sleep 30' }, ac.signal);
  assert.equal(r.isError, true);
  assert.match(r.text, /the turn was stopped/);
});

test('write_file / read_file - create parent folders and read back relative to the workspace', async (t) => {
  const { dir, run } = await workspace(t);
  const w = await run('write_file', { path: 'notes/2025/today.md', content: 'héllo\nworld\n' });
  assert.deepEqual(w, { text: 'wrote 12 characters to notes/2025/today.md', isError: false });
  assert.equal(await readFile(join(dir, 'notes/2025/today.md'), 'utf8'), 'héllo\nworld\n');
  assert.deepEqual(await run('read_file', { path: 'notes/2025/today.md' }), { text: 'héllo\nworld\n', isError: false });
  assert.deepEqual(await run('read_file', { path: join(dir, 'notes/2025/today.md') }), { text: 'héllo\nworld\n', isError: false });
});

test('read_file - missing files, folders and binary files are errors', async (t) => {
  const { dir, run } = await workspace(t);
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'bin'), Buffer.from([1, 2, 0, 3]));
  assert.deepEqual(await run('read_file', { path: 'nope.txt' }), { text: 'nope.txt: no such file', isError: true });
  assert.match((await run('read_file', { path: 'sub' })).text, /is a directory/);
  assert.match((await run('read_file', { path: 'bin' })).text, /binary file \(4 bytes\)/);
});

test('read_file - a named pipe is refused at once, never waited on; an empty file says so', async (t) => {
  const { dir, run } = await workspace(t);
  assert.equal(spawnSync('mkfifo', [join(dir, 'pipe')]).status, 0);
  await writeFile(join(dir, 'empty.txt'), '');
  assert.deepEqual(await run('read_file', { path: 'pipe' }), { text: 'pipe: not a regular file (a device, pipe or socket is not read)', isError: true });
  assert.deepEqual(await run('read_file', { path: 'empty.txt' }), { text: '(empty file)', isError: false });
});

test('read_file - files over 200 000 characters are cut with a note', async (t) => {
  const { dir, run } = await workspace(t);
  await writeFile(join(dir, 'big.txt'), 'x'.repeat(250_000));
  const r = await run('read_file', { path: 'big.txt' });
  assert.equal(r.isError, false);
  assert.ok(r.text.startsWith('x'.repeat(200_000) + '\n[… file truncated'), r.text.slice(199_990, 200_040));
  assert.match(r.text, /first 200000 characters of 250000 bytes/);
});

test('edit_file - replaces the one occurrence, literally', async (t) => {
  const { dir, run } = await workspace(t);
  await writeFile(join(dir, 'a.txt'), 'one two three');
  assert.deepEqual(await run('edit_file', { path: 'a.txt', old_text: 'two', new_text: '$& 2' }), { text: 'edited a.txt', isError: false });
  assert.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'one $& 2 three');
});

test('edit_file - old_text that occurs 0 or 2 times is an error that says how often', async (t) => {
  const { dir, run } = await workspace(t);
  await writeFile(join(dir, 'a.txt'), 'ab ab');
  const none = await run('edit_file', { path: 'a.txt', old_text: 'zz', new_text: 'y' });
  assert.equal(none.isError, true);
  assert.match(none.text, /old_text occurs 0 times in a\.txt; it must occur exactly once/);
  const two = await run('edit_file', { path: 'a.txt', old_text: 'ab', new_text: 'y' });
  assert.equal(two.isError, true);
  assert.match(two.text, /old_text occurs 2 times in a\.txt/);
  assert.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'ab ab');
  assert.match((await run('edit_file', { path: 'missing.txt', old_text: 'a', new_text: 'b' })).text, /no such file/);
});

test('glob - lists matches relative to the workspace, sorted, without dot files', async (t) => {
  const { dir, run } = await workspace(t);
  await mkdir(join(dir, 'notes/sub'), { recursive: true });
  await mkdir(join(dir, '.hako'));
  for (const f of ['notes/b.md', 'notes/a.md', 'notes/sub/c.md', 'notes/x.txt', '.hako/h.md']) await writeFile(join(dir, f), '');
  assert.deepEqual(await run('glob', { pattern: 'notes/**/*.md' }), { text: 'notes/a.md\nnotes/b.md\nnotes/sub/c.md', isError: false });
  assert.deepEqual(await run('glob', { pattern: '*.pdf' }), { text: 'no files match *.pdf', isError: false });
});

test('glob - stops at 1000 results with a note', async (t) => {
  const { dir, run } = await workspace(t);
  await Promise.all(Array.from({ length: 1005 }, (_, i) => writeFile(join(dir, `f${i}.txt`), '')));
  const r = await run('glob', { pattern: '*.txt' });
  assert.equal(r.text.split('\n').filter((l) => l.endsWith('.txt')).length, 1000);
  assert.match(r.text, /more than 1000 matches/);
});

test('grep - finds lines with file and line number; no match is not an error', { skip: !hasRg && 'ripgrep (rg) is not installed' }, async (t) => {
  const { dir, run } = await workspace(t);
  await mkdir(join(dir, 'notes'));
  await writeFile(join(dir, 'notes/a.md'), 'alpha\nbeta\ngamma beta\n');
  await writeFile(join(dir, 'b.txt'), 'beta here too\n');
  const all = await run('grep', { pattern: 'beta' });
  assert.equal(all.isError, false);
  assert.deepEqual(all.text.split('\n').sort(), ['./b.txt:1:beta here too', './notes/a.md:2:beta', './notes/a.md:3:gamma beta']);
  assert.deepEqual(await run('grep', { pattern: '^gam', path: 'notes' }), { text: 'notes/a.md:3:gamma beta', isError: false });
  assert.deepEqual(await run('grep', { pattern: 'zeta' }), { text: 'no matches', isError: false });
  // A pattern starting with "-" is a pattern, not an option.
  assert.deepEqual(await run('grep', { pattern: '--files' }), { text: 'no matches', isError: false });
});

test('grep - an invalid regular expression is an error result', { skip: !hasRg && 'ripgrep (rg) is not installed' }, async (t) => {
  const { run } = await workspace(t);
  const r = await run('grep', { pattern: '(' });
  assert.equal(r.isError, true);
  assert.match(r.text, /grep failed \(exit code 2\)/);
});

test('send_message - hands the text to the injected callback', async (t) => {
  const { run, sent } = await workspace(t);
  assert.deepEqual(await run('send_message', { text: 'working on it' }), { text: 'sent', isError: false });
  assert.deepEqual(await run('send_message', { text: 'own group by name', group: 'team' }), { text: 'sent', isError: false });
  assert.deepEqual(sent, [{ text: 'working on it' }, { text: 'own group by name' }]);
});

test('send_message - only the main group may message another group', async (t) => {
  const other = await workspace(t);
  const r = await other.run('send_message', { text: 'hi', group: 'family' });
  assert.deepEqual(r, { text: 'only the main group may message other groups', isError: true });
  assert.deepEqual(other.sent, []);
  const main = await workspace(t, { isMain: true, group: 'main' });
  assert.deepEqual(await main.run('send_message', { text: 'hi', group: 'family' }), { text: 'sent to family', isError: false });
  assert.match((await main.run('send_message', { text: 'hi', group: '../etc' })).text, /invalid/);
  assert.deepEqual(main.sent, [{ text: 'hi', group: 'family' }]);
});

test('send_message - a failing callback becomes an error result', async (t) => {
  const { run } = await workspace(t, { sendMessage: async () => { throw new Error('disk full'); } });
  assert.deepEqual(await run('send_message', { text: 'x' }), { text: 'could not send: disk full', isError: true });
});

test('executor - a throwing handler becomes an error result', async (t) => {
  const { dir } = await workspace(t);
  const exec = createToolExecutor({ workspace: dir, group: 'g', isMain: false, sendMessage: async () => {}, request: noRequests }, {
    boom: async () => { throw new Error('kaput'); },
  });
  assert.deepEqual(await exec('boom', {}, new AbortController().signal), { text: 'boom failed: kaput', isError: true });
});
