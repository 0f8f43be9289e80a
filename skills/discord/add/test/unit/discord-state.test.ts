// The Discord channel's own state file (HAKO_HOME/channels/discord/state.json): the newest
// message id taken in per channel, durable across restarts, private to the owner, written
// atomically, never through a link, and never a reason to stop on bad contents.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiscordState } from '../../src/channels/discord/state.ts';

const homes: string[] = [];
after(() => { for (const h of homes) fs.rmSync(h, { recursive: true, force: true }); });

function home(): string {
  const h = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-discord-state-'));
  homes.push(h);
  return h;
}

const noWarning = (m: string) => assert.fail(`unexpected warning: ${m}`);

test('discord state - the kept ids survive a restart; file 0600 in a 0700 folder, no temporary file left', () => {
  const h = home();
  const s = DiscordState.load({ home: h, warn: noWarning });
  assert.equal(s.last('111'), undefined);
  s.advance('111', '1576935351551787328');
  s.advance('222', '0');
  s.save();
  const again = DiscordState.load({ home: h, warn: noWarning });
  assert.deepEqual([again.last('111'), again.last('222')], ['1576935351551787328', '0']);
  assert.equal(fs.statSync(DiscordState.path(h)).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(DiscordState.path(h))).mode & 0o777, 0o700);
  assert.deepEqual(fs.readdirSync(path.dirname(DiscordState.path(h))), ['state.json']);
});

test('discord state - a kept id only grows, compared as a number: 10 is newer than 9, an older id changes nothing', () => {
  const s = DiscordState.load({ home: home(), warn: noWarning });
  assert.equal(s.advance('111', '9'), true);
  assert.equal(s.advance('111', '10'), true);
  assert.equal(s.advance('111', '9'), false);
  assert.equal(s.advance('111', '10'), false);
  assert.equal(s.last('111'), '10');
  assert.throws(() => s.advance('111', '12abc'), /"12abc" is not a channel and message id/);
});

test('discord state - a save replaces the file by rename: a reader holding the old file sees it whole, never half written', () => {
  const h = home();
  const s = DiscordState.load({ home: h, warn: noWarning });
  s.advance('111', '5');
  s.save();
  // A second name for the old file: an in-place rewrite would change what it shows.
  const old = path.join(h, 'old-state.json');
  fs.linkSync(DiscordState.path(h), old);
  s.advance('111', '6');
  s.save();
  assert.deepEqual(JSON.parse(fs.readFileSync(old, 'utf8')), { v: 1, channels: { '111': '5' } });
  assert.deepEqual(JSON.parse(fs.readFileSync(DiscordState.path(h), 'utf8')), { v: 1, channels: { '111': '6' } });
});

test('discord state - a link in place of the file, its folder or the temporary file is refused with what to do, and the link\'s target is untouched', () => {
  const target = path.join(home(), 'elsewhere.json');
  fs.writeFileSync(target, JSON.stringify({ v: 1, channels: { '111': '7' } }));

  const atFile = home();
  fs.mkdirSync(path.dirname(DiscordState.path(atFile)), { recursive: true, mode: 0o700 });
  fs.symlinkSync(target, DiscordState.path(atFile));
  assert.throws(() => DiscordState.load({ home: atFile, warn: noWarning }), /state\.json is a symbolic link, which hako refuses for its state: remove the link/);

  const atFolder = home();
  fs.mkdirSync(path.join(atFolder, 'channels'));
  fs.symlinkSync(path.dirname(target), path.join(atFolder, 'channels', 'discord'));
  assert.throws(() => DiscordState.load({ home: atFolder, warn: noWarning }), /channels\/discord is a symbolic link/);

  const atTemp = home();
  const s = DiscordState.load({ home: atTemp, warn: noWarning });
  fs.symlinkSync(target, `${DiscordState.path(atTemp)}.tmp-${process.pid}`);
  s.advance('111', '8');
  assert.throws(() => s.save(), /state\.json\.tmp-\d+ is a symbolic link/);

  assert.deepEqual(JSON.parse(fs.readFileSync(target, 'utf8')), { v: 1, channels: { '111': '7' } });
});

test('discord state - an unreadable file is kept aside with a warning, and the channel starts afresh', () => {
  const h = home();
  fs.mkdirSync(path.dirname(DiscordState.path(h)), { recursive: true });
  fs.writeFileSync(DiscordState.path(h), '{"v":1,"channels":{"111":"not a snowflake"}}');
  const warnings: string[] = [];
  const s = DiscordState.load({ home: h, warn: (m) => warnings.push(m) });
  assert.equal(s.last('111'), undefined);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /unreadable and is kept as .*state\.json\.unreadable-\d+; messages written while hako was stopped are not fetched this time/);
  assert.equal(fs.readdirSync(path.dirname(DiscordState.path(h))).filter((f) => f.startsWith('state.json.unreadable-')).length, 1);
});
