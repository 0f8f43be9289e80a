// The opt-in stronger boundary: with HAKO_RUNTIME=runsc the agent runs under gVisor, where
// host-written files raise no inotify events inside the container (the agent's poll fallback
// carries the IPC), and everything else works as under runc.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

function hasRunsc(): boolean {
  try {
    return Object.keys(JSON.parse(execFileSync('docker', ['info', '--format', '{{json .Runtimes}}'], { encoding: 'utf8' }))).includes('runsc');
  } catch {
    return false;
  }
}

test('gVisor - with HAKO_RUNTIME=runsc a turn with a tool runs in a gVisor sandbox', { skip: hasRunsc() ? false : 'the engine has no runsc runtime (.ci/run installs it)' }, async (t) => {
  const model = await startModelServer();
  const h = await HakoProcess.start({ env: { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_RUNTIME: 'runsc' } });
  t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
  model.script(
    { toolCalls: [{ name: 'bash', args: { command: 'dmesg 2>/dev/null | head -3; uname -r; echo under-gvisor > proof.txt' } }] },
    { text: 'sandboxed' },
  );
  const id = await h.post('main', 'where are you running?');
  const [reply] = await h.waitForReplies('main', id);
  assert.equal(reply!.text, 'sandboxed');
  assert.equal(fs.readFileSync(path.join(h.home, 'groups', 'main', 'proof.txt'), 'utf8'), 'under-gvisor\n');
  const toolOutput = JSON.stringify(model.requests.at(-1)!.json.messages);
  assert.match(toolOutput, /gVisor|Starting gVisor/i, 'the kernel the agent sees is gVisor\'s');
  // A second message: the host cannot see a sandbox's processes, so no turn's leftovers may
  // outlive it there, and each turn gets a fresh sandbox (docs/SECURITY.md, known limits).
  const second = await h.post('main', 'again');
  const [again] = await h.waitForReplies('main', second);
  assert.match(again!.text, /again/);
  // The exact engine arguments of every start are in the audit log (the container itself may
  // already be gone, so `docker ps` would race its removal).
  const starts = JSON.parse((await h.cli(['audit', '--kind', 'container.start', '--json'])).stdout) as { data: { args: string[] } }[];
  assert.equal(starts.length, 2, 'a fresh sandbox for each turn');
  for (const s of starts) assert.equal(s.data.args[s.data.args.indexOf('--runtime') + 1], 'runsc');
});
