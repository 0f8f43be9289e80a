// The WhatsApp Web channel driven by recorded Baileys 7 event sequences (no WhatsApp server
// can be reached from here): what is stored and engages, what is answered and how, what
// survives a reconnect, what a logout does, and how pairing shows its secret only in the
// terminal. Messages pass through hako's real router (trigger rules, deduplication).

import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WhatsAppWebChannel, loggedOutLine, TEXT_LIMIT, type Terminal } from '../../src/channels/whatsapp/web/channel.ts';
import { webConfig } from '../../src/channels/whatsapp/web/config.ts';
import type { MediaDownload } from '../../src/channels/whatsapp/web/socket.ts';
import type { Logger } from '../../src/core/log.ts';
import { channelConformance } from '../support/channel-conformance.ts';
import { group, ME, RecordingLink, routerContext, type RecordingSocket, type Step } from '../support/whatsapp-web-socket.ts';
import {
  ALICE, BOB, BOB_LID, close, directText, dropped, groupImage, groupText, history, loggedOut, open, OWNER_NUMBERS, ownText,
  pairing, statusPost, T0, TEAM, upsert,
} from '../support/whatsapp-web-recordings/events.ts';

/** Resolves once `done()` holds, looking again after each turn of the event loop. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setImmediate(r));
}

interface Line { level: string; msg: string; fields?: Record<string, unknown> }

function recordingLog(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => { lines.push({ level, msg, ...(fields ? { fields } : {}) }); };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function recordingTerminal(isTTY = true): Terminal & { text: () => string } {
  const out: string[] = [];
  return { isTTY, write: (t) => { out.push(t); }, text: () => out.join('') };
}

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

interface Setup {
  link?: RecordingLink;
  groups?: Parameters<typeof routerContext>[0];
  env?: Record<string, string>;
  download?: MediaDownload;
  terminal?: Terminal;
  /** Sequences played on the 1st, 2nd … socket as it is made. */
  scripts?: readonly (readonly Step[])[];
  /** A HAKO_HOME from before (a restart); a new one otherwise. */
  home?: string;
}

async function started(o: Setup = {}) {
  const home = o.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-wa-web-'));
  homes.push(home);
  const config = webConfig({ WHATSAPP_OWNER_NUMBERS: OWNER_NUMBERS, ...o.env }, home);
  fs.mkdirSync(path.dirname(config.statePath), { recursive: true });
  if (!o.home) fs.writeFileSync(config.statePath, JSON.stringify({ version: 1, mark: T0 }));
  for (const g of o.groups ?? []) fs.mkdirSync(path.join(home, 'groups', g.name), { recursive: true });
  const scripts = o.scripts ?? [[open]];
  let n = 0;
  const link = o.link ?? new RecordingLink({ onConnect: (s) => s.play(scripts[n++] ?? [open]) });
  const ctx = routerContext(o.groups ?? []);
  const log = recordingLog();
  const downloads: string[] = [];
  const backoffs: number[] = [];
  let saves = 0;
  const channel = new WhatsAppWebChannel({
    config, connect: link.connect, home, log, terminal: o.terminal ?? recordingTerminal(),
    download: o.download ?? (async (msg) => { downloads.push(msg.key.id!); return Buffer.from('not an image'); }),
    saveCreds: async () => { saves++; },
    backoff: (f) => { backoffs.push(f); return 0; },
  });
  await channel.start(ctx);
  return { channel, ctx, link, log, home, config, downloads, backoffs, saves: () => saves };
}

/** Plays steps on the current socket and waits until every message is taken. */
async function play(c: { channel: WhatsAppWebChannel; link: RecordingLink }, ...steps: Step[]): Promise<void> {
  c.link.current.play(steps);
  await c.channel.idle();
}

describe('whatsapp web - messages in', () => {
  test('whatsapp web - a one-to-one message is stored under the phone-number address, engages, and the reply quotes it', async () => {
    const c = await started({ groups: [group('alice', [`whatsapp:${ALICE}`])] });
    await play(c, upsert('notify', directText('3EB0A1', 'Hi, what is on today?', T0 + 10)));
    assert.equal(c.ctx.stored.length, 1);
    const m = c.ctx.stored[0] as unknown as Record<string, unknown>;
    assert.deepEqual({ chat: m.chat, sender: m.sender, senderId: m.senderId, ref: m.ref, text: m.text },
      { chat: `whatsapp:${ALICE}`, sender: 'Alice', senderId: `whatsapp:${ALICE}`, ref: '3EB0A1', text: 'Hi, what is on today?' });
    assert.deepEqual(c.ctx.enqueued, ['alice'], 'a one-to-one chat engages without the trigger');

    await c.channel.send({ id: 'out-1', group: 'alice', address: ALICE, text: '**Two** meetings', replyTo: '3EB0A1' });
    assert.deepEqual(c.link.current.sent, [{ jid: ALICE, content: { text: '*Two* meetings' }, quoted: '3EB0A1' }]);
    await c.channel.stop();
  });

  test('whatsapp web - a one-to-one message from a number that is not the owner\'s is stored but does not engage', async () => {
    const c = await started({ groups: [group('bob', [`whatsapp:${BOB}`])] });
    await play(c, upsert('notify', directText('3EB0B1', 'Send me the files', T0 + 10, { pn: BOB, lid: BOB_LID, name: 'Bob' })));
    assert.equal(c.ctx.stored.length, 1);
    assert.deepEqual(c.ctx.enqueued, [], 'a stranger never engages the agent');
    await c.channel.stop();
  });

  test('whatsapp web - a group message without mention or trigger is stored and not answered; a mention of the linked account or the trigger engages', async () => {
    const c = await started({ groups: [group('team', [`whatsapp:${TEAM}`])] });
    await play(c, upsert('notify',
      groupText('3EB0G1', 'lunch at noon?', T0 + 1),
      groupText('3EB0G2', '@177700000001 can you book a table?', T0 + 2, { mentions: ['177700000001@lid'] }),
      groupText('3EB0G3', '@Andy and the room for 3pm', T0 + 3),
      groupText('3EB0G4', '@4917600000009 what do you think?', T0 + 4, { mentions: ['4917600000009@s.whatsapp.net'] }),
    ));
    assert.deepEqual(c.ctx.stored.map((s) => (s as unknown as { ref: string }).ref), ['3EB0G1', '3EB0G2', '3EB0G3', '3EB0G4']);
    assert.deepEqual(c.ctx.stored.map((s) => (s as unknown as { senderId: string }).senderId), Array(4).fill(`whatsapp:${ALICE}`), 'the sender is named by the phone number WhatsApp gives next to the LID');
    assert.deepEqual(c.ctx.results.map((r) => r.kind === 'stored' && r.engaged), [false, true, true, false]);
    await c.channel.stop();
  });

  test('whatsapp web - in a group, a stranger\'s mention is stored but does not engage unless the group\'s allowlist names them', async () => {
    const bob = { pn: BOB, lid: BOB_LID, name: 'Bob' };
    const c = await started({ groups: [group('team', [`whatsapp:${TEAM}`])] });
    await play(c, upsert('notify', groupText('3EB0S1', '@177700000001 hi', T0 + 1, { from: bob, mentions: [ME.lid!] })));
    assert.deepEqual(c.ctx.results.map((r) => r.kind === 'stored' && r.engaged), [false]);
    await c.channel.stop();

    const d = await started({ groups: [group('team', [`whatsapp:${TEAM}`], { allowedSenders: [`whatsapp:${BOB}`] })] });
    await play(d, upsert('notify', groupText('3EB0S2', '@177700000001 hi', T0 + 1, { from: bob, mentions: [ME.lid!] })));
    assert.deepEqual(d.ctx.results.map((r) => r.kind === 'stored' && r.engaged), [true]);
    await d.channel.stop();
  });

  test('whatsapp web - a chat no group is bound to is reported (receive answers unbound) and nothing is stored', async () => {
    const c = await started({ groups: [] });
    await play(c, upsert('notify', directText('3EB0U1', 'hello?', T0 + 1, { pn: BOB, lid: BOB_LID, name: 'Bob' }), directText('3EB0U2', 'anyone?', T0 + 2, { pn: BOB, lid: BOB_LID, name: 'Bob' })));
    assert.deepEqual(c.ctx.results, [{ kind: 'unbound', told: true }, { kind: 'unbound', told: false }]);
    assert.deepEqual(c.ctx.unknown.map((u) => [u.chat, u.chatTitle]), [[`whatsapp:${BOB}`, 'Bob']]);
    assert.equal(c.ctx.stored.length, 0);
    await c.channel.stop();
  });

  test('whatsapp web - the account\'s own messages and status broadcasts are ignored', async () => {
    const c = await started({ groups: [group('alice', [`whatsapp:${ALICE}`]), group('team', [`whatsapp:${TEAM}`])] });
    await play(c, upsert('notify', ownText('3EB0O1', ALICE, 'sent from my phone', T0 + 1), statusPost('3EB0O2', T0 + 2)));
    await play(c, upsert('append', ownText('3EB0O3', TEAM, 'hako\'s own reply, echoed', T0 + 3)));
    assert.equal(c.ctx.results.length, 0);
    await c.channel.stop();
  });
});

describe('whatsapp web - replies out', () => {
  test('whatsapp web - a long reply is split at 4,096 characters, in order, only the first piece quoting', async () => {
    const c = await started({ groups: [group('alice', [`whatsapp:${ALICE}`])] });
    await play(c, upsert('notify', directText('3EB0L1', 'tell me everything', T0 + 1)));
    const text = Array.from({ length: 30 }, (_, i) => `Paragraph ${i}: ${'word '.repeat(70).trim()}.`).join('\n\n');
    assert.ok(text.length > 2 * TEXT_LIMIT);
    await c.channel.send({ id: 'out-long', group: 'alice', address: ALICE, text, replyTo: '3EB0L1' });
    const sent = c.link.current.sent;
    assert.ok(sent.length >= 3);
    for (const s of sent) assert.ok((s.content as { text: string }).text.length <= TEXT_LIMIT);
    assert.deepEqual(sent.map((s) => s.quoted), ['3EB0L1', ...Array(sent.length - 1).fill(undefined)]);
    assert.equal(sent.map((s) => (s.content as { text: string }).text).join('').replace(/\s+/g, ''), text.replace(/\s+/g, ''));
    await c.channel.stop();
  });

  test('whatsapp web - presence is composing while the agent works and paused after', async () => {
    const c = await started();
    const stop = c.channel.typing(ALICE);
    stop();
    stop();
    assert.deepEqual(c.link.current.presences, [{ type: 'composing', jid: ALICE }, { type: 'paused', jid: ALICE }]);
    await c.channel.stop();
  });

  test('whatsapp web - a file out goes as an image or as a document with its name, the text as caption', async () => {
    const c = await started();
    const png = path.join(c.home, 'chart.png');
    const pdf = path.join(c.home, 'report.pdf');
    fs.writeFileSync(png, 'png bytes');
    fs.writeFileSync(pdf, 'pdf bytes');
    await c.channel.send({ id: 'f1', group: 'alice', address: ALICE, text: 'the **chart**', file: { path: png, name: 'chart.png' } });
    await c.channel.send({ id: 'f2', group: 'alice', address: ALICE, text: 'the report', file: { path: pdf, name: 'report.pdf' } });
    const [img, doc] = c.link.current.sent.map((s) => s.content as Record<string, unknown>);
    assert.deepEqual({ ...img, image: String(img!.image) }, { image: 'png bytes', caption: 'the *chart*' });
    assert.deepEqual({ ...doc, document: String(doc!.document) }, { document: 'pdf bytes', mimetype: 'application/pdf', fileName: 'report.pdf', caption: 'the report' });
    await c.channel.stop();
  });
});

describe('whatsapp web - attachments in', () => {
  test('whatsapp web - an image from an allowed sender is downloaded into the group\'s inbox and named in the message', async () => {
    const c = await started({ groups: [group('team', [`whatsapp:${TEAM}`])], download: async () => Buffer.from('JPEG') });
    await play(c, upsert('notify', groupImage('3EB0I1', 'the whiteboard', T0 + 1)));
    const text = (c.ctx.stored[0] as unknown as { text: string }).text;
    const m = /^the whiteboard\n\[image: \/workspace\/group\/(inbox\/\d{4}-\d\d-\d\d\/image\.jpg) \(image\/jpeg, 4 bytes\)\]$/.exec(text);
    assert.ok(m, text);
    assert.equal(fs.readFileSync(path.join(c.home, 'groups', 'team', m[1]!), 'utf8'), 'JPEG');
    await c.channel.stop();
  });

  test('whatsapp web - an image over the size limit, or from a sender who may not engage, is not downloaded; the message still arrives', async () => {
    const c = await started({ groups: [group('team', [`whatsapp:${TEAM}`], { allowedSenders: [`whatsapp:${BOB}`] })], env: { HAKO_ATTACHMENT_MAX_BYTES: '1000' } });
    await play(c, upsert('notify', groupImage('3EB0I2', 'big one', T0 + 1, 5000)));
    assert.equal(c.downloads.length, 0);
    assert.match((c.ctx.stored[0] as unknown as { text: string }).text, /^big one\n\[image: not saved: the sender may not engage this group\]$/);
    await c.channel.stop();

    const d = await started({ groups: [group('team', [`whatsapp:${TEAM}`])], env: { HAKO_ATTACHMENT_MAX_BYTES: '1000' } });
    await play(d, upsert('notify', groupImage('3EB0I3', 'big one', T0 + 1, 5000)));
    assert.equal(d.downloads.length, 0);
    assert.match((d.ctx.stored[0] as unknown as { text: string }).text, /\[image: not saved: over the 1000 bytes limit \(HAKO_ATTACHMENT_MAX_BYTES\)\]$/);
    await d.channel.stop();
  });
});

describe('whatsapp web - connection', () => {
  test('whatsapp web - after a dropped connection it reconnects, and what came while away is stored once each, old history not at all', async () => {
    const a = directText('3EB0R1', 'before the drop', T0 + 10);
    const b = directText('3EB0R2', 'while away 1', T0 + 20);
    const cc = directText('3EB0R3', 'while away 2', T0 + 30);
    const old = directText('3EB0R0', 'last month', T0 - 86_400 * 30);
    const c = await started({
      groups: [group('alice', [`whatsapp:${ALICE}`])],
      scripts: [[open], [open, upsert('notify', b), upsert('append', a, cc), history(cc, b, a, old)]],
    });
    await play(c, upsert('notify', a), dropped());
    await c.link.made(2);
    await c.channel.idle();
    assert.deepEqual(c.backoffs, [1], 'one backoff before the reconnect');
    assert.deepEqual(c.ctx.stored.map((s) => (s as unknown as { ref: string }).ref), ['3EB0R1', '3EB0R2', '3EB0R3']);
    assert.deepEqual(c.ctx.enqueued, ['alice', 'alice', 'alice']);
    assert.equal(c.channel.problem(), undefined);
    await c.channel.send({ id: 'after', group: 'alice', address: ALICE, text: 'back', replyTo: '3EB0R3' });
    assert.deepEqual(c.link.current.sent, [{ jid: ALICE, content: { text: 'back' }, quoted: '3EB0R3' }]);
    await c.channel.stop();
  });

  test('whatsapp web - a history sync stores only what is newer than the high-water mark, and a restart keeps the mark', async () => {
    const c = await started({ groups: [group('alice', [`whatsapp:${ALICE}`]), group('team', [`whatsapp:${TEAM}`])] });
    await play(c, history(directText('3EB0H1', 'old 1', T0 - 500), groupText('3EB0H2', '@Andy old 2', T0 - 100), directText('3EB0H3', 'new', T0 + 50)));
    assert.deepEqual(c.ctx.stored.map((s) => (s as unknown as { ref: string }).ref), ['3EB0H3']);
    assert.deepEqual(JSON.parse(fs.readFileSync(c.config.statePath, 'utf8')), { version: 1, mark: T0 + 50 });
    assert.equal(fs.statSync(c.config.statePath).mode & 0o777, 0o600);
    await c.channel.stop();

    const again = await started({ home: c.home, groups: [group('alice', [`whatsapp:${ALICE}`])] });
    await play(again, history(directText('3EB0H4', 'before the last one taken', T0 + 40), directText('3EB0H5', 'newer still', T0 + 60)));
    assert.deepEqual(again.ctx.stored.map((s) => (s as unknown as { ref: string }).ref), ['3EB0H5'], 'after a restart the mark holds');
    await again.channel.stop();
  });

  test('whatsapp web - logged out: one clear error in the log and in problem(), no reconnect, sends fail with the same line', async () => {
    const c = await started({ scripts: [[open, loggedOut()]] });
    await c.channel.idle();
    const line = loggedOutLine(c.config.authDir);
    assert.equal(c.channel.problem(), line);
    assert.deepEqual(c.log.lines.filter((l) => l.level === 'error').map((l) => l.msg), [line]);
    assert.deepEqual(c.backoffs, [], 'no reconnect is scheduled');
    assert.equal(c.link.sockets.length, 1);
    await assert.rejects(c.channel.send({ id: 'x', group: 'g', address: ALICE, text: 'hi' }), { message: line });
    await c.channel.stop();
  });

  test('whatsapp web - repeated drops back off and show in problem(); connecting again clears it', async () => {
    const c = await started({ scripts: [[open, dropped()], [close(408, 'Connection was lost')], [close(408, 'Connection was lost')], [open]] });
    await c.link.made(3);
    await c.link.made(4);
    assert.deepEqual(c.backoffs, [1, 2, 3]);
    await c.channel.stop();
  });

  test('whatsapp web - pairing by QR code: the code is printed in the terminal only, the credentials saved, and the connection made again', async () => {
    const terminal = recordingTerminal();
    const link = new RecordingLink({ user: undefined, onConnect: (s) => (link.sockets.length === 1 ? s.play(pairing) : s.play([open])) });
    const c = await started({ link, terminal });
    await link.made(2);
    const qr = (pairing[1]!.data as { qr: string }).qr;
    await until(() => terminal.text().includes(qr));
    assert.match(terminal.text(), /[▄▀█]{8}/, 'the QR code is drawn in the terminal');
    assert.ok(terminal.text().includes(qr), 'and its text is there for another QR tool');
    assert.ok(terminal.text().includes('Linked devices'));
    assert.ok(!JSON.stringify(c.log.lines).includes('recordedRef'), 'the log never holds the QR code');
    assert.ok(c.log.lines.some((l) => l.level === 'info' && /scan the QR code shown in the terminal/.test(l.msg)));
    assert.equal(c.saves(), 1);
    assert.deepEqual(c.backoffs, [], 'a restart after pairing is not a failure');
    await c.channel.stop();
  });

  test('whatsapp web - pairing by code when WHATSAPP_WEB_PHONE is set: asked for once, shown in the terminal only', async () => {
    const terminal = recordingTerminal();
    const c = await started({ terminal, env: { WHATSAPP_WEB_PHONE: '+49 151 00000001' }, scripts: [pairing.slice(0, 2)] });
    assert.deepEqual(c.link.current.pairingRequests, ['4915100000001']);
    await new Promise((r) => setImmediate(r));
    assert.match(terminal.text(), /HAKO1234/);
    assert.ok(!JSON.stringify(c.log.lines).includes('HAKO1234'));
    assert.match(c.channel.problem() ?? '', /enter the pairing code/);
    await c.channel.stop();
  });

  test('whatsapp web - without a terminal the QR code is not printed anywhere; the log says how to pair', async () => {
    const terminal = recordingTerminal(false);
    const c = await started({ terminal, scripts: [pairing.slice(0, 2)] });
    assert.equal(terminal.text(), '');
    assert.ok(c.log.lines.some((l) => l.level === 'warn' && /run hako start in a terminal/.test(l.msg)));
    await c.channel.stop();
  });
});

/** What WhatsApp shows for a text with its markup: paired *, _ and ~ markers are formatting, not text. */
function whatsappShows(markup: string): string {
  return markup.replace(/(^|[^\p{L}\p{N}])([*_~])(?=\S)(.*?\S)\2(?![\p{L}\p{N}])/gu, '$1$3');
}

channelConformance('whatsapp web, recorded socket', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-wa-conf-'));
  const config = webConfig({}, home);
  fs.mkdirSync(path.dirname(config.statePath), { recursive: true });
  const link = new RecordingLink({ onConnect: (s: RecordingSocket) => s.play([open]) });
  const channel = new WhatsAppWebChannel({
    config, connect: link.connect, home, log: recordingLog(), terminal: recordingTerminal(),
    download: async () => Buffer.alloc(0), saveCreds: async () => {}, backoff: () => 0,
  });
  return {
    channel, address: ALICE, limit: TEXT_LIMIT,
    sent: async () => link.texts(ALICE).map(whatsappShows),
    refuseNext: () => link.current.refuseNext(),
    // Markdown's *x* and _x_ are italics: the words show without the stars.
    shows: (text) => whatsappShows(text),
    close: async () => fs.rmSync(home, { recursive: true, force: true }),
  };
});
