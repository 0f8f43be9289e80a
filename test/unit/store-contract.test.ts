// The store contracts of src/core/store-contract.ts as a suite. GroupStore's part runs
// against the SQLite store and against an in-memory GroupStore written from the interface
// alone, so a second implementation has a suite to pass and the fake cannot drift; the
// transaction and batch contracts run against the SQLite store.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/core/store.ts';
import { failOutcome, type Group, type GroupStore } from '../../src/core/store-contract.ts';

function sqliteStore(t: { after(fn: () => void): void }): Store {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-store-contract-'));
  const store = new Store(path.join(dir, 'hako.db'));
  t.after(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

/** GroupStore in memory: what a second implementation has to do, from the interface alone. */
class MemoryGroupStore implements GroupStore {
  readonly #groups = new Map<string, Omit<Group, 'chats'>>();
  readonly #chats = new Map<string, string>();
  readonly #unknown = new Set<string>();

  /** Checks every binding first, so a refused call changes nothing. */
  #bindable(group: string, chats: readonly string[]): void {
    for (const chat of chats) {
      const owner = this.#chats.get(chat);
      if (owner && owner !== group) throw new Error(`chat ${chat} is already bound to group "${owner}" (unbind it first: hako groups set ${owner} --unchat ${chat})`);
    }
  }

  addGroup(g: Parameters<GroupStore['addGroup']>[0]): Group {
    if (this.#groups.has(g.name)) throw new Error(`group "${g.name}" already exists`);
    const main = this.mainGroup();
    if (g.isMain && main) throw new Error(`group "${main.name}" is already the main group: there can be only one`);
    this.#bindable(g.name, g.chats ?? []);
    this.#groups.set(g.name, { name: g.name, isMain: g.isMain, trigger: g.trigger, model: g.model, allowedSenders: g.allowedSenders ?? null, mounts: g.mounts ?? [], limits: {}, tokensPerDay: g.tokensPerDay ?? null, contextTokens: g.contextTokens ?? null, createdAt: new Date().toISOString() });
    for (const chat of g.chats ?? []) this.#chats.set(chat, g.name);
    return this.getGroup(g.name)!;
  }

  updateGroup(name: string, g: Parameters<GroupStore['updateGroup']>[1]): Group {
    const old = this.#groups.get(name);
    if (!old) throw new Error(`unknown group "${name}" (see: hako groups list)`);
    const { bind = [], unbind = [], ...fields } = g;
    for (const chat of unbind) if (this.#chats.get(chat) !== name) throw new Error(`group "${name}" is not bound to chat ${chat} (see: hako groups list)`);
    this.#bindable(name, bind.filter((c) => !unbind.includes(c)));
    for (const chat of unbind) this.#chats.delete(chat);
    for (const chat of bind) this.#chats.set(chat, name);
    const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    this.#groups.set(name, { ...old, ...given });
    return this.getGroup(name)!;
  }

  getGroup(name: string): Group | undefined {
    const g = this.#groups.get(name);
    return g && { ...g, chats: [...this.#chats].filter(([, owner]) => owner === name).map(([c]) => c).sort() };
  }

  groupForChat(chat: string): string | undefined {
    return this.#chats.get(chat);
  }

  noteUnknownChat(chat: string): boolean {
    if (this.#unknown.has(chat)) return false;
    this.#unknown.add(chat);
    return true;
  }

  mainGroup(): Group | undefined {
    const main = [...this.#groups.values()].find((g) => g.isMain);
    return main && this.getGroup(main.name);
  }

  listGroups(): Group[] {
    return [...this.#groups.keys()].sort().map((n) => this.getGroup(n)!);
  }

  removeGroup(name: string): boolean {
    for (const [chat, owner] of this.#chats) if (owner === name) this.#chats.delete(chat);
    return this.#groups.delete(name);
  }
}

const groupStores: { name: string; open(t: { after(fn: () => void): void }): GroupStore }[] = [
  { name: 'sqlite', open: sqliteStore },
  { name: 'memory', open: () => new MemoryGroupStore() },
];

for (const impl of groupStores) {
  test(`GroupStore (${impl.name}) - an empty store has no group, no main group and an empty list`, (t) => {
    const s = impl.open(t);
    assert.equal(s.getGroup('main'), undefined);
    assert.equal(s.mainGroup(), undefined);
    assert.deepEqual(s.listGroups(), []);
  });

  test(`GroupStore (${impl.name}) - a new group has no sender list, mounts or own limits, and the list is by name`, (t) => {
    const s = impl.open(t);
    s.addGroup({ name: 'team', isMain: false, trigger: '@bot', model: null });
    const main = s.addGroup({ name: 'main', isMain: true, trigger: null, model: 'openai/gpt-oss' });
    assert.deepEqual({ ...main, createdAt: '' }, { name: 'main', isMain: true, trigger: null, model: 'openai/gpt-oss', allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '' });
    assert.deepEqual(s.getGroup('main'), main);
    assert.equal(s.mainGroup()?.name, 'main');
    assert.deepEqual(s.listGroups().map((g) => g.name), ['main', 'team']);
  });

  test(`GroupStore (${impl.name}) - a taken name or a second main group is refused and changes nothing`, (t) => {
    const s = impl.open(t);
    s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
    assert.throws(() => s.addGroup({ name: 'boss', isMain: true, trigger: null, model: null }), /"main" is already the main group/);
    assert.throws(() => s.addGroup({ name: 'main', isMain: false, trigger: '@x', model: null }), /group "main" already exists/);
    assert.deepEqual(s.listGroups().map((g) => [g.name, g.trigger]), [['main', null]]);
  });

  test(`GroupStore (${impl.name}) - an update changes the given fields only; an unknown group is refused with a hint`, (t) => {
    const s = impl.open(t);
    s.addGroup({ name: 'team', isMain: false, trigger: '@bot', model: null, allowedSenders: ['amy'] });
    const g = s.updateGroup('team', { model: 'anthropic/claude', limits: { maxTasks: 3 }, mounts: [{ hostPath: '/srv/notes', readWrite: false }] });
    assert.deepEqual({ ...g, createdAt: '' }, {
      name: 'team', isMain: false, trigger: '@bot', model: 'anthropic/claude', allowedSenders: ['amy'],
      mounts: [{ hostPath: '/srv/notes', readWrite: false }], limits: { maxTasks: 3 }, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '',
    });
    assert.equal(s.updateGroup('team', { allowedSenders: null }).allowedSenders, null);
    assert.throws(() => s.updateGroup('nobody', { trigger: '@x' }), /unknown group "nobody" \(see: hako groups list\)/);
  });

  test(`GroupStore (${impl.name}) - a daily token budget is set at creation, changed, and removed with null`, (t) => {
    const s = impl.open(t);
    assert.equal(s.addGroup({ name: 'team', isMain: false, trigger: null, model: null, tokensPerDay: 5000 }).tokensPerDay, 5000);
    assert.equal(s.updateGroup('team', { tokensPerDay: 90_000 }).tokensPerDay, 90_000);
    assert.equal(s.updateGroup('team', { trigger: '@x' }).tokensPerDay, 90_000, 'an update without it keeps it');
    assert.equal(s.updateGroup('team', { tokensPerDay: null }).tokensPerDay, null);
  });

  test(`GroupStore (${impl.name}) - a context budget is set at creation, changed, kept by other updates, and removed with null`, (t) => {
    const s = impl.open(t);
    assert.equal(s.addGroup({ name: 'team', isMain: false, trigger: null, model: null, contextTokens: 32_768 }).contextTokens, 32_768);
    assert.equal(s.updateGroup('team', { contextTokens: 8192 }).contextTokens, 8192);
    assert.equal(s.updateGroup('team', { tokensPerDay: 5 }).contextTokens, 8192, 'an update without it keeps it');
    assert.equal(s.updateGroup('team', { contextTokens: null }).contextTokens, null);
  });

  test(`GroupStore (${impl.name}) - a chat address belongs to at most one group; a refused binding changes nothing`, (t) => {
    const s = impl.open(t);
    s.addGroup({ name: 'sales', isMain: false, trigger: null, model: null, chats: ['telegram:-100123', 'email:hako+sales@example.com'] });
    s.addGroup({ name: 'ops', isMain: false, trigger: null, model: null });
    assert.deepEqual(s.getGroup('sales')?.chats, ['email:hako+sales@example.com', 'telegram:-100123']);
    assert.equal(s.groupForChat('telegram:-100123'), 'sales');
    assert.equal(s.groupForChat('telegram:-999'), undefined);
    assert.throws(() => s.updateGroup('ops', { trigger: '@ops', bind: ['telegram:-555', 'telegram:-100123'] }), /chat telegram:-100123 is already bound to group "sales" \(unbind it first: hako groups set sales --unchat telegram:-100123\)/);
    assert.deepEqual(((g) => [g.trigger, g.chats])(s.getGroup('ops')!), [null, []], 'nothing of the refused update was applied');
    assert.throws(() => s.addGroup({ name: 'dup', isMain: false, trigger: null, model: null, chats: ['telegram:-100123'] }), /already bound to group "sales"/);
    assert.equal(s.getGroup('dup'), undefined);
    assert.deepEqual(s.updateGroup('sales', { bind: ['telegram:-100123'] }).chats.length, 2, 'binding a chat the group has changes nothing');
    assert.throws(() => s.updateGroup('ops', { unbind: ['telegram:-100123'] }), /group "ops" is not bound to chat telegram:-100123/);
  });

  test(`GroupStore (${impl.name}) - a chat unbound from one group can be bound to another; removing a group frees its chats`, (t) => {
    const s = impl.open(t);
    s.addGroup({ name: 'sales', isMain: false, trigger: null, model: null, chats: ['telegram:-100123'] });
    s.addGroup({ name: 'ops', isMain: false, trigger: null, model: null });
    s.updateGroup('sales', { unbind: ['telegram:-100123'] });
    assert.deepEqual(s.updateGroup('ops', { bind: ['telegram:-100123'] }).chats, ['telegram:-100123']);
    s.removeGroup('ops');
    assert.equal(s.groupForChat('telegram:-100123'), undefined);
  });

  test(`GroupStore (${impl.name}) - an unknown chat is noted as new only the first time`, (t) => {
    const s = impl.open(t);
    assert.equal(s.noteUnknownChat('telegram:-7', 'Sales team'), true);
    assert.equal(s.noteUnknownChat('telegram:-7', 'Sales team'), false);
    assert.equal(s.noteUnknownChat('telegram:-8', undefined), true);
  });

  test(`GroupStore (${impl.name}) - removing a group says whether it existed`, (t) => {
    const s = impl.open(t);
    s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
    assert.equal(s.removeGroup('team'), true);
    assert.equal(s.getGroup('team'), undefined);
    assert.equal(s.removeGroup('team'), false);
  });
}

test('Transactional (sqlite) - a throw undoes the writes of every concern in the step; a nested step joins the outer one', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  assert.throws(() => s.transaction(() => {
    s.addTask({ group: 'team', prompt: 'p', schedule: '{}', context: 'group', nextRun: 1, createdBy: 'owner' });
    s.transaction(() => s.markOutputApplied({ outputId: 'out-1', group: 'team', batchId: null, type: 'task.schedule' }));
    s.updateGroup('team', { trigger: '@later' });
    throw new Error('the effect failed');
  }), /the effect failed/);
  assert.deepEqual(s.listTasks({ group: 'team' }), []);
  assert.equal(s.getGroup('team')?.trigger, null);
  assert.equal(s.markOutputApplied({ outputId: 'out-1', group: 'team', batchId: null, type: 'task.schedule' }), true, 'the output was not recorded as applied');
});

test('BatchStore (sqlite) - a task run that failed once and then finished is done with its summary, keeping the first error', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  const task = s.addTask({ group: 'team', prompt: 'p', schedule: '{}', context: 'group', nextRun: 1000, createdBy: 'owner' });
  const run = s.claimTask(task.id, 1000, 2000)!;
  const first = s.takeBatch('team', 10_000)!;
  assert.deepEqual(s.failBatch(first.id, 'container exited', { maxAttempts: 3, retryable: true }), { kind: 'retry', attempts: 1 });
  const second = s.takeBatch('team', 10_000)!;
  assert.equal(second.task?.run.id, run.id);
  s.applyAssistantOutput({ outputId: 'o-1', group: 'team', batchId: second.id, type: 'reply', text: 'all good', sender: 'hako' });
  s.finishBatch(second.id);
  s.finishBatch(second.id);
  assert.deepEqual(((r) => [r.state, r.attempts, r.error, r.summary])(s.getRun(run.id)!), ['done', 1, 'container exited', 'all good']);
  assert.deepEqual(s.failBatch(second.id, 'too late', { maxAttempts: 3, retryable: true }), { kind: 'answered' });
  assert.equal(s.getRun(run.id)?.error, 'container exited');
});

test('BatchStore (sqlite) - a stop that keeps the messages is not a try: after more such stops than the limit, a real failure is still retried', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  s.addUserMessage({ group: 'team', sender: 'amy', text: 'hello', engage: true });
  for (let i = 0; i < 5; i++) {
    const held = s.takeBatch('team', 10_000)!;
    assert.deepEqual(s.failBatch(held.id, 'the daily token budget is used up', { maxAttempts: 3, retryable: true, keepWaiting: true, counts: false }), { kind: 'retry', attempts: 0 });
  }
  const batch = s.takeBatch('team', 10_000)!;
  assert.deepEqual(s.failBatch(batch.id, 'the container exited', { maxAttempts: 3, retryable: true }), { kind: 'retry', attempts: 1 });
});

test('BatchStore (sqlite) - a failed batch whose turn wrote to another group is answered, not run again (it would write there twice)', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  s.addUserMessage({ group: 'main', sender: 'owner', text: 'tell the team', engage: true });
  const batch = s.takeBatch('main', 10_000)!;
  s.applyAssistantOutput({ outputId: 'o-1', group: 'team', batchId: null, turnBatch: batch.id, type: 'send_message', text: 'the meeting moved', sender: 'hako' });
  assert.deepEqual(s.listMessages('main')!.filter((m) => m.role === 'assistant'), [], 'nothing was said in main');
  assert.deepEqual(s.failBatch(batch.id, 'the container exited', { maxAttempts: 3, retryable: true }), { kind: 'answered' });
  assert.deepEqual(s.runningBatches(), []);
  assert.deepEqual(s.groupsWithPending(), [], 'nothing waits to be run again');
});

test('BatchStore (sqlite) - a failed task run whose reply reached the user is done with the error and its summary', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  const task = s.addTask({ group: 'team', prompt: 'p', schedule: '{}', context: 'group', nextRun: 1000, createdBy: 'owner' });
  const run = s.claimTask(task.id, 1000, null)!;
  const batch = s.takeBatch('team', 10_000)!;
  s.applyAssistantOutput({ outputId: 'o-1', group: 'team', batchId: batch.id, type: 'reply', text: 'half done', sender: 'hako' });
  assert.deepEqual(s.failBatch(batch.id, 'turn timed out', { maxAttempts: 3, retryable: true }), { kind: 'answered' });
  assert.deepEqual(((r) => [r.state, r.error, r.summary])(s.getRun(run.id)!), ['done', 'turn timed out', 'half done']);
  assert.deepEqual(s.runningBatches(), []);
});

test('MessageStore (sqlite) - a reply goes to the chat of the newest message of its batch, with that message as its reply target', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'sales', isMain: false, trigger: null, model: null, chats: ['telegram:-1', 'email:sales@example.com'] });
  s.addUserMessage({ group: 'sales', sender: 'Amy', text: 'context', engage: false, chat: 'telegram:-1', ref: '10' });
  s.addUserMessage({ group: 'sales', sender: 'Bo', text: '@hako hi', engage: true, chat: 'telegram:-1', ref: '11', senderId: 'telegram:7' });
  const batch = s.takeBatch('sales', 10_000)!;
  const reply = s.applyAssistantOutput({ outputId: 'o-1', group: 'sales', batchId: batch.id, type: 'reply', text: 'hello', sender: 'hako' })!;
  assert.deepEqual(s.pendingDeliveries(reply.id).map((d) => [d.chat, d.replyTo]), [['telegram:-1', '11']]);
  s.markDelivered(reply.id, 'telegram:-1');
  assert.deepEqual(s.pendingDeliveries(), []);
});

test('MessageStore (sqlite) - a message kept as context stays marked as not engaging the agent after a later message takes it into its batch', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'sales', isMain: false, trigger: '@hako', model: null });
  const chatter = s.addUserMessage({ group: 'sales', sender: 'Amy', text: 'just chatting', engage: false });
  const call = s.addUserMessage({ group: 'sales', sender: 'Bo', text: '@hako hi', engage: true });
  const batch = s.takeBatch('sales', 10_000)!;
  assert.deepEqual(batch.messages.map((m) => m.id), [chatter.id, call.id], 'the context went into the batch');
  assert.equal(s.getMessage(chatter.id)!.engaged, false);
  assert.equal(s.getMessage(call.id)!.engaged, true);
});

test('MessageStore (sqlite) - a reply to the web chat goes to no chat; a task or a notice with no batch goes to every bound chat', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'sales', isMain: false, trigger: null, model: null, chats: ['telegram:-1', 'email:sales@example.com'] });
  s.addUserMessage({ group: 'sales', sender: 'owner', text: 'from the web', engage: true });
  const web = s.takeBatch('sales', 10_000)!;
  const reply = s.applyAssistantOutput({ outputId: 'o-1', group: 'sales', batchId: web.id, type: 'reply', text: 'seen on the web only', sender: 'hako' })!;
  assert.deepEqual(s.pendingDeliveries(reply.id), []);
  const notice = s.addNotice('sales', 'disk is full', null);
  assert.deepEqual(s.pendingDeliveries(notice.id).map((d) => [d.chat, d.replyTo]), [['email:sales@example.com', null], ['telegram:-1', null]]);
  const task = s.addTask({ group: 'sales', prompt: 'p', schedule: '{}', context: 'group', nextRun: 1, createdBy: 'owner' });
  s.claimTask(task.id, 1, null);
  const run = s.takeBatch('sales', 10_000)!;
  const out = s.applyAssistantOutput({ outputId: 'o-2', group: 'sales', batchId: run.id, type: 'reply', text: 'weekly report', sender: 'hako' })!;
  assert.deepEqual(s.pendingDeliveries(out.id).map((d) => d.chat), ['email:sales@example.com', 'telegram:-1']);
});

test('MessageStore (sqlite) - a delivery that failed on one chat stays pending there only, with its attempts and error', (t) => {
  const s = sqliteStore(t);
  s.addGroup({ name: 'sales', isMain: false, trigger: null, model: null, chats: ['telegram:-1', 'email:sales@example.com'] });
  const notice = s.addNotice('sales', 'hello both', null);
  s.markDelivered(notice.id, 'telegram:-1');
  s.deliveryFailed(notice.id, 'email:sales@example.com', 'smtp: connection refused');
  assert.deepEqual(s.pendingDeliveries().map((d) => [d.message.id, d.chat, d.attempts]), [[notice.id, 'email:sales@example.com', 1]]);
});

test('failOutcome - a final error gives up at once; retryable work retries until its tries are used, or past them while it keeps waiting', () => {
  assert.deepEqual(failOutcome(1, { maxAttempts: 3, retryable: false }), { kind: 'gave_up', attempts: 1 });
  assert.deepEqual(failOutcome(2, { maxAttempts: 3, retryable: true }), { kind: 'retry', attempts: 2 });
  assert.deepEqual(failOutcome(3, { maxAttempts: 3, retryable: true }), { kind: 'gave_up', attempts: 3 });
  assert.deepEqual(failOutcome(9, { maxAttempts: 3, retryable: true, keepWaiting: true }), { kind: 'retry', attempts: 9 });
  assert.deepEqual(failOutcome(1, { maxAttempts: 3, retryable: false, keepWaiting: true }), { kind: 'gave_up', attempts: 1 });
});
