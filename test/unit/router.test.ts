import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasTrigger, shouldEngage } from '../../src/core/router.ts';
import type { Group } from '../../src/core/store.ts';

const group = (over: Partial<Group> = {}): Group => ({ name: 'team', isMain: false, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, createdAt: '', ...over });

test('trigger - matches case-insensitively as a whole word', () => {
  assert.ok(hasTrigger('hey @Hako, can you help', '@hako'));
  assert.ok(hasTrigger('@hako', '@hako'));
  assert.ok(!hasTrigger('email me at x@hakoworks.com', '@hako'));
  assert.ok(!hasTrigger('@hakobot do it', '@hako'));
  assert.ok(hasTrigger('ask (@hako)', '@hako'));
});

test('engage - main and direct chats always engage; other groups need the trigger', () => {
  const m = (text: string, direct = false) => ({ text, direct, sender: 'amy' });
  assert.ok(shouldEngage(group({ isMain: true }), m('anything'), 'hako'));
  assert.ok(shouldEngage(group(), m('anything', true), 'hako'));
  assert.ok(!shouldEngage(group(), m('just chatting'), 'hako'));
  assert.ok(shouldEngage(group(), m('@hako summarise'), 'hako'));
  assert.ok(shouldEngage(group(), m('@HAKO summarise'), 'hako'), 'case-insensitive');
  assert.ok(shouldEngage(group(), m('@bob look'), 'bob'), 'the default trigger follows the assistant name');
  assert.ok(shouldEngage(group({ trigger: '!bot' }), m('!bot go'), 'hako'));
  assert.ok(!shouldEngage(group({ trigger: '!bot' }), m('@hako go'), 'hako'));
});

test('engage - a sender outside the allowlist never engages, even in main or with the trigger', () => {
  const g = group({ allowedSenders: ['amy'] });
  assert.ok(shouldEngage(g, { text: '@hako hi', direct: false, sender: 'amy' }, 'hako'));
  assert.ok(!shouldEngage(g, { text: '@hako hi', direct: false, sender: 'eve' }, 'hako'));
  assert.ok(!shouldEngage(group({ isMain: true, allowedSenders: ['owner'] }), { text: 'hi', direct: true, sender: 'eve' }, 'hako'));
});
