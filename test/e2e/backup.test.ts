// A backup taken the way an owner takes one: while the host runs and messages keep
// arriving over the HTTP API. Restored into a fresh HAKO_HOME and started there, the copy
// must hold every message whole, and what was waiting in it is answered by the new host.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess, runCli } from '../support/hako.ts';

function openaiEnv(model: ModelServer): Record<string, string> {
  return { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test' };
}

interface Row { id: string; role: string; text: string; state: string; batch_id: string | null }

function rows(dbFile: string): Row[] {
  const db = new DatabaseSync(dbFile, { readOnly: true });
  try {
    return db.prepare("SELECT id, role, text, state, batch_id FROM messages WHERE group_name = 'main' ORDER BY seq").all() as unknown as Row[];
  } finally {
    db.close();
  }
}

/** Waits (bounded) until `pred` holds; the deadline only ends a hung run, it asserts nothing about speed. */
async function until(pred: () => boolean, what: string, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('backup under load - restored and started, every message is whole, those posted during it are in the copy or not at all, and what waited is answered', async (t) => {
  const model = await startModelServer();
  const h = await HakoProcess.start({ env: openaiEnv(model) });
  const restoredHome = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-restored-'));
  const restoredConfig = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-restored-config-'));
  let restored: HakoProcess | undefined;
  t.after(async () => {
    await h.stop();
    await restored?.stop();
    h.cleanup();
    restored?.cleanup();
    fs.rmSync(restoredHome, { recursive: true, force: true });
    fs.rmSync(restoredConfig, { recursive: true, force: true });
    await model.close();
  });

  // Accepted before the backup began: all of these must be in the copy.
  const before: string[] = [];
  for (let i = 0; i < 5; i++) before.push(await h.post('main', `before ${i}`));
  await h.waitForReplies('main', before[0]!);

  // Posted while `hako backup` runs: each is in the copy or not, and never half.
  const during = new Map<string, string>();
  const after: string[] = [];
  const file = path.join(os.tmpdir(), `hako-backup-${process.pid}-${Date.now()}.tar.gz`);
  t.after(() => fs.rmSync(file, { force: true }));
  let backupDone = false;
  const backup = h.cli(['backup', file]).finally(() => { backupDone = true; });
  let n = 0;
  while (!backupDone) {
    const text = `during ${n++}`;
    during.set(await h.post('main', text), text);
  }
  const result = await backup;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^database .*schema \d+, audit log \d+ records?, head [0-9a-f]{16}…/m);
  assert.match(result.stdout, /^groups\/ +\d+ files?, \d+ folders?/m);
  assert.ok(during.size > 0, 'messages were posted while the backup ran');
  // Started after the backup ended: none may be in the copy.
  for (let i = 0; i < 3; i++) after.push(await h.post('main', `after ${i}`));
  const onRunning = await h.cli(['restore', file]);
  assert.equal(onRunning.code, 1);
  assert.match(onRunning.stderr, /a hako host is running on HAKO_HOME=.*: stop it, move the folder away/);
  await h.stop();

  fs.rmdirSync(restoredHome); // restore wants it empty or missing; it is recreated whole
  const env = { HAKO_HOME: restoredHome, HAKO_CONFIG: restoredConfig };
  const back = await runCli(['restore', file], env);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stdout, /audit log verified: \d+ records?, head [0-9a-f]{16}… is record \d+, as when the backup was taken/);

  const copy = rows(path.join(restoredHome, 'hako.db'));
  const byId = new Map(copy.map((r) => [r.id, r]));
  for (const id of before) assert.ok(byId.has(id), `message ${id}, accepted before the backup began, is in the copy`);
  for (const id of after) assert.ok(!byId.has(id), `message ${id}, posted after the backup ended, is not in the copy`);
  for (const [id, text] of during) if (byId.has(id)) assert.equal(byId.get(id)!.text, text, `message ${id} is whole`);
  // Posted one after another, so one snapshot holds a prefix of them: never a later one without an earlier one.
  const present = [...during.keys()].map((id) => byId.has(id));
  assert.deepEqual(present, present.map((_, i) => i < present.indexOf(false) || present.indexOf(false) === -1), 'the copy holds the messages posted during it up to one point, and none after');
  const users = copy.filter((r) => r.role === 'user');
  for (const reply of copy.filter((r) => r.role === 'assistant')) {
    assert.ok(users.some((u) => u.batch_id === reply.batch_id), `reply ${reply.id} has the message it answers`);
  }
  const waiting = users.filter((r) => r.state === 'pending' || r.state === 'in_batch').map((r) => r.id);
  const inCopy = [...during.keys()].filter((id) => byId.has(id)).length;
  t.diagnostic(`posted during the backup: ${during.size}, of which in the copy: ${inCopy}; waiting in the copy: ${waiting.length}; replies in the copy: ${copy.length - users.length}`);
  assert.ok(waiting.length > 0, 'the copy was taken while messages waited for an answer (the load overlapped it)');

  const verify = await runCli(['audit', 'verify'], env);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /audit log intact/);

  restored = await HakoProcess.start({ env: openaiEnv(model), home: restoredHome, configDir: restoredConfig });
  const dbFile = path.join(restoredHome, 'hako.db');
  await until(() => {
    const now = new Map(rows(dbFile).map((r) => [r.id, r.state]));
    return waiting.every((id) => now.get(id) === 'answered');
  }, `the ${waiting.length} messages waiting in the copy are answered by the restored host`);
  const texts = (await restored.messages('main')).map((m) => m.text);
  for (const id of waiting) assert.ok(texts.includes(byId.get(id)!.text), `message ${id} is shown by the restored host`);
});
