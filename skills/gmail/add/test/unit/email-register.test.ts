// The e-mail module as the registry sees it: its settings and secrets, a refusal that names
// the setting, and a registration that loads none of the mail libraries until the channel
// is made (a hako that has the skill but not the settings carries no imapflow, nodemailer
// or mailparser in memory).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test('email register - the module registers its settings and secrets, loads no mail library until create, and refuses plain text to a remote host', async () => {
  const probe = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); loaded.push(r.url); return r; } });
    const libs = () => loaded.filter((u) => /\\/node_modules\\/(imapflow|nodemailer|mailparser)\\//.test(u)).map((u) => u.split('/node_modules/')[1].split('/')[0]);
    await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/channels/email/register.ts')).href)});
    const { installedChannels } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/channels/registry.ts')).href)});
    const m = (await installedChannels()).find((x) => x.name === 'email');
    const out = { required: m.required, secrets: m.secrets, before: [...new Set(libs())] };
    const log = { debug() {}, info() {}, warn() {}, error() {} };
    const deps = (env) => ({ env, home: '/nonexistent', assistantName: 'hako', log });
    const env = { HAKO_EMAIL_IMAP: 'imaps://imap.gmail.com:993', HAKO_EMAIL_SMTP: 'smtps://smtp.gmail.com:465', HAKO_EMAIL_USER: 'hako@gmail.com', HAKO_EMAIL_PASSWORD: 'abcdefghijklmnop' };
    try { await m.create(deps({ ...env, HAKO_EMAIL_IMAP: 'imap://imap.gmail.com' })); out.refused = null; } catch (err) { out.refused = err.message; }
    out.checked = await m.check(deps({ ...env, HAKO_EMAIL_PASSWORD: undefined }));
    const ch = await m.create(deps(env));
    out.name = ch.name;
    out.after = [...new Set(libs())].sort();
    await ch.stop();
    console.log(JSON.stringify(out));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  assert.equal(await new Promise((r) => child.once('close', r)), 0);
  const r = JSON.parse(out);
  assert.deepEqual(r.required, ['HAKO_EMAIL_IMAP', 'HAKO_EMAIL_SMTP', 'HAKO_EMAIL_USER']);
  assert.deepEqual(r.secrets, ['HAKO_EMAIL_PASSWORD', 'HAKO_EMAIL_OAUTH_TOKEN']);
  assert.deepEqual(r.before, [], 'registering loads no mail library');
  assert.match(r.refused, /^email: HAKO_EMAIL_IMAP=imap:\/\/imap\.gmail\.com would send the password and every message unencrypted/);
  assert.match(r.checked, /neither HAKO_EMAIL_PASSWORD .* nor HAKO_EMAIL_OAUTH_TOKEN is set/);
  assert.equal(r.name, 'email');
  assert.deepEqual(r.after, ['imapflow', 'mailparser', 'nodemailer'], 'making the channel loads them');
});
