// The e-mail channel's own state file (HAKO_HOME/channels/email/state.json): durable across
// restarts, private to the owner, written atomically, bounded, and never a reason to stop.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MailState } from '../../src/channels/email/state.ts';

const mailbox = 'hako@example.com@imap.example.com:993/INBOX';

const homes: string[] = [];
after(() => { for (const h of homes) fs.rmSync(h, { recursive: true, force: true }); });

function home(): string {
  const h = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-email-state-'));
  homes.push(h);
  return h;
}

test('email state - the cursor and the stored keys survive a restart; file 0600 in a 0700 folder', () => {
  const h = home();
  const warnings: string[] = [];
  const s = MailState.load({ home: h, mailbox, warn: (m) => warnings.push(m) });
  assert.equal(s.uidValidity, null);
  s.addKey('id:<a@x>');
  s.setCursor('1234', 7);
  s.save();
  const again = MailState.load({ home: h, mailbox, warn: (m) => warnings.push(m) });
  assert.equal(again.uidValidity, '1234');
  assert.equal(again.lastUid, 7);
  assert.ok(again.has('id:<a@x>'));
  assert.equal(fs.statSync(MailState.path(h)).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(MailState.path(h))).mode & 0o777, 0o700);
  assert.deepEqual(fs.readdirSync(path.dirname(MailState.path(h))), ['state.json'], 'no temporary file is left behind');
  assert.deepEqual(warnings, []);
});

test('email state - another mailbox starts a fresh cursor but keeps the stored keys (nothing is stored twice)', () => {
  const h = home();
  const s = MailState.load({ home: h, mailbox, warn: () => {} });
  s.addKey('id:<a@x>');
  s.setCursor('1234', 7);
  s.save();
  const other = MailState.load({ home: h, mailbox: 'other@example.com@imap.example.com:993/INBOX', warn: () => {} });
  assert.equal(other.uidValidity, null);
  assert.equal(other.lastUid, 0);
  assert.ok(other.has('id:<a@x>'));
});

test('email state - an unreadable file is kept aside with a warning, not a reason to stop', () => {
  const h = home();
  fs.mkdirSync(path.dirname(MailState.path(h)), { recursive: true });
  fs.writeFileSync(MailState.path(h), '{"v":1,"mailbox":');
  const warnings: string[] = [];
  const s = MailState.load({ home: h, mailbox, warn: (m) => warnings.push(m) });
  assert.equal(s.uidValidity, null);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /unreadable and is kept as .*state\.json\.unreadable-\d+/);
});

test('email state - the keys are bounded: the oldest are forgotten first', () => {
  const h = home();
  const s = MailState.load({ home: h, mailbox, warn: () => {} });
  for (let i = 0; i < 5100; i++) s.addKey(`id:<${i}@x>`);
  assert.equal(s.has('id:<0@x>'), false);
  assert.equal(s.has('id:<99@x>'), false);
  assert.equal(s.has('id:<100@x>'), true);
  assert.equal(s.has('id:<5099@x>'), true);
});
