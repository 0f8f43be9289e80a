// Red team: the mount race and the engine's log. A writable group (or any writer hako does
// not know about) swaps a folder another group mounts for a link to a canary folder in a
// tight loop while that group's container starts again and again; the canary must never
// reach the victim's container. And an agent flooding its stdout must not fill the
// engine's log on the host's disk.
//
// Each describe runs its own real host: the race needs a fresh container for every turn
// (HAKO_IDLE_TIMEOUT=0), the log check a container that stays warm to be inspected.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DatabaseSync } from 'node:sqlite';
import { startModelServer, type ModelServer, type RecordedRequest } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';
import { AGENT_LINES_PER_MINUTE } from '../../src/core/agent-lines.ts';

const exec = promisify(execFile);

/** The last user text of a model request, and whether the request carries a tool result. */
function turnOf(req: RecordedRequest): { user: string; afterTool: boolean } {
  const messages = (req.json?.messages ?? []) as { role: string; content: unknown }[];
  const user = messages.findLast((m) => m.role === 'user');
  return { user: typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? ''), afterTool: messages.at(-1)?.role === 'tool' };
}

/** The tool results of a request, joined: what the agent saw. */
function toolResults(req: RecordedRequest): string {
  return ((req.json?.messages ?? []) as { role: string; content: unknown }[]).filter((m) => m.role === 'tool').map((m) => String(m.content)).join('\n');
}

/**
 * The scripted model: a message "run: <command>" makes the agent run that one bash command,
 * and the reply repeats what the command printed, so the chat shows what the agent saw.
 */
function commandModel(req: RecordedRequest) {
  const { user, afterTool } = turnOf(req);
  if (afterTool) return { text: `saw: ${toolResults(req).slice(-2000)}` };
  const m = /run: ([\s\S]*)$/.exec(user);
  return m ? { toolCalls: [{ name: 'bash', args: { command: m[1]!, timeout_ms: 600_000 } }] } : { text: 'nothing to run' };
}

async function startHost(model: ModelServer, env: Record<string, string>): Promise<HakoProcess> {
  return HakoProcess.start({
    env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-mounts-test-key', HAKO_MAX_ATTEMPTS: '1', HAKO_CONTAINER_MEMORY: '256m', ...env },
  });
}

async function cliOk(hako: HakoProcess, args: string[]): Promise<void> {
  const r = await hako.cli(args);
  assert.equal(r.code, 0, `hako ${args.join(' ')}: ${r.stderr}`);
}

/** Posts one message and returns the one reply it gets (an answer or a notice). */
async function ask(hako: HakoProcess, group: string, text: string): Promise<string> {
  const id = await hako.post(group, text);
  const [r] = await hako.waitForReplies(group, id, 1, 180_000);
  return r!.text;
}

/** Resolves once `check` holds, looking again after every short pause (bounded). */
async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The swap, as a shell loop: the folder and a link to the canary take turns at `sub`, each
 * for about the time between hako's check and the engine's bind mount, so that the check
 * sees the folder and the engine the link in about a quarter of the starts.
 */
function swapLoop(dir: string, canaryDir: string): string {
  return `cd ${dir} && while [ ! -e stop ]; do mv sub sub.x; ln -s ${canaryDir} sub; sleep 0.1; rm sub; mv sub.x sub; sleep 0.1; done; echo swapper stopped`;
}

describe('attack 29 - the mount race', () => {
  let model: ModelServer;
  let hako: HakoProcess;
  let secretDir: string;
  let canaryDir: string;
  const canary = `CANARY-${Math.random().toString(36).slice(2)}`;
  const trees: string[] = [];

  before(async () => {
    model = await startModelServer({ fallback: commandModel });
    hako = await startHost(model, { HAKO_IDLE_TIMEOUT: '0' });
    secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-mountsecret-'));
    canaryDir = path.join(secretDir, 'canary');
    fs.mkdirSync(canaryDir);
    fs.writeFileSync(path.join(canaryDir, 'notes.txt'), `${canary}\n`);
  });
  after(async () => {
    await hako?.stop();
    hako?.cleanup();
    for (const dir of [secretDir, ...trees]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await model?.close();
  });

  /** An allowed root holding shared/sub/notes.txt, writable by the container user. */
  function allowedTree(): { root: string; shared: string; sub: string } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-allowed-'));
    trees.push(root);
    const shared = path.join(root, 'shared');
    const sub = path.join(shared, 'sub');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, 'notes.txt'), 'just notes\n');
    fs.chmodSync(shared, 0o777); // the agent's uid may differ from the host's
    fs.writeFileSync(path.join(hako.configDir, 'mounts.json'), JSON.stringify({ allowedRoots: [{ path: root, readWrite: true, nonMainReadWrite: true }] }));
    return { root, shared, sub };
  }

  test('attack 29 - a writable group swaps the subfolder another group mounts for a link to a canary, in a loop, while that group starts again and again: the canary never reaches it, and such overlapping mounts are refused at registration', async () => {
    const { root, shared, sub } = allowedTree();
    await cliOk(hako, ['groups', 'add', 'victim', '--mount', sub]);
    await cliOk(hako, ['groups', 'add', 'swapper']);
    // The overlapping grant as a hako from before the overlap rule stored it: straight into
    // the database, since registration (below) now refuses it.
    const db = new DatabaseSync(path.join(hako.home, 'hako.db'));
    db.prepare('UPDATE groups SET mounts = ? WHERE name = ?').run(JSON.stringify([{ hostPath: shared, readWrite: true }]), 'swapper');
    db.close();

    let swapperEnded = false;
    const swapper = ask(hako, 'swapper', `@hako run: ${swapLoop('/workspace/extra/shared', canaryDir)}`).finally(() => { swapperEnded = true; });
    await until('the swapper agent is swapping, or was refused', () => swapperEnded || isLink(sub) || fs.existsSync(path.join(shared, 'sub.x')));
    const seen: string[] = [];
    try {
      for (let i = 0; i < 16; i++) seen.push(await ask(hako, 'victim', `@hako run: cat /workspace/extra/sub/notes.txt 2>&1; echo look ${i}`));
    } finally {
      fs.writeFileSync(path.join(shared, 'stop'), '');
    }
    const swapperSaw = await swapper;
    const reached = seen.filter((s) => s.includes(canary)).length;
    assert.equal(reached, 0, `the canary reached the victim's container in ${reached} of ${seen.length} starts`);
    // The rule holds at every start, both ways: neither container ever ran.
    assert.match(swapperSaw, /could not answer: the container could not start: group "swapper" mounts .*shared: it contains .*sub, which group "victim" mounts read-only/);
    const victimRequests = model.requests.filter((r) => /look \d+/.test(turnOf(r).user)).map((r) => r.body).join('\n');
    assert.ok(!victimRequests.includes(canary), 'the canary never reached the model');
    for (const s of seen) assert.match(s, /could not answer: the container could not start: group "victim" mounts .*sub: it lies inside .*shared, which group "swapper" mounts read-write/);

    // Registration refuses the same overlap in both directions, naming the other group.
    const inside = await hako.cli(['groups', 'add', 'victim2', '--mount', sub]);
    assert.notEqual(inside.code, 0);
    assert.match(inside.stderr, /group "victim2" mounts .*sub: it lies inside .*shared, which group "swapper" mounts read-write/);
    const contains = await hako.cli(['groups', 'mounts', 'swapper', 'add', `${root}:rw`]);
    assert.notEqual(contains.code, 0);
    assert.match(contains.stderr, /group "swapper" mounts .*: it contains .*sub, which group "victim" mounts read-only/);
  });

  test('attack 29 - a folder swapped between the policy check and the bind mount by a writer hako cannot see is caught in the started container: killed before any batch, the user told, the kill audited', async () => {
    const { sub } = allowedTree();
    await cliOk(hako, ['groups', 'add', 'victim3', '--mount', sub]);
    // A writer no group's mount reveals (a sync tool, another account, a bind-mounted
    // alias) swaps the folder with the luckiest timing a looping attacker can hit: right
    // after hako's check, as the host announces the start. Only the check of what was
    // really mounted can stop it.
    const caught = (s: string) => /is not the folder that was checked/.test(s);
    const seen: string[] = [];
    for (let i = 0; i < 10 && !seen.some(caught); i++) {
      let swapped = false;
      const swap = (chunk: Buffer) => {
        if (swapped || !/container started group=victim3 /.test(chunk.toString())) return;
        swapped = true;
        fs.renameSync(sub, `${sub}.x`);
        fs.symlinkSync(canaryDir, sub);
      };
      hako.child.stderr!.on('data', swap);
      try {
        seen.push(await ask(hako, 'victim3', `@hako run: cat /workspace/extra/sub/notes.txt 2>&1; echo look ${i}`));
      } finally {
        hako.child.stderr!.off('data', swap);
        if (swapped) {
          fs.unlinkSync(sub);
          fs.renameSync(`${sub}.x`, sub);
        }
      }
    }
    const reached = seen.filter((s) => s.includes(canary)).length;
    assert.equal(reached, 0, `the canary reached the victim's container in ${reached} of ${seen.length} starts`);
    assert.ok(!model.requests.map((r) => r.body).join('\n').includes(canary), 'the canary never reached the model');
    const killed = seen.find(caught);
    assert.ok(killed, `no start was caught in ${seen.length} tries: ${seen.join(' | ')}`);
    assert.match(killed, /could not answer: the container could not start: group "victim3": the folder mounted at \/workspace\/extra\/sub is not the folder that was checked .*the container was killed before it got any work/);
    const audit = await hako.cli(['audit', '--kind', 'container.refused', '--group', 'victim3', '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /is not the folder that was checked/);
  });
});

describe('attack 30 - the engine log', () => {
  let model: ModelServer;
  let hako: HakoProcess;

  before(async () => {
    model = await startModelServer({ fallback: commandModel });
    hako = await startHost(model, {});
  });
  after(async () => {
    await hako?.stop();
    hako?.cleanup();
    await model?.close();
  });

  test('attack 30 - an agent floods its stdout and stderr: the engine keeps no log of it on the host disk', async () => {
    await cliOk(hako, ['groups', 'add', 'flood']);
    const mb = 24;
    const reply = await ask(hako, 'flood', `@hako run: head -c ${mb}M /dev/zero | tr '\\0' x > /proc/1/fd/1; head -c ${mb}M /dev/zero | tr '\\0' y > /proc/1/fd/2; echo flooded`);
    assert.match(reply, /flooded/);
    // The container is warm now: look at what the engine keeps for it.
    const { stdout: names } = await exec('docker', ['ps', '--filter', 'label=dev.hako.group=flood', '--filter', `label=dev.hako.home=${hako.home}`, '--format', '{{.Names}}']);
    const name = names.trim();
    assert.ok(name, 'the warm container is running');
    const { stdout } = await exec('docker', ['inspect', '--format', '{{.HostConfig.LogConfig.Type}} {{.LogPath}}', name]);
    const [driver, logPath] = stdout.trim().split(' ');
    const size = logPath && fs.existsSync(logPath) ? fs.statSync(logPath).size : 0;
    assert.ok(size < 1024 * 1024, `the engine log ${logPath} (driver ${driver}) holds ${size} bytes of the flood`);
    assert.equal(driver, 'none');
    // The host still hears the container: the end of the stream reaches it.
    await hako.waitForLog((e) => e.msg === 'agent' && e.group === 'flood' && typeof e.line === 'string' && /yyyy/.test(e.line as string));
  });
});

test('attack 30b - an agent floods its log with lines that claim to be errors: at the default level at most AGENT_LINES_PER_MINUTE a minute reach hako.log, and the owner is told once', async (t) => {
  const model = await startModelServer({ fallback: commandModel });
  const hako = await startHost(model, { HAKO_LOG_LEVEL: 'info' });
  t.after(async () => { await hako.stop(); await model.close(); hako.cleanup(); });
  await cliOk(hako, ['groups', 'add', 'noisy']);
  const forged = JSON.stringify({ level: 'error', event: 'fatal', error: 'forged by the agent' });
  const reply = await ask(hako, 'noisy', `@hako run: for i in $(seq 500); do echo '${forged}' > /proc/1/fd/2; done; echo flooded`);
  assert.match(reply, /flooded/);
  await hako.stop(); // every line the container wrote has reached the host
  const events = hako.logEvents();
  const relayed = events.filter((e) => e.msg === 'agent' && e.group === 'noisy');
  assert.ok(relayed.some((e) => String(e.line).includes('forged by the agent') && e.level === 'error'), 'the first lines are relayed at the level they name');
  assert.ok(relayed.length <= AGENT_LINES_PER_MINUTE, `${relayed.length} agent lines reached the log at the default level`);
  assert.equal(events.filter((e) => e.msg === 'agent log lines over budget' && e.group === 'noisy').length, 1);
});
