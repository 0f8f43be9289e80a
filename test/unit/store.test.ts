import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { MIGRATIONS, Store } from '../../src/core/store.ts';

function tempDb(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'hako.db');
}

test('store migrations - a new database is migrated to the latest version in WAL mode', (t) => {
  const file = tempDb(t);
  const store = new Store(file);
  assert.equal(store.schemaVersion, MIGRATIONS.length);
  store.close();
  const db = new DatabaseSync(file);
  assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  for (const name of ['batches', 'groups', 'messages', 'outputs']) assert.ok(tables.includes(name), name);
  db.close();
});

test('store migrations - reopening keeps data and does not re-run migrations', (t) => {
  const file = tempDb(t);
  const a = new Store(file);
  a.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  a.close();
  const b = new Store(file);
  assert.equal(b.schemaVersion, MIGRATIONS.length);
  assert.equal(b.getGroup('main')?.isMain, true);
  b.close();
});

test('store migrations - a database from a newer hako is refused with a hint', (t) => {
  const file = tempDb(t);
  const db = new DatabaseSync(file);
  db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
  db.close();
  assert.throws(() => new Store(file), /newer than this hako.*upgrade/);
});

test('store - only one main group may exist and names are unique', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  assert.throws(() => s.addGroup({ name: 'boss', isMain: true, trigger: null, model: null }), /already the main group/);
  assert.throws(() => s.addGroup({ name: 'main', isMain: false, trigger: null, model: null }), /already exists/);
  s.close();
});

test('store - a batch takes pending messages with their context, and done answers them', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'team', isMain: false, trigger: '@hako', model: null });
  const ctx = s.addUserMessage({ group: 'team', sender: 'bob', text: 'context only', engage: false });
  const m = s.addUserMessage({ group: 'team', sender: 'amy', text: '@hako summarise', engage: true });
  const batch = s.takeBatch('team', 10_000)!;
  assert.deepEqual(batch.messages.map((x) => x.id), [ctx.id, m.id]);
  assert.equal(s.takeBatch('team', 10_000), undefined, 'nothing left to take');
  s.finishBatch(batch.id);
  assert.equal(s.getMessage(m.id)?.state, 'answered');
  assert.deepEqual(s.groupsWithPending(), []);
  s.close();
});

test('store - an output is applied once even if seen twice', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  s.addUserMessage({ group: 'main', sender: 'me', text: 'hi', engage: true });
  const b = s.takeBatch('main', 1000)!;
  const o = { outputId: 'out-1', group: 'main', batchId: b.id, type: 'reply', text: 'hello', sender: 'hako' };
  assert.ok(s.applyAssistantOutput(o));
  assert.equal(s.applyAssistantOutput(o), undefined);
  assert.equal(s.listMessages('main')!.filter((x) => x.role === 'assistant').length, 1);
  s.close();
});

test('store - a failed batch without a reply is retried, then given up after the limit', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  const m = s.addUserMessage({ group: 'main', sender: 'me', text: 'hi', engage: true });
  let b = s.takeBatch('main', 1000)!;
  assert.deepEqual(s.failBatch(b.id, 'boom', { maxAttempts: 2, retryable: true }), { kind: 'retry', attempts: 1 });
  assert.equal(s.getMessage(m.id)?.state, 'pending');
  b = s.takeBatch('main', 1000)!;
  assert.deepEqual(s.failBatch(b.id, 'boom', { maxAttempts: 2, retryable: true }), { kind: 'gave_up', attempts: 2 });
  assert.equal(s.getMessage(m.id)?.state, 'failed');
  s.close();
});

test('store - a failed batch whose reply reached the user counts as answered, never re-run', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  const m = s.addUserMessage({ group: 'main', sender: 'me', text: 'hi', engage: true });
  const b = s.takeBatch('main', 1000)!;
  s.applyAssistantOutput({ outputId: 'o1', group: 'main', batchId: b.id, type: 'reply', text: 'partial', sender: 'hako' });
  assert.deepEqual(s.failBatch(b.id, 'container died', { maxAttempts: 5, retryable: true }), { kind: 'answered' });
  assert.equal(s.getMessage(m.id)?.state, 'answered');
  s.close();
});

test('store - listMessages after an id returns only later messages of that group', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'a', isMain: true, trigger: null, model: null });
  s.addGroup({ name: 'b', isMain: false, trigger: null, model: null });
  const first = s.addUserMessage({ group: 'a', sender: 'me', text: '1', engage: true });
  s.addUserMessage({ group: 'b', sender: 'me', text: 'other', engage: true });
  const second = s.addUserMessage({ group: 'a', sender: 'me', text: '2', engage: true });
  assert.deepEqual(s.listMessages('a', { afterId: first.id })!.map((m) => m.id), [second.id]);
  assert.equal(s.listMessages('b', { afterId: first.id }), undefined, 'an id from another group is unknown here');
  s.close();
});

test('store - a batch always holds the oldest pending message: long context before it is cut from the oldest end, never the message', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  const stranger = Array.from({ length: 4 }, (_, i) => s.addUserMessage({ group: 'main', sender: 'eve', text: `${i}`.repeat(400), engage: false, chat: 'mail:me', ref: `s${i}` }));
  const owner = s.addUserMessage({ group: 'main', sender: 'owner', text: 'please file this', engage: true, chat: 'mail:me', ref: 'o1' });
  const b = s.takeBatch('main', 1000)!;
  assert.deepEqual(b.messages.map((m) => m.id), [stranger[2]!.id, stranger[3]!.id, owner.id], 'the newest context that fits, then the message');
  const reply = s.applyAssistantOutput({ outputId: 'o', group: 'main', batchId: b.id, type: 'reply', text: 'filed', sender: 'hako' })!;
  assert.deepEqual(s.pendingDeliveries(reply.id).map((d) => [d.chat, d.replyTo]), [['mail:me', 'o1']], 'the reply answers the message that called the agent');
});

test('store - a batch ends on a pending message: context after the last one that fits waits for the next batch', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  const p1 = s.addUserMessage({ group: 'main', sender: 'owner', text: 'first', engage: true });
  const c = s.addUserMessage({ group: 'main', sender: 'eve', text: 'x'.repeat(100), engage: false });
  const p2 = s.addUserMessage({ group: 'main', sender: 'owner', text: 'y'.repeat(900), engage: true });
  const b1 = s.takeBatch('main', 1000)!;
  assert.deepEqual(b1.messages.map((m) => m.id), [p1.id], 'p2 does not fit; the context after p1 is not taken alone');
  s.finishBatch(b1.id);
  const b2 = s.takeBatch('main', 1000)!;
  assert.deepEqual(b2.messages.map((m) => m.id), [c.id, p2.id]);
});

test('store - a chat message is found by its chat and ref, and cannot be stored twice', (t) => {
  const s = new Store(tempDb(t));
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  const m = s.addUserMessage({ group: 'main', sender: 'amy', text: 'hi', engage: true, chat: 'tg:1', ref: '42' });
  assert.equal(s.messageByRef('tg:1', '42')?.id, m.id);
  assert.equal(s.messageByRef('tg:2', '42'), undefined);
  assert.throws(() => s.addUserMessage({ group: 'main', sender: 'amy', text: 'hi', engage: true, chat: 'tg:1', ref: '42' }), /UNIQUE/);
});
