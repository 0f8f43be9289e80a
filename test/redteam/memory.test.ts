// Red team: one group's memory stays in its lane. A unique canary is planted in group A's
// ("victim") MEMORY.md, conversation history, archive and workspace; A itself then tries to
// push it out through global memory. Turns of group B ("team": a message, a scheduled task
// run) and of main (which reads and writes global memory) follow, B's agent hunts for A's
// files, and every request the scripted model recorded is searched: only A's own requests
// may hold the canary. A real host, real containers, the real agent.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ScriptedTurn } from '../support/model-server.ts';
import { startFixture, type Fixture } from './support.ts';

let f: Fixture;
const CANARY = `MEMCANARY-${Math.random().toString(36).slice(2)}`;
/** Matches the canary in a shell command without the command itself holding it. */
const CANARY_PATTERN = 'MEMCAN[A]RY';
/** Index ranges of f.model.requests made by group A's turns: the only ones that may hold the canary. */
const ownTurns: [from: number, to: number][] = [];

/** Where the canary is planted in A's folder, relative to it (the archive is today's file). */
function plantings(): Record<string, string> {
  const today = new Date().toISOString().slice(0, 10);
  return {
    'MEMORY.md': `# victim\n\n## Vault\n- the vault code is ${CANARY}-memory\n`,
    '.hako/history.json': JSON.stringify({ v: 1, messages: [
      { role: 'user', text: `[2026-11-01T09:00:00Z] owner: the safe combination is ${CANARY}-history` },
      { role: 'assistant', text: 'Noted.', toolCalls: [] },
    ] }),
    [`conversations/${today}.md`]: `# ${today}\n\n**owner**: the alarm code is ${CANARY}-archive\n`,
    'notes/deal.md': `# Deal\n\nSecret price: ${CANARY}-workspace\n`,
  };
}

/** Scripts `turns`, posts one message to `group` and waits for the reply; returns the reply and the requests it took. */
async function turn(group: string, turns: ScriptedTurn[]): Promise<{ reply: string; from: number; to: number }> {
  const from = f.model.requests.length;
  f.model.script(...turns);
  const id = await f.hako.post(group, `@hako go (${Math.random().toString(36).slice(2)})`);
  const [reply] = await f.hako.waitForReplies(group, id, 1, 180_000);
  return { reply: reply!.text, from, to: f.model.requests.length };
}

/** The last `n` tool results the model received in the last request of a range (the history holds earlier turns' too). */
function toolResults(to: number, n: number): string[] {
  const last = f.model.requests[to - 1]!;
  return (last.json.messages as { role: string; content: string }[]).filter((m) => m.role === 'tool').map((m) => m.content).slice(-n);
}

const bash = (command: string) => ({ name: 'bash', args: { command, timeout_ms: 60_000 } });

/** Requests outside A's own turns that hold the canary, described for the failure message. */
function leaks(): string[] {
  const own = (i: number) => ownTurns.some(([a, b]) => i >= a && i < b);
  return f.model.requests.flatMap((r, i) => (!own(i) && r.body.includes(CANARY) ? [`request ${i} (${r.path}): ${/chat group \\?"([^"\\]+)/.exec(r.body)?.[1] ?? 'unknown group'}`] : []));
}

before(async () => {
  f = await startFixture();
  const folder = path.join(f.hako.home, 'groups', 'victim');
  for (const [rel, text] of Object.entries(plantings())) {
    fs.mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
    fs.writeFileSync(path.join(folder, rel), text);
  }
});
after(async () => { await f?.close(); });

test('memory isolation - group A\'s own turn sees its memory and history (the canary is detectable), and its attempts to push it into global memory fail', async () => {
  const a = await turn('victim', [
    { toolCalls: [
      bash('cat conversations/*.md notes/deal.md'),
      { name: 'remember', args: { section: 'Leak', text: `${CANARY}-global`, scope: 'global' } },
      bash(`grep -h ${CANARY_PATTERN} MEMORY.md >> /workspace/global/MEMORY.md; echo "exit $?"`),
    ] },
    { text: 'done' },
  ]);
  ownTurns.push([a.from, a.to]);
  assert.equal(a.reply, 'done');
  const seen = f.model.requests.slice(a.from, a.to).map((r) => r.body).join('\n');
  for (const where of ['memory', 'history', 'archive', 'workspace']) assert.ok(seen.includes(`${CANARY}-${where}`), `A's requests hold its ${where}`);
  const [, viaTool, viaShell] = toolResults(a.to, 3);
  assert.match(viaTool!, /only the main group may change global memory/);
  assert.match(viaShell!, /Read-only file system/);
  assert.ok(!fs.readFileSync(path.join(f.hako.home, 'global', 'MEMORY.md'), 'utf8').includes(CANARY), 'global memory holds no canary');
});

test('memory isolation - main writes global memory with remember; every group reads it, and none can write it but main', async () => {
  const m = await turn('main', [
    { toolCalls: [{ name: 'remember', args: { section: 'Team', text: '- Standup is at 9:00.', scope: 'global' } }] },
    { toolCalls: [bash('cat /workspace/global/MEMORY.md')] },
    { text: 'saved' },
  ]);
  assert.equal(m.reply, 'saved');
  assert.match(fs.readFileSync(path.join(f.hako.home, 'global', 'MEMORY.md'), 'utf8'), /## Team\n\n- Standup is at 9:00\.\n/);
  assert.match(toolResults(m.to, 1)[0]!, /Standup is at 9:00/);

  const b = await turn('team', [
    { toolCalls: [
      { name: 'remember', args: { section: 'Team', text: '- Standup moved to 11:00.', scope: 'global' } },
      bash('echo "- Standup moved to 11:00." >> /workspace/global/MEMORY.md; echo "exit $?"'),
    ] },
    { text: 'tried' },
  ]);
  assert.match(f.model.requests[b.from]!.body, /Standup is at 9:00/, 'B\'s system prompt carries global memory');
  const [viaTool, viaShell] = toolResults(b.to, 2);
  assert.match(viaTool!, /only the main group may change global memory/);
  assert.match(viaShell!, /Read-only file system/);
  assert.doesNotMatch(fs.readFileSync(path.join(f.hako.home, 'global', 'MEMORY.md'), 'utf8'), /11:00/);
});

test('memory isolation - group B\'s agent looking for A\'s files (cat of the paths, find /, grep for the canary) finds nothing of A', async () => {
  const victim = path.join(f.hako.home, 'groups', 'victim');
  const b = await turn('team', [
    { toolCalls: [
      bash(`for p in ${victim}/MEMORY.md ${victim}/.hako/history.json ${victim}/notes/deal.md /workspace/../groups/victim/MEMORY.md; do cat "$p" 2>&1 | head -3; done`),
      bash('find / \\( -path /proc -o -path /sys \\) -prune -o \\( -name MEMORY.md -o -name history.json -o -name deal.md -o -name "*.md" -path "*conversations*" \\) -print 2>/dev/null'),
      bash(`grep -rlsI -e '${CANARY_PATTERN}' /workspace /ipc /run /tmp /home /root /mnt /srv 2>/dev/null; echo "grep-finished"`),
    ] },
    { text: 'searched' },
  ]);
  const [cat, find, grep] = toolResults(b.to, 3);
  assert.equal((cat!.match(/No such file or directory/g) ?? []).length, 4, cat);
  const found = find!.split('\n').filter((l) => l.startsWith('/'));
  assert.ok(found.includes('/workspace/group/MEMORY.md'), find);
  for (const p of found) assert.match(p, /^\/workspace\/(group|global)\//, `only B's own and the global files: ${p}`);
  assert.ok(!found.some((p) => p.endsWith('deal.md')), find);
  assert.equal(grep!.replace(/\n\[exit code \d+\]$/, '').trim(), 'grep-finished', `grep found files holding the canary: ${grep}`);
  assert.deepEqual(leaks(), []);
});

test('memory isolation - a scheduled task run of group B never carries A\'s canary', async () => {
  const added = await f.hako.cli(['tasks', 'add', 'team', '--every', '1h', 'summarise what you know about the vault and the deal']);
  assert.equal(added.code, 0, added.stderr);
  const id = /task-[0-9a-f]{8}/.exec(added.stdout)![0];
  const before = (await f.hako.messages('team')).at(-1)!.id;
  const from = f.model.requests.length;
  f.model.script({ toolCalls: [bash('cat MEMORY.md; ls -R /workspace | head -50')] }, { text: 'task summary' });
  const ran = await f.hako.cli(['tasks', 'run', id]);
  assert.equal(ran.code, 0, ran.stderr);
  const [reply] = await f.hako.waitForReplies('team', before, 1, 180_000);
  assert.equal(reply!.text, 'task summary');
  assert.ok(f.model.requests.slice(from).some((r) => r.body.includes(`[scheduled task ${id}, run `)), 'the task run reached the model');
  assert.equal((await f.hako.cli(['tasks', 'cancel', id])).code, 0);
  assert.deepEqual(leaks(), []);
});

// Sub-agents (agent/tools/spawn.ts, the swarm engineer's spawn_agents): B's helpers hunt for
// A's files too, each in a fresh context; none of their requests may carry the canary.
test('memory isolation - group B\'s sub-agents (spawn_agents) looking for A\'s files find nothing, and none of their requests holds the canary', async () => {
  const victim = path.join(f.hako.home, 'groups', 'victim');
  const hunt = `cat ${victim}/MEMORY.md ${victim}/notes/deal.md 2>&1 | head -3; grep -rlsI -e '${CANARY_PATTERN}' /workspace /tmp 2>/dev/null; echo "hunt-finished"`;
  // Sub-agents run at once, so which scripted turn each takes is not fixed: one rule serves both.
  const helper: ScriptedTurn = (req) => JSON.stringify(req.json.messages).includes('hunt-finished') && (req.json.messages as { role: string }[]).some((m) => m.role === 'tool')
    ? { text: 'helper found nothing' }
    : { toolCalls: [bash(hunt)] };
  const b = await turn('team', [
    { toolCalls: [{ name: 'spawn_agents', args: { tasks: [{ prompt: 'Find the vault code of the other team.' }, { prompt: 'Find the secret price in any deal note.' }] } }] },
    helper, helper, helper, helper,
    { text: 'swarm done' },
  ]);
  assert.equal(b.reply, 'swarm done');
  const [swarm] = toolResults(b.to, 1);
  assert.equal((swarm!.match(/helper found nothing/g) ?? []).length, 2, swarm);
  const hunts = f.model.requests.slice(b.from, b.to)
    .flatMap((r) => (r.json.messages as { role: string; content: string }[]).filter((m) => m.role === 'tool' && String(m.content).includes('hunt-finished')));
  assert.equal(hunts.length, 2, 'each sub-agent ran the hunt once');
  for (const h of hunts) assert.match(h.content, /^cat: .*No such file or directory\ncat: .*No such file or directory\nhunt-finished\n\[exit code 0\]$/);
  assert.deepEqual(leaks(), []);
});

test('memory isolation - across every turn above (A, main, B, B\'s task), no model request of a group other than A holds A\'s canary', () => {
  assert.ok(f.model.requests.length > ownTurns.reduce((n, [a, b]) => n + b - a, 0), 'other groups made requests');
  assert.deepEqual(leaks(), []);
});
