// The Discord channel's pure parts: a message mapped to what hako stores (address, sender,
// trust, direct or not), refs and addresses, the settings, and error classification.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeText, mapMessage, parseAddress, parseRef, type DiscordMessage, type DiscordUser } from '../../src/channels/discord/inbound.ts';
import { discordConfig, DEFAULT_API_ROOT } from '../../src/channels/discord/config.ts';
import { classify, scrub, TOKEN_REFUSED } from '../../src/channels/discord/errors.ts';

const bot: DiscordUser = { id: '900000000000000001', username: 'hako', globalName: null, bot: true };
const alice: DiscordUser = { id: '900000000000000002', username: 'alice_w', globalName: 'Alice W.' };
const TOKEN = 'OTAwMDAwMDAwMDAwMDAwMDAx.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB';

function msg(over: Partial<DiscordMessage> = {}): DiscordMessage {
  return { id: '900000000000000100', channelId: '900000000000000010', place: { kind: 'channel', name: 'general', guild: 'Acme' }, author: alice, content: 'hello', mentions: [], attachments: [], system: false, ...over };
}
const none = () => false;

test('discord inbound - a DM is direct; its sender is discord:<user id> named by the global name; not trusted unless an owner id', () => {
  const m = mapMessage(msg({ place: { kind: 'dm' }, channelId: '900000000000000011' }), bot, [], none)!;
  assert.deepEqual(m, { chat: 'discord:900000000000000011', chatTitle: 'Alice W. (direct message)', sender: 'Alice W.', senderId: `discord:${alice.id}`, trusted: false, text: 'hello', direct: true, ref: '900000000000000100', attachments: [] });
  assert.equal(mapMessage(msg({ place: { kind: 'dm' } }), bot, [alice.id], none)!.trusted, true);
});

test('discord inbound - in a guild channel only a mention of the bot or a reply to it is direct; the mention reads as @name', () => {
  assert.equal(mapMessage(msg(), bot, [], none)!.direct, false);
  const mentioned = mapMessage(msg({ content: `<@${bot.id}> when is the launch? cc <@!${alice.id}>`, mentions: [bot, alice] }), bot, [], none)!;
  assert.deepEqual([mentioned.direct, mentioned.text, mentioned.chatTitle], [true, '@hako when is the launch? cc @Alice W.', '#general in Acme']);
  assert.equal(mapMessage(msg({ repliesTo: bot.id }), bot, [], none)!.direct, true);
  assert.equal(mapMessage(msg({ content: `<@${alice.id}> hi`, mentions: [alice] }), bot, [], none)!.direct, false, 'mentioning someone else is not direct');
});

test('discord inbound - the bot\'s own, other bots\', webhooks\' and system messages are ignored, and so is an empty one', () => {
  assert.equal(mapMessage(msg({ author: bot }), bot, [], none), undefined);
  assert.equal(mapMessage(msg({ author: { ...alice, bot: true } }), bot, [], none), undefined);
  assert.equal(mapMessage(msg({ webhookId: '900000000000000099' }), bot, [], none), undefined);
  assert.equal(mapMessage(msg({ system: true }), bot, [], none), undefined);
  assert.equal(mapMessage(msg({ content: '  ' }), bot, [], none), undefined);
});

test('discord inbound - a thread message goes to the thread\'s binding, else to its parent channel with the thread in its ref', () => {
  const thread = msg({ channelId: '900000000000000020', place: { kind: 'thread', name: 'launch', parentId: '900000000000000010', guild: 'Acme' } });
  const viaParent = mapMessage(thread, bot, [], none)!;
  assert.deepEqual([viaParent.chat, viaParent.ref], ['discord:900000000000000010', '900000000000000100/900000000000000020']);
  const own = mapMessage(thread, bot, [], (c) => c === 'discord:900000000000000020')!;
  assert.deepEqual([own.chat, own.ref], ['discord:900000000000000020', '900000000000000100']);
  assert.deepEqual(parseRef(viaParent.ref), { messageId: '900000000000000100', thread: '900000000000000020' });
  assert.deepEqual(parseRef(own.ref), { messageId: '900000000000000100' });
  assert.equal(parseRef('1/2/3'), undefined);
});

test('discord inbound - the nickname in the guild wins over the global name, which wins over the username', () => {
  assert.equal(mapMessage(msg({ nickname: 'Ali' }), bot, [], none)!.sender, 'Ali');
  assert.equal(mapMessage(msg({ author: { ...alice, globalName: null } }), bot, [], none)!.sender, 'alice_w');
});

test('discord inbound - addresses are channel ids; the text lists files after the message', () => {
  assert.equal(parseAddress('900000000000000010'), '900000000000000010');
  assert.equal(parseAddress('general'), undefined);
  assert.equal(parseAddress('1/2'), undefined);
  assert.equal(composeText('see this', ['[file: /workspace/group/inbox/a.pdf]']), 'see this\n[file: /workspace/group/inbox/a.pdf]');
  assert.equal(composeText('', ['[file: x]']), '[file: x]');
});

test('discord config - the token is required and checked; the API root defaults to discord.com and plain http only to loopback', () => {
  assert.throws(() => discordConfig({}), /DISCORD_BOT_TOKEN is not set: .*secrets\.env/);
  assert.throws(() => discordConfig({ DISCORD_BOT_TOKEN: `Bot ${TOKEN}` }), /does not look like a bot token/);
  assert.deepEqual(discordConfig({ DISCORD_BOT_TOKEN: TOKEN }), { token: TOKEN, apiRoot: DEFAULT_API_ROOT, ownerIds: [], maxBytes: 25 * 1024 * 1024 });
  assert.equal(discordConfig({ DISCORD_BOT_TOKEN: TOKEN, DISCORD_API_ROOT: 'http://127.0.0.1:5000/api/' }).apiRoot, 'http://127.0.0.1:5000/api');
  assert.throws(() => discordConfig({ DISCORD_BOT_TOKEN: TOKEN, DISCORD_API_ROOT: 'http://discord.example/api' }), /must use https/);
  assert.throws(() => discordConfig({ DISCORD_BOT_TOKEN: TOKEN, DISCORD_API_ROOT: 'https://u:p@discord.example/api' }), /plain base URL/);
  for (const bad of ['alice', '12']) assert.throws(() => discordConfig({ DISCORD_BOT_TOKEN: TOKEN, DISCORD_OWNER_IDS: bad }), /DISCORD_OWNER_IDS must be comma-separated Discord user ids/);
  assert.deepEqual(discordConfig({ DISCORD_BOT_TOKEN: TOKEN, DISCORD_OWNER_IDS: ' 900000000000000002, 900000000000000003 ' }).ownerIds, ['900000000000000002', '900000000000000003']);
  assert.equal(discordConfig({ DISCORD_BOT_TOKEN: TOKEN, HAKO_ATTACHMENT_MAX_BYTES: '1000' }).maxBytes, 1000);
  assert.throws(() => discordConfig({ DISCORD_BOT_TOKEN: TOKEN, HAKO_ATTACHMENT_MAX_BYTES: 'lots' }), /^Error: discord: HAKO_ATTACHMENT_MAX_BYTES must be a positive whole number/);
});

test('discord errors - 401 and close 4004 are a refused token, other 4xx a refusal, the rest worth trying again; the token never shows', () => {
  assert.equal(classify(Object.assign(new Error('401: Unauthorized'), { status: 401, code: 0 }), TOKEN).kind, 'unauthorized');
  assert.equal(classify(Object.assign(new Error('An invalid token was provided.'), { code: 'TokenInvalid' }), TOKEN).kind, 'unauthorized');
  assert.equal(classify(new Error('Authentication failed'), TOKEN).kind, 'unauthorized');
  assert.deepEqual(classify(Object.assign(new Error('Unknown Channel'), { status: 404, code: 10003 }), TOKEN), { kind: 'refused', status: 404, code: 10003, text: '404 Unknown Channel' });
  const net = classify(new TypeError('fetch failed', { cause: new Error(`connect ECONNREFUSED with ${TOKEN}`) }), TOKEN);
  assert.equal(net.kind, 'network');
  assert.ok(!net.text.includes(TOKEN) && net.text.includes('[token]'));
  assert.equal(scrub(`Bot ${TOKEN}`, TOKEN), 'Bot [token]');
  assert.match(TOKEN_REFUSED, /^discord: the bot token was refused .*DISCORD_BOT_TOKEN in ~\/\.config\/hako\/secrets\.env and restart hako$/);
});
