// One conformance suite for every Runtime: registers node:test tests that hold an
// implementation to the Contract of src/core/runtime.ts. test/unit/runtime-fake.test.ts runs
// it against the fake, test/e2e/runtime-docker.test.ts against Docker and the real image, so
// the fake cannot drift from the real thing. Specs come from the runner's own containerSpec
// and prepareGroupDirs (the real layout); every wait is on a log line or a promise, never a sleep.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/core/config.ts';
import { containerSpec, prepareGroupDirs } from '../../src/core/runner.ts';
import type { Cancel, ContainerExit, ContainerSpec, RunningContainer, Runtime } from '../../src/core/runtime.ts';
import type { Group } from '../../src/core/store.ts';

export interface RuntimeUnderTest {
  readonly runtime: Runtime;
  /** An image whose container runs the agent. */
  readonly image: string;
  /** An image whose container prints "ready", ignores SIGTERM and never ends by itself. */
  readonly hangImage: string;
}

const LABEL = 'dev.hako.conformance';
const GROUP: Group = { name: 'conformance', isMain: false, trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '' };

interface Started extends RunningContainer {
  /** Resolves when the container has written a line matching `ready` (the agent's start, or "ready"). */
  readonly ready: Promise<void>;
}

export function runtimeConformance(label: string, setup: () => Promise<RuntimeUnderTest>, opts: { skip?: string | false } = {}): void {
  describe(`runtime conformance (${label})`, { skip: opts.skip ?? false, timeout: 180_000 }, () => {
    const suite = randomBytes(4).toString('hex');
    let home: string;
    let config: Config;
    let rt: RuntimeUnderTest;

    before(async () => {
      rt = await setup();
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-conformance-'));
      config = loadConfig({ HAKO_HOME: path.join(home, 'home'), HAKO_CONFIG: path.join(home, 'config'), HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
      prepareGroupDirs(config.home, GROUP.name);
    });
    after(async () => {
      await rt?.runtime.remove(await rt.runtime.list({ [LABEL]: suite }));
      fs.rmSync(home, { recursive: true, force: true });
    });

    function spec(o: { image?: string; env?: Record<string, string>; labels?: Record<string, string> } = {}): ContainerSpec {
      const s = containerSpec(config, o.image ?? rt.image, GROUP, 'openai/test-model');
      return { ...s, env: { ...s.env, ...o.env }, labels: { ...s.labels, [LABEL]: suite, ...o.labels } };
    }

    function start(s: ContainerSpec, o: Cancel = {}): Started {
      let seen!: () => void;
      const ready = new Promise<void>((resolve) => { seen = resolve; });
      const c = rt.runtime.run(s, { ...o, onLog: (line) => { if (/"event":"agent_start"|^ready$/.test(line)) seen(); } });
      return { ...c, ready };
    }

    test('run returns at once; a container that fails ends with its exit code and the last lines it wrote', async () => {
      const s = spec({ env: { HAKO_MODEL: '' } });
      const c = rt.runtime.run(s);
      assert.equal(c.name, s.name);
      assert.ok(c.exited instanceof Promise, 'run hands back the container before it has ended');
      const exit = await c.exited;
      assert.equal(exit.code, 2, 'the agent exits with 2 on a broken configuration');
      assert.match(exit.tail, /"event":"config_error"/);
    });

    test('a container that cannot start ends with a non-zero code and the engine\'s message', async () => {
      const exit = await rt.runtime.run(spec({ image: 'localhost:1/hako-no-such-image:0' })).exited;
      assert.notEqual(exit.code, 0);
      assert.match(exit.tail, /localhost:1\/hako-no-such-image/);
    });

    test('stop asks the container to end: the agent shuts down cleanly with code 0', async () => {
      const c = start(spec());
      await c.ready;
      assert.deepEqual(await rt.runtime.list({ [LABEL]: suite }), [c.name], 'listed while it runs');
      await rt.runtime.stop(c.name, { graceMs: 20_000 });
      const exit: ContainerExit = await c.exited;
      assert.equal(exit.code, 0, exit.tail);
      assert.match(exit.tail, /"event":"signal".*"SIGTERM"[\s\S]*"event":"agent_exit"/);
    });

    test('stop kills a container that ignores SIGTERM once its grace is over (code 137)', async () => {
      const c = start(spec({ image: rt.hangImage }));
      await c.ready;
      await rt.runtime.stop(c.name, { graceMs: 1000 });
      assert.equal((await c.exited).code, 137);
    });

    test('aborting a stop ends its grace: the container is killed at once', async () => {
      const c = start(spec({ image: rt.hangImage }));
      await c.ready;
      const ac = new AbortController();
      // A grace longer than the suite's timeout: only the abort can end this stop in time.
      const stopping = rt.runtime.stop(c.name, { graceMs: 600_000, signal: ac.signal });
      ac.abort();
      await stopping;
      assert.equal((await c.exited).code, 137);
    });

    test('aborting a run kills its container', async () => {
      const ac = new AbortController();
      const c = start(spec(), { signal: ac.signal });
      await c.ready;
      ac.abort();
      const exit = await c.exited;
      assert.notEqual(exit.code, 0);
      assert.doesNotMatch(exit.tail, /"event":"agent_exit"/, 'killed, not shut down');
      assert.deepEqual(await rt.runtime.list({ [LABEL]: suite }), []);
    });

    test('a run whose signal is already aborted ends without the agent starting', async () => {
      const exit = await rt.runtime.run(spec(), { signal: AbortSignal.abort() }).exited;
      assert.notEqual(exit.code, 0);
      assert.doesNotMatch(exit.tail, /"event":"agent_start"/);
    });

    test('stop and remove of a container that does not exist resolve', async () => {
      await rt.runtime.stop(`hako-no-such-${suite}`, { graceMs: 1000 });
      await rt.runtime.remove([`hako-no-such-${suite}`]);
      await rt.runtime.remove([]);
    });

    test('list finds containers carrying all the given labels; remove kills them', async () => {
      const a = start(spec({ labels: { 'dev.hako.which': 'a' } }));
      const b = start(spec({ labels: { 'dev.hako.which': 'b' } }));
      await Promise.all([a.ready, b.ready]);
      assert.deepEqual((await rt.runtime.list({ [LABEL]: suite })).sort(), [a.name, b.name].sort());
      assert.deepEqual(await rt.runtime.list({ [LABEL]: suite, 'dev.hako.which': 'a' }), [a.name]);
      assert.deepEqual(await rt.runtime.list({ [LABEL]: suite, 'dev.hako.which': 'c' }), []);
      assert.equal(await rt.runtime.killStrays(a.name), 0, 'a fresh agent left nothing running');
      await rt.runtime.remove([a.name, b.name]);
      assert.deepEqual([(await a.exited).code, (await b.exited).code], [137, 137]);
      assert.deepEqual(await rt.runtime.list({ [LABEL]: suite }), []);
    });
  });
}
