import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { safeJson, safeLine, safeText } from '../../src/core/safe-text.ts';
import { createLogger } from '../../src/core/log.ts';
import { renderMessage } from '../../src/cli/chat.ts';

// What a compromised agent or a hostile chat member prints at the owner.
const OSC52 = '\x1b]52;c;cm0gLXJmIH4=\x07';
const TITLE = '\x1b]0;PWNED\x1b\\';
const CSI = '\x1b[2J\x1b[31m';
const C1_CSI = '\u009b31m';
const BIDI = '\u202eexe.txt\u202c\u2066\u2069\u200f\u061c';

test('safe text - C0, DEL, C1, separators and bidi controls come out as visible \\u escapes', () => {
  const out = safeLine(`a${OSC52}b${TITLE}c${CSI}d${C1_CSI}e\x7f${BIDI}\u2028\u2029\r\n\t`);
  assert.doesNotMatch(out, /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  assert.equal(safeLine('\x1b]52;c;x\x07'), '\\u001b]52;c;x\\u0007');
  assert.equal(safeLine('\u202eabc'), '\\u202eabc');
  assert.equal(safeLine('a\nb\tc'), 'a\\u000ab\\u0009c');
});

test('safe text - ordinary text, emoji and right-to-left scripts are untouched', () => {
  const s = 'héllo 世界 👩‍💻 مرحبا שלום — “quoted” \\u001b';
  assert.equal(safeLine(s), s);
  assert.equal(safeText(s), s);
});

test('safe text - several lines keep newline and tab; a lone carriage return is escaped', () => {
  assert.equal(safeText('a\r\nb\tc\n'), 'a\nb\tc\n');
  assert.equal(safeText('innocent\rhako: forged'), 'innocent\\u000dhako: forged');
  assert.equal(safeText(`x${OSC52}`), 'x\\u001b]52;c;cm0gLXJmIH4=\\u0007');
});

test('safe text - JSON stays valid and keeps its value, with nothing left that drives a terminal', () => {
  const value = { text: `${OSC52}${C1_CSI}${BIDI}\u2028` };
  const out = safeJson(JSON.stringify(value, null, 2));
  assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  assert.deepEqual(JSON.parse(out), value);
});

test('hako chat - attack 34: a message cannot start a row with a forged sender, by newline, carriage return or wrapping', () => {
  const text = `hi\nhako: (system) paste your token\rhako: (system) again\n${'x'.repeat(200)}hako: (system) wrapped`;
  for (const columns of [undefined, 40, 80, 100]) {
    const rows = renderMessage({ sender: 'hako', text }, { columns }).split('\n');
    assert.equal(rows[0], columns ? 'hako: hi'.slice(0, columns) : 'hako: hi');
    for (const row of rows.slice(1)) assert.match(row, /^ {2}\S/, `row "${row}" is not indented (columns ${columns})`);
    if (columns) for (const row of rows) assert.ok(row.length <= columns, `row of ${row.length} > ${columns}`);
  }
});

test('hako chat - wide characters and tabs are counted high, so the terminal never wraps a row itself', () => {
  const rows = renderMessage({ sender: 'hako', text: `${'世'.repeat(60)}\n\t${'界'.repeat(60)}` }, { columns: 40 }).split('\n');
  const width = (r: string) => [...r].reduce((w, ch) => w + (ch === '\t' ? 8 : ch.codePointAt(0)! < 0x80 ? 1 : 2), 0);
  for (const row of rows) assert.ok(width(row) <= 40, `row "${row}" is ${width(row)} columns wide`);
  assert.ok(rows.length > 3);
});

test('hako chat - a sender name cannot carry controls or a line break', () => {
  const out = renderMessage({ sender: `alice\nhako${OSC52}`, text: 'hello' });
  assert.equal(out, 'alice\\u000ahako\\u001b]52;c;cm0gLXJmIH4=\\u0007: hello');
});

test('log - attack 34: an agent-chosen file name reaches the start console and the log file escaped', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-safe-log-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const written: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    createLogger({ dir }).warn('ipc file rejected', { group: 'team', file: `${TITLE}${OSC52}\n10:00:00 info  forged.json${C1_CSI}` });
  } finally {
    process.stderr.write = original;
  }
  assert.equal(written.length, 1);
  const line = written[0]!;
  assert.match(line, /\\u001b\]0;PWNED/);
  assert.doesNotMatch(line.slice(0, -1), /[\u0000-\u001f\u007f-\u009f]/, 'one line, no controls');
  const file = fs.readFileSync(path.join(dir, 'hako.log'), 'utf8');
  assert.doesNotMatch(file.slice(0, -1), /[\u0000-\u001f\u007f-\u009f]/);
  assert.equal(JSON.parse(file).file, `${TITLE}${OSC52}\n10:00:00 info  forged.json${C1_CSI}`);
});
