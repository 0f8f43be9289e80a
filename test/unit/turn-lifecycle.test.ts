// A turn's life through the real Host with the fake runtime: the real agent (a host process),
// the real IPC folders, the real per-group proxy and the scripted model server, no Docker.
// What this file proves for turns, the e2e suite proves again with real containers.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/core/config.ts';
import { Host } from '../../src/core/host.ts';
import { silentLogger } from '../../src/core/log.ts';
import { prepareGroupDirs } from '../../src/core/runner.ts';
import type { StoredMessage } from '../../src/core/store-contract.ts';
import { FakeRuntime } from '../support/fake-runtime.ts';
import { startModelServer } from '../support/model-server.ts';
import { ipcFileName } from '../../protocol/ipc.ts';

async function startHost(t: TestContext, env: Record<string, string> = {}) {
  const model = await startModelServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-turns-'));
  const config = loadConfig({
    HAKO_HOME: path.join(dir, 'home'), HAKO_CONFIG: path.join(dir, 'config'),
    HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, HAKO_RETRY_BASE_MS: '10', ...env,
  });
  const runtime = new FakeRuntime();
  const host = new Host({ config, runtime, image: runtime.image, log: silentLogger, channels: [] });
  host.store.addGroup({ name: 'main', isMain: true, trigger: null, model: null });
  prepareGroupDirs(config.home, 'main');
  await host.start();
  t.after(async () => {
    await host.stop({ graceMs: 1000 });
    await model.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  /** Sends a message to main and resolves with the first assistant message that follows. */
  const ask = async (text: string): Promise<StoredMessage> => {
    const answered = new Promise<StoredMessage>((resolve) => {
      const off = host.context.subscribe((m) => { if (m.role === 'assistant') { off(); resolve(m); } });
    });
    await host.context.accept({ group: 'main', sender: 'owner', text, direct: false });
    return answered;
  };
  return { host, runtime, model, ask };
}

test('turn lifecycle - a message is answered by the agent in a (fake) container', async (t) => {
  const { host, runtime, model, ask } = await startHost(t);
  model.script({ text: 'hello from the agent' });
  const reply = await ask('hi');
  assert.equal(reply.text, 'hello from the agent');
  await host.queue.idle(); // the turn ends with the agent's done
  assert.equal(runtime.started.length, 1);
  assert.equal(host.store.counts('main').answered, 1);
  assert.match(JSON.stringify(model.requests.at(-1)?.json), /hi/, 'the message reached the model through the group\'s proxy');
});

test('turn lifecycle - a container that exits mid-turn is retried in a new container and answered once', async (t) => {
  const { host, runtime, model, ask } = await startHost(t);
  model.script(
    () => {
      const [name] = runtime.running();
      runtime.crash(name!); // the container dies while its model request is in flight
      return { text: 'never delivered' };
    },
    { text: 'answered after the crash' },
  );
  const reply = await ask('hi');
  assert.equal(reply.text, 'answered after the crash');
  await host.queue.idle();
  assert.equal(runtime.started.length, 2, 'the retry ran in a fresh container');
  assert.deepEqual(host.store.listMessages('main')!.filter((m) => m.role === 'assistant').map((m) => m.text), ['answered after the crash']);
  assert.equal(host.store.counts('main').answered, 1);
});

test('turn lifecycle - a turn that messaged another group and then crashed is not run again: the other group hears it once', async (t) => {
  const { host, runtime, model } = await startHost(t);
  host.store.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  prepareGroupDirs(host.config.home, 'team');
  model.script(
    { toolCalls: [{ name: 'send_message', args: { group: 'team', text: 'the meeting moved' } }] },
    () => {
      const [name] = runtime.running();
      runtime.crash(name!); // after the message reached the other group, before the turn's done
      return { text: 'never delivered' };
    },
    { text: 'not expected: the turn was run again' },
  );
  await host.context.accept({ group: 'main', sender: 'owner', text: 'tell the team', direct: false });
  await host.queue.idle();
  await new Promise((r) => setTimeout(r, 300)); // a retry would have started by now (HAKO_RETRY_BASE_MS=10)
  await host.queue.idle();
  assert.deepEqual(host.store.listMessages('team')!.filter((m) => m.role === 'assistant').map((m) => m.text), ['the meeting moved']);
  assert.equal(runtime.started.length, 1, 'no second container: the turn was not run again');
});

test('turn lifecycle - a failed turn is retried after its backoff, not at once', async (t) => {
  const { host, runtime, model, ask } = await startHost(t, { HAKO_RETRY_BASE_MS: '400', HAKO_RETRY_MAX_MS: '400' });
  const runs: number[] = [];
  const run = runtime.run.bind(runtime);
  runtime.run = (spec, opts) => { runs.push(performance.now()); return run(spec, opts); };
  runtime.plan('fail');
  model.script({ text: 'answered after the backoff' });
  const reply = await ask('hi');
  assert.equal(reply.text, 'answered after the backoff');
  assert.equal(runs.length, 2, 'one failed start, then the retry');
  // A lower bound only: a timer never fires before its delay.
  assert.ok(runs[1]! - runs[0]! >= 390, `the retry waited ${Math.round(runs[1]! - runs[0]!)} ms, not the 400 ms backoff`);
  await host.queue.idle();
  assert.equal(host.store.counts('main').answered, 1);
});

test('turn lifecycle - a disk check that fails after a turn does not leave the container busy: the group is served again', async (t) => {
  const { host, model, ask } = await startHost(t);
  const check = host.disk.check.bind(host.disk);
  let calls = 0;
  host.disk.check = async (g) => { if (calls++ === 0) throw new Error('the database could not be read'); return check(g); };
  model.script({ text: 'first' }, { text: 'second' });
  assert.equal((await ask('one')).text, 'first');
  await host.queue.idle();
  assert.equal((await ask('two')).text, 'second', 'the group was served again');
  await host.queue.idle();
  assert.equal(host.store.counts('main').answered, 2);
});

test('turn lifecycle - tokens that cannot be written are still counted toward the budget, and written with the next response\'s', async (t) => {
  const { host, model, ask } = await startHost(t);
  const addUsage = host.store.addUsage.bind(host.store);
  let locked = true;
  host.store.addUsage = (group, day, u) => {
    if (locked) throw new Error('database is locked');
    addUsage(group, day, u);
  };
  const written = () => host.store.usageOn(host.status().tokens.day).reduce((n, u) => n + u.input + u.output, 0);
  model.script({ text: 'one' }, { text: 'two' });
  await ask('first');
  await host.queue.idle();
  const first = host.status().tokens.used;
  assert.ok(first > 0, 'the first response\'s tokens count toward the budget');
  assert.equal(written(), 0, 'nothing could be written');
  locked = false;
  await ask('second');
  await host.queue.idle();
  const both = host.status().tokens.used;
  assert.ok(both > first);
  assert.equal(written(), both, 'the held tokens were written with the next response\'s');
});

test('turn lifecycle - after the retry limit the user is told what failed and the message is failed', async (t) => {
  const { host, runtime, model, ask } = await startHost(t, { HAKO_MAX_ATTEMPTS: '2' });
  runtime.plan('fail', 'fail');
  const notice = await ask('hi');
  assert.match(notice.text, /^Sorry, I could not answer: the container could not start: .*code 125.*Unable to find image/);
  assert.equal(runtime.started.length, 2, 'tried twice, HAKO_MAX_ATTEMPTS');
  assert.equal(host.store.counts('main').failed, 1);
  assert.equal(model.requests.filter((r) => r.method === 'POST').length, 0, 'no model call (only the model list the host asks for at start)');
});

/** Assistant messages of main, oldest first, once `n` of them are there. */
async function assistantMessages(host: Host, n: number): Promise<string[]> {
  const texts = () => host.store.listMessages('main')!.filter((m) => m.role === 'assistant').map((m) => m.text);
  if (texts().length >= n) return texts();
  await new Promise<void>((resolve) => {
    const off = host.context.subscribe(() => { if (texts().length >= n) { off(); resolve(); } });
  });
  return texts();
}

test('turn lifecycle - a turn over its time limit is stopped and retried, and the retry is answered', async (t) => {
  const { host, runtime, model, ask } = await startHost(t, { HAKO_TURN_TIMEOUT: '5' });
  model.script({ toolCalls: [{ name: 'bash', args: { command: 'sleep 60', timeout_ms: 120_000 } }] }, { text: 'answered on the retry' });
  const reply = await ask('take your time');
  assert.equal(reply.text, 'answered on the retry');
  await host.queue.idle();
  assert.equal(runtime.started.length, 2, 'the stuck container was stopped; the retry ran in a new one');
  assert.equal(host.store.counts('main').answered, 1);
});

test('turn lifecycle - while the model is down the message waits past the retry limit (the user told once); it is answered when the model is back', async (t) => {
  const { host, model, ask } = await startHost(t, { HAKO_MAX_ATTEMPTS: '2', HAKO_RETRY_MAX_MS: '200' });
  model.setDown(true);
  const notice = await ask('are you there?');
  assert.match(notice.text, /model is not reachable.*kept and will be answered/);
  assert.deepEqual(host.status().modelDown, ['openai']);
  model.setDown(false);
  model.script({ text: 'back again' });
  assert.deepEqual(await assistantMessages(host, 2), [notice.text, 'back again'], 'one notice, one answer');
  await host.queue.idle();
  assert.equal(host.store.counts('main').answered, 1);
  assert.equal(host.store.counts('main').failed, 0);
});

test('turn lifecycle - after a restart, a turn that wrote its reply and done is settled from its files without a container; one that wrote nothing is run again', async (t) => {
  const model = await startModelServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-turns-'));
  t.after(async () => { await model.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  const config = loadConfig({ HAKO_HOME: path.join(dir, 'home'), HAKO_CONFIG: path.join(dir, 'config'), HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL });
  // What a killed host left: two groups with a batch each still running, one with its outputs in out/.
  const before = new Host({ config, runtime: new FakeRuntime(), image: 'x', log: silentLogger, channels: [] });
  for (const name of ['main', 'team']) {
    before.store.addGroup({ name, isMain: name === 'main', trigger: null, model: null });
    prepareGroupDirs(config.home, name);
    before.store.addUserMessage({ group: name, sender: 'owner', text: `hello ${name}`, engage: true });
  }
  const done = before.store.takeBatch('main', 10_000)!;
  before.store.takeBatch('team', 10_000);
  const out = path.join(config.home, 'ipc', 'main', 'out');
  fs.writeFileSync(path.join(out, ipcFileName('r1')), JSON.stringify({ v: 1, id: 'r1', type: 'reply', batch: done.id, text: 'answered before the crash' }));
  fs.writeFileSync(path.join(out, ipcFileName('d1')), JSON.stringify({ v: 1, id: 'd1', type: 'done', batch: done.id }));
  before.store.close();
  before.audit.close();

  const runtime = new FakeRuntime();
  const host = new Host({ config, runtime, image: runtime.image, log: silentLogger, channels: [] });
  t.after(() => host.stop({ graceMs: 1000 }));
  model.script({ text: 'answered after the restart' });
  const rerun = new Promise<StoredMessage>((resolve) => {
    const off = host.context.subscribe((m) => { if (m.role === 'assistant' && m.group === 'team') { off(); resolve(m); } });
  });
  await host.start();
  assert.deepEqual(host.store.listMessages('main')!.filter((m) => m.role === 'assistant').map((m) => m.text), ['answered before the crash']);
  assert.equal(host.store.counts('main').answered, 1, 'settled by its done, never re-run');
  assert.equal((await rerun).text, 'answered after the restart');
  await host.queue.idle();
  assert.deepEqual(runtime.started.map((s) => s.labels['dev.hako.group']), ['team'], 'only the turn that wrote nothing ran again');
  assert.equal(host.store.counts('team').answered, 1);
});
