// Markdown → Slack mrkdwn, and the split at Slack's limit: what a Slack user sees.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markdownToMrkdwn, splitMrkdwn, TEXT_LIMIT } from '../../src/channels/slack/format.ts';

test('slack format - bold, italic, strike, links and headings become mrkdwn', () => {
  assert.equal(markdownToMrkdwn('**bold** and *italic* and _also_ and ~~gone~~'), '*bold* and _italic_ and _also_ and ~gone~');
  assert.equal(markdownToMrkdwn('see [the docs](https://example.com/a?b=1)'), 'see <https://example.com/a?b=1|the docs>');
  assert.equal(markdownToMrkdwn('# Plan\n## **Next** steps\ntext'), '*Plan*\n*Next steps*\ntext');
  assert.equal(markdownToMrkdwn('- one\n* two\n  + three'), '• one\n• two\n  • three');
});

test('slack format - &, < and > are escaped everywhere, code included; code is not converted', () => {
  assert.equal(markdownToMrkdwn('a < b && c > d'), 'a &lt; b &amp;&amp; c &gt; d');
  assert.equal(markdownToMrkdwn('run `a **b** <c>`'), 'run `a **b** &lt;c&gt;`');
  assert.equal(markdownToMrkdwn('```ts\nconst x = a < b && **y**;\n```\nafter **bold**'), '```const x = a &lt; b &amp;&amp; **y**;```\nafter *bold*');
});

test('slack format - a mention-like text cannot become a Slack mention or link', () => {
  assert.equal(markdownToMrkdwn('<!channel> <@U123> <https://x.example|y>'), '&lt;!channel&gt; &lt;@U123&gt; &lt;https://x.example|y&gt;');
});

test('slack format - a long text is split at paragraphs within 4,000 characters', () => {
  const text = Array.from({ length: 6 }, (_, i) => `Paragraph ${i} ${'word '.repeat(300)}`.trim()).join('\n\n');
  const pieces = splitMrkdwn(text);
  assert.ok(pieces.length >= 2);
  for (const p of pieces) assert.ok(p.length <= TEXT_LIMIT, `${p.length} <= ${TEXT_LIMIT}`);
  assert.ok(pieces.every((p) => p.startsWith('Paragraph ')));
  assert.equal(pieces.join('').replace(/\s/g, ''), text.replace(/\s/g, ''));
});

test('slack format - a code block cut by the split is closed and reopened, so each piece renders', () => {
  const code = Array.from({ length: 300 }, (_, i) => `line ${i} of the listing`).join('\n');
  const pieces = splitMrkdwn(markdownToMrkdwn(`before\n\n\`\`\`\n${code}\n\`\`\`\n\nafter`), 2000);
  assert.ok(pieces.length >= 3);
  for (const p of pieces) {
    assert.ok(p.length <= 2000);
    assert.equal((p.match(/```/g) ?? []).length % 2, 0, `balanced fences in ${JSON.stringify(p.slice(0, 40))}…`);
  }
});
