// The one attachment path every channel uses (src/channels/attachments.ts), against a real
// temporary HAKO_HOME: names, clashes, limits and links planted by the agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachmentLimits, attachmentName, saveAttachment, saveWithMessage, sizeProblem } from '../../src/channels/attachments.ts';
import { prepareGroupDirs } from '../../src/core/runner.ts';
import { groupPaths } from '../../src/core/paths.ts';

const NOW = new Date('2026-11-30T23:59:00Z');

function home(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-att-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  prepareGroupDirs(dir, 'sales');
  return dir;
}

test('attachments - a name becomes one safe segment: no slash, control character or leading dot, the extension kept', () => {
  assert.equal(attachmentName('../../x'), 'x');
  assert.equal(attachmentName('C:\\Users\\me\\report.pdf'), 'report.pdf');
  assert.equal(attachmentName('a\u0000b\r\n.txt'), 'a_b_.txt');
  assert.equal(attachmentName('..'), 'file');
  assert.equal(attachmentName('.bashrc'), 'bashrc');
  assert.equal(attachmentName('-rf.sh'), 'rf.sh');
  assert.equal(attachmentName('Angebot über 5 €.pdf'), 'Angebot_über_5_.pdf');
  const long = attachmentName(`${'x'.repeat(300)}.pdf`);
  assert.ok(long.length <= 100 && long.endsWith('.pdf'), long);
});

test('attachments - a clash gets -2, -3…; an existing file is never overwritten', (t) => {
  const h = home(t);
  const a = saveAttachment(h, 'sales', 'quote.pdf', Buffer.from('a'), 10, NOW);
  const b = saveAttachment(h, 'sales', 'quote.pdf', Buffer.from('b'), 10, NOW);
  const c = saveAttachment(h, 'sales', 'notes', Buffer.from('c'), 10, NOW);
  const d = saveAttachment(h, 'sales', 'notes', Buffer.from('d'), 10, NOW);
  assert.deepEqual([a.path, b.path, c.path, d.path], ['inbox/2026-11-30/quote.pdf', 'inbox/2026-11-30/quote-2.pdf', 'inbox/2026-11-30/notes', 'inbox/2026-11-30/notes-2']);
  assert.equal(fs.readFileSync(a.hostPath, 'utf8'), 'a');
  assert.equal(b.agentPath, '/workspace/group/inbox/2026-11-30/quote-2.pdf');
});

test('attachments - attack: a link the agent planted where a file would go is not followed; the file gets the next name', (t) => {
  const h = home(t);
  const target = path.join(h, 'target');
  fs.writeFileSync(target, 'untouched');
  const day = path.join(groupPaths(h, 'sales').folder, 'inbox', '2026-11-30');
  fs.mkdirSync(day, { recursive: true });
  fs.symlinkSync(target, path.join(day, 'quote.pdf'));
  const saved = saveAttachment(h, 'sales', 'quote.pdf', Buffer.from('new'), 10, NOW);
  assert.equal(saved.path, 'inbox/2026-11-30/quote-2.pdf');
  assert.equal(fs.readFileSync(target, 'utf8'), 'untouched');
});

test('attachments - attack: a day folder that is a link to elsewhere gets nothing written there', (t) => {
  const h = home(t);
  const elsewhere = fs.mkdtempSync(path.join(h, 'elsewhere-'));
  fs.mkdirSync(path.join(groupPaths(h, 'sales').folder, 'inbox'));
  fs.symlinkSync(elsewhere, path.join(groupPaths(h, 'sales').folder, 'inbox', '2026-11-30'));
  assert.throws(() => saveAttachment(h, 'sales', 'x.txt', Buffer.from('x'), 10, NOW), /inbox\/2026-11-30\/ in its folder is not a plain folder \((ELOOP|ENOTDIR)\)/);
  assert.deepEqual(fs.readdirSync(elsewhere), []);
});

test('attachments - a message lists each saved file on its own line; over the total nothing is written', (t) => {
  const h = home(t);
  const limits = { perFile: 10, total: 15 };
  const r = saveWithMessage(h, 'sales', 'see these', [
    { name: 'a.pdf', mime: 'application/pdf', data: Buffer.alloc(10) },
    { name: 'b.png', mime: 'image/png', data: Buffer.alloc(5) },
  ], limits, NOW);
  assert.equal(r.text, 'see these\n[attached: inbox/2026-11-30/a.pdf (application/pdf, 10 bytes)]\n[attached: inbox/2026-11-30/b.png (image/png, 5 bytes)]');
  assert.equal(saveWithMessage(h, 'sales', '', [{ name: 'c.txt', mime: 'text/plain', data: Buffer.alloc(1) }], limits, NOW).text, '[attached: inbox/2026-11-30/c.txt (text/plain, 1 byte)]');
  const before = fs.readdirSync(path.join(groupPaths(h, 'sales').folder, 'inbox', '2026-11-30')).sort();
  assert.throws(() => saveWithMessage(h, 'sales', 'more', [{ name: 'd', mime: 'x/y', data: Buffer.alloc(8) }, { name: 'e', mime: 'x/y', data: Buffer.alloc(8) }], limits, NOW), /16 bytes together; the limit is 15 bytes per message \(HAKO_ATTACHMENT_TOTAL_BYTES\)/);
  assert.deepEqual(fs.readdirSync(path.join(groupPaths(h, 'sales').folder, 'inbox', '2026-11-30')).sort(), before);
});

test('attachments - limits: HAKO_ATTACHMENT_MAX_BYTES per file and HAKO_ATTACHMENT_TOTAL_BYTES per message, whole bytes only', () => {
  assert.deepEqual(attachmentLimits({}), { perFile: 25 * 1024 * 1024, total: 50 * 1024 * 1024 });
  assert.deepEqual(attachmentLimits({ HAKO_ATTACHMENT_MAX_BYTES: '100000000' }), { perFile: 100_000_000, total: 100_000_000 });
  assert.deepEqual(attachmentLimits({ HAKO_ATTACHMENT_MAX_BYTES: '1000', HAKO_ATTACHMENT_TOTAL_BYTES: '1500' }), { perFile: 1000, total: 1500 });
  for (const bad of ['0', '-1', '1.5', '20MB']) assert.throws(() => attachmentLimits({ HAKO_ATTACHMENT_TOTAL_BYTES: bad }), /HAKO_ATTACHMENT_TOTAL_BYTES must be a positive whole number of bytes/);
  assert.match(sizeProblem([{ name: 'big.bin', bytes: 11 }], { perFile: 10, total: 100 })!, /"big\.bin" is 11 bytes; the limit is 10 bytes per file \(HAKO_ATTACHMENT_MAX_BYTES\)/);
  assert.equal(sizeProblem([{ name: 'ok', bytes: 10 }], { perFile: 10, total: 10 }), undefined);
});

test('attachments - regression: a 20 MB file sent over the API is decoded, not a 500 from the base64 check', async () => {
  const { attachmentsOf } = await import('../../src/channels/http.ts');
  const data = Buffer.alloc(20 * 1024 * 1024, 7);
  const [file] = attachmentsOf([{ name: 'photo.png', mime: 'image/png', data: data.toString('base64') }], { perFile: 25 * 1024 * 1024, total: 50 * 1024 * 1024 });
  assert.ok(Buffer.from(file!.data).equals(data));
  assert.throws(() => attachmentsOf([{ name: 'a.png', data: 'AAA*' }], { perFile: 10, total: 10 }), /standard base64/);
  assert.throws(() => attachmentsOf([{ name: 'big.png', data: 'A'.repeat(40 * 1024 * 1024) }], { perFile: 25 * 1024 * 1024, total: 50 * 1024 * 1024 }), /the limit is 26214400 bytes per file/);
});
