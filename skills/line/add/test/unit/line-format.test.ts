// The model's Markdown as LINE shows it (plain text), cut at 5,000 characters, five messages per request.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linePieces, markdownToPlain } from '../../src/channels/line/format.ts';
import { retryKey } from '../../src/channels/line/outbox.ts';

test('line format - emphasis markers go, the words stay; snake_case and 2*3*4 are left alone', () => {
  assert.equal(markdownToPlain('**bold**, __also__, *it*, _it_, ~~gone~~ and snake_case_name with 2*3*4'), 'bold, also, it, it, gone and snake_case_name with 2*3*4');
});

test('line format - a link keeps its address: [text](url) → text (url); a bare <url> → url', () => {
  assert.equal(markdownToPlain('See [the sheet](https://example.com/a_b?x=1) or <https://x.y/z>, ![chart](https://c.d/e.png), [https://a.b](https://a.b).'),
    'See the sheet (https://example.com/a_b?x=1) or https://x.y/z, chart (https://c.d/e.png), https://a.b.');
});

test('line format - code blocks and code spans are kept exactly as written, only the fence lines dropped', () => {
  const md = 'Run `a_b * **c**`:\n\n```sh\necho **not bold** _x_ [a](b)\n  indented\n```\n\nDone.';
  assert.equal(markdownToPlain(md), 'Run a_b * **c**:\n\necho **not bold** _x_ [a](b)\n  indented\n\nDone.');
});

test('line format - headings lose their #, bullets become dashes, rules a line', () => {
  assert.equal(markdownToPlain('# Plan\n\n* one\n+ two\n- three\n\n---\n\n### End ###'), 'Plan\n\n- one\n- two\n- three\n\n──────────\n\nEnd');
});

test('line format - a long text is cut at 5,000 characters on paragraphs, in requests of at most five messages, nothing lost', () => {
  const paragraph = (i: number) => `Paragraph ${i}: ${'x'.repeat(1990)}`;
  const text = Array.from({ length: 15 }, (_, i) => paragraph(i)).join('\n\n');
  const requests = linePieces(text);
  assert.deepEqual(requests.map((r) => r.length), [5, 3]);
  for (const piece of requests.flat()) {
    assert.ok(piece.length <= 5000);
    assert.match(piece, /^Paragraph \d+:/);
  }
  assert.equal(requests.flat().join('').replace(/\s/g, ''), text.replace(/\s/g, ''));
});

test('line format - text that is only markup is still sent, never an empty message', () => {
  assert.deepEqual(linePieces('```\n```'), [['```\n```']]);
});

test('line retry key - a UUID, the same for the same message and request across restarts, another for another', () => {
  const a = retryKey('msg-1', 0);
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(retryKey('msg-1', 0), a);
  assert.notEqual(retryKey('msg-1', 1), a);
  assert.notEqual(retryKey('msg-2', 0), a);
});
