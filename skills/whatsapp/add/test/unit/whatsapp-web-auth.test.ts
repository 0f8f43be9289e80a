// WhatsApp Web's login on disk: Baileys' own multi-file auth state, kept where only the
// owner can read it (folder 0700, files 0600), also where Baileys or an older hako left
// it readable; never followed through a link. And the settings it is made from.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useMultiFileAuthState } from 'baileys';
import { loadAuthState } from '../../src/channels/whatsapp/web/auth.ts';
import { createWhatsAppWeb } from '../../src/channels/whatsapp/web/channel.ts';
import { webConfig } from '../../src/channels/whatsapp/web/config.ts';

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});
function home(): string {
  const h = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-wa-auth-'));
  homes.push(h);
  return h;
}
const mode = (p: string) => fs.statSync(p).mode & 0o777;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

test('whatsapp web - the auth state lives in HAKO_HOME/channels/whatsapp/auth: folder 0700, every file Baileys writes 0600', async () => {
  const h = home();
  const { authDir } = webConfig({}, h);
  assert.equal(authDir, path.join(h, 'channels', 'whatsapp', 'auth'));
  const { state, saveCreds } = await loadAuthState(authDir, useMultiFileAuthState);
  await saveCreds();
  await state.keys.set({ 'pre-key': { '1': { public: Buffer.alloc(32, 1), private: Buffer.alloc(32, 2) } }, session: { '4917600000002.0': Buffer.from('session') } });
  const files = fs.readdirSync(authDir).sort();
  assert.deepEqual(files, ['creds.json', 'pre-key-1.json', 'session-4917600000002.0.json']);
  assert.equal(mode(authDir), 0o700);
  for (const f of files) assert.equal(mode(path.join(authDir, f)), 0o600, f);
  const read = await state.keys.get('pre-key', ['1']);
  assert.deepEqual(Buffer.from(read['1']!.public), Buffer.alloc(32, 1), 'Baileys reads back what it wrote');
});

test('whatsapp web - a login left readable by others is tightened when the channel is made', async () => {
  const h = home();
  const dir = path.join(h, 'channels', 'whatsapp', 'auth');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'creds.json'), '{}', { mode: 0o644 });
  fs.chmodSync(dir, 0o755);
  const channel = await createWhatsAppWeb({ env: { WHATSAPP_WEB: 'on' }, home: h, assistantName: 'Andy', log: silent });
  assert.equal(channel.name, 'whatsapp');
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(path.join(dir, 'creds.json')), 0o600);
  await channel.stop();
});

test('whatsapp web - an auth folder that is a link is refused, not followed', async () => {
  const h = home();
  const elsewhere = path.join(h, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.mkdirSync(path.join(h, 'channels', 'whatsapp'), { recursive: true });
  fs.symlinkSync(elsewhere, path.join(h, 'channels', 'whatsapp', 'auth'));
  await assert.rejects(loadAuthState(path.join(h, 'channels', 'whatsapp', 'auth'), useMultiFileAuthState), /is not a plain folder/);
});

test('whatsapp web - settings: owner numbers and the pairing phone in international form, else an error naming the setting', () => {
  const c = webConfig({ WHATSAPP_OWNER_NUMBERS: '+49 176 00000002, 15551234567', WHATSAPP_WEB_PHONE: '+49-151-00000001' }, '/h');
  assert.deepEqual([...c.owners], ['4917600000002', '15551234567']);
  assert.equal(c.phone, '4915100000001');
  assert.throws(() => webConfig({ WHATSAPP_WEB_PHONE: '0151 123' }, '/h'), /WHATSAPP_WEB_PHONE must be phone numbers in international form/);
  assert.throws(() => webConfig({ WHATSAPP_OWNER_NUMBERS: 'alice' }, '/h'), /WHATSAPP_OWNER_NUMBERS/);
});
