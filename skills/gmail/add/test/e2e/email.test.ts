// The e-mail channel against a real IMAP server (Dovecot, started on loopback with a
// passwd-file user) and a real SMTP server (smtp-server on loopback), driven by the real
// imapflow, nodemailer and mailparser: the channel conformance suite, routing, trust,
// threading, attachments, flag-after-store, no double processing across restarts and a new
// UIDVALIDITY, IDLE, and a refused login. The host end to end is test/e2e/email-host.test.ts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChannelContext, ChatInbound, ReceiveResult } from '../../src/core/channel.ts';
import type { Logger } from '../../src/core/log.ts';
import type { Group, StoredMessage } from '../../src/core/store-contract.ts';
import { parseEmailConfig } from '../../src/channels/email/config.ts';
import { EmailChannel } from '../../src/channels/email/channel.ts';
import { MAX_BODY_CHARS } from '../../src/channels/email/sender.ts';
import { MailState } from '../../src/channels/email/state.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { Dovecot, dovecotMissing } from '../support/dovecot.ts';
import { SmtpPeer } from '../support/smtp-peer.ts';

const MAILBOX = 'hako@example.test';
const PASSWORD = 'app-password-1234';
const OWNER = 'owner@example.test';
const skip = dovecotMissing();

interface LogLine { level: string; msg: string; fields: Record<string, unknown> }

/** A logger that keeps every line and lets a test wait for one. */
function recordingLog(): Logger & { lines: LogLine[]; waitFor(pred: (l: LogLine) => boolean): Promise<LogLine> } {
  const lines: LogLine[] = [];
  const events = new EventEmitter();
  const add = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => { const l = { level, msg, fields }; lines.push(l); events.emit('line', l); };
  return {
    lines,
    debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error'),
    async waitFor(pred) {
      for (;;) {
        const found = lines.find(pred);
        if (found) return found;
        await once(events, 'line');
      }
    },
  };
}

function group(name: string, extra: Partial<Group> = {}): Group {
  return { name, isMain: name === 'main', trigger: null, model: null, allowedSenders: null, limits: {}, tokensPerDay: null, contextTokens: null, mounts: [], chats: [], createdAt: '2026-01-01T00:00:00Z', ...extra };
}

/** A channel context with bindings, as the core gives it; `hold` makes receive wait (a slow store). */
function chatContext(home: string, opts: { bindings?: Record<string, string> } = {}) {
  const bindings = opts.bindings ?? {};
  const groups = new Map([group('main'), ...new Set(Object.values(bindings))].map((g) => typeof g === 'string' ? group(g) : g).map((g) => [g.name, g]));
  for (const g of groups.keys()) fs.mkdirSync(path.join(home, 'groups', g), { recursive: true });
  const received: ChatInbound[] = [];
  const events = new EventEmitter();
  let hold: Promise<void> | undefined;
  let n = 0;
  const ctx: ChannelContext = {
    accept: async () => { throw new Error('a chat channel uses receive'); },
    async receive(m): Promise<ReceiveResult> {
      events.emit('receiving', m);
      if (hold) await hold;
      received.push(m);
      events.emit('received', m);
      const name = bindings[m.chat] ?? (m.mainIfUnbound ? 'main' : undefined);
      if (!name) return { kind: 'unbound', told: true };
      const message: StoredMessage = { id: `m${++n}`, group: name, role: 'user', sender: m.sender, text: m.text, ts: new Date().toISOString(), state: m.trusted ? 'pending' : 'context', batchId: null, attempts: 0, chat: m.chat };
      return { kind: 'stored', message, engaged: m.trusted };
    },
    groupFor: (chat) => bindings[chat],
    getGroup: (name) => groups.get(name),
    listGroups: () => [...groups.values()],
    listMessages: () => [],
    subscribe: () => () => {},
    watchTurns: () => () => {},
    refused: () => {},
  };
  return {
    ctx, received,
    async waitFor(count: number): Promise<ChatInbound[]> {
      while (received.length < count) await once(events, 'received');
      return received;
    },
    /** Makes the next receives wait until the returned function is called; resolves with the message once receive was called. */
    holdNext(): { receiving: Promise<ChatInbound>; release: () => void } {
      let release!: () => void;
      hold = new Promise<void>((r) => { release = () => { hold = undefined; r(); }; });
      return { receiving: once(events, 'receiving').then(([m]) => m as ChatInbound), release };
    },
  };
}

function mime(lines: string[], body = 'Hello.'): string {
  return `${lines.join('\r\n')}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;
}

let seq = 0;
function messageId(): string {
  return `<test-${process.pid}-${++seq}@example.test>`;
}

describe('email channel against Dovecot and an SMTP server', { skip, timeout: 120_000 }, () => {
  let dovecot: Dovecot;
  let smtp: SmtpPeer;
  const homes: string[] = [];

  before(async () => {
    dovecot = await Dovecot.start({ users: [{ user: MAILBOX, password: PASSWORD }, { user: 'oauth@example.test', password: 'ya29.oauth-token-1234' }] });
    smtp = await SmtpPeer.start({ users: { [MAILBOX]: PASSWORD }, tokens: { 'oauth@example.test': 'ya29.oauth-token-1234' } });
  });
  after(async () => {
    await dovecot?.stop();
    await smtp?.close();
    for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
  });

  function env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      HAKO_EMAIL_IMAP: `imap://127.0.0.1:${dovecot.port}`, HAKO_EMAIL_SMTP: smtp.url,
      HAKO_EMAIL_USER: MAILBOX, HAKO_EMAIL_PASSWORD: PASSWORD, HAKO_EMAIL_OWNER: OWNER,
      // The local Dovecot stamps no Authentication-Results: From is believed as written, which
      // an owner of such a server has to choose by name.
      HAKO_EMAIL_AUTHSERV_ID: 'none', ...extra,
    };
  }

  function channel(opts: { env?: Record<string, string>; home?: string } = {}) {
    const home = opts.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-email-'));
    if (!homes.includes(home)) homes.push(home);
    const log = recordingLog();
    const e = opts.env ?? env();
    const ch = new EmailChannel({ config: parseEmailConfig(e), deps: { env: e, home, assistantName: 'hako', log } });
    return { ch, home, log };
  }

  /** Empties the mailbox between tests (every message flagged \Deleted and expunged). */
  async function clearInbox(user = MAILBOX): Promise<void> {
    const c = await dovecot.client(user);
    try {
      const lock = await c.getMailboxLock('INBOX');
      try {
        if (c.mailbox && c.mailbox.exists > 0) await c.messageDelete('1:*');
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  }

  describe('conformance', () => {
    // `sent` is what the owner's mailbox got: a message that answers nothing goes to the owner.
    // (mailparser ends a text part with the line break that closes its last line.)
    channelConformance('email', async () => {
      const { ch } = channel();
      const base = smtp.mails.length;
      return {
        channel: ch, address: MAILBOX, limit: MAX_BODY_CHARS,
        sent: async () => smtp.mails.slice(base).filter((m) => m.rcptTo.includes(OWNER)).map((m) => (m.parsed.text ?? '').replace(/\n$/, '')),
        refuseNext: () => smtp.refuseNext(),
        close: async () => {},
      };
    });
  });

  test('email - the owner message reaches main with sender, subject and text, and is flagged read only after it was stored', async () => {
    await clearInbox();
    const { ch, home } = channel();
    const c = chatContext(home);
    const id = messageId();
    await dovecot.deliver(MAILBOX, mime([`From: The Owner <${OWNER}>`, `To: ${MAILBOX}`, 'Subject: Plumber', `Message-ID: ${id}`], 'Call the plumber on Monday.\r\n\r\n-- \r\nOwner'));
    const held = c.holdNext();
    await ch.start(c.ctx);
    const m = await held.receiving;
    assert.deepEqual((await dovecot.inbox(MAILBOX)).messages.map((x) => x.seen), [false], 'not read while the store has not answered');
    held.release();
    await c.waitFor(1);
    await ch.stop(); // waits for the look in progress: the flag is set by now
    assert.deepEqual((await dovecot.inbox(MAILBOX)).messages.map((x) => x.seen), [true]);
    assert.equal(m.chat, `email:${MAILBOX}`);
    assert.equal(m.mainIfUnbound, true);
    assert.equal(m.trusted, true);
    assert.equal(m.senderId, `email:${OWNER}`);
    assert.equal(m.text, `E-mail from The Owner <${OWNER}>\nTo: ${MAILBOX}\nSubject: Plumber\n\nCall the plumber on Monday.`);
    assert.equal(JSON.parse(m.ref!).messageId, id);
  });

  test('email - a plus-address bound to a group goes to that group; a stranger there is stored untrusted, with no file saved', async () => {
    await clearInbox();
    const { ch, home } = channel();
    const c = chatContext(home, { bindings: { 'email:hako+sales@example.test': 'sales' } });
    await ch.start(c.ctx);
    await dovecot.deliver(MAILBOX, [
      'From: Mallory <mallory@evil.example>', 'To: someone@else.example', 'Delivered-To: hako+sales@example.test', 'Subject: invoice', `Message-ID: ${messageId()}`,
      'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=B', '', '--B', 'Content-Type: text/plain', '', 'Pay now.', '--B',
      'Content-Type: application/pdf', 'Content-Disposition: attachment; filename="invoice.pdf"', '', '%PDF-1.4 evil', '--B--', '',
    ].join('\r\n'));
    const [m] = await c.waitFor(1);
    await ch.stop();
    assert.equal(m!.chat, 'email:hako+sales@example.test');
    assert.equal(m!.trusted, false);
    assert.equal(m!.senderId, 'email:mallory@evil.example');
    assert.match(m!.text, /invoice\.pdf \(application\/pdf, 13 bytes\) — not saved/);
    assert.equal(fs.existsSync(path.join(home, 'groups', 'sales', 'inbox')), false);
  });

  test('email - the owner attachment is saved into the bound group workspace and listed with the path the agent sees', async () => {
    await clearInbox();
    const { ch, home } = channel();
    const c = chatContext(home, { bindings: { 'email:hako+sales@example.test': 'sales' } });
    await ch.start(c.ctx);
    const csv = 'name,amount\nACME,1200\n';
    await dovecot.deliver(MAILBOX, [
      `From: ${OWNER}`, 'To: hako+sales@example.test', 'Subject: Fwd: leads', `Message-ID: ${messageId()}`,
      'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=B', '', '--B', 'Content-Type: text/plain', '', 'File these.', '--B',
      'Content-Type: text/csv', 'Content-Disposition: attachment; filename="leads.csv"', 'Content-Transfer-Encoding: base64', '', Buffer.from(csv).toString('base64'), '--B--', '',
    ].join('\r\n'));
    const [m] = await c.waitFor(1);
    await ch.stop();
    const [day, ...more] = fs.readdirSync(path.join(home, 'groups', 'sales', 'inbox'));
    assert.deepEqual(more, []);
    assert.deepEqual(fs.readdirSync(path.join(home, 'groups', 'sales', 'inbox', day!)), ['leads.csv']);
    assert.equal(fs.readFileSync(path.join(home, 'groups', 'sales', 'inbox', day!, 'leads.csv'), 'utf8'), csv);
    assert.ok(m!.text.includes(`/workspace/group/inbox/${day}/leads.csv (text/csv, ${csv.length} bytes)`), m!.text);
  });

  test('email - a reply keeps the thread: to the sender, Re: once, In-Reply-To and References, from the bound plus-address', async () => {
    const { ch, home } = channel();
    await ch.start(chatContext(home).ctx);
    const base = smtp.mails.length;
    const ref = JSON.stringify({ messageId: '<m3@example.test>', references: ['<m1@example.test>', '<m2@example.test>'], subject: 'Re: Q3 pipeline', from: OWNER, engaged: true });
    await ch.send({ id: 'msg-reply-1', group: 'sales', address: 'hako+sales@example.test', text: 'Done: filed under pipeline/q3.md.', replyTo: ref });
    await ch.send({ id: 'msg-task-1', group: 'sales', address: 'hako+sales@example.test', text: 'Weekly summary: all quiet.' });
    await ch.stop();
    const [reply, task] = smtp.mails.slice(base);
    assert.deepEqual(reply!.rcptTo, [OWNER]);
    assert.equal(reply!.user, MAILBOX, 'logged in with the mailbox user');
    assert.equal(reply!.parsed.subject, 'Re: Q3 pipeline');
    assert.equal(reply!.parsed.inReplyTo, '<m3@example.test>');
    assert.deepEqual(reply!.parsed.references, ['<m1@example.test>', '<m2@example.test>', '<m3@example.test>']);
    assert.equal(reply!.parsed.from?.value[0]?.address, 'hako+sales@example.test');
    assert.equal(reply!.parsed.messageId, '<hako.msg-reply-1.0@example.test>');
    assert.equal(reply!.parsed.headers.get('auto-submitted'), 'auto-replied');
    assert.deepEqual(task!.rcptTo, [OWNER]);
    assert.equal(task!.parsed.subject, 'hako: sales');
    assert.equal(task!.parsed.inReplyTo, undefined);
  });

  test('email - a reply to a sender who could not engage the agent goes to the owner, never to that sender', async () => {
    await clearInbox();
    const { ch, home, log } = channel();
    const c = chatContext(home);
    await ch.start(c.ctx);
    await dovecot.deliver(MAILBOX, mime(['From: Mallory <mallory@evil.example>', `To: ${MAILBOX}`, 'Subject: hello', `Message-ID: ${messageId()}`]));
    const [m] = await c.waitFor(1);
    const base = smtp.mails.length;
    // As if the core answered the stranger's message (it should not): the channel still writes only to the owner.
    await ch.send({ id: 'msg-stranger-1', group: 'main', address: MAILBOX, text: 'Here are the files you asked for.', replyTo: m!.ref });
    await ch.stop();
    const sent = smtp.mails.slice(base);
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0]!.rcptTo, [OWNER]);
    assert.equal(sent[0]!.parsed.subject, 'hako: main');
    assert.ok(log.lines.some((l) => l.level === 'warn' && l.fields.sender === 'mallory@evil.example'));
  });

  test('email - mail hako sent itself, back in its inbox, is skipped and only marked read', async () => {
    await clearInbox();
    const { ch, home, log } = channel();
    const c = chatContext(home);
    await dovecot.deliver(MAILBOX, mime([`From: hako <${MAILBOX}>`, `To: ${MAILBOX}`, 'Subject: hako: main', 'Message-ID: <hako.01JTEST.0@example.test>']));
    const probe = messageId();
    await dovecot.deliver(MAILBOX, mime([`From: ${OWNER}`, `To: ${MAILBOX}`, 'Subject: after', `Message-ID: ${probe}`]));
    await ch.start(c.ctx);
    const [m] = await c.waitFor(1);
    await ch.stop();
    assert.equal(JSON.parse(m!.ref!).messageId, probe, 'only the owner message was received');
    assert.ok(log.lines.some((l) => l.msg === 'email: skipped a message hako sent itself'));
    assert.deepEqual((await dovecot.inbox(MAILBOX)).messages.map((x) => x.seen), [true, true]);
  });

  test('email - IDLE delivers a new message while the poll is an hour away', async () => {
    await clearInbox();
    const { ch, home, log } = channel({ env: env({ HAKO_EMAIL_POLL_SECONDS: '3600' }) });
    const c = chatContext(home);
    await ch.start(c.ctx);
    // The first look after connecting is over once the channel idles; mail from now on arrives by push only.
    await log.waitFor((l) => l.msg.startsWith('email: connected'));
    const t0 = performance.now();
    await dovecot.deliver(MAILBOX, mime([`From: ${OWNER}`, `To: ${MAILBOX}`, 'Subject: pushed', `Message-ID: ${messageId()}`]));
    const [m] = await c.waitFor(1);
    const ms = performance.now() - t0;
    const line = await log.waitFor((l) => l.msg === 'email: message received');
    await ch.stop();
    assert.match(m!.text, /Subject: pushed/);
    assert.equal(line.fields.via, 'idle', 'it came by the IDLE push, not by the first look or the poll');
    console.log(`# IDLE: appended to received in ${ms.toFixed(0)} ms`);
  });

  test('email - a dropped IMAP connection is reconnected, and new mail arrives again', async () => {
    await clearInbox();
    const { ch, home, log } = channel({ env: env({ HAKO_EMAIL_POLL_SECONDS: '3600' }) });
    const c = chatContext(home);
    await ch.start(c.ctx);
    await log.waitFor((l) => l.msg.startsWith('email: connected'));
    dovecot.kick(MAILBOX);
    await log.waitFor((l) => l.msg === 'email: the IMAP connection closed; reconnecting');
    await log.waitFor((l) => l.msg.startsWith('email: connected') && log.lines.filter((x) => x.msg.startsWith('email: connected')).length === 2);
    await dovecot.deliver(MAILBOX, mime([`From: ${OWNER}`, `To: ${MAILBOX}`, 'Subject: after the cut', `Message-ID: ${messageId()}`]));
    const [m] = await c.waitFor(1);
    await ch.stop();
    assert.match(m!.text, /Subject: after the cut/);
    assert.equal(ch.problem(), undefined);
  });

  test('email - a message already stored is not stored again: after a restart, nor after a crash before the flag and a new UIDVALIDITY', async () => {
    await clearInbox();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-email-'));
    const first = channel({ home });
    const c1 = chatContext(home);
    const id = messageId();
    await dovecot.deliver(MAILBOX, mime([`From: ${OWNER}`, `To: ${MAILBOX}`, 'Subject: once', `Message-ID: ${id}`]));
    await first.ch.start(c1.ctx);
    await c1.waitFor(1);
    await first.ch.stop();

    // As if hako died after storing but before \Seen reached the server, and the server then renumbered the folder.
    const t = await dovecot.client(MAILBOX);
    await t.mailboxOpen('INBOX');
    await t.messageFlagsRemove('1:*', ['\\Seen']);
    await t.logout();
    await dovecot.resetUidValidity(MAILBOX);
    const before = MailState.load({ home, mailbox: 'x', warn: () => {} });
    assert.ok(before.has(`id:${id}`));

    const second = channel({ home });
    const c2 = chatContext(home);
    const later = messageId();
    await dovecot.deliver(MAILBOX, mime([`From: ${OWNER}`, `To: ${MAILBOX}`, 'Subject: later', `Message-ID: ${later}`]));
    await second.ch.start(c2.ctx);
    const [m] = await c2.waitFor(1);
    await second.ch.stop();
    assert.equal(JSON.parse(m!.ref!).messageId, later, 'only the new message is received');
    assert.equal(c2.received.length, 1);
    assert.ok(second.log.lines.some((l) => l.level === 'warn' && /new UIDVALIDITY/.test(l.msg)));
    assert.deepEqual((await dovecot.inbox(MAILBOX)).messages.map((x) => x.seen), [true, true], 'the recognised one is only marked read');

    const third = channel({ home });
    const c3 = chatContext(home);
    await third.ch.start(c3.ctx);
    await third.log.waitFor((l) => l.msg.startsWith('email: connected'));
    await third.ch.stop();
    assert.equal(c3.received.length, 0, 'a plain restart receives nothing again');
  });

  test('email - OAuth: the XOAUTH2 token logs in to IMAP and SMTP', async () => {
    await clearInbox('oauth@example.test');
    const e = { ...env({ HAKO_EMAIL_USER: 'oauth@example.test', HAKO_EMAIL_OAUTH_TOKEN: 'ya29.oauth-token-1234' }) };
    delete (e as Record<string, string | undefined>).HAKO_EMAIL_PASSWORD;
    const { ch, home } = channel({ env: e });
    const c = chatContext(home);
    await dovecot.deliver('oauth@example.test', mime([`From: ${OWNER}`, 'To: oauth@example.test', 'Subject: oauth', `Message-ID: ${messageId()}`]));
    await ch.start(c.ctx);
    assert.equal(await ch.check(), undefined);
    const [m] = await c.waitFor(1);
    const base = smtp.mails.length;
    await ch.send({ id: 'oauth-1', group: 'main', address: 'oauth@example.test', text: 'ok', replyTo: m!.ref });
    await ch.stop();
    const sent = smtp.mails.slice(base);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.authMethod, 'XOAUTH2');
    assert.equal(sent[0]!.user, 'oauth@example.test');
  });

  test('email - check says which server cannot be reached', async () => {
    const { ch } = channel({ env: env({ HAKO_EMAIL_SMTP: 'smtp://127.0.0.1:1' }) });
    const check = await ch.check();
    assert.match(check ?? '', /^email: cannot reach the SMTP server 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\)$/);
    await ch.stop();
  });

  // Last: Dovecot slows every later login from this address after a refused one.
  test('email - a refused login is one clear problem line, start still resolves, and check names IMAP and SMTP', async () => {
    const { ch, home, log } = channel({ env: env({ HAKO_EMAIL_PASSWORD: 'wrong-password-99' }) });
    await ch.start(chatContext(home).ctx);
    const problem = ch.problem();
    assert.match(problem ?? '', /^email: the IMAP server 127\.0\.0\.1:\d+ refused the login of hako@example\.test \(.+\): check HAKO_EMAIL_USER and HAKO_EMAIL_PASSWORD \(for Gmail: an app password\) in ~\/\.config\/hako\/secrets\.env$/);
    const check = await ch.check();
    assert.match(check ?? '', /IMAP server .* refused the login/);
    assert.match(check ?? '', /SMTP server 127\.0\.0\.1:\d+ refused the login of hako@example\.test .*HAKO_EMAIL_PASSWORD/);
    await assert.rejects(ch.send({ id: 'x', group: 'main', address: MAILBOX, text: 'hi' }), /^Error: email: the SMTP server .* refused the login/);
    await ch.stop();
    assert.equal(log.lines.filter((l) => l.level === 'error').length, 1, 'one line, not one per retry');
    assert.ok(!log.lines.some((l) => JSON.stringify(l).includes('wrong-password-99')), 'the password is in no log line');
  });
});
