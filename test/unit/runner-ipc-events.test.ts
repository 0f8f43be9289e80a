// What the runner tells the agent about its inbox's inotify events (HAKO_IPC_EVENTS), which
// sets the agent's safety poll: slow where the host's writes raise events in the container
// (runc on Linux), fast where they never do (gVisor), learned where the host cannot tell.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/core/config.ts';
import { containerSpec, ipcEventsEnv } from '../../src/core/runner.ts';
import type { Group } from '../../src/core/store-contract.ts';

const group = {
  name: 'main', isMain: true, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '',
} as unknown as Group;

test('ipc events - a sandbox runtime is told its inbox raises no events, whatever the host system', () => {
  assert.deepEqual(ipcEventsEnv('runsc'), { HAKO_IPC_EVENTS: '0' });
  assert.deepEqual(ipcEventsEnv('kata-runtime'), { HAKO_IPC_EVENTS: '0' });
});

test('ipc events - runc on Linux is told events arrive; elsewhere nothing is said and the agent learns it', () => {
  const expected = process.platform === 'linux' ? { HAKO_IPC_EVENTS: '1' } : {};
  assert.deepEqual(ipcEventsEnv(undefined), expected);
  assert.deepEqual(ipcEventsEnv('runc'), expected);
});

test('ipc events - the container spec carries the setting of the configured runtime', () => {
  const env = (runtime?: string) => {
    const config = loadConfig({ HAKO_HOME: '/tmp/hako-events-home', HAKO_CONFIG: '/tmp/hako-events-config', ...(runtime ? { HAKO_RUNTIME: runtime } : {}) });
    return containerSpec(config, 'img', group, 'openai/gpt-4o').env;
  };
  assert.equal(env('runsc').HAKO_IPC_EVENTS, '0');
  assert.equal(env().HAKO_IPC_EVENTS, process.platform === 'linux' ? '1' : undefined);
});
