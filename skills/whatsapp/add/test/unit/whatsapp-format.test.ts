import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markdownToWhatsApp as wa } from '../../src/channels/whatsapp/format.ts';

test('whatsapp format - **bold** and __bold__ become *bold*', () => {
  assert.equal(wa('a **bold** and __strong__ word'), 'a *bold* and *strong* word');
});

test('whatsapp format - *italic* and _italic_ become _italic_', () => {
  assert.equal(wa('an *italic* and _slanted_ word'), 'an _italic_ and _slanted_ word');
});

test('whatsapp format - ~~strike~~ becomes ~strike~', () => {
  assert.equal(wa('~~gone~~ now'), '~gone~ now');
});

test('whatsapp format - inline code and fenced blocks become monospace, their text untouched', () => {
  assert.equal(wa('run `npm **test**` now'), 'run ```npm **test**``` now');
  assert.equal(wa('```ts\nconst a = b * c * d;\nlet x_y_z = 1;\n```'), '```const a = b * c * d;\nlet x_y_z = 1;```');
});

test('whatsapp format - a link becomes "text (url)" and its URL keeps its underscores and stars', () => {
  assert.equal(wa('see [the docs](https://example.com/a_b_c*d*)'), 'see the docs (https://example.com/a_b_c*d*)');
  assert.equal(wa('[https://x.org](https://x.org)'), 'https://x.org');
  assert.equal(wa('bare https://example.com/snake_case_path here'), 'bare https://example.com/snake_case_path here');
});

test('whatsapp format - a heading becomes a bold line', () => {
  assert.equal(wa('# Plan\n## Step **one**\ntext'), '*Plan*\n*Step one*\ntext');
});

test('whatsapp format - "* item" list becomes "- item" and is not taken for emphasis', () => {
  assert.equal(wa('* one\n* two *three*'), '- one\n- two _three_');
});

test('whatsapp format - snake_case, 2 * 3 * 4 and unpaired markers stay as they are', () => {
  assert.equal(wa('snake_case_name and 2 * 3 * 4 and a lone * or _'), 'snake_case_name and 2 * 3 * 4 and a lone * or _');
});

test('whatsapp format - plain text comes back unchanged', () => {
  const text = 'Hello there.\n\nA second paragraph, with numbers 1-2 and a > quote.';
  assert.equal(wa(text), text);
});
