// Keeps docs/SECURITY.md and docs/ARCHITECTURE.md true: every test they cite must exist
// under that name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Checks each citation in the table rows; returns how many names were cited. */
function checkCitations(rows: string[]): number {
  let cited = 0;
  for (const row of rows) {
    const cell = row.split(' | ').at(-1)!;
    // A cell is a list of `file` › *name* › *name*; …
    let file: string | undefined;
    for (const part of cell.split(/;|\(all/)) {
      // A citation without a file refers to the file named before it in the cell. A skill's
      // tests are cited where the skill keeps them (skills/<name>/add/test/…).
      file = /`((?:skills\/[a-z0-9-]+\/add\/)?test\/[^`]+\.test\.ts)`/.exec(part)?.[1] ?? file;
      if (!file) continue;
      // Names are compared as written in the test's string literal, escapes undone.
      const source = fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/\\(['"`])/g, '$1');
      for (const m of part.matchAll(/› \*([^*]+)\*/g)) {
        const name = m[1]!.replace(/\\\*/g, '*').replace(/\s*…\s*/g, '…').split('…').map((s) => s.trim()).filter(Boolean);
        for (const piece of name) assert.ok(source.includes(piece), `${file} has no test named like "${piece}" (row: ${row.slice(0, 60)}…)`);
        cited++;
      }
    }
  }
  return cited;
}

test('docs - every test cited in docs/SECURITY.md exists, with the cited name', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'SECURITY.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => /^\| \d+ \|/.test(l));
  assert.ok(rows.length >= 10, 'the guarantee table is there');
  const cited = checkCitations(rows);
  assert.ok(cited >= rows.length, `every guarantee cites at least one named test (${cited} citations for ${rows.length} rows)`);
});

test('docs - every delivery guarantee in docs/ARCHITECTURE.md cites a test that exists', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Delivery guarantees'), doc.indexOf('## Scheduled tasks'));
  const rows = section.split('\n').filter((l) => l.startsWith('| ') && l.includes('`test/'));
  assert.ok(rows.length >= 8, 'the delivery table is there');
  for (const row of rows) {
    for (const file of row.matchAll(/`(test\/[^`]+\.test\.ts)`/g)) assert.ok(fs.existsSync(path.join(ROOT, file[1]!)), file[1]);
  }
  checkCitations(rows);
});
