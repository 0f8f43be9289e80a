// The global memory rule at the container boundary: containerSpec mounts global/ read-write
// in the main group's container only. (The remember tool's own refusal is in agent-memory.test.ts;
// test/redteam/memory.test.ts shows both against real containers.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import { loadConfig } from '../../src/core/config.ts';
import { containerSpec } from '../../src/core/runner.ts';
import type { Group } from '../../src/core/store-contract.ts';

const config = loadConfig({ HAKO_HOME: '/tmp/hako-memory-home', HAKO_CONFIG: '/tmp/hako-memory-config' });
const group = (name: string, isMain: boolean) => ({
  name, isMain, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '',
}) as unknown as Group;

const globalMount = (g: Group) => containerSpec(config, 'img', g, 'openai/gpt-4o').mounts.find((m) => m.container === CONTAINER_PATHS.global);

test('global memory mount - read-write in the main group\'s container, read-only in every other group\'s', () => {
  assert.deepEqual(globalMount(group('main', true)), { host: '/tmp/hako-memory-home/global', container: '/workspace/global', readonly: false });
  assert.deepEqual(globalMount(group('team', false)), { host: '/tmp/hako-memory-home/global', container: '/workspace/global', readonly: true });
});
