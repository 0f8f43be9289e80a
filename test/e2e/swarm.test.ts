// spawn_agents end to end: a real host, the group's real container, its egress proxy, and a
// scripted model behind a gate that holds every sub-agent's request until all three have
// arrived — so the reply can only come back if the sub-agents really ran at the same time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startModelServer, type RecordedRequest, type ScriptedTurn } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const TASKS = ['SWARM-TASK-1 count the apples', 'SWARM-TASK-2 count the pears', 'SWARM-TASK-3 count the plums'];

/** The text of the first user message: the batch for the parent, the task for a sub-agent. */
function firstUser(messages: { role: string; content: unknown }[]): string {
  return JSON.stringify(messages.find((m) => m.role === 'user')?.content ?? '');
}

function script(req: RecordedRequest): ScriptedTurn {
  const messages = req.json.messages as { role: string; content: unknown }[];
  const task = /SWARM-TASK-(\d)/.exec(firstUser(messages));
  if (task) return { text: `answer ${task[1]}` };
  const last = messages.at(-1)!;
  if (last.role === 'tool') return { text: `Collected:\n${String(last.content)}` };
  return { toolCalls: [{ name: 'spawn_agents', args: { tasks: TASKS.map((prompt) => ({ prompt })) } }] };
}

/**
 * Forwards to the model server, but holds each sub-agent request until `n` have arrived. If
 * they came one at a time, the first would wait alone: after `breakMs` it gets a 500, the
 * sub-agent fails, and the reply says so (the test fails instead of hanging).
 */
async function startGate(target: string, n: number, breakMs = 60_000) {
  let held = 0;
  let open!: (ok: boolean) => void;
  const opened = new Promise<boolean>((r) => { open = r; });
  const timer = setTimeout(() => open(false), breakMs);
  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', target);
    const up = request(url, { method: req.method, headers: { ...req.headers, host: url.host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end(body);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let json: { messages?: { role: string; content: unknown }[] } = {};
      try { json = JSON.parse(body.toString()) as typeof json; } catch { /* not a completion: forward as is */ }
      if (!/SWARM-TASK/.test(firstUser(json.messages ?? []))) return forward(req, body, res);
      held++;
      if (held === n) { clearTimeout(timer); open(true); }
      void opened.then((ok) => ok ? forward(req, body, res) : res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'held alone: the sub-agents did not run at the same time', type: 'server_error' } })));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, held: () => held, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('swarm - three sub-agents in the group\'s container run at the same time, each sees only its own task, and the parent answers with all three', async (t) => {
  const model = await startModelServer({ fallback: script });
  const gate = await startGate(model.url, 3);
  const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: gate.url } });
  t.after(async () => { await h.stop(); h.cleanup(); await gate.close(); await model.close(); });

  const id = await h.post('main', 'count the fruit, three helpers please');
  const [reply] = await h.waitForReplies('main', id, 1, 90_000).catch((err: unknown) => {
    throw new Error(`no reply; held ${gate.held()} sub-agent requests; host log tail:\n${h.output.slice(-4000)}`, { cause: err });
  });
  assert.equal(reply!.text, `Collected:\n${[1, 2, 3].map((i) => `## Sub-agent ${i} of 3: ok\n\nanswer ${i}`).join('\n\n')}`);
  assert.equal(gate.held(), 3);

  const subRequests = model.requests.filter((r) => /SWARM-TASK/.test(firstUser(r.json?.messages ?? [])));
  assert.equal(subRequests.length, 3);
  for (const r of subRequests) {
    const messages = r.json.messages as { role: string; content: unknown }[];
    assert.deepEqual(messages.map((m) => m.role), ['system', 'user'], 'a fresh context: system prompt and its task only');
    const mine = TASKS.filter((task) => JSON.stringify(messages).includes(task));
    assert.equal(mine.length, 1, 'each request carries exactly one task');
    assert.doesNotMatch(JSON.stringify(messages), /three helpers please/, 'not the parent\'s conversation');
    assert.ok(!(r.json.tools as { function: { name: string } }[]).some((x) => ['spawn_agents', 'send_message', 'schedule_task'].includes(x.function.name)));
  }
  // Sub-agents ran in the group's own container: there was only ever one for main.
  const started = h.logEvents().filter((e) => e.msg === 'container started');
  assert.equal(started.length, 1, JSON.stringify(started));

  const day = new Date().toISOString().slice(0, 10);
  const archive = await readFile(path.join(h.home, 'groups', 'main', 'conversations', `${day}.md`), 'utf8').catch(() => '');
  for (let i = 1; i <= 3; i++) assert.match(archive, new RegExp(`sub-agent ${i} of 3 of turn \\S+: SWARM-TASK-${i}`));
});
