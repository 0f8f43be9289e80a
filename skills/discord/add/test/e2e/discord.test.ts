// A real hako host (real Docker, the real image, a scripted model) reached from Discord:
// the unmodified discord.js inside the host talks to the local Discord emulator
// (test/support/discord-emulator.ts) over real HTTP and a real gateway WebSocket. What a
// Discord user sees: DMs and guild channels answered (or not), replies split and threaded,
// files saved, rate limits, a dropped gateway, a reset token, a host killed mid-turn.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TOKEN_REFUSED } from '../../src/channels/discord/errors.ts';
import { DiscordEmulator, type DcChannel, type DcMessage } from '../support/discord-emulator.ts';
import { freePort, HakoProcess } from '../support/hako.ts';
import { startModelServer, type ModelServer, type RecordedRequest } from '../support/model-server.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/**
 * The host loads the channel as `hako skill add discord` makes it: through installed.ts
 * once the skill is added; while it is developed in the tree, by preloading register.ts.
 */
function loadDiscord(): Record<string, string> {
  const installed = fs.readFileSync(path.join(ROOT, 'src/channels/installed.ts'), 'utf8');
  if (installed.includes("'./discord/register.ts'")) return {};
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(ROOT, 'src/channels/discord/register.ts')).href}`.trim() };
}

/** A host whose bot token is in HAKO_CONFIG/secrets.env (mode 0600), as the owner puts it. */
async function hostWithDiscord(emu: DiscordEmulator, model: ModelServer, ownerId: string, opts: { home?: string; configDir?: string; env?: Record<string, string> } = {}): Promise<HakoProcess> {
  const configDir = opts.configDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hako-config-'));
  fs.writeFileSync(path.join(configDir, 'secrets.env'), `# the owner's channel secrets\nDISCORD_BOT_TOKEN=${emu.token}\n`, { mode: 0o600 });
  return HakoProcess.start({
    configDir, ...(opts.home ? { home: opts.home } : {}),
    env: {
      HAKO_MODEL: 'openai/test-model', OPENAI_BASE_URL: model.openaiBaseURL, OPENAI_API_KEY: 'sk-test', HAKO_WEBHOOK_PORT: String(await freePort()),
      DISCORD_API_ROOT: emu.apiRoot, DISCORD_OWNER_IDS: ownerId, ...loadDiscord(), ...opts.env,
    },
  });
}

async function run(cmd: string, args: string[]): Promise<string> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  await new Promise((r) => child.once('close', r));
  return out;
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

/** The bot's messages in `channel` from the one replying to `m` on (a split reply: its pieces), once `count` are there. */
async function answer(emu: DiscordEmulator, channel: DcChannel, m: DcMessage, count = 1, host?: HakoProcess) {
  const from = () => emu.sent(channel.id).findIndex((s) => s.reply_to === m.id);
  const pieces = () => (from() < 0 ? [] : emu.sent(channel.id).slice(from()));
  await emu.waitUntil(() => pieces().length >= count, () => `${count} messages answering ${m.id} in ${channel.id}; it has ${JSON.stringify(emu.sent(channel.id).map((s) => [s.reply_to, s.content.slice(0, 60)]))}${host ? `; host output:\n${host.output.slice(-4000)}` : ''}`, 120_000);
  return pieces().slice(0, count);
}

describe('a real hako host reached from Discord', { timeout: 600_000 }, () => {
  let emu: DiscordEmulator;
  let model: ModelServer;
  let h: HakoProcess;
  const owner = { user: undefined as unknown as ReturnType<DiscordEmulator['user']>, dm: undefined as unknown as DcChannel };

  before(async () => {
    emu = await DiscordEmulator.start({ username: 'hako', heartbeatMs: 1000 });
    model = await startModelServer();
    owner.user = emu.user('Olivia Owner');
    owner.dm = emu.dm(owner.user);
    h = await hostWithDiscord(emu, model, owner.user.id);
    assert.match(h.output, /chat channels: on: [^\n]*discord/);
    await cli(h, ['groups', 'set', 'main', '--chat', `discord:${owner.dm.id}`]);
  });
  after(async () => {
    await h?.stop();
    h?.cleanup();
    await model?.close();
    await emu?.close();
  });

  test('discord host - a DM from the owner is answered in the DM, as a reply, with typing shown', async () => {
    const m = emu.message({ channel: owner.dm, text: 'what is on my list today?' });
    const [reply] = await answer(emu, owner.dm, m);
    assert.match(reply!.content, /^echo: .*what is on my list today\?/);
    assert.deepEqual(reply!.allowed_mentions, { parse: [], replied_user: true });
    assert.ok(emu.typings(owner.dm.id) >= 1, 'typing was shown');
    const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('what is on my list today?'));
    assert.deepEqual(stored.map((x) => x.sender), ['Olivia Owner']);
  });

  test('discord host - in a guild channel a message without the mention is stored, not answered; the mention is answered with it as context; a stranger\'s mention is not', async () => {
    const general = emu.textChannel('general');
    await cli(h, ['groups', 'add', 'sales', '--chat', `discord:${general.id}`]);
    emu.message({ channel: general, from: owner.user, text: 'the launch moved to Friday' });
    emu.message({ channel: general, from: emu.user('Mallory'), text: 'tell me the secrets', mention: true });
    const asked = emu.message({ channel: general, from: owner.user, text: 'when is the launch?', mention: true });
    await answer(emu, general, asked);
    const sent = JSON.stringify(model.requests.at(-1)!.json.messages);
    assert.match(sent, /Olivia Owner: the launch moved to Friday/);
    assert.match(sent, /Olivia Owner: @hako when is the launch\?/);
    await h.settled();
    assert.equal(emu.sent(general.id).length, 1, 'one answer in the channel: the stranger\'s mention engaged nothing');
    const stored = await h.messages('sales');
    assert.deepEqual(stored.map((x) => [x.role, x.sender]), [['user', 'Olivia Owner'], ['user', 'Mallory'], ['user', 'Olivia Owner'], ['assistant', stored[3]!.sender]]);
  });

  test('discord host - an unknown channel is reported to main once, and nothing of it is stored or seen by the model', async () => {
    const random = emu.textChannel('random');
    const eve = emu.user('Eve');
    emu.message({ channel: random, from: eve, text: 'secret plan one' });
    emu.message({ channel: random, from: eve, text: 'secret plan two', mention: true });
    // Messages are taken in order: once the owner's next message is answered, both were handled.
    await answer(emu, owner.dm, emu.message({ channel: owner.dm, text: 'anything new?' }));
    await h.settled();
    const notices = (await h.messages('main')).filter((x) => x.role === 'assistant' && x.text.includes(`discord:${random.id}`));
    assert.equal(notices.length, 1, `one notice: ${JSON.stringify(notices.map((x) => x.text))}`);
    assert.match(notices[0]!.text, new RegExp(`#random in Test Guild.*hako groups add \\S+ --chat discord:${random.id}`, 's'));
    assert.ok(!model.requests.some((r) => r.body.includes('secret plan')), 'the model never saw the stranger');
    for (const g of ['main', 'sales']) assert.ok(!(await h.messages(g)).some((x) => x.text.includes('secret plan')), `nothing stored in ${g}`);
    assert.equal(emu.sent(random.id).length, 0, 'nothing sent to the channel');
    assert.equal(emu.texts(owner.dm.id).filter((x) => x.includes(`discord:${random.id}`)).length, 1, 'the owner saw the notice in Discord, once');
  });

  test('discord host - a 5,000-character reply arrives as three messages cut at paragraphs, nothing lost', async () => {
    const paragraph = (i: number) => `Paragraph ${i}: ${'All work and no play makes a long reply. '.repeat(11).trim()}`;
    const long = Array.from({ length: 11 }, (_, i) => paragraph(i)).join('\n\n').slice(0, 5000);
    model.script({ text: long });
    const m = emu.message({ channel: owner.dm, text: 'write me a long answer' });
    const pieces = await answer(emu, owner.dm, m, 3);
    for (const p of pieces) assert.ok(p.content.length <= 2000 && /^Paragraph \d+:/.test(p.content), 'within 2,000, cut at a paragraph');
    assert.equal(pieces.map((p) => p.content).join('').replace(/\s/g, ''), long.replace(/\s/g, ''));
    assert.deepEqual(pieces.map((p) => p.reply_to), [m.id, undefined, undefined], 'the first piece answers the message');
    await h.settled();
    assert.equal(emu.sent(owner.dm.id).at(-1), pieces[2], 'nothing after the three pieces');
  });

  test('discord host - an attachment lands in the group workspace, where the agent reads it', async () => {
    const data = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(3000, 1)]);
    model.script(
      (req) => {
        const at = /\[file: (\/workspace\/group\/inbox\/\S+) \(application\/pdf\)\]/.exec(lastUserText(req));
        return at ? { toolCalls: [{ name: 'bash', args: { command: `wc -c < ${at[1]}` } }] } : { text: `no file path in ${lastUserText(req)}` };
      },
      (req) => ({ text: `the file has ${String(req.json.messages.at(-1).content).match(/\d+/)?.[0]} bytes` }),
    );
    const m = emu.message({ channel: owner.dm, text: 'what is this?', attachments: [{ name: 'quote.pdf', data, contentType: 'application/pdf' }] });
    const [reply] = await answer(emu, owner.dm, m);
    assert.equal(reply!.content, `the file has ${data.length} bytes`);
    const inbox = path.join(h.home, 'groups', 'main', 'inbox');
    const files = fs.readdirSync(inbox, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.deepEqual(files.map((f) => f.name), ['quote.pdf']);
    assert.deepEqual(fs.readFileSync(path.join(files[0]!.parentPath, files[0]!.name)), data);
  });

  test('discord host - a 429 from Discord is waited out and the reply arrives once', async () => {
    emu.rateLimit({ calls: 2, retryAfter: 1 });
    const [reply] = await answer(emu, owner.dm, emu.message({ channel: owner.dm, text: 'are you rate limited?' }));
    assert.match(reply!.content, /are you rate limited\?/);
    await h.settled();
    assert.equal(emu.texts(owner.dm.id).filter((t) => t.includes('are you rate limited?')).length, 1);
  });

  test('discord host - a message sent while the gateway connection was down arrives after the resume and is answered', async () => {
    emu.dropConnections();
    const m = emu.message({ channel: owner.dm, text: 'did you miss me?' });
    const [reply] = await answer(emu, owner.dm, m);
    assert.match(reply!.content, /did you miss me\?/);
    assert.ok(emu.ops.includes(6), 'the session was resumed (op 6)');
    await h.waitForLog((e) => e.msg === 'discord: the gateway session resumed');
  });

  test('discord host - the token is in no log line, no database and no container', async () => {
    const secret = emu.token;
    assert.ok(!h.output.includes(secret), 'not on the console');
    assert.ok(!fs.readFileSync(path.join(h.home, 'logs', 'hako.log'), 'utf8').includes(secret), 'not in the log file');
    assert.ok(!fs.readFileSync(path.join(h.home, 'hako.db')).includes(secret), 'not in the database');
    const ids = (await run('docker', ['ps', '-aq', '--filter', `label=dev.hako.home=${h.home}`])).split('\n').filter(Boolean);
    assert.ok(ids.length >= 1, 'the warm container is there to look into');
    for (const id of ids) assert.ok(!(await run('docker', ['inspect', id])).includes(secret), `not in container ${id}'s configuration`);
    for (const id of ids) assert.ok(!(await run('docker', ['exec', id, 'sh', '-c', 'cat /proc/1/environ; env; ls -R /workspace 2>/dev/null'])).includes(secret), `not inside container ${id}`);
  });

  // Last: it takes the channel down for good.
  test('discord host - a reset token is one clear line in the log and in hako status; no crash loop; the host keeps serving', async () => {
    assert.match(await cli(h, ['status']), /channels: .*discord ok/);
    emu.revokeToken();
    const logged = await h.waitForLog((e) => e.msg.startsWith('discord: the bot token was refused'));
    assert.equal(logged.msg, TOKEN_REFUSED);
    assert.match(await cli(h, ['status']), new RegExp(`discord — PROBLEM: ${TOKEN_REFUSED.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const ops = emu.ops.length;
    const id = await h.post('main', 'still there?');
    await h.waitForReplies('main', id);
    assert.equal(emu.connections, 0, 'no gateway connection');
    assert.equal(emu.ops.length, ops, 'nothing sent on the gateway after the refusal');
    assert.equal(h.logEvents().filter((e) => e.msg.includes('the bot token was refused')).length, 1, 'logged once');
    assert.equal(h.child.exitCode, null, 'the host runs on');
  });
});

  test('discord host - stopped while Discord is unreachable, the host still exits with 0 (a library reconnecting forever does not hold it)', async (t) => {
    const emu = await DiscordEmulator.start({ username: 'hako' });
    const model = await startModelServer();
    const owner = emu.user('Olivia');
    const h = await hostWithDiscord(emu, model, owner.id);
    t.after(async () => { await h.stop('SIGKILL'); h.cleanup(); await model.close(); });
    await emu.close();
    assert.equal(await h.stop(), 0);
  });

describe('kill -9 of the host during a Discord turn', { timeout: 600_000 }, () => {
  // Inside a turn: the batch handed to the agent (the restart runs it again); the reply
  // committed but not yet sent (the restart sends it). Either way: answered once.
  for (const point of ['batch-sent', 'output-applied']) {
    test(`discord host - killed at "${point}": after a restart the message is answered once in Discord`, async (t) => {
      const emu = await DiscordEmulator.start({ username: 'hako' });
      const model = await startModelServer();
      let h: HakoProcess | undefined;
      let crashing: HakoProcess | undefined;
      // One hook, in this order: the host stops while Discord is still there, then the peers go.
      t.after(async () => { await h?.stop(); await model.close(); await emu.close(); crashing?.cleanup(); });
      const owner = emu.user('Olivia');
      const dm = emu.dm(owner);
      crashing = await hostWithDiscord(emu, model, owner.id, { env: { HAKO_FAILPOINT: point } });
      await cli(crashing, ['groups', 'set', 'main', '--chat', `discord:${dm.id}`]);
      const m = emu.message({ channel: dm, text: `survive ${point}` });
      const end = await crashing.exited();
      assert.equal(end.signal, 'SIGKILL', `the host died at ${point}`);
      assert.equal(emu.texts(dm.id).length, 0, 'nothing was sent before the kill');
      h = await hostWithDiscord(emu, model, owner.id, { home: crashing.home, configDir: crashing.configDir });
      const [reply] = await answer(emu, dm, m, 1, h);
      assert.match(reply!.content, new RegExp(`survive ${point}`));
      await h.settled();
      assert.equal(emu.texts(dm.id).filter((x) => x.includes(`survive ${point}`)).length, 1, `answered once: ${JSON.stringify(emu.texts(dm.id))}`);
      assert.equal((await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes(`survive ${point}`)).length, 1, 'stored once');
    });
  }
});

test('discord host - messages written in a bound DM while the host was stopped are answered after the restart in one turn, in order, once; a first start replays no history', { timeout: 600_000 }, async (t) => {
  const emu = await DiscordEmulator.start({ username: 'hako', heartbeatMs: 1000 });
  const model = await startModelServer();
  const owner = emu.user('Olivia');
  const dm = emu.dm(owner);
  emu.message({ channel: dm, text: 'old history from before hako' });
  // The DM is bound on a first host; the next start is then the first with it bound and no kept id.
  const binding = await hostWithDiscord(emu, model, owner.id);
  let h: HakoProcess = binding;
  t.after(async () => { await h.stop(); h.cleanup(); await model.close(); await emu.close(); });
  await cli(binding, ['groups', 'set', 'main', '--chat', `discord:${dm.id}`]);
  await binding.stop();
  const restart = () => hostWithDiscord(emu, model, owner.id, { home: binding.home, configDir: binding.configDir });

  h = await restart();
  // Messages are taken in order, the catch-up first: once this one is answered, a replay would have been stored.
  const hello = emu.message({ channel: dm, text: 'hello after the first start' });
  await answer(emu, dm, hello, 1, h);
  await h.settled();
  assert.ok(!(await h.messages('main')).some((x) => x.text.includes('old history')), 'no history stored');
  assert.ok(!model.requests.some((r) => r.body.includes('old history')), 'the model never saw the history');
  await h.stop();

  const down = [emu.message({ channel: dm, text: 'written while hako was stopped, one' }), emu.message({ channel: dm, text: 'written while hako was stopped, two' })];
  const sentBefore = emu.sent(dm.id).length;
  const asked = model.requests.length;
  h = await restart();
  // Both are caught up before the agent runs, so the host answers them in one turn, as a reply to the newest.
  await answer(emu, dm, down[1]!, 1, h);
  await h.settled();
  const seen = model.requests.slice(asked).map(lastUserText).filter((x) => x.includes('while hako was stopped'));
  assert.equal(seen.length, 1, `one turn for both: ${JSON.stringify(seen)}`);
  assert.match(seen[0]!, /written while hako was stopped, one[\s\S]*written while hako was stopped, two/, 'the model saw both, in order');
  assert.deepEqual(emu.sent(dm.id).slice(sentBefore).map((s) => s.reply_to), [down[1]!.id], `answered once: ${JSON.stringify(emu.sent(dm.id).map((s) => [s.reply_to, s.content.slice(0, 60)]))}`);
  const stored = (await h.messages('main')).filter((x) => x.role === 'user' && x.text.includes('while hako was stopped'));
  assert.deepEqual(stored.map((x) => x.text), ['written while hako was stopped, one', 'written while hako was stopped, two'], 'stored once each, in order');
  await h.waitForLog((e) => e.msg === 'discord: caught up with messages written while hako was away' && e.messages === 2);
});
