// The Telegram emulator speaks the Bot API as api.telegram.org does, to the unmodified
// grammY client (pointed at it by apiRoot) and to plain HTTP: the tests of the channel are
// only as good as this peer, so its protocol is held to the real server's here.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, GrammyError, InputFile } from 'grammy';
import { TelegramEmulator, TINY_JPEG } from '../support/telegram-emulator.ts';

let emu: TelegramEmulator;
let api: Api;

async function refusal(p: Promise<unknown>): Promise<GrammyError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GrammyError, String(err));
    return err;
  }
  assert.fail('the call was not refused');
}

describe('telegram emulator', () => {
  before(async () => {
    emu = await TelegramEmulator.start({ username: 'emu_bot' });
    api = new Api(emu.token, { apiRoot: emu.apiRoot });
  });
  after(() => emu.close());

  test('emulator - getMe answers the bot; a wrong token is 401 Unauthorized', async () => {
    const me = await api.getMe();
    assert.equal(me.username, 'emu_bot');
    assert.equal(me.is_bot, true);
    const wrong = new Api(`${me.id}:AAwrongwrongwrongwrongwrongwrongwrong1`, { apiRoot: emu.apiRoot });
    const err = await refusal(wrong.getMe());
    assert.deepEqual([err.error_code, err.description], [401, 'Unauthorized']);
  });

  test('emulator - sendMessage: MarkdownV2 is parsed into entities; an unescaped reserved character is refused as Telegram does', async () => {
    const chat = emu.privateChat(emu.user('Ann'));
    await api.sendMessage(chat.id, '*bold \\*text*\n_italic_ __underline__ ~strike~ ||spoiler|| [link](http://www.example.com/) `code` Done\\.', { parse_mode: 'MarkdownV2' });
    const [shown] = emu.sent(chat.id);
    assert.equal(shown!.text, 'bold *text\nitalic underline strike spoiler link code Done.');
    assert.deepEqual(shown!.entities.map((e) => e.type), ['bold', 'italic', 'underline', 'strikethrough', 'spoiler', 'text_link', 'code']);
    const dot = await refusal(api.sendMessage(chat.id, 'Done.', { parse_mode: 'MarkdownV2' }));
    assert.deepEqual([dot.error_code, dot.description], [400, "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"]);
    const open = await refusal(api.sendMessage(chat.id, 'ü *never closed', { parse_mode: 'MarkdownV2' }));
    assert.equal(open.description, "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 3");
    const legacy = await refusal(api.sendMessage(chat.id, 'a_b', { parse_mode: 'Markdown' }));
    assert.equal(legacy.description, "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 1");
    await api.sendMessage(chat.id, '<b>bold</b> &lt;tag&gt; <a href="https://example.com">x</a>', { parse_mode: 'HTML' });
    assert.equal(emu.sent(chat.id).at(-1)!.text, 'bold <tag> x');
    assert.equal(emu.sent(chat.id).length, 2, 'refused messages are not shown');
  });

  test('emulator - sendMessage: 4,096 characters pass, 4,097 are too long; an empty text and an unknown chat are refused', async () => {
    const chat = emu.privateChat(emu.user('Bo'));
    await api.sendMessage(chat.id, 'x'.repeat(4096));
    assert.equal((await refusal(api.sendMessage(chat.id, 'x'.repeat(4097)))).description, 'Bad Request: message is too long');
    assert.equal((await refusal(api.sendMessage(chat.id, '   '))).description, 'Bad Request: message text is empty');
    assert.equal((await refusal(api.sendMessage(123, 'hi'))).description, 'Bad Request: chat not found');
  });

  test('emulator - a reply needs its message, unless allow_sending_without_reply', async () => {
    const chat = emu.privateChat(emu.user('Cy'));
    const m = emu.message({ chat, text: 'question' });
    await api.sendMessage(chat.id, 'answer', { reply_parameters: { message_id: m.message_id } });
    assert.equal(emu.sent(chat.id)[0]!.reply_to, m.message_id);
    assert.equal((await refusal(api.sendMessage(chat.id, 'x', { reply_parameters: { message_id: 999 } }))).description, 'Bad Request: message to be replied not found');
    await api.sendMessage(chat.id, 'anyway', { reply_parameters: { message_id: 999, allow_sending_without_reply: true } });
  });

  test('emulator - getUpdates is a long poll that answers as soon as an update arrives, and an offset confirms', async () => {
    const chat = emu.privateChat(emu.user('Di'));
    const skip = await api.getUpdates({ timeout: 0 });
    const offset = skip.length ? skip.at(-1)!.update_id + 1 : 0;
    await api.getUpdates({ offset, timeout: 0 });
    const polls = emu.callsOf('getUpdates').length;
    const waiting = api.getUpdates({ offset, timeout: 50, allowed_updates: ['message'] });
    await emu.waitForCalls('getUpdates', polls + 1); // the poll waits at the server
    emu.message({ chat, text: 'ping' });
    const [u] = await waiting;
    assert.equal(u!.message!.text, 'ping');
    assert.equal((await api.getUpdates({ offset, timeout: 0 }))[0]!.update_id, u!.update_id, 'not confirmed yet: delivered again');
    assert.deepEqual(await api.getUpdates({ offset: u!.update_id + 1, timeout: 0 }), [], 'confirmed by a higher offset');
    assert.equal(emu.pendingUpdates, 0);
  });

  test('emulator - a second getUpdates cuts the first off with 409 Conflict', async () => {
    const polls = emu.callsOf('getUpdates').length;
    const first = refusal(api.getUpdates({ timeout: 50 }));
    await emu.waitForCalls('getUpdates', polls + 1);
    const second = api.getUpdates({ timeout: 0 });
    const err = await first;
    assert.deepEqual([err.error_code, err.description], [409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running']);
    await second;
  });

  test('emulator - 429 carries retry_after in parameters, for the next N calls only', async () => {
    emu.rateLimit({ calls: 1, retryAfter: 3, methods: ['getMe'] });
    const err = await refusal(api.getMe());
    assert.deepEqual([err.error_code, err.description, err.parameters.retry_after], [429, 'Too Many Requests: retry after 3', 3]);
    await api.getMe();
  });

  test('emulator - files: getFile gives a path that downloads the bytes; sendDocument and sendPhoto take multipart uploads', async () => {
    const chat = emu.privateChat(emu.user('Ed'));
    const data = Buffer.from('%PDF-1.4 quarterly numbers');
    const m = emu.message({ chat, document: { data, name: 'q3.pdf' } });
    const doc = m.document as { file_id: string };
    const file = await api.getFile(doc.file_id);
    const res = await fetch(`${emu.apiRoot}/file/bot${emu.token}/${file.file_path}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
    assert.equal((await fetch(`${emu.apiRoot}/file/botWRONG/${file.file_path}`)).status, 401);
    await api.sendDocument(chat.id, new InputFile(Buffer.from('a,b\n1,2\n'), 'table.csv'), { caption: 'the *table*', parse_mode: 'Markdown' });
    await api.sendPhoto(chat.id, new InputFile(TINY_JPEG, 'dot.jpg'));
    const [sentDoc, sentPhoto] = emu.sent(chat.id);
    assert.deepEqual([sentDoc!.kind, sentDoc!.file!.name, sentDoc!.file!.data.toString(), sentDoc!.text], ['document', 'table.csv', 'a,b\n1,2\n', 'the table']);
    assert.deepEqual([sentPhoto!.kind, sentPhoto!.file!.data.equals(TINY_JPEG)], ['photo', true]);
    assert.equal(emu.callsOf('sendDocument')[0]!.encoding, 'multipart');
    assert.equal((await refusal(api.sendPhoto(chat.id, new InputFile(Buffer.from('not an image'), 'x.jpg')))).description, 'Bad Request: IMAGE_PROCESS_FAILED');
  });

  test('emulator - form-urlencoded and query-string calls work as JSON ones do', async () => {
    const chat = emu.privateChat(emu.user('Flo'));
    const form = await fetch(`${emu.apiRoot}/bot${emu.token}/sendMessage`, { method: 'POST', body: new URLSearchParams({ chat_id: String(chat.id), text: 'via form', entities: JSON.stringify([{ type: 'bold', offset: 4, length: 4 }]) }) });
    assert.equal(form.status, 200);
    const query = await fetch(`${emu.apiRoot}/bot${emu.token}/sendMessage?chat_id=${chat.id}&text=via%20query`);
    assert.deepEqual(await query.json().then((b: any) => [b.ok, b.result.text]), [true, 'via query']);
    assert.deepEqual(emu.sent(chat.id).map((s) => [s.text, s.entities.length]), [['via form', 1], ['via query', 0]]);
    const unknown = await fetch(`${emu.apiRoot}/bot${emu.token}/noSuchMethod`);
    assert.deepEqual(await unknown.json(), { ok: false, error_code: 404, description: 'Not Found' });
  });

  test('emulator - a revoked token is refused from then on, also for a waiting long poll', async () => {
    const other = await TelegramEmulator.start();
    try {
      const client = new Api(other.token, { apiRoot: other.apiRoot });
      const waiting = refusal(client.getUpdates({ timeout: 50 }));
      await other.waitForCalls('getUpdates', 1);
      other.revokeToken();
      assert.equal((await waiting).error_code, 401);
      assert.equal((await refusal(client.getMe())).error_code, 401);
    } finally {
      await other.close();
    }
  });
});
