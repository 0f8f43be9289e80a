// A real hako host (real Docker, the real image, a scripted model) reached from LINE: the
// emulator (test/support/line-emulator.ts) posts signed webhooks to the host's webhook
// listener (HAKO_WEBHOOK_PORT) and is the Messaging API the host's unmodified
// @line/bot-sdk answers through.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TOKEN_REFUSED } from '../../src/channels/line/errors.ts';
import { LineEmulator, type LineChatRef, type LineUser, type SentMessage } from '../support/line-emulator.ts';
import { freePort, HakoProcess } from '../support/hako.ts';
import { startModelServer, type ModelServer, type RecordedRequest } from '../support/model-server.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const JPEG = Buffer.from('ffd8ffe000104a46494600010100000100010000ffd9', 'hex');

/** The host loads the channel through installed.ts once the skill is added; while it is developed in the tree, by preloading register.ts. */
function loadLine(): Record<string, string> {
  const installed = fs.readFileSync(path.join(ROOT, 'src/channels/installed.ts'), 'utf8');
  if (installed.includes("'./line/register.ts'")) return {};
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(ROOT, 'src/channels/line/register.ts')).href}`.trim() };
}

/** A host whose LINE credentials are in HAKO_CONFIG/secrets.env (mode 0600), as the owner puts them; the emulator posts to its webhook port. */
async function hostWithLine(emu: LineEmulator, model: ModelServer, owner: LineUser, opts: { home?: string; configDir?: string; env?: Record<string, string> } = {}): Promise<HakoProcess> {
  const configDir = opts.configDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
  fs.writeFileSync(path.join(configDir, 'secrets.env'), `# the owner's channel secrets\nLINE_CHANNEL_ACCESS_TOKEN=${emu.token}\nLINE_CHANNEL_SECRET=${emu.secret}\n`, { mode: 0o600 });
  const port = await freePort();
  emu.webhookUrl = `http://127.0.0.1:${port}/line/webhook`;
  return HakoProcess.start({
    configDir, ...(opts.home ? { home: opts.home } : {}),
    env: {
      HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test', HAKO_WEBHOOK_PORT: String(port),
      LINE_API_ROOT: emu.apiRoot, LINE_DATA_API_ROOT: emu.dataApiRoot, LINE_OWNER_IDS: owner.userId, ...loadLine(), ...opts.env,
    },
  });
}

async function cli(h: HakoProcess, args: string[]): Promise<string> {
  const r = await h.cli(args);
  assert.equal(r.code, 0, `hako ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  await new Promise((r) => child.once('close', r));
  return out;
}

function lastUserText(req: RecordedRequest): string {
  const user = (req.json?.messages ?? []).findLast((m: { role: string }) => m.role === 'user');
  return typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? '');
}

/** Waits until the chat has `count` messages after the first `from`, and returns them. */
async function answers(emu: LineEmulator, chat: LineChatRef, from: number, count = 1, host?: HakoProcess): Promise<SentMessage[]> {
  await emu.waitUntil(() => emu.sent(chat.id).length >= from + count, () => `${count} messages in ${chat.id} after ${from}; it has ${JSON.stringify(emu.texts(chat.id).map((x) => x.slice(0, 60)))}${host ? `; host output:\n${host.output.slice(-4000)}` : ''}`, 120_000);
  return emu.sent(chat.id).slice(from, from + count);
}

describe('a real hako host reached from LINE', { timeout: 600_000 }, () => {
  let emu: LineEmulator;
  let model: ModelServer;
  let h: HakoProcess;
  let owner: LineUser;
  let dm: LineChatRef;

  before(async () => {
    emu = await LineEmulator.start({ botName: 'hako' });
    model = await startModelServer();
    owner = emu.user('Olivia Owner');
    dm = emu.chatWith(owner);
    h = await hostWithLine(emu, model, owner);
    assert.match(h.output, /chat channels: on: .*line/);
    await cli(h, ['groups', 'set', 'main', '--chat', `line:${owner.userId}`]);
  });
  after(async () => {
    await h?.stop();
    h?.cleanup();
    await model?.close();
    await emu?.close();
  });

  test('line host - a 1:1 message is answered with its reply token, the loading animation shown meanwhile', async () => {
    const from = emu.sent(dm.id).length;
    assert.equal((await emu.say({ chat: dm, from: owner, text: 'what is on my list today?' })).status, 200);
    const [reply] = await answers(emu, dm, from, 1, h);
    assert.equal(reply!.via, 'reply');
    assert.match(reply!.text, /^echo: .*what is on my list today\?/);
    assert.ok(emu.callsOf('/v2/bot/chat/loading/start').some((c) => c.body.chatId === owner.userId && c.status === 202), 'the loading animation was shown');
    const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('what is on my list today?'));
    assert.deepEqual(stored.map((x) => x.sender), ['Olivia Owner']);
  });

  test('line host - in a group, a message without mention or trigger word is context only; a mention of the bot and the trigger word are answered', async () => {
    const bob = emu.user('Bob');
    const team = emu.group('Sales team', [bob, owner]);
    // A trigger word of its own, so that the "@hako" text of a mention is not also the default trigger.
    await cli(h, ['groups', 'add', 'sales', '--chat', `line:${team.id}`, '--trigger', 'Kiko']);
    await emu.say({ chat: team, from: bob, text: 'the launch moved to Friday' });
    await emu.say({ chat: team, from: owner, text: 'when is the launch?', mention: true });
    const [reply] = await answers(emu, team, 0, 1, h);
    assert.equal(reply!.via, 'reply');
    const sent = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(sent, /Bob: the launch moved to Friday/);
    assert.match(sent, /Olivia Owner: @hako when is the launch\?/);
    await h.settled();
    await emu.say({ chat: team, from: owner, text: 'kiko, and the budget?' });
    const [second] = await answers(emu, team, 1, 1, h);
    assert.match(second!.text, /kiko, and the budget\?/);
    await h.settled();
    assert.equal(emu.sent(team.id).length, 2, 'one answer each, nothing for the context message');
    assert.equal(emu.callsOf('/v2/bot/chat/loading/start').filter((c) => c.body.chatId === team.id).length, 0, 'no loading animation in a group');
  });

  test('line host - an unknown chat is reported to main once, and nothing of it is stored or seen by the model', async () => {
    const eve = emu.user('Eve');
    const random = emu.group('Random people', [eve]);
    await emu.say({ chat: random, from: eve, text: 'secret plan one', mention: true });
    await emu.say({ chat: random, from: eve, text: 'secret plan two', mention: true });
    await h.settled();
    const notices = (await h.messages('main')).filter((x) => x.role === 'assistant' && x.text.includes(`line:${random.id}`));
    assert.equal(notices.length, 1, `one notice: ${JSON.stringify(notices.map((x) => x.text))}`);
    await emu.waitUntil(() => emu.texts(dm.id).some((x) => x.includes(`line:${random.id}`)), () => 'the notice in the owner\'s chat');
    assert.equal(emu.texts(dm.id).filter((x) => x.includes(`line:${random.id}`)).length, 1, 'the owner saw the notice in LINE, once');
    assert.ok(!model.requests.some((r) => r.body.includes('secret plan')), 'the model never saw the stranger');
    for (const g of ['main', 'sales']) assert.ok(!(await h.messages(g)).some((x) => x.text.includes('secret plan')), `nothing stored in ${g}`);
    assert.equal(emu.sent(random.id).length, 0, 'nothing sent to the stranger');
  });

  test('line host - a 7,000-character reply arrives as two messages cut at a paragraph, in one reply, nothing lost', async () => {
    const paragraph = (i: number) => `Paragraph ${i}: ${'All work and no play makes a long reply. '.repeat(11).trim()}`;
    const long = Array.from({ length: 16 }, (_, i) => paragraph(i)).join('\n\n').slice(0, 7000);
    model.script({ text: long });
    const from = emu.sent(dm.id).length;
    await emu.say({ chat: dm, from: owner, text: 'write me a long answer' });
    const pieces = await answers(emu, dm, from, 2, h);
    for (const p of pieces) assert.ok(p.text.length <= 5000);
    assert.match(pieces[1]!.text, /^Paragraph \d+:/, 'cut at a paragraph');
    assert.equal(pieces.map((p) => p.text).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
    assert.deepEqual(pieces.map((p) => p.via), ['reply', 'reply']);
    await h.settled();
    assert.equal(emu.sent(dm.id).length, from + 2, 'nothing after the two pieces');
  });

  test('line host - an image lands in the group workspace, where the agent reads it', async () => {
    const photo = Buffer.concat([JPEG, Buffer.alloc(3000, 1)]);
    model.script(
      (req) => {
        const at = /\[attached: (inbox\/[^\s]+) \(/.exec(lastUserText(req));
        return at ? { toolCalls: [{ name: 'bash', args: { command: `wc -c < /workspace/group/${at[1]}` } }] } : { text: `no image path in ${lastUserText(req)}` };
      },
      (req) => ({ text: `the image has ${String(req.json.messages.at(-1).content).match(/\d+/)?.[0]} bytes` }),
    );
    const from = emu.sent(dm.id).length;
    await emu.deliver([emu.mediaEvent({ chat: dm, from: owner, kind: 'image', data: photo })]);
    const [reply] = await answers(emu, dm, from, 1, h);
    assert.equal(reply!.text, `the image has ${photo.length} bytes`);
    const inbox = path.join(h.home, 'groups', 'main', 'inbox');
    const files = fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.equal(files.length, 1);
    assert.deepEqual(fs.readFileSync(path.join(files[0]!.parentPath, files[0]!.name)), photo);
  });

  test('line host - a 429 from LINE is survived: the answer is pushed after a backoff, once', async () => {
    emu.rateLimit({ calls: 2, paths: ['/v2/bot/message/reply', '/v2/bot/message/push'] });
    const from = emu.sent(dm.id).length;
    await emu.say({ chat: dm, from: owner, text: 'are you rate limited?' });
    const [reply] = await answers(emu, dm, from, 1, h);
    assert.match(reply!.text, /are you rate limited\?/);
    await h.settled();
    assert.equal(emu.texts(dm.id).filter((t) => t.includes('are you rate limited?')).length, 1);
    assert.equal(emu.calls.filter((c) => c.status === 429).length, 2);
  });

  test('line host - a forged, a replayed and an old webhook are refused 401, nothing is stored, each is audited as webhook.refused', async () => {
    const event = emu.textEvent({ chat: dm, from: owner, text: 'wire the money (original)' });
    const forged = emu.textEvent({ chat: dm, from: owner, text: 'wire the money (forged)' });
    const body = emu.body([forged]);
    assert.equal((await emu.deliver([forged], { signature: emu.sign(body, '0'.repeat(32)) })).status, 401);
    assert.equal((await emu.deliver([event])).status, 200);
    assert.equal((await emu.deliver([event])).status, 401, 'the same signed request again');
    assert.equal((await emu.say({ chat: dm, from: owner, text: 'wire the money (old)', timestamp: Date.now() - 3_600_000 })).status, 401);
    await h.settled();
    const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('wire the money'));
    assert.deepEqual(stored.map((x) => x.text), ['wire the money (original)'], 'only the genuine one, once');
    const audit = JSON.parse(await cli(h, ['audit', '--kind', 'webhook.refused', '--json'])) as { data: Record<string, string> }[];
    assert.deepEqual(audit.map((r) => [r.data.channel, r.data.reason, r.data.path]), [
      ['line', 'bad signature', '/webhook'], ['line', 'replay: event already received', '/webhook'], ['line', 'replay: event older than 10 minutes', '/webhook'],
    ]);
  });

  test('line host - the credentials are in no log line, no database row and no container', async () => {
    for (const secret of [emu.token, emu.secret]) {
      assert.ok(!h.output.includes(secret), 'not on the console');
      assert.ok(!fs.readFileSync(path.join(h.home, 'logs', 'hako.log'), 'utf8').includes(secret), 'not in the log file');
      assert.ok(!fs.readFileSync(path.join(h.home, 'hako.db')).includes(secret), 'not in the database');
    }
    const ids = (await run('docker', ['ps', '-aq', '--filter', `label=dev.hako.home=${h.home}`])).split('\n').filter(Boolean);
    assert.ok(ids.length >= 1, 'the warm container is there to look into');
    for (const id of ids) {
      const seen = (await run('docker', ['inspect', id])) + (await run('docker', ['exec', id, 'sh', '-c', 'cat /proc/1/environ; env']));
      assert.ok(!seen.includes(emu.token) && !seen.includes(emu.secret), `not in container ${id}`);
    }
  });

  test('line host - a revoked token is one clear line in the log and in hako status; webhooks are still taken', async () => {
    assert.match(await cli(h, ['status']), /channels: .*line ok/);
    emu.revokeToken();
    await emu.say({ chat: dm, from: owner, text: 'are you there after the revocation?' });
    const logged = await h.waitForLog((e) => e.msg.startsWith('line: the channel access token was refused'));
    assert.equal(logged.msg, TOKEN_REFUSED);
    assert.match(await cli(h, ['status']), new RegExp(`line — PROBLEM: ${TOKEN_REFUSED.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.ok((await h.messages('main')).some((x) => x.role === 'user' && x.text === 'are you there after the revocation?'), 'the message was stored');
    assert.equal(h.logEvents().filter((e) => e.msg.startsWith('line: the channel access token was refused')).length, 1, 'logged once');
    assert.equal(h.child.exitCode, null, 'the host runs on');
  });
});

describe('kill -9 of the host during a LINE turn', { timeout: 600_000 }, () => {
  // Killed with the reply committed and not yet sent: the restarted host no longer holds the
  // reply token (it lives only in memory), so the answer is pushed, with a retry key.
  test('line host - killed at "output-applied": after a restart the message is answered once in LINE', async (t) => {
    const point = 'output-applied';
    const emu = await LineEmulator.start({ botName: 'hako' });
    const model = await startModelServer();
    t.after(async () => { await model.close(); await emu.close(); });
    const owner = emu.user('Olivia');
    const dm = emu.chatWith(owner);
    const first = await hostWithLine(emu, model, owner);
    t.after(() => first.cleanup());
    await cli(first, ['groups', 'set', 'main', '--chat', `line:${owner.userId}`]);
    await first.stop();
    const crashing = await hostWithLine(emu, model, owner, { home: first.home, configDir: first.configDir, env: { HAKO_FAILPOINT: point } });
    assert.equal((await emu.say({ chat: dm, from: owner, text: `survive ${point}` })).status, 200, 'stored before the crash');
    const end = await crashing.exited();
    assert.equal(end.signal, 'SIGKILL', `the host died at ${point}`);
    const h = await hostWithLine(emu, model, owner, { home: first.home, configDir: first.configDir });
    t.after(() => h.stop());
    const [reply] = await answers(emu, dm, 0, 1, h);
    assert.match(reply!.text, new RegExp(`survive ${point}`));
    assert.equal(reply!.via, 'push');
    await h.settled();
    assert.equal(emu.texts(dm.id).filter((x) => x.includes(`survive ${point}`)).length, 1, `answered once: ${JSON.stringify(emu.texts(dm.id))}`);
    assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes(`survive ${point}`)).length, 1, 'stored once');
  });
});
