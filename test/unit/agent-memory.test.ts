// The remember tool and what the system prompt says about it, against real temporary
// folders: sections appended and replaced, the size limit, links, and the global scope rule.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEMORY_MAX_BYTES, TOOL_SPECS } from '../../protocol/tools.ts';
import { createToolExecutor, TOOL_HANDLERS } from '../../agent/tools/index.ts';
import { rememberTool } from '../../agent/tools/memory.ts';
import type { ToolContext } from '../../agent/tools/types.ts';
import { buildSystemPrompt } from '../../agent/prompt.ts';

async function setup(t: TestContext, opts: { isMain?: boolean } = {}) {
  const root = await mkdtemp(join(tmpdir(), 'hako-memory-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const workspace = join(root, 'group');
  const global = join(root, 'global');
  await mkdir(workspace);
  await mkdir(global);
  const ctx: ToolContext = {
    workspace, group: opts.isMain ? 'main' : 'team', isMain: opts.isMain ?? false,
    sendMessage: async () => {}, request: async () => { throw new Error('no host in this test'); },
  };
  const exec = createToolExecutor(ctx, { ...TOOL_HANDLERS, remember: rememberTool(global) });
  const remember = (args: Record<string, unknown>) => exec('remember', args, new AbortController().signal);
  const memory = () => readFile(join(workspace, 'MEMORY.md'), 'utf8');
  return { root, workspace, global, remember, memory };
}

test('remember - is a tool offered to the model, with a handler', () => {
  assert.ok(TOOL_SPECS.some((s) => s.name === 'remember'));
  assert.ok(TOOL_HANDLERS.remember);
});

test('remember - appends to a section, creating the file and the section when missing', async (t) => {
  const s = await setup(t);
  const first = await s.remember({ section: 'Clients', text: '- ACME pays late' });
  assert.equal(first.isError, false, first.text);
  assert.match(first.text, /remembered under "## Clients" in .*MEMORY\.md \(append; now \d+ of 16384 bytes\)/);
  await s.remember({ section: 'Clients', text: '- Globex wants a quote' });
  await s.remember({ section: 'Preferences', text: 'Replies in German.' });
  await s.remember({ section: 'clients', text: '- Initech' });
  assert.equal(await s.memory(), '## Clients\n\n- ACME pays late\n- Globex wants a quote\n- Initech\n\n## Preferences\n\nReplies in German.\n');
});

test('remember - replace rewrites only its section, and empty text removes the section', async (t) => {
  const s = await setup(t);
  await writeFile(join(s.workspace, 'MEMORY.md'), '# team\n\nIntro kept.\n\n## Clients\n\n- ACME\n- Globex\n\n## Preferences\n\nGerman.\n');
  const r = await s.remember({ section: 'Clients', text: '- Initech only', mode: 'replace' });
  assert.equal(r.isError, false, r.text);
  assert.equal(await s.memory(), '# team\n\nIntro kept.\n\n## Clients\n\n- Initech only\n\n## Preferences\n\nGerman.\n');
  await s.remember({ section: 'Clients', text: '', mode: 'replace' });
  assert.equal(await s.memory(), '# team\n\nIntro kept.\n\n## Preferences\n\nGerman.\n');
});

test('remember - text with a heading line, a bad mode or a multi-line section is refused with what to send instead', async (t) => {
  const s = await setup(t);
  assert.match((await s.remember({ section: 'A', text: '## B\nsneaky' })).text, /may not contain "#" or "##" heading lines/);
  assert.match((await s.remember({ section: 'A', text: 'x', mode: 'overwrite' })).text, /mode must be "append" .* or "replace"/);
  assert.match((await s.remember({ section: 'A\nB', text: 'x' })).text, /one-line title/);
  await assert.rejects(s.memory(), { code: 'ENOENT' });
});

test('remember - a write that would pass MEMORY_MAX_BYTES is refused, telling the model to summarise first; the file is unchanged', async (t) => {
  const s = await setup(t);
  const big = `## Log\n\n${'x'.repeat(MEMORY_MAX_BYTES - 200)}\n`;
  await writeFile(join(s.workspace, 'MEMORY.md'), big);
  const r = await s.remember({ section: 'Log', text: 'y'.repeat(300) });
  assert.equal(r.isError, true);
  assert.match(r.text, new RegExp(`not saved: .*MEMORY\\.md would be \\d+ bytes, over its limit of ${MEMORY_MAX_BYTES} bytes\\. Summarise first: rewrite the longest or stale sections shorter with mode "replace"`));
  assert.equal(await s.memory(), big);
  // Summarising is how it gets back under: a replace that shrinks the file goes through.
  const shorter = await s.remember({ section: 'Log', text: 'summary of the log', mode: 'replace' });
  assert.equal(shorter.isError, false, shorter.text);
  assert.equal(await s.memory(), '## Log\n\nsummary of the log\n');
});

test('remember - a file the owner made larger than the limit may shrink but not grow', async (t) => {
  const s = await setup(t);
  await writeFile(join(s.workspace, 'MEMORY.md'), `## Old\n\n${'o'.repeat(MEMORY_MAX_BYTES)}\n\n## New\n\nn\n`);
  assert.equal((await s.remember({ section: 'New', text: 'more' })).isError, true);
  assert.equal((await s.remember({ section: 'Old', text: '', mode: 'replace' })).isError, false);
  assert.equal(await s.memory(), '## New\n\nn\n');
});

test('remember - a MEMORY.md link (to a file or dangling) is refused and never written through', async (t) => {
  const s = await setup(t);
  const target = join(s.root, 'outside.txt');
  await writeFile(target, 'outside\n');
  await symlink(target, join(s.workspace, 'MEMORY.md'));
  const r = await s.remember({ section: 'A', text: 'x' });
  assert.equal(r.isError, true);
  assert.match(r.text, /MEMORY\.md is a symbolic link; remember never follows one\. Remove it \(bash: rm .*MEMORY\.md\) and call remember again/);
  assert.equal(await readFile(target, 'utf8'), 'outside\n');
  assert.equal(await readlink(join(s.workspace, 'MEMORY.md')), target);

  await rm(join(s.workspace, 'MEMORY.md'));
  await symlink(join(s.root, 'created-by-link'), join(s.workspace, 'MEMORY.md'));
  assert.equal((await s.remember({ section: 'A', text: 'x' })).isError, true);
  await assert.rejects(lstat(join(s.root, 'created-by-link')), { code: 'ENOENT' });
});

test('remember scope global - a non-main group\'s agent cannot write global memory', async (t) => {
  const s = await setup(t);
  await writeFile(join(s.global, 'MEMORY.md'), '# Global memory\n');
  const r = await s.remember({ section: 'Team', text: 'x', scope: 'global' });
  assert.equal(r.isError, true);
  assert.match(r.text, /only the main group may change global memory; remember this in the group's own memory instead \(scope "group"\)/);
  assert.equal(await readFile(join(s.global, 'MEMORY.md'), 'utf8'), '# Global memory\n');
  await assert.rejects(s.memory(), { code: 'ENOENT' }, 'nothing was written to the group\'s memory either');
});

test('remember scope global - the main group\'s agent writes global memory, not its own', async (t) => {
  const s = await setup(t, { isMain: true });
  await writeFile(join(s.global, 'MEMORY.md'), '# Global memory\n');
  const r = await s.remember({ section: 'Team', text: '- Standup at 9:00', scope: 'global' });
  assert.equal(r.isError, false, r.text);
  assert.equal(await readFile(join(s.global, 'MEMORY.md'), 'utf8'), '# Global memory\n\n## Team\n\n- Standup at 9:00\n');
  await assert.rejects(s.memory(), { code: 'ENOENT' });
});

test('prompt - tells the agent what MEMORY.md is, its limit and to use remember; only main hears of scope "global"', async (t) => {
  const s = await setup(t);
  const base = { assistantName: 'Andy', workspace: s.workspace, globalDir: s.global };
  const team = await buildSystemPrompt({ ...base, group: 'team', isMain: false });
  assert.match(team, new RegExp(`MEMORY\\.md.*${MEMORY_MAX_BYTES} bytes`, 's'));
  assert.match(team, /remember tool/);
  assert.match(team, /global memory .* read-only/i);
  assert.doesNotMatch(team, /scope "global"/);
  const main = await buildSystemPrompt({ ...base, group: 'main', isMain: true });
  assert.match(main, /scope "global"/);
});
