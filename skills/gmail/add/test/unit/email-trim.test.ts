// What the model reads of an e-mail: quoted history below a reply and the signature are
// trimmed; a forwarded message keeps its history, which is its content.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trimReply } from '../../src/channels/email/trim.ts';

test('email trim - a Gmail reply: the "On … wrote:" line and the quote below it go', () => {
  const body = 'Sounds good, book it for Tuesday.\n\nOn Mon, Nov 30, 2026 at 9:00 AM Alice Smith <alice@example.com>\nwrote:\n\n> Shall we meet on Tuesday?\n> Alice\n';
  const t = trimReply(body, 'Re: meeting');
  assert.equal(t.text, 'Sounds good, book it for Tuesday.');
  assert.equal(t.quotedLines, 4);
});

test('email trim - other clients and languages: Outlook, German, French, a trailing quote without a header', () => {
  assert.equal(trimReply('Ja.\n\nAm 30.11.2026 um 09:00 schrieb Bob <bob@example.de>:\n> Kommst du?\n').text, 'Ja.');
  assert.equal(trimReply('Oui.\n\nLe lun. 30 nov. 2026, Claire a écrit :\n> Tu viens ?\n').text, 'Oui.');
  assert.equal(trimReply('Yes.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nSubject: x\n\nAre you coming?\n').text, 'Yes.');
  assert.equal(trimReply('Yes.\n\n________________________________\nFrom: Bob <bob@example.com>\nSent: Monday, 30 November 2026 09:00\nTo: me\nSubject: x\n\nAre you coming?').text, 'Yes.');
  assert.equal(trimReply('Fine by me.\n\n> Is Friday fine?\n> Bob\n').text, 'Fine by me.');
});

test('email trim - answers written between quotes are kept (only a trailing quote goes)', () => {
  const body = '> Budget?\n20k.\n\n> Deadline?\nMarch.\n';
  assert.equal(trimReply(body).text, '> Budget?\n20k.\n\n> Deadline?\nMarch.');
});

test('email trim - signatures: the "-- " delimiter and mobile footers', () => {
  assert.deepEqual(trimReply('Call me.\n\n-- \nAlice Smith\nACME Corp\n+1 555 0100\n'), { text: 'Call me.', quotedLines: 0, signature: true });
  assert.equal(trimReply('On my way.\n\nSent from my iPhone\n').text, 'On my way.');
  assert.equal(trimReply('Ok\n\nGet Outlook for Android\n').text, 'Ok');
});

test('email trim - a forwarded message keeps the whole thread: by subject, and from the forward marker on', () => {
  const fwd = 'Please file this.\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon\nSubject: Invoice\n\nHere is the invoice.\n\nOn Sun, Carol wrote:\n> Send the invoice\n\n-- \nBob\n';
  assert.equal(trimReply(fwd, 'Fwd: Invoice').text, fwd.trim());
  assert.equal(trimReply(fwd, 'Invoice').text, fwd.trim(), 'the marker alone protects what follows it');
  const apple = 'FYI\n\nBegin forwarded message:\n\n> From: Bob\n> Subject: x\n> hello\n';
  assert.equal(trimReply(apple, 'x').text, apple.trim());
});

test('email trim - the sender own text before a forward is still trimmed of its signature', () => {
  const body = 'File this.\n-- \nMe\n\n---------- Forwarded message ---------\nFrom: Bob\n\nInvoice attached.\n';
  assert.equal(trimReply(body, 'Invoice').text, 'File this.\n\n---------- Forwarded message ---------\nFrom: Bob\n\nInvoice attached.');
});

test('email trim - a message that is only a quote keeps it, and a plain sentence starting with On is not a reply header', () => {
  assert.equal(trimReply('> just this\n> and this\n').text, '> just this\n> and this');
  const body = 'On Monday we shipped the release.\nEveryone wrote:\nthanks to the team.';
  assert.equal(trimReply(body).text, body);
});

test('email trim - Windows line ends are read like Unix ones', () => {
  assert.equal(trimReply('Yes.\r\n\r\nOn Mon, Bob wrote:\r\n> Coming?\r\n').text, 'Yes.');
});
