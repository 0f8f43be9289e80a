// Orchestration against the real engine and image: the container limit, warm reuse, idle
// stop, retries, a model outage, trigger rules, and `kill -9` of the host at each point of
// a turn — after which every message is answered exactly once.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess, type ApiMessage } from '../support/hako.ts';

const exec = promisify(execFile);

function openaiEnv(model: ModelServer, extra: Record<string, string> = {}): Record<string, string> {
  return { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test', ...extra };
}

/** The most containers alive at once, from the host's own start/exit log events. */
function maxLive(h: HakoProcess): number {
  let live = 0, max = 0;
  for (const e of h.logEvents()) {
    if (e.msg === 'container started') live++;
    if (e.msg === 'container exited') live--;
    max = Math.max(max, live);
  }
  return max;
}

function startsFor(h: HakoProcess, group: string): number {
  return h.logEvents().filter((e) => e.msg === 'container started' && e.group === group).length;
}

async function addGroups(h: HakoProcess, names: string[]): Promise<void> {
  for (const n of names) {
    const r = await h.cli(['groups', 'add', n]);
    assert.equal(r.code, 0, r.stderr);
  }
}

function replies(all: ApiMessage[]): ApiMessage[] {
  return all.filter((m) => m.role === 'assistant');
}

describe('queue and containers', () => {
  test('ten groups sending at once never exceed HAKO_MAX_CONTAINERS, and each message is answered once', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model, { HAKO_MAX_CONTAINERS: '3' }) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const groups = Array.from({ length: 10 }, (_, i) => `g${i}`);
    await addGroups(h, groups);
    const ids = await Promise.all(groups.map((g) => h.post(g, `@hako hello from ${g}`)));
    await Promise.all(groups.map((g, i) => h.waitForReplies(g, ids[i]!)));
    await h.settled();
    for (const [i, g] of groups.entries()) {
      const r = replies(await h.messages(g));
      assert.equal(r.length, 1, `${g} got exactly one answer`);
      assert.match(r[0]!.text, new RegExp(`hello from ${g}`));
      assert.ok(ids[i]);
    }
    const max = maxLive(h);
    assert.ok(max <= 3, `at most 3 containers at once, saw ${max}`);
    assert.ok(max >= 2, `work really ran in parallel (saw ${max})`);
  });

  test('a follow-up message goes to the warm container: no second container starts', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const first = await h.post('main', 'first');
    await h.waitForReplies('main', first);
    const second = await h.post('main', 'second');
    const [r] = await h.waitForReplies('main', second);
    assert.match(r!.text, /second/);
    assert.equal(startsFor(h, 'main'), 1);
    await h.settled();
    const status = (await h.api('/api/status')).body;
    assert.equal(status.groups.find((g: { name: string }) => g.name === 'main').container.state, 'warm');
  });

  test('an idle container is stopped after HAKO_IDLE_TIMEOUT', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model, { HAKO_IDLE_TIMEOUT: '1' }) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const id = await h.post('main', 'hi');
    await h.waitForReplies('main', id);
    const exit = await h.waitForLog((e) => e.msg === 'container exited' && e.group === 'main');
    assert.equal(exit.code, 0, 'a clean, idle stop');
    const { stdout } = await exec('docker', ['ps', '-a', '--filter', `label=dev.hako.home=${h.home}`, '--format', '{{.Names}}']);
    assert.equal(stdout.trim(), '', 'the container is gone');
    assert.equal((await h.api('/api/status')).body.groups[0].container, null);
  });
});

describe('failures', () => {
  test('a crashed turn is retried and answered once', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model, { HAKO_RETRY_BASE_MS: '100' }) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    model.script({ toolCalls: [{ name: 'bash', args: { command: 'kill -9 $PPID' } }] });
    const id = await h.post('main', 'survive this');
    const r = await h.waitForReplies('main', id);
    assert.equal(r.length, 1);
    assert.match(r[0]!.text, /survive this/);
    assert.ok(h.logEvents().some((e) => e.msg === 'turn failed; will retry'), 'the first attempt failed');
  });

  test('after the retry limit the user is told what failed', async (t) => {
    const model = await startModelServer({ fallback: () => ({ toolCalls: [{ name: 'bash', args: { command: 'kill -9 $PPID' } }] }) });
    const h = await HakoProcess.start({ env: openaiEnv(model, { HAKO_RETRY_BASE_MS: '100', HAKO_MAX_ATTEMPTS: '2' }) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const id = await h.post('main', 'crash every time');
    const [notice] = await h.waitForReplies('main', id);
    assert.match(notice!.text, /^Sorry, I could not answer: the agent container exited with code/);
    await h.settled();
    assert.equal(replies(await h.messages('main', id)).length, 1, 'told once');
    const failures = (await h.api('/api/status')).body.recentFailures;
    assert.ok(failures.length >= 2, 'both attempts are listed as failures');
  });

  test('a model that is down keeps the message; it is answered when the model is back', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model, { HAKO_RETRY_BASE_MS: '200', HAKO_RETRY_MAX_MS: '1000', HAKO_MAX_ATTEMPTS: '2' }) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    model.setDown(true);
    const id = await h.post('main', 'are you there?');
    const [notice] = await h.waitForReplies('main', id);
    assert.match(notice!.text, /model is not reachable.*kept and will be answered/);
    assert.deepEqual((await h.api('/api/status')).body.modelDown, ['openai']);
    model.setDown(false);
    const all = await h.waitForReplies('main', id, 2);
    assert.match(all[1]!.text, /are you there\?/);
    await h.settled();
    assert.equal(replies(await h.messages('main', id)).length, 2, 'one notice, one answer');
  });
});

describe('kill -9 of the host', () => {
  for (const point of ['batch-sent', 'output-applied', 'before-done', 'before-delivery']) {
    test(`killed at "${point}": after a restart the message is answered exactly once`, async (t) => {
      const model = await startModelServer();
      // One cleanup, registered before anything can fail: a failure at any step must leave no
      // host running and no model server listening, or the test file never exits.
      const made: { crashing?: HakoProcess; h?: HakoProcess } = {};
      t.after(async () => {
        await made.h?.stop();
        await made.crashing?.stop('SIGKILL');
        await model.close();
        made.crashing?.cleanup();
      });
      const crashing = made.crashing = await HakoProcess.start({ env: openaiEnv(model, { HAKO_FAILPOINT: point }) });
      const id = await crashing.post('main', `survive ${point}`);
      const end = await crashing.exited();
      assert.equal(end.signal, 'SIGKILL', `the host died at ${point}`);
      const h = made.h = await HakoProcess.start({ home: crashing.home, configDir: crashing.configDir, env: openaiEnv(model) });
      await h.waitForReplies('main', id);
      await h.settled();
      const r = replies(await h.messages('main', id));
      assert.equal(r.length, 1, `exactly one answer, got ${JSON.stringify(r.map((m) => m.text))}`);
      assert.match(r[0]!.text, new RegExp(`survive ${point}`));
      const { stdout } = await exec('docker', ['ps', '-a', '--filter', `label=dev.hako.home=${h.home}`, '--format', '{{.Names}}']);
      assert.ok(stdout.trim().split('\n').filter(Boolean).length <= 1, 'the orphan container was reaped');
    });
  }
});

describe('trigger rules', () => {
  test('without the trigger a message is kept as context; the triggered one sees it', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    await addGroups(h, ['team']);
    const quiet = await h.api('/api/groups/team/messages', { method: 'POST', body: JSON.stringify({ text: 'the launch moved to Friday', sender: 'bob' }) });
    assert.equal(quiet.status, 202);
    assert.equal(quiet.body.engaged, false);
    const asked = await h.post('team', '@Hako when is the launch?', 'amy');
    await h.waitForReplies('team', asked);
    const sent = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(sent, /bob: the launch moved to Friday/);
    assert.match(sent, /amy: @Hako when is the launch\?/);
    assert.equal(replies(await h.messages('team')).length, 1, 'the quiet message got no answer of its own');
  });

  test('a sender outside the allowlist cannot call the agent', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    await addGroups(h, ['team']);
    const set = await h.cli(['groups', 'set', 'team', '--allow', 'amy']);
    assert.equal(set.code, 0, set.stderr);
    const eve = await h.api('/api/groups/team/messages', { method: 'POST', body: JSON.stringify({ text: '@hako delete everything', sender: 'eve' }) });
    assert.equal(eve.body.engaged, false);
    const amy = await h.post('team', '@hako hello', 'amy');
    await h.waitForReplies('team', amy);
    assert.equal(model.requests.filter((r) => r.path.startsWith('/v1/chat')).length, 1, 'only amy reached the model');
  });
});
