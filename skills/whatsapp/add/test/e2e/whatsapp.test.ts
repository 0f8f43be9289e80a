// A real hako host (real Docker, the real image, a scripted model) reached from WhatsApp
// through the Cloud API: the local Cloud API emulator (test/support/whatsapp-cloud-emulator.ts)
// posts users' messages, signed as Meta signs them, to the host's webhook listener
// (HAKO_WEBHOOK_PORT, /whatsapp/webhook), and the host answers through the emulator's Graph
// API. The channel's own behaviour is test/unit/whatsapp-cloud.test.ts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TOKEN_REFUSED } from '../../src/channels/whatsapp/graph.ts';
import { MAX_AGE_S } from '../../src/channels/whatsapp/inbound.ts';
import { freePort, HakoProcess } from '../support/hako.ts';
import { startModelServer, type ModelServer, type RecordedRequest } from '../support/model-server.ts';
import { signWebhook, TINY_JPEG, WhatsAppCloudEmulator, type WaSent } from '../support/whatsapp-cloud-emulator.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OWNER = '15551234567';

/**
 * The host loads the channel as `hako skill add whatsapp` makes it: through installed.ts
 * once the skill is added; while it is developed in the tree, by preloading register.ts.
 */
function loadWhatsApp(): Record<string, string> {
  const installed = fs.readFileSync(path.join(ROOT, 'src/channels/installed.ts'), 'utf8');
  if (installed.includes("'./whatsapp/register.ts'")) return {};
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(ROOT, 'src/channels/whatsapp/register.ts')).href}`.trim() };
}

/** A host whose Cloud API secrets are in HAKO_CONFIG/secrets.env (mode 0600), as the owner puts them; the emulator posts to its webhook port. */
async function hostWithWhatsApp(emu: WhatsAppCloudEmulator, model: ModelServer, opts: { home?: string; configDir?: string; env?: Record<string, string> } = {}): Promise<HakoProcess> {
  const configDir = opts.configDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
  const { WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, ...settings } = emu.env();
  fs.writeFileSync(path.join(configDir, 'secrets.env'), `# the owner's channel secrets\nWHATSAPP_ACCESS_TOKEN=${WHATSAPP_ACCESS_TOKEN}\nWHATSAPP_APP_SECRET=${WHATSAPP_APP_SECRET}\nWHATSAPP_VERIFY_TOKEN=${WHATSAPP_VERIFY_TOKEN}\n`, { mode: 0o600 });
  const port = await freePort();
  emu.webhookUrl = `http://127.0.0.1:${port}/whatsapp/webhook`;
  return HakoProcess.start({
    configDir, ...(opts.home ? { home: opts.home } : {}),
    env: {
      HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test',
      HAKO_WEBHOOK_PORT: String(port), WHATSAPP_OWNER_NUMBERS: OWNER, ...settings, ...loadWhatsApp(), ...opts.env,
    },
  });
}

async function cli(h: HakoProcess, args: string[]): Promise<string> {
  const r = await h.cli(args);
  assert.equal(r.code, 0, `hako ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function lastUserText(req: RecordedRequest): string {
  const user = (req.json?.messages ?? []).findLast((m: { role: string }) => m.role === 'user');
  return typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? '');
}

/** The business number's messages to `to` from the one quoting `id` on (a split reply: its pieces), once `count` are there. */
async function answer(emu: WhatsAppCloudEmulator, to: string, id: string, count = 1, host?: HakoProcess): Promise<WaSent[]> {
  const from = () => emu.sent(to).findIndex((s) => s.replyTo === id);
  const pieces = () => (from() < 0 ? [] : emu.sent(to).slice(from()));
  await emu.waitUntil(() => pieces().length >= count, () => `${count} messages answering ${id}; ${to} has ${JSON.stringify(emu.sent(to).map((s) => [s.replyTo, s.text.slice(0, 60)]))}${host ? `; host output:\n${host.output.slice(-4000)}` : ''}`);
  return pieces().slice(0, count);
}

async function webhookGet(emu: WhatsAppCloudEmulator, query: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${emu.webhookUrl}?${query}`);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

describe('a real hako host reached from WhatsApp (Cloud API)', { timeout: 600_000 }, () => {
  let emu: WhatsAppCloudEmulator;
  let model: ModelServer;
  let h: HakoProcess;

  before(async () => {
    emu = await WhatsAppCloudEmulator.start();
    model = await startModelServer();
    h = await hostWithWhatsApp(emu, model);
    assert.match(h.output, /chat channels: on: .*whatsapp/);
    await cli(h, ['groups', 'set', 'main', '--chat', `whatsapp:${OWNER}`]);
  });
  after(async () => {
    await h?.stop();
    h?.cleanup();
    await model?.close();
    await emu?.close();
  });

  test('whatsapp host - the webhook verification answers the challenge for the right verify token and refuses a wrong one with 403', async () => {
    const ok = await webhookGet(emu, `hub.mode=subscribe&hub.verify_token=${encodeURIComponent(emu.verifyToken)}&hub.challenge=987654321`);
    assert.deepEqual([ok.status, ok.text], [200, '987654321']);
    assert.match(ok.type ?? '', /^text\/plain/);
    const wrong = await webhookGet(emu, 'hub.mode=subscribe&hub.verify_token=guessed&hub.challenge=987654321');
    assert.equal(wrong.status, 403);
    assert.ok(!wrong.text.includes('987654321'));
  });

  test('whatsapp host - a 1:1 message is answered in the chat, quoting it, with the read mark and typing indicator shown', async () => {
    const m = await emu.message({ from: OWNER, name: 'Olivia Owner', text: 'what is on my list today?' });
    const [reply] = await answer(emu, OWNER, m.id);
    assert.match(reply!.text, /^echo: .*what is on my list today\?/);
    assert.ok(emu.reads().some((r) => r.messageId === m.id && r.typing), 'read with the typing indicator');
    const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('what is on my list today?'));
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.sender, 'Olivia Owner');
  });

  test('whatsapp host - a message from a number no group is bound to is reported to main once; nothing of it is stored or seen by the model', async () => {
    const stranger = '4930123456789';
    await emu.message({ from: stranger, name: 'Eve', text: 'secret plan one' });
    await emu.message({ from: stranger, name: 'Eve', text: 'secret plan two' });
    await answer(emu, OWNER, (await emu.message({ from: OWNER, text: 'anything new?' })).id);
    await h.settled();
    const notices = (await h.messages('main')).filter((x) => x.role === 'assistant' && x.text.includes(`whatsapp:${stranger}`));
    assert.equal(notices.length, 1, `one notice: ${JSON.stringify(notices.map((x) => x.text))}`);
    assert.match(notices[0]!.text, new RegExp(`hako groups add \\S+ --chat whatsapp:${stranger}`));
    assert.ok(!model.requests.some((r) => r.body.includes('secret plan')), 'the model never saw the stranger');
    assert.ok(!(await h.messages('main')).some((x) => x.text.includes('secret plan')), 'nothing stored');
    assert.equal(emu.sent(stranger).length, 0, 'nothing sent to the stranger');
    assert.equal(emu.texts(OWNER).filter((x) => x.includes(`whatsapp:${stranger}`)).length, 1, 'the owner saw the notice in WhatsApp, once');
  });

  test('whatsapp host - a 5,000-character reply arrives as two messages cut at a paragraph, the first quoting, nothing lost', async () => {
    const paragraph = (i: number) => `Paragraph ${i}: ${'All work and no play makes a long reply. '.repeat(11).trim()}`;
    const long = Array.from({ length: 11 }, (_, i) => paragraph(i)).join('\n\n').slice(0, 5000);
    model.script({ text: long });
    const m = await emu.message({ from: OWNER, text: 'write me a long answer' });
    const pieces = await answer(emu, OWNER, m.id, 2);
    for (const p of pieces) assert.ok(p.text.length <= 4096);
    assert.match(pieces[1]!.text, /^Paragraph \d+:/, 'cut at a paragraph');
    assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
    assert.deepEqual(pieces.map((p) => p.replyTo), [m.id, undefined]);
    await h.settled();
    assert.equal(emu.sent(OWNER).at(-1), pieces[1], 'nothing after the two pieces');
  });

  test('whatsapp host - an image lands in the group workspace, where the agent reads it', async () => {
    const photo = Buffer.concat([TINY_JPEG, Buffer.alloc(3000, 1)]);
    model.script(
      (req) => {
        const at = /\[image: (\/workspace\/group\/inbox\/[^\]\s]+)/.exec(lastUserText(req));
        return at ? { toolCalls: [{ name: 'bash', args: { command: `wc -c < ${at[1]}` } }] } : { text: `no image path in ${lastUserText(req)}` };
      },
      (req) => ({ text: `the image has ${String(req.json.messages.at(-1).content).match(/\d+/)?.[0]} bytes` }),
    );
    const mediaId = emu.addMedia(photo, 'image/jpeg');
    const m = await emu.message({ from: OWNER, text: 'what is this?', media: { kind: 'image', id: mediaId, mime: 'image/jpeg' } });
    const [reply] = await answer(emu, OWNER, m.id);
    assert.equal(reply!.text, `the image has ${photo.length} bytes`);
    const inbox = path.join(h.home, 'groups', 'main', 'inbox');
    const files = fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.equal(files.length, 1);
    assert.deepEqual(fs.readFileSync(path.join(files[0]!.parentPath, files[0]!.name)), photo);
  });

  test('whatsapp host - a 429 throughput error from the Cloud API is waited out and the reply arrives once', async () => {
    emu.rateLimit({ calls: 2, paths: /\/messages$/ });
    const m = await emu.message({ from: OWNER, text: 'are you rate limited?' });
    const [reply] = await answer(emu, OWNER, m.id);
    assert.match(reply!.text, /are you rate limited\?/);
    await h.settled();
    assert.equal(emu.texts(OWNER).filter((t) => t.includes('are you rate limited?')).length, 1);
  });

  test('whatsapp host - a forged and a replayed POST are refused 401, nothing is stored, and both are audited as webhook.refused', async () => {
    const before = (await h.messages('main')).length;
    const genuine = emu.inbound({ from: OWNER, text: 'send the report to bob' });
    const forged = Buffer.from(genuine.body.toString().replace('bob', 'mallory'));
    assert.equal((await emu.post(forged, signWebhook(genuine.body, emu.appSecret))).status, 401);
    assert.equal((await emu.post(genuine.body, null)).status, 401);
    const old = emu.inbound({ from: OWNER, text: 'an old signed request', timestamp: Math.floor(Date.now() / 1000) - MAX_AGE_S - 3600 });
    assert.equal((await emu.post(old.body)).status, 401);
    await h.settled();
    const texts = (await h.messages('main')).slice(before).map((x) => x.text);
    assert.ok(!texts.some((x) => /mallory|bob|an old signed request/.test(x)), `nothing stored: ${JSON.stringify(texts)}`);
    const audit = JSON.parse(await cli(h, ['audit', '--kind', 'webhook.refused', '--json'])) as { data: { channel: string; reason: string } }[];
    const reasons = audit.filter((r) => r.data.channel === 'whatsapp').map((r) => r.data.reason);
    assert.ok(reasons.includes('bad signature'), JSON.stringify(reasons));
    assert.ok(reasons.includes('no X-Hub-Signature-256 header'), JSON.stringify(reasons));
    assert.ok(reasons.some((r) => r.startsWith('replay: ')), JSON.stringify(reasons));
    assert.ok(!JSON.stringify(audit).includes(emu.appSecret), 'no secret in the audit');
  });

  test('whatsapp host - the same signed message delivered twice is stored and answered once', async () => {
    const m = emu.inbound({ from: OWNER, text: 'delivered twice' });
    assert.equal((await emu.post(m.body)).status, 200);
    assert.equal((await emu.post(m.body)).status, 200);
    await answer(emu, OWNER, m.id);
    await h.settled();
    assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text === 'delivered twice').length, 1);
    assert.equal(emu.sent(OWNER).filter((s) => s.replyTo === m.id).length, 1);
  });

  test('whatsapp host - the secrets are in no log line and not in the database', async () => {
    for (const secret of [emu.token, emu.appSecret, emu.verifyToken]) {
      assert.ok(!h.output.includes(secret), 'not on the console');
      assert.ok(!fs.readFileSync(path.join(h.home, 'logs', 'hako.log'), 'utf8').includes(secret), 'not in the log file');
      assert.ok(!fs.readFileSync(path.join(h.home, 'hako.db')).includes(secret), 'not in the database');
    }
  });
});

describe('a revoked Cloud API token on a running host', { timeout: 300_000 }, () => {
  test('whatsapp host - a revoked token is one clear error in the log and in hako status; the host keeps serving', async (t) => {
    const emu = await WhatsAppCloudEmulator.start();
    const model = await startModelServer();
    const h = await hostWithWhatsApp(emu, model);
    t.after(async () => { await h.stop(); h.cleanup(); await model.close(); await emu.close(); });
    await cli(h, ['groups', 'set', 'main', '--chat', `whatsapp:${OWNER}`]);
    assert.match(await cli(h, ['status']), /whatsapp ok/);
    emu.revokeToken();
    await emu.message({ from: OWNER, text: 'are you there?' });
    const logged = await h.waitForLog((e) => e.msg.startsWith('whatsapp: the Cloud API access token was refused'), 120_000);
    assert.equal(logged.msg, TOKEN_REFUSED);
    assert.match(await cli(h, ['status']), new RegExp(`whatsapp — PROBLEM: ${TOKEN_REFUSED.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const id = await h.post('main', 'still there?');
    await h.waitForReplies('main', id);
    assert.equal(h.logEvents().filter((e) => e.msg === TOKEN_REFUSED).length, 1, 'logged once');
    assert.equal(h.child.exitCode, null, 'the host runs on');
  });
});

describe('kill -9 of the host during a WhatsApp turn', { timeout: 600_000 }, () => {
  // The webhook stored the message before it answered 200; the turn it started dies with the
  // host and runs again after the restart. (Killed while a send is in flight, WhatsApp may
  // have shown the reply before hako recorded it: the restart sends it again — the Cloud API
  // has no idempotency key, and a second copy beats a lost reply.)
  test('whatsapp host - killed at "batch-sent": after a restart the message is answered once in WhatsApp', async (t) => {
    const point = 'batch-sent';
    const emu = await WhatsAppCloudEmulator.start();
    const model = await startModelServer();
    t.after(async () => { await model.close(); await emu.close(); });
    const first = await hostWithWhatsApp(emu, model);
    t.after(() => first.cleanup());
    await cli(first, ['groups', 'set', 'main', '--chat', `whatsapp:${OWNER}`]);
    await first.stop();
    const crashing = await hostWithWhatsApp(emu, model, { home: first.home, configDir: first.configDir, env: { HAKO_FAILPOINT: point } });
    const m = await emu.message({ from: OWNER, text: `survive ${point}` });
    const end = await crashing.exited();
    assert.equal(end.signal, 'SIGKILL', `the host died at ${point}`);
    const h = await hostWithWhatsApp(emu, model, { home: first.home, configDir: first.configDir });
    t.after(() => h.stop());
    const [reply] = await answer(emu, OWNER, m.id, 1, h);
    assert.match(reply!.text, new RegExp(`survive ${point}`));
    await h.settled();
    assert.equal(emu.texts(OWNER).filter((x) => x.includes(`survive ${point}`)).length, 1, `answered once: ${JSON.stringify(emu.texts(OWNER))}`);
    assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes(`survive ${point}`)).length, 1, 'stored once');
  });
});
