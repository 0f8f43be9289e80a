// The model's Markdown as Telegram shows it: text plus entities, never refused for its
// syntax, cut at the limit with each piece keeping its part of every entity.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { markdownToTelegram, splitFormatted, type Formatted, type TgEntity } from '../../src/channels/telegram/format.ts';

const part = (f: Formatted, e: TgEntity) => f.text.slice(e.offset, e.offset + e.length);
const kinds = (f: Formatted) => f.entities.map((e) => `${e.type}:${part(f, e)}`);

/** Entities inside the text, each pair nested or apart (Telegram refuses partial overlaps), none inside code. */
function assertValid(f: Formatted): void {
  for (const e of f.entities) {
    assert.ok(e.offset >= 0 && e.length > 0 && e.offset + e.length <= f.text.length, `entity ${JSON.stringify(e)} inside a text of ${f.text.length}`);
  }
  for (const a of f.entities) {
    for (const b of f.entities) {
      if (a === b) continue;
      const aEnd = a.offset + a.length, bEnd = b.offset + b.length;
      const apart = aEnd <= b.offset || bEnd <= a.offset;
      const aInB = a.offset >= b.offset && aEnd <= bEnd;
      const bInA = b.offset >= a.offset && bEnd <= aEnd;
      assert.ok(apart || aInB || bInA, `entities ${JSON.stringify(a)} and ${JSON.stringify(b)} overlap partially`);
      // Over the same range the code is the inner one (Telegram nests by type then), so only a strictly inner entity counts.
      if (aInB && !bInA && (b.type === 'code' || b.type === 'pre')) assert.fail(`${a.type} inside ${b.type}`);
    }
  }
}

describe('telegram format', () => {
  test('format - plain text passes unchanged, without entities', () => {
    const text = 'Meeting at 10.30 (room 4) - bring the slides! 2 + 2 = 4; a|b {c} #tag ~ok';
    assert.deepEqual(markdownToTelegram(text), { text, entities: [] });
  });

  test('format - bold, italic, strikethrough, inline code and links become entities', () => {
    const f = markdownToTelegram('**Bold**, *italic*, _also italic_, ~~gone~~, `x = 1`, [docs](https://example.com/a_b) and ***both***');
    assert.equal(f.text, 'Bold, italic, also italic, gone, x = 1, docs and both');
    assert.deepEqual(kinds(f), ['bold:Bold', 'italic:italic', 'italic:also italic', 'strikethrough:gone', 'code:x = 1', 'text_link:docs', 'bold:both', 'italic:both']);
    assert.equal(f.entities.find((e) => e.type === 'text_link')!.url, 'https://example.com/a_b');
    assertValid(f);
  });

  test('format - characters MarkdownV2 reserves survive verbatim where they are not markup', () => {
    const text = 'snake_case_name, 2 * 3 * 4, [not a link], (parens), a.b!c, x > y, #1, a+b-c=d, {x|y}, C:\\path, 5 *stars*?';
    const f = markdownToTelegram(text);
    assert.equal(f.text, 'snake_case_name, 2 * 3 * 4, [not a link], (parens), a.b!c, x > y, #1, a+b-c=d, {x|y}, C:\\path, 5 stars?');
    assert.deepEqual(kinds(f), ['italic:stars']);
  });

  test('format - a backslash escapes markup', () => {
    assert.deepEqual(markdownToTelegram('\\*not italic\\* and \\_no\\_'), { text: '*not italic* and _no_', entities: [] });
  });

  test('format - a fenced code block is a pre entity with its language, its text verbatim', () => {
    const f = markdownToTelegram('Run this:\n\n```ts\nconst a = b_c * 2; // **not bold**\n```\n\nDone.');
    assert.equal(f.text, 'Run this:\n\nconst a = b_c * 2; // **not bold**\n\nDone.');
    assert.deepEqual(f.entities, [{ type: 'pre', offset: 11, length: 34, language: 'ts' }]);
  });

  test('format - headings are bold, lists get bullets, quotes are block quotes, rules a line', () => {
    const f = markdownToTelegram('# Plan\n\n- first **step**\n* second\n  1. nested\n- [x] done\n- [ ] open\n\n> quoted *text*\n> more\n\n---');
    assert.equal(f.text, 'Plan\n\n• first step\n• second\n  1. nested\n☑ done\n☐ open\n\nquoted text\nmore\n\n──────────');
    assert.deepEqual(kinds(f), ['bold:Plan', 'bold:step', 'blockquote:quoted text\nmore', 'italic:text']);
    assertValid(f);
  });

  test('format - a table is aligned in monospace', () => {
    const f = markdownToTelegram('| name | qty |\n|---|---:|\n| apple | 3 |\n| kiwi | 12 |');
    assert.equal(f.text, 'name  | qty\n------+----\napple | 3\nkiwi  | 12');
    assert.deepEqual(kinds(f), [`pre:${f.text}`]);
  });

  test('format - a link Telegram would not take stays readable text', () => {
    const f = markdownToTelegram('[click](javascript:alert(1)) and [local](notes.txt)');
    assert.equal(f.text, 'click (javascript:alert(1)) and local (notes.txt)');
    assert.deepEqual(f.entities, []);
  });

  test('format - offsets count UTF-16 units (emoji are two)', () => {
    const f = markdownToTelegram('🎉 **ünï** 日本');
    assert.deepEqual(f.entities, [{ type: 'bold', offset: 3, length: 3 }]);
    assert.equal(part(f, f.entities[0]!), 'ünï');
  });

  test('format - unclosed markup stays as typed', () => {
    assert.deepEqual(markdownToTelegram('**open and `tick and [bracket('), { text: '**open and `tick and [bracket(', entities: [] });
  });

  test('format - any text converts to valid entities, and only markup characters are dropped (property)', () => {
    const alphabet = fc.constantFrom(...Array.from('ab _*`[]()~>#-|!.\\\n:/ép🎉'), 'https://x.io', '```', '**', '\n\n');
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 60 }).map((a) => a.join('')), (md) => {
      const f = markdownToTelegram(md);
      assertValid(f);
      // Everything shown comes from the source in order (bullets, rules and table padding aside).
      if (!/^\s*[-*+] |^ {0,3}([-*_])(\s*\1){2,}\s*$|\|/m.test(md)) {
        let pos = 0;
        const src = md.replace(/\r/g, '');
        for (const ch of f.text.replace(/\s/g, '')) {
          pos = src.indexOf(ch, pos);
          assert.ok(pos >= 0, `"${ch}" of ${JSON.stringify(f.text)} comes from ${JSON.stringify(md)}`);
          pos++;
        }
      }
    }), { numRuns: 2000 });
  });
});

describe('telegram split', () => {
  test('split - a long reply is cut at paragraph boundaries, each piece within the limit, nothing lost', () => {
    const paragraphs = Array.from({ length: 12 }, (_, i) => `**Part ${i}**: ${'word '.repeat(150).trim()}.`);
    const f = markdownToTelegram(paragraphs.join('\n\n'));
    const pieces = splitFormatted(f, 4096);
    assert.ok(pieces.length >= 3);
    for (const p of pieces) {
      assert.ok(p.text.length <= 4096);
      assert.match(p.text, /^Part \d+:/);
      assertValid(p);
    }
    assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), f.text.replace(/\s/g, ''));
    assert.equal(pieces.flatMap((p) => kinds(p)).length, 12, 'every bold part kept, in the piece that holds it');
  });

  test('split - a code block cut in two is code on both sides', () => {
    const code = Array.from({ length: 40 }, (_, i) => `line ${i} ${'x'.repeat(20)}`).join('\n\n');
    const f = markdownToTelegram('```\n' + code + '\n```');
    const pieces = splitFormatted(f, 500);
    assert.ok(pieces.length > 2);
    for (const p of pieces) assert.deepEqual(p.entities, [{ type: 'pre', offset: 0, length: p.text.length }]);
  });

  test('split - pieces keep their entities where the text repeats (property)', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('aa ', '**b b**', '\n\n', ' ', '`c` ', 'a\n'), { maxLength: 80 }), fc.integer({ min: 8, max: 40 }), (parts, limit) => {
      const f = markdownToTelegram(parts.join(''));
      const pieces = splitFormatted(f, limit);
      for (const p of pieces) {
        assert.ok(p.text.length <= limit);
        assertValid(p);
        for (const e of p.entities) {
          const shown = part(p, e);
          if (e.type === 'bold') assert.match(shown, /^b ?b?$|^ ?b$/, `bold covers only b's: ${JSON.stringify(shown)}`);
          if (e.type === 'code') assert.equal(shown, 'c');
        }
      }
      assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), f.text.replace(/\s/g, ''));
    }), { numRuns: 500 });
  });
});
