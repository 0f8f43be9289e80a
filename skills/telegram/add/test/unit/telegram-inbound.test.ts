// A Telegram message as hako sees it: the chat address, who sent it, whether it is
// addressed to the assistant, and its files. Messages are built as the Bot API sends them.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from 'grammy/types';
import { composeText, mapMessage, parseAddress, parseRef } from '../../src/channels/telegram/inbound.ts';

const bot = { id: 777, username: 'hako_bot' };
const alice = { id: 42, is_bot: false, first_name: 'Alice', last_name: 'Smith' };
const group = { id: -1001234567890, type: 'supergroup' as const, title: 'Sales team' };
const none = () => false;

function msg(fields: Record<string, unknown>): Message {
  return { message_id: 10, date: 1_700_000_000, chat: group, from: alice, ...fields } as unknown as Message;
}
const mention = (text: string, at: string) => [{ type: 'mention', offset: text.indexOf(at), length: at.length }];

describe('telegram inbound', () => {
  test('inbound - a private chat is direct, addressed by the user id, named after the user', () => {
    const m = mapMessage(msg({ chat: { id: 42, type: 'private', first_name: 'Alice', last_name: 'Smith' }, text: 'hi' }), bot, none);
    assert.deepEqual(m, {
      chat: 'telegram:42', chatTitle: 'Alice Smith', sender: 'Alice Smith', senderId: 'telegram:42', privateChat: true, text: 'hi',
      ref: '10', files: [], notes: [], direct: true,
    });
  });

  test('inbound - a group message without a mention is not direct; it carries the group title', () => {
    const m = mapMessage(msg({ text: 'the launch moved to Friday' }), bot, none)!;
    assert.equal(m.direct, false);
    assert.equal(m.privateChat, false);
    assert.equal(m.chat, 'telegram:-1001234567890');
    assert.equal(m.chatTitle, 'Sales team');
  });

  test('inbound - an @botname mention (any case), a text mention or a /command@botname is direct', () => {
    const text = 'hey @Hako_Bot, when is the launch?';
    assert.equal(mapMessage(msg({ text, entities: mention(text, '@Hako_Bot') }), bot, none)!.direct, true);
    assert.equal(mapMessage(msg({ text: 'hey Hako', entities: [{ type: 'text_mention', offset: 4, length: 4, user: { id: 777, is_bot: true, first_name: 'Hako' } }] }), bot, none)!.direct, true);
    assert.equal(mapMessage(msg({ text: '/status@hako_bot', entities: [{ type: 'bot_command', offset: 0, length: 16 }] }), bot, none)!.direct, true);
  });

  test('inbound - a mention of another bot, or the name without an entity, is not direct', () => {
    const text = 'ask @other_bot or @hako_bot_fan';
    assert.equal(mapMessage(msg({ text, entities: [...mention(text, '@other_bot'), ...mention(text, '@hako_bot_fan')] }), bot, none)!.direct, false);
    assert.equal(mapMessage(msg({ text: 'what does @hako_bot think' }), bot, none)!.direct, false, 'Telegram marks real mentions with an entity');
  });

  test('inbound - a reply to the bot is direct; a topic message whose root the bot opened is not', () => {
    assert.equal(mapMessage(msg({ text: 'yes', reply_to_message: { message_id: 3, from: { id: 777, is_bot: true, first_name: 'Hako' }, chat: group, date: 0, text: 'shall I?' } }), bot, none)!.direct, true);
    const root = { message_id: 5, from: { id: 777, is_bot: true, first_name: 'Hako' }, chat: group, date: 0, forum_topic_created: { name: 'Ops', icon_color: 1 } };
    assert.equal(mapMessage(msg({ text: 'hello topic', message_thread_id: 5, is_topic_message: true, reply_to_message: root }), bot, none)!.direct, false);
  });

  test('inbound - a forum topic is its own address when bound; else the chat, with the topic in the ref', () => {
    const m = msg({ text: 'in a topic', message_thread_id: 5, is_topic_message: true });
    const topicBound = mapMessage(m, bot, (c) => c === 'telegram:-1001234567890/5')!;
    assert.deepEqual([topicBound.chat, topicBound.ref], ['telegram:-1001234567890/5', '10']);
    const chatBound = mapMessage(m, bot, (c) => c === 'telegram:-1001234567890')!;
    assert.deepEqual([chatBound.chat, chatBound.ref], ['telegram:-1001234567890', '10/5']);
    const unbound = mapMessage(m, bot, none)!;
    assert.equal(unbound.chat, 'telegram:-1001234567890', 'the notice names the whole chat');
  });

  test('inbound - a reply thread in a plain supergroup is not a topic', () => {
    const m = mapMessage(msg({ text: 'reply', message_thread_id: 9 }), bot, () => true)!;
    assert.deepEqual([m.chat, m.ref], ['telegram:-1001234567890', '10']);
  });

  test('inbound - a photo is taken at its largest size; documents keep their name; voice notes are files', () => {
    const m = mapMessage(msg({
      caption: 'receipts',
      photo: [{ file_id: 'small', file_unique_id: 's', width: 90, height: 90, file_size: 900 }, { file_id: 'big', file_unique_id: 'b', width: 1280, height: 960, file_size: 90_000 }],
    }), bot, none)!;
    assert.equal(m.text, 'receipts');
    assert.deepEqual(m.files, [{ kind: 'photo', fileId: 'big', name: 'photo.jpg', size: 90_000 }]);
    const d = mapMessage(msg({ document: { file_id: 'd', file_unique_id: 'd', file_name: 'Q3 report.pdf', file_size: 5 } }), bot, none)!;
    assert.deepEqual(d.files, [{ kind: 'document', fileId: 'd', name: 'Q3 report.pdf', size: 5 }]);
    const v = mapMessage(msg({ voice: { file_id: 'v', file_unique_id: 'v', duration: 3, mime_type: 'audio/ogg' } }), bot, none)!;
    assert.deepEqual(v.files, [{ kind: 'voice', fileId: 'v', name: 'voice.ogg' }]);
  });

  test('inbound - service messages and messages of the bot itself are not taken; a sticker is a note', () => {
    assert.equal(mapMessage(msg({ new_chat_members: [alice] }), bot, none), undefined);
    assert.equal(mapMessage(msg({ forum_topic_created: { name: 'x', icon_color: 1 } }), bot, none), undefined);
    assert.equal(mapMessage(msg({ text: 'mine', from: { id: 777, is_bot: true, first_name: 'Hako' } }), bot, none), undefined);
    assert.deepEqual(mapMessage(msg({ sticker: { emoji: '👍' } }), bot, none)!.notes, ['[sticker 👍]']);
  });

  test('inbound - an anonymous admin or a channel speaks as the chat it posts as', () => {
    const m = mapMessage(msg({ text: 'announcement', from: { id: 1087968824, is_bot: true, first_name: 'Group', username: 'GroupAnonymousBot' }, sender_chat: group }), bot, none)!;
    assert.deepEqual([m.sender, m.senderId], ['Sales team', 'telegram:-1001234567890']);
  });

  test('inbound - the agent sees the text, then one line per file', () => {
    assert.equal(composeText('look', ['[photo: /workspace/group/inbox/2026-11-30/a.jpg]'], ['[sticker 👍]']), 'look\n[photo: /workspace/group/inbox/2026-11-30/a.jpg]\n[sticker 👍]');
    assert.equal(composeText('', ['[voice: /workspace/group/inbox/2026-11-30/v.ogg]'], []), '[voice: /workspace/group/inbox/2026-11-30/v.ogg]');
  });

  test('inbound - addresses and refs parse; anything else is refused', () => {
    assert.deepEqual(parseAddress('-1001234567890'), { chatId: -1001234567890 });
    assert.deepEqual(parseAddress('-1001234567890/5'), { chatId: -1001234567890, thread: 5 });
    assert.deepEqual(parseRef('10/5'), { messageId: 10, thread: 5 });
    for (const bad of ['', 'abc', '12/x', '@channel', '1/2/3', '99999999999999999999']) assert.equal(parseAddress(bad), undefined, bad);
    assert.equal(parseRef('-3'), undefined);
  });
});
