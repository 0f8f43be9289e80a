// Agent instructions added by skills (agent/instructions/*.md): the prompt builder appends
// every one, sorted by name and capped, and nothing once the file is gone — so
// `hako skill add obsidian` puts the obsidian fragment in front of the model and
// `hako skill remove obsidian` takes it away again.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSystemPrompt, INSTRUCTIONS_DIR, INSTRUCTIONS_MAX_CHARS, type PromptOptions } from '../../agent/prompt.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OBSIDIAN = path.join(ROOT, 'skills', 'obsidian', 'add', 'agent', 'instructions', 'obsidian.md');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-instructions-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A fresh instructions folder holding `files`, and a group folder to build prompts for. */
function setup(files: Record<string, string>): PromptOptions & { instructionsDir: string } {
  const dir = path.join(tmp, `case-${++n}`);
  const instructionsDir = path.join(dir, 'instructions');
  fs.mkdirSync(instructionsDir, { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(instructionsDir, name), text);
  return { assistantName: 'hako', group: 'main', isMain: true, workspace: path.join(dir, 'group'), globalDir: path.join(dir, 'global'), instructionsDir };
}

test('agent instructions - every *.md in the folder is in the system prompt, sorted by name, after the group\'s memory (a too small budget cuts them first); other files are not', async () => {
  const o = setup({ 'b-crm.md': '## CRM\n\nFile deals in the CRM.\n', 'a-notes.md': '## Notes\n\nKeep notes short.', 'readme.txt': 'NOT AN INSTRUCTION', 'empty.md': '  \n' });
  const prompt = await buildSystemPrompt(o);
  const notes = prompt.indexOf('## Notes\n\nKeep notes short.');
  const crm = prompt.indexOf('## CRM\n\nFile deals in the CRM.');
  fs.mkdirSync(o.workspace, { recursive: true });
  fs.writeFileSync(path.join(o.workspace, 'MEMORY.md'), 'Team facts.\n');
  const withMemory = await buildSystemPrompt(o);
  assert.ok(notes > prompt.indexOf('Rules:') && crm > notes, `sorted by file name, after the rules:\n${prompt}`);
  assert.ok(withMemory.indexOf('## Notes') > withMemory.indexOf('Team facts.'), `after the group's memory:\n${withMemory}`);
  assert.doesNotMatch(prompt, /NOT AN INSTRUCTION/);
  assert.doesNotMatch(prompt, /\n\n\n/, 'an empty file adds no empty section');
});

test('agent instructions - the obsidian skill\'s fragment is in the prompt while its file is there, and gone once remove deleted it', async () => {
  const fragment = fs.readFileSync(OBSIDIAN, 'utf8');
  const o = setup({ 'obsidian.md': fragment });
  assert.ok((await buildSystemPrompt(o)).includes(fragment.trim()), 'added: the whole fragment reaches the model');
  fs.rmSync(path.join(o.instructionsDir, 'obsidian.md'));
  const removed = await buildSystemPrompt(o);
  assert.doesNotMatch(removed, /Notes vault|Obsidian|schedule_task with `at`/, 'removed: no trace of it');
  fs.rmSync(o.instructionsDir, { recursive: true });
  assert.equal(await buildSystemPrompt(o), removed, 'remove also deletes the emptied folder: a missing folder is no instructions, not an error');
});

test('agent instructions - the agent reads agent/instructions/ of its own tree: the prompt carries exactly the files there (none in a tree without skills)', async () => {
  assert.equal(INSTRUCTIONS_DIR, path.join(ROOT, 'agent', 'instructions'));
  const o = setup({});
  const { instructionsDir: _, ...defaults } = o;
  const prompt = await buildSystemPrompt(defaults);
  const present = fs.existsSync(INSTRUCTIONS_DIR) ? fs.readdirSync(INSTRUCTIONS_DIR).filter((f) => f.endsWith('.md')) : [];
  for (const f of present) assert.ok(prompt.includes(fs.readFileSync(path.join(INSTRUCTIONS_DIR, f), 'utf8').trim()), `${f} is in the prompt`);
  assert.equal(prompt.includes('## Notes vault (Obsidian)'), present.includes('obsidian.md'), 'the obsidian fragment is there exactly when the skill is added');
});

test('agent instructions - all files together are capped: a long file is cut with a marker, later ones are left out and named', async () => {
  const o = setup({ 'a.md': `## Long\n\n${'x'.repeat(INSTRUCTIONS_MAX_CHARS)}`, 'b.md': '## Late\n\nNever seen.' });
  const prompt = await buildSystemPrompt(o);
  assert.match(prompt, /\n\[… cut: agent\/instructions\/ holds more than 16000 characters; left out: the rest of a\.md, b\.md\]/);
  assert.doesNotMatch(prompt, /Never seen/);
  assert.ok(prompt.length < INSTRUCTIONS_MAX_CHARS + 6_000, 'the cap holds');
});
