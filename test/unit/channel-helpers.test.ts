// The helpers every chat channel uses: splitting long replies, saving attachments into an
// agent-writable folder without following links, and reading HAKO_CONFIG/secrets.env.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { splitText } from '../../src/channels/split.ts';
import { attachmentName, saveAttachment } from '../../src/channels/attachments.ts';
import { channelEnv } from '../../src/cli/secrets.ts';
import { loadSecrets } from '../../src/core/policy.ts';
import { prepareGroupDirs } from '../../src/core/runner.ts';
import { groupPaths } from '../../src/core/paths.ts';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-chan-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('split - text within the limit is one piece, unchanged', () => {
  assert.deepEqual(splitText('short reply', 4096), ['short reply']);
  assert.deepEqual(splitText('', 10), ['']);
});

test('split - a long text is cut at paragraphs first, then lines, then sentences, then spaces', () => {
  assert.deepEqual(splitText('aaaa aaaa\n\nbbbb bbbb', 12), ['aaaa aaaa', 'bbbb bbbb']);
  assert.deepEqual(splitText('aaaa aaaa\nbbbb bbbb', 12), ['aaaa aaaa', 'bbbb bbbb']);
  assert.deepEqual(splitText('One two. Three four.', 12), ['One two.', 'Three four.']);
  assert.deepEqual(splitText('one two three', 8), ['one two', 'three']);
});

test('split - a word longer than the limit is cut inside, never inside a surrogate pair', () => {
  const pieces = splitText('x'.repeat(7) + '🎉' + 'y'.repeat(5), 8);
  assert.ok(pieces.every((p) => p.length <= 8));
  assert.equal(pieces.join(''), 'x'.repeat(7) + '🎉' + 'y'.repeat(5));
  assert.ok(pieces.every((p) => !/[\ud800-\udbff]$/.test(p)), 'no piece ends in half an emoji');
});

test('attachments - a file is saved under inbox/<date>/ with a safe name, and the agent path names it', (t) => {
  const home = tmp(t);
  prepareGroupDirs(home, 'sales');
  const saved = saveAttachment(home, 'sales', '../../etc/pass wd.PDF', Buffer.from('quote'), 1000, new Date('2026-11-30T12:00:00Z'));
  assert.equal(saved.hostPath, path.join(groupPaths(home, 'sales').folder, 'inbox', '2026-11-30', 'pass_wd.PDF'));
  assert.equal(saved.agentPath, '/workspace/group/inbox/2026-11-30/pass_wd.PDF');
  assert.equal(fs.readFileSync(saved.hostPath, 'utf8'), 'quote');
  assert.equal(attachmentName('.hidden'), 'hidden');
});

test('attachments - an attachment over the limit is refused and nothing is written', (t) => {
  const home = tmp(t);
  prepareGroupDirs(home, 'sales');
  assert.throws(() => saveAttachment(home, 'sales', 'big.bin', new Uint8Array(11), 10), /is 11 bytes; the limit is 10/);
  assert.equal(fs.existsSync(path.join(groupPaths(home, 'sales').folder, 'inbox')), false);
});

test('attachments - attack: an agent that makes inbox/ a link to another folder gets nothing written there', (t) => {
  const home = tmp(t);
  prepareGroupDirs(home, 'sales');
  const elsewhere = path.join(home, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.symlinkSync(elsewhere, path.join(groupPaths(home, 'sales').folder, 'inbox'));
  assert.throws(() => saveAttachment(home, 'sales', 'photo.jpg', Buffer.from('x'), 100), /inbox\/\d{4}-\d{2}-\d{2}\/ in its folder is not a plain folder \((ELOOP|ENOTDIR)\)/);
  assert.deepEqual(fs.readdirSync(elsewhere), []);
});

test('secrets.env - a channel credential needs no egress rule and is never handed to a container', (t) => {
  const dir = tmp(t);
  fs.writeFileSync(path.join(dir, 'secrets.env'), 'TELEGRAM_BOT_TOKEN=123456:ABCDEFGH\nGH_TOKEN=ghp_0123456789\n', { mode: 0o600 });
  const rules = [{ name: 'GH_TOKEN', hosts: ['api.github.com'], groups: ['main'], headers: ['authorization'] }];
  assert.deepEqual([...loadSecrets(dir, rules, ['TELEGRAM_BOT_TOKEN']).keys()], ['GH_TOKEN'], 'only the egress-bound secret is for containers');
  assert.throws(() => loadSecrets(dir, rules), /TELEGRAM_BOT_TOKEN has no rule in egress\.json/, 'a name nobody reads is still a mistake');
  assert.equal(channelEnv(dir, {}).TELEGRAM_BOT_TOKEN, '123456:ABCDEFGH');
});

test('secrets.env - read when only its owner can read it; the environment wins over it', (t) => {
  const dir = tmp(t);
  fs.writeFileSync(path.join(dir, 'secrets.env'), 'TELEGRAM_BOT_TOKEN=from-file\nHAKO_EMAIL_USER=me@example.com\n', { mode: 0o600 });
  const env = channelEnv(dir, { TELEGRAM_BOT_TOKEN: 'from-env' });
  assert.equal(env.TELEGRAM_BOT_TOKEN, 'from-env');
  assert.equal(env.HAKO_EMAIL_USER, 'me@example.com');
  assert.deepEqual(channelEnv(path.join(dir, 'none'), { A: '1' }), { A: '1' }, 'no file: the environment alone');
});

test('secrets.env - a file others can read is refused with the command that fixes it', (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'secrets.env');
  fs.writeFileSync(file, 'TELEGRAM_BOT_TOKEN=x\n');
  fs.chmodSync(file, 0o644);
  assert.throws(() => channelEnv(dir, {}), new RegExp(`has mode 644: other users could read it; run chmod 600 ${file}`));
});

test('send_message file - a path must stay inside the group folder', async () => {
  const { workspaceFileProblem } = await import('../../protocol/ipc.ts');
  assert.equal(workspaceFileProblem('reports/q3.csv'), null);
  assert.match(workspaceFileProblem('/etc/passwd')!, /relative to the group folder/);
  assert.match(workspaceFileProblem('reports/../../x')!, /no "\.\."/);
  assert.match(workspaceFileProblem('')!, /at most 1024/);
});

test('chat address - attack: an address with terminal escapes, bidi controls or whitespace is not a chat address', async () => {
  const { parseChat } = await import('../../protocol/names.ts');
  assert.deepEqual(parseChat('telegram:-1001234567890'), { channel: 'telegram', address: '-1001234567890' });
  assert.deepEqual(parseChat('email:hako+sales@example.com'), { channel: 'email', address: 'hako+sales@example.com' });
  for (const bad of ['telegram:\u001b]52;c;eA==\u0007', 'telegram:-1\u202eevil', 'telegram:-1 2', 'telegram:\u0000', 'Telegram:1', 'telegram:', `telegram:${'1'.repeat(256)}`, 42]) {
    assert.equal(parseChat(bad), undefined, JSON.stringify(bad));
  }
});
