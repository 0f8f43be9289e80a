// What the owner sees when taking things down, against a real host and the real engine:
// `hako groups remove` takes the group's warm container with it, and Ctrl+C on `hako start`
// says what it waited for and what it stopped instead of ending silently.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

const exec = promisify(execFile);

function openaiEnv(model: ModelServer): Record<string, string> {
  return { HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test' };
}

/** The containers the engine has (running or not) for one group of this host's HAKO_HOME. */
async function containersOf(h: HakoProcess, group: string): Promise<string[]> {
  const { stdout } = await exec('docker', ['ps', '--all', '--format', '{{.Names}}', '--filter', 'label=dev.hako.managed=1', '--filter', `label=dev.hako.home=${h.home}`, '--filter', `label=dev.hako.group=${group}`]);
  return stdout.split('\n').filter(Boolean);
}

describe('taking things down', () => {
  test('hako groups remove - the group\'s warm container is stopped and removed, and the output says so', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    assert.equal((await h.cli(['groups', 'add', 'sales'])).code, 0);
    const id = await h.post('sales', '@hako hello');
    await h.waitForReplies('sales', id);
    const warm = await containersOf(h, 'sales');
    assert.equal(warm.length, 1, 'the answered group keeps one warm container');

    const r = await h.cli(['groups', 'remove', 'sales']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed group "sales"/);
    assert.ok(r.stdout.includes(`stopped and removed its container ${warm[0]}`), r.stdout);
    assert.deepEqual(await containersOf(h, 'sales'), []);
  });

  test('hako groups remove - a group that never ran says it had no container', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    assert.equal((await h.cli(['groups', 'add', 'quiet'])).code, 0);
    const r = await h.cli(['groups', 'remove', 'quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /it had no running container/);
  });

  test('Ctrl+C on an idle host - it says it is stopping and that it stopped, then exits 0', async (t) => {
    const model = await startModelServer();
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    const code = await h.stop('SIGINT');
    assert.equal(code, 0);
    assert.match(h.output, /SIGINT: stopping…\n/);
    assert.match(h.output, /stopped 0 containers; bye\n/);
  });

  test('Ctrl+C during a turn - it says it waits for the running turn, that the turn was cut short, and what it stopped', async (t) => {
    const model = await startModelServer();
    // The tool outlasts the 10 s grace, so the turn is still running when the grace ends.
    model.script({ toolCalls: [{ name: 'bash', args: { command: 'sleep 60' } }] }, { text: 'never seen' });
    const h = await HakoProcess.start({ env: openaiEnv(model) });
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); });
    await h.post('main', 'take your time');
    await model.waitForRequests(1);
    const code = await h.stop('SIGINT');
    assert.equal(code, 0);
    assert.match(h.output, /SIGINT: stopping: waiting for 1 running turn \(at most 10 s\)…\n/);
    assert.match(h.output, /stopped 1 container; 1 turn cut short \(retried at the next start\); bye\n/);
    assert.deepEqual(await containersOf(h, 'main'), [], 'nothing is left running');
  });
});
