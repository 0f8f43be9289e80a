// The obsidian skill end to end: a real host, the real agent container and a scripted model.
// A folder of an Obsidian vault is mounted read-write into the main group through the mount
// policy, which refuses the vault itself (its .obsidian/ holds plugins Obsidian runs);
// three messy messages (a quick note, a forwarded e-mail, a screenshot) are answered with
// the tool calls a model following agent/instructions/obsidian.md makes, and the vault ends
// up with linked notes carrying front matter, a daily log, the screenshot, and a follow-up
// scheduled for Friday. The system prompt the model received carries the fragment: the skill
// is wired into the agent image, not just copied into the tree.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startModelServer, type ModelServer, type RecordedRequest, type ScriptedTurn } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const FRAGMENT = path.resolve(import.meta.dirname, '..', '..', 'agent', 'instructions', 'obsidian.md');
const VAULT = '/workspace/extra/hako';
/** A 1×1 PNG: the "screenshot" of a business card. */
const CARD_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const DEAL = 'Hoshi Foods - 200 units';

type ChatMessage = { role: string; content: unknown };
const messagesOf = (req: RecordedRequest): ChatMessage[] => (req.json?.messages ?? []) as ChatMessage[];
const text = (content: unknown): string => (typeof content === 'string' ? content : JSON.stringify(content));
const systemOf = (req: RecordedRequest): string => text(messagesOf(req).find((m) => m.role === 'system')?.content);
const lastUser = (req: RecordedRequest): string => text(messagesOf(req).filter((m) => m.role === 'user').at(-1)?.content);

/** The message's day (UTC, as the agent sees it: `[<ts>] tester: …`) and the next Friday 09:00 after it. */
function datesOf(req: RecordedRequest): { day: string; friday: string } {
  const ts = /\[(\d{4}-\d{2}-\d{2}T[^\]]+)\] tester:/.exec(lastUser(req));
  assert.ok(ts, `the user message carries its time stamp: ${lastUser(req)}`);
  const at = new Date(ts[1]!);
  const friday = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + (((5 - at.getUTCDay() + 7) % 7) || 7), 9));
  return { day: ts[1]!.slice(0, 10), friday: friday.toISOString() };
}

const note = (type: string, day: string, tags: string[], related: string[], body: string): string =>
  `---\ntype: ${type}\ndate: ${day}\ntags: [${tags.join(', ')}]\nrelated: [${related.map((r) => `"[[${r}]]"`).join(', ')}]\n---\n${body}`;

/** The reply after the tool calls: the tool results, so that a failed call shows in the test's output. */
const report = (label: string): ScriptedTurn => (req) => {
  const results = messagesOf(req).slice(-6).filter((m) => m.role === 'tool').map((m) => text(m.content));
  const failed = results.filter((r) => /error|denied|no such|read-only|failed/i.test(r));
  return { text: failed.length ? `${label}: a tool failed: ${failed.join(' | ')}` : `${label}: filed.` };
};

/** Message 1, "met Aiko Tanaka from Hoshi Foods, wants 200 units, follow up fri". */
const fileFragment: ScriptedTurn = (req) => {
  const { day, friday } = datesOf(req);
  return { toolCalls: [
    { name: 'write_file', args: { path: `${VAULT}/People/Aiko Tanaka.md`, content: note('contact', day, ['lead'], ['Hoshi Foods', DEAL],
      `# Aiko Tanaka\n\n- Works at [[Hoshi Foods]]\n- Deal: [[${DEAL}]]\n\n## Log\n\n- ${day}: met; wants 200 units\n`) } },
    { name: 'write_file', args: { path: `${VAULT}/Companies/Hoshi Foods.md`, content: note('company', day, ['customer'], ['Aiko Tanaka', DEAL],
      `# Hoshi Foods\n\n- People: [[Aiko Tanaka]]\n- Deals: [[${DEAL}]]\n`) } },
    { name: 'write_file', args: { path: `${VAULT}/Deals/${DEAL}.md`, content: note('deal', day, ['deal', 'open'], ['Hoshi Foods', 'Aiko Tanaka'],
      `# ${DEAL}\n\n- Company: [[Hoshi Foods]]\n- Contact: [[Aiko Tanaka]]\n- Quantity: 200 units\n\n## Next\n\n- ${friday.slice(0, 10)}: follow up with [[Aiko Tanaka]]\n\n## Log\n\n- ${day}: first contact, wants 200 units\n`) } },
    { name: 'write_file', args: { path: `${VAULT}/Daily/${day}.md`, content: note('daily', day, ['daily'], [],
      `# ${day}\n\n- met [[Aiko Tanaka]] of [[Hoshi Foods]]: [[${DEAL}]]\n`) } },
    { name: 'schedule_task', args: { at: friday, prompt: `Remind the owner to follow up with Aiko Tanaka (Hoshi Foods) about 200 units; details in Deals/${DEAL}.md` } },
  ] };
};

const EMAIL = [
  '---------- Forwarded message ---------',
  'From: Kenji Mori <kenji.mori@hoshi-foods.example>',
  'Subject: Re: 200 units',
  '',
  'Hello, Aiko asked me to confirm: delivery to our Osaka warehouse by 2027-01-15, please quote incl. shipping.',
  'Kenji Mori, Procurement, Hoshi Foods',
].join('\n');

/** Message 2, the forwarded e-mail: a new contact, the deal and the company note extended, the daily log appended to. */
const fileEmail: ScriptedTurn = (req) => {
  const { day } = datesOf(req);
  return { toolCalls: [
    { name: 'write_file', args: { path: `${VAULT}/People/Kenji Mori.md`, content: note('contact', day, ['procurement'], ['Hoshi Foods', DEAL],
      `# Kenji Mori\n\n- Procurement at [[Hoshi Foods]]\n- E-mail: kenji.mori@hoshi-foods.example\n- Deal: [[${DEAL}]]\n\n## Log\n\n- ${day}: e-mail: "delivery to our Osaka warehouse by 2027-01-15, please quote incl. shipping"\n`) } },
    { name: 'edit_file', args: { path: `${VAULT}/Deals/${DEAL}.md`, old_text: '- Quantity: 200 units\n', new_text: '- Quantity: 200 units\n- Delivery: Osaka warehouse by 2027-01-15; quote incl. shipping ([[Kenji Mori]])\n' } },
    { name: 'edit_file', args: { path: `${VAULT}/Companies/Hoshi Foods.md`, old_text: '- People: [[Aiko Tanaka]]', new_text: '- People: [[Aiko Tanaka]], [[Kenji Mori]]' } },
    { name: 'bash', args: { command: `printf '%s\\n' '- e-mail from [[Kenji Mori]]: delivery by 2027-01-15 for [[${DEAL}]]' >> '${VAULT}/Daily/${day}.md'` } },
  ] };
};

/** Message 3, the screenshot of Aiko's card: copied into the vault and embedded in her note. */
const fileScreenshot: ScriptedTurn = (req) => {
  const { day } = datesOf(req);
  const attached = /\[attached: (inbox\/[^ ]+\/card\.png) /.exec(lastUser(req));
  assert.ok(attached, `the message lists the saved screenshot: ${lastUser(req)}`);
  return { toolCalls: [
    { name: 'bash', args: { command: `mkdir -p '${VAULT}/Attachments' && cp '/workspace/group/${attached[1]}' '${VAULT}/Attachments/card.png'` } },
    { name: 'edit_file', args: { path: `${VAULT}/People/Aiko Tanaka.md`, old_text: '- Works at [[Hoshi Foods]]\n', new_text: '- Works at [[Hoshi Foods]]\n- Phone: +81 6 1234 5678 (from her card)\n\n![[card.png]]\n' } },
    { name: 'bash', args: { command: `printf '%s\\n' '- card of [[Aiko Tanaka]] filed' >> '${VAULT}/Daily/${day}.md'` } },
  ] };
};

/** `key: value` lines of a note's front matter, or undefined without one. */
function frontMatter(body: string): Record<string, string> | undefined {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(body);
  if (!m) return undefined;
  return Object.fromEntries(m[1]!.split('\n').map((l) => /^(\w+): (.*)$/.exec(l)).filter((x) => x !== null).map((x) => [x[1]!, x[2]!]));
}

function walk(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? (e.name === '.obsidian' ? [] : walk(dir, r)) : [r];
  });
}

describe('obsidian skill: messy messages become linked notes in a mounted vault', () => {
  let model: ModelServer;
  let hako: HakoProcess;
  let base: string;
  /** The vault's root, holding .obsidian/. */
  let vault: string;
  /** The folder of it that the group mounts: the agent's notes. */
  let notes: string;
  let config: string;

  before(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-obsidian-'));
    vault = path.join(base, 'Vault');
    notes = path.join(vault, 'hako');
    fs.mkdirSync(path.join(vault, '.obsidian'), { recursive: true });
    fs.writeFileSync(path.join(vault, '.obsidian', 'app.json'), '{}\n');
    fs.mkdirSync(notes);
    // The owner's vault is the owner's: as root, the container runs as 1000:1000 (runner.ts containerUser).
    if (process.getuid?.() === 0) fs.chownSync(notes, 1000, 1000);
    config = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-obsidian-config-'));
    fs.writeFileSync(path.join(config, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: vault, readWrite: true }], blockedPatterns: ['.obsidian'] }));
    model = await startModelServer();
    hako = await HakoProcess.start({ configDir: config, env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_TZ: 'UTC' } });
    const root = await hako.cli(['groups', 'mounts', 'main', 'add', `${vault}:rw`]);
    assert.notEqual(root.code, 0, 'the vault itself, with its plugins folder, is refused');
    assert.match(root.stderr, /\.obsidian/);
    const mounted = await hako.cli(['groups', 'mounts', 'main', 'add', `${notes}:rw`]);
    assert.equal(mounted.code, 0, `hako groups mounts main add ${notes}:rw: ${mounted.stderr}`);
  });

  after(async () => {
    await hako?.stop();
    hako?.cleanup();
    await model?.close();
    fs.rmSync(base, { recursive: true, force: true });
    fs.rmSync(config, { recursive: true, force: true });
  });

  test('a note, a forwarded e-mail and a screenshot are filed as notes with front matter and links, and the follow-up is scheduled for Friday', async () => {
    model.script(fileFragment, report('note'));
    const first = await hako.post('main', 'met Aiko Tanaka from Hoshi Foods, wants 200 units, follow up fri');
    assert.equal((await hako.waitForReplies('main', first))[0]!.text, 'note: filed.');

    model.script(fileEmail, report('e-mail'));
    const second = await hako.post('main', EMAIL);
    assert.equal((await hako.waitForReplies('main', second))[0]!.text, 'e-mail: filed.');

    model.script(fileScreenshot, report('screenshot'));
    const posted = await hako.api('/api/groups/main/messages', { method: 'POST', body: JSON.stringify({ text: 'her card', sender: 'tester', attachments: [{ name: 'card.png', mime: 'image/png', data: CARD_PNG }] }) });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    assert.equal((await hako.waitForReplies('main', posted.body.id))[0]!.text, 'screenshot: filed.');

    const files = walk(notes).sort();
    const day = files.find((f) => f.startsWith('Daily/'))!.slice('Daily/'.length, -'.md'.length);
    assert.deepEqual(files, ['Attachments/card.png', `Companies/Hoshi Foods.md`, `Daily/${day}.md`, `Deals/${DEAL}.md`, 'People/Aiko Tanaka.md', 'People/Kenji Mori.md']);
    assert.deepEqual(fs.readdirSync(path.join(vault, '.obsidian')), ['app.json'], 'the vault\'s settings are untouched');
    assert.deepEqual(fs.readFileSync(path.join(notes, 'Attachments/card.png')), Buffer.from(CARD_PNG, 'base64'), 'the screenshot was copied into the vault unchanged');

    const markdown = files.filter((f) => f.endsWith('.md'));
    const names = new Set(files.map((f) => path.posix.basename(f, '.md')).concat('card.png'));
    for (const f of markdown) {
      const body = fs.readFileSync(path.join(notes, f), 'utf8');
      const fm = frontMatter(body);
      assert.ok(fm, `${f} starts with front matter:\n${body}`);
      assert.deepEqual(Object.keys(fm), ['type', 'date', 'tags', 'related'], f);
      assert.equal(fm.date, day, f);
      for (const link of body.matchAll(/\[\[([^\]]+)\]\]/g)) assert.ok(names.has(link[1]!), `${f}: [[${link[1]}]] points at a note in the vault`);
    }
    const read = (f: string) => fs.readFileSync(path.join(notes, f), 'utf8');
    assert.equal(frontMatter(read('People/Aiko Tanaka.md'))!.type, 'contact');
    assert.equal(frontMatter(read(`Deals/${DEAL}.md`))!.type, 'deal');
    assert.match(read(`Deals/${DEAL}.md`), /Delivery: Osaka warehouse by 2027-01-15; quote incl\. shipping \(\[\[Kenji Mori\]\]\)/);
    assert.match(read('Companies/Hoshi Foods.md'), /People: \[\[Aiko Tanaka\]\], \[\[Kenji Mori\]\]/);
    assert.match(read('People/Aiko Tanaka.md'), /!\[\[card\.png\]\]/);
    assert.equal(read(`Daily/${day}.md`).split('\n').filter((l) => l.startsWith('- ')).length, 3, `one daily log line per message:\n${read(`Daily/${day}.md`)}`);

    const tasks = (await hako.api('/api/tasks')).body.tasks as { group: string; state: string; nextRun: string; prompt: string }[];
    assert.equal(tasks.length, 1, JSON.stringify(tasks));
    const friday = new Date(tasks[0]!.nextRun);
    assert.equal(tasks[0]!.group, 'main');
    assert.equal(friday.getUTCDay(), 5, `the follow-up runs on a Friday: ${tasks[0]!.nextRun}`);
    assert.equal(friday.getUTCHours(), 9);
    assert.ok(friday.getTime() - Date.parse(`${day}T00:00:00Z`) <= 8 * 86_400_000, 'the next Friday, not a later one');
    assert.match(tasks[0]!.prompt, /Aiko Tanaka \(Hoshi Foods\).*Deals\/Hoshi Foods - 200 units\.md/);
    assert.match((await hako.cli(['tasks', 'list'])).stdout, /Aiko Tanaka/, 'hako tasks list shows the follow-up');

    // The skill is wired: every request of the three turns carried the fragment in its system prompt.
    const fragment = fs.readFileSync(FRAGMENT, 'utf8').trim();
    const completions = model.requests.filter((r) => r.path.startsWith('/v1/chat/completions'));
    assert.equal(completions.length, 6, 'two model requests per message: the tool calls, then the reply');
    for (const r of completions) assert.ok(systemOf(r).includes(fragment), `the system prompt carries agent/instructions/obsidian.md:\n${systemOf(r).slice(0, 2000)}`);
  });
});
