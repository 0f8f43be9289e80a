// The e-mail channel's settings: the TLS rule (plain IMAP/SMTP only to loopback), where the
// secrets must be, the owner's addresses, and errors that name the variable to fix.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopback } from '../../src/core/config.ts';
import { EmailConfigError, parseEmailConfig, parseEndpoint } from '../../src/channels/email/config.ts';

const base = {
  HAKO_EMAIL_IMAP: 'imaps://imap.gmail.com:993',
  HAKO_EMAIL_SMTP: 'smtps://smtp.gmail.com:465',
  HAKO_EMAIL_USER: 'Hako.Assistant@gmail.com',
  HAKO_EMAIL_PASSWORD: 'abcd efgh ijkl mnop',
};

test('email config - the Gmail settings parse: TLS on both, the user is the address, the owner defaults to it', () => {
  const c = parseEmailConfig(base);
  assert.deepEqual(c.imap, { host: 'imap.gmail.com', port: 993, security: 'tls' });
  assert.deepEqual(c.smtp, { host: 'smtp.gmail.com', port: 465, security: 'tls' });
  assert.equal(c.address, 'hako.assistant@gmail.com');
  assert.deepEqual(c.owners, ['hako.assistant@gmail.com']);
  assert.deepEqual(c.auth, { kind: 'password', password: 'abcd efgh ijkl mnop' });
  assert.equal(c.authservId, 'mx.google.com', 'Gmail\'s verdict on the sender is believed by default');
  assert.equal(c.mailbox, 'INBOX');
});

test('email config - TLS rule: plain imap:// and smtp:// are refused to a host that is not loopback, with the fix', () => {
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imap://imap.gmail.com', 'imap'),
    /unencrypted to imap\.gmail\.com, which is not a loopback address; use imaps:\/\/imap\.gmail\.com:993/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_SMTP', 'smtp://smtp.example.com:25', 'smtp'), /not a loopback address; use smtps:\/\/smtp\.example\.com:465/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imap://10.0.0.5:143', 'imap'), /not a loopback/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imap://[fe80::1]:143', 'imap'), /not a loopback/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imap://127.0.0.1.nip.io:143', 'imap'), /not a loopback/);
});

test('email config - TLS rule: plain is accepted to loopback addresses only (127.0.0.0/8, ::1, localhost as 127.0.0.1)', () => {
  assert.deepEqual(parseEndpoint('HAKO_EMAIL_IMAP', 'imap://127.0.0.1:1143', 'imap'), { host: '127.0.0.1', port: 1143, security: 'plain' });
  assert.deepEqual(parseEndpoint('HAKO_EMAIL_SMTP', 'smtp://127.0.0.1:2525', 'smtp'), { host: '127.0.0.1', port: 2525, security: 'plain' });
  assert.deepEqual(parseEndpoint('HAKO_EMAIL_IMAP', 'imap://[::1]:1143', 'imap'), { host: '::1', port: 1143, security: 'plain' });
  assert.deepEqual(parseEndpoint('HAKO_EMAIL_IMAP', 'imap://localhost:1143', 'imap'), { host: '127.0.0.1', port: 1143, security: 'plain' });
  assert.equal(isLoopback('127.8.9.10'), true);
  assert.equal(isLoopback('128.0.0.1'), false);
  assert.equal(isLoopback('localhost.example.com'), false);
});

test('email config - STARTTLS only when required explicitly, and then to any host; never on top of imaps/smtps', () => {
  assert.deepEqual(parseEndpoint('HAKO_EMAIL_SMTP', 'smtp://smtp.gmail.com:587?starttls=required', 'smtp'), { host: 'smtp.gmail.com', port: 587, security: 'starttls' });
  assert.deepEqual(parseEndpoint('HAKO_EMAIL_IMAP', 'imap://mail.example.com?starttls=required', 'imap'), { host: 'mail.example.com', port: 143, security: 'starttls' });
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imaps://imap.gmail.com?starttls=required', 'imap'), /TLS already/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_SMTP', 'smtp://smtp.gmail.com:587?starttls=yes', 'smtp'), /unknown option "starttls=yes"/);
});

test('email config - a password in a URL, a path or the wrong protocol is refused, naming the variable', () => {
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imaps://me:secret@imap.gmail.com', 'imap'), /HAKO_EMAIL_IMAP holds a user name or password; .*HAKO_EMAIL_PASSWORD/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'imaps://imap.gmail.com/INBOX', 'imap'), /has a path/);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_IMAP', 'smtps://smtp.gmail.com', 'imap'), /HAKO_EMAIL_IMAP must start with imaps:\/\//);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_SMTP', 'https://smtp.gmail.com', 'smtp'), /must start with smtps:\/\//);
  assert.throws(() => parseEndpoint('HAKO_EMAIL_SMTP', 'smtp.gmail.com:465', 'smtp'), /HAKO_EMAIL_SMTP/);
});

test('email config - exactly one secret: an app password or an OAuth token, said where to put it', () => {
  const { HAKO_EMAIL_PASSWORD: _, ...none } = base;
  assert.throws(() => parseEmailConfig(none), /neither HAKO_EMAIL_PASSWORD .* nor HAKO_EMAIL_OAUTH_TOKEN is set; add one to ~\/\.config\/hako\/secrets\.env/);
  assert.throws(() => parseEmailConfig({ ...base, HAKO_EMAIL_OAUTH_TOKEN: 'ya29.token' }), /both HAKO_EMAIL_PASSWORD and HAKO_EMAIL_OAUTH_TOKEN/);
  assert.deepEqual(parseEmailConfig({ ...none, HAKO_EMAIL_OAUTH_TOKEN: 'ya29.token' }).auth, { kind: 'oauth2', token: 'ya29.token' });
});

test('email config - HAKO_EMAIL_OWNER lists the owner addresses, lower-case; a bad one is named', () => {
  const c = parseEmailConfig({ ...base, HAKO_EMAIL_OWNER: ' Me@Example.com, me.too@example.org ,me@example.com' });
  assert.deepEqual(c.owners, ['me@example.com', 'me.too@example.org']);
  assert.throws(() => parseEmailConfig({ ...base, HAKO_EMAIL_OWNER: 'me@example.com, not an address' }), /HAKO_EMAIL_OWNER holds "not an address"/);
});

test('email config - a login name that is not an address needs HAKO_EMAIL_ADDRESS', () => {
  assert.throws(() => parseEmailConfig({ ...base, HAKO_EMAIL_USER: 'hako' }), /HAKO_EMAIL_USER is a login name.*HAKO_EMAIL_ADDRESS/);
  assert.equal(parseEmailConfig({ ...base, HAKO_EMAIL_USER: 'hako', HAKO_EMAIL_ADDRESS: 'hako@example.com' }).address, 'hako@example.com');
});

test('email config - another server needs HAKO_EMAIL_AUTHSERV_ID (a server, or "none" to believe From as written); "none" turns Gmail\'s off', () => {
  const other = { ...base, HAKO_EMAIL_IMAP: 'imaps://mail.example.com', HAKO_EMAIL_SMTP: 'smtps://mail.example.com' };
  assert.throws(() => parseEmailConfig(other), /on mail\.example\.com hako cannot tell a forged From from the owner's: set HAKO_EMAIL_AUTHSERV_ID .* or to "none"/);
  assert.equal(parseEmailConfig({ ...other, HAKO_EMAIL_AUTHSERV_ID: 'none' }).authservId, undefined);
  assert.equal(parseEmailConfig({ ...other, HAKO_EMAIL_AUTHSERV_ID: 'mx.example.com' }).authservId, 'mx.example.com');
  assert.equal(parseEmailConfig({ ...base, HAKO_EMAIL_AUTHSERV_ID: 'none' }).authservId, undefined);
  assert.throws(() => parseEmailConfig({ ...base, HAKO_EMAIL_AUTHSERV_ID: 'mx google' }), /HAKO_EMAIL_AUTHSERV_ID/);
});

test('email config - numbers are checked: the poll interval and the size limits', () => {
  assert.equal(parseEmailConfig({ ...base, HAKO_EMAIL_POLL_SECONDS: '30' }).pollMs, 30_000);
  assert.throws(() => parseEmailConfig({ ...base, HAKO_EMAIL_POLL_SECONDS: '0' }), /HAKO_EMAIL_POLL_SECONDS="0" is not a positive number of seconds/);
  assert.throws(() => parseEmailConfig({ ...base, HAKO_EMAIL_POLL_SECONDS: '2' }), /HAKO_EMAIL_POLL_SECONDS=2 is below 10 seconds/);
  assert.equal(parseEmailConfig({ ...base, HAKO_ATTACHMENT_MAX_BYTES: '1000' }).attachmentMaxBytes, 1000);
  assert.equal(parseEmailConfig(base).attachmentMaxBytes, 25 * 1024 * 1024);
  // Read as every channel reads it: a whole number of bytes, the same words as the others.
  for (const bad of ['0', '1.5', '1e6', '25MB']) {
    assert.throws(() => parseEmailConfig({ ...base, HAKO_ATTACHMENT_MAX_BYTES: bad }), (err: unknown) =>
      err instanceof EmailConfigError && /^email: HAKO_ATTACHMENT_MAX_BYTES must be a positive whole number of bytes/.test(err.message));
  }
});
