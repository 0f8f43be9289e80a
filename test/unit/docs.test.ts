// Keeps docs/SECURITY.md true: every test it cites must exist under that name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test('docs - every test cited in docs/SECURITY.md exists, with the cited name', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'SECURITY.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => /^\| \d+ \|/.test(l));
  assert.ok(rows.length >= 10, 'the guarantee table is there');
  let cited = 0;
  for (const row of rows) {
    const cell = row.split(' | ').at(-1)!;
    // A cell is a list of `file` › *name* › *name*; …
    let file: string | undefined;
    for (const part of cell.split(/;|\(all/)) {
      // A citation without a file refers to the file named before it in the cell.
      file = /`(test\/[^`]+\.test\.ts)`/.exec(part)?.[1] ?? file;
      if (!file) continue;
      const source = fs.readFileSync(path.join(ROOT, file), 'utf8');
      for (const m of part.matchAll(/› \*([^*]+)\*/g)) {
        const name = m[1]!.replace(/\\\*/g, '*').replace(/\s*…\s*/g, '…').split('…').map((s) => s.trim()).filter(Boolean);
        for (const piece of name) assert.ok(source.includes(piece), `${file} has no test named like "${piece}" (row: ${row.slice(0, 60)}…)`);
        cited++;
      }
    }
  }
  assert.ok(cited >= rows.length, `every guarantee cites at least one named test (${cited} citations for ${rows.length} rows)`);
});
