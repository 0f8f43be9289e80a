import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasTrigger, shouldEngage } from '../../src/core/router.ts';
import type { Group } from '../../src/core/store.ts';

const group = (over: Partial<Group> = {}): Group => ({ name: 'team', isMain: false, trigger: null, model: null, allowedSenders: null, createdAt: '', ...over });

test('trigger - matches case-insensitively as a whole word', () => {
  assert.ok(hasTrigger('hey @Hako, can you help', '@hako'));
  assert.ok(hasTrigger('@hako', '@hako'));
  assert.ok(!hasTrigger('email me at x@hakoworks.com', '@hako'));
  assert.ok(!hasTrigger('@hakobot do it', '@hako'));
  assert.ok(hasTrigger('ask (@hako)', '@hako'));
});

test('engage - main and direct chats always engage; other groups need the trigger', () => {
  assert.ok(shouldEngage(group({ isMain: true }), { text: 'anything', direct: false }, 'hako'));
  assert.ok(shouldEngage(group(), { text: 'anything', direct: true }, 'hako'));
  assert.ok(!shouldEngage(group(), { text: 'just chatting', direct: false }, 'hako'));
  assert.ok(shouldEngage(group(), { text: '@hako summarise', direct: false }, 'hako'));
  assert.ok(shouldEngage(group({ trigger: '!bot' }), { text: '!bot go', direct: false }, 'hako'));
  assert.ok(!shouldEngage(group({ trigger: '!bot' }), { text: '@hako go', direct: false }, 'hako'));
});
