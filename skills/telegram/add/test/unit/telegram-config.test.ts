// The Telegram channel's settings and what its failures mean: checked once with messages
// that say how to fix them, and never a token in any text.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_API_ROOT, DEFAULT_MAX_BYTES, telegramConfig } from '../../src/channels/telegram/config.ts';
import { backoff, classify, scrub } from '../../src/channels/telegram/errors.ts';

const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1';

describe('telegram config', () => {
  test('config - a token in the BotFather format, the default API root and the 20 MB limit', () => {
    assert.deepEqual(telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN }), { token: TOKEN, apiRoot: DEFAULT_API_ROOT, maxBytes: DEFAULT_MAX_BYTES, ownerIds: new Set() });
    assert.equal(DEFAULT_MAX_BYTES, 20 * 1024 * 1024);
  });

  test('config - a missing or malformed token is refused with where to put it, without echoing it', () => {
    assert.throws(() => telegramConfig({}), /TELEGRAM_BOT_TOKEN is not set.*secrets\.env/);
    const wrong = 'my-secret-password-that-is-not-a-token';
    assert.throws(() => telegramConfig({ TELEGRAM_BOT_TOKEN: wrong }), (err: Error) => /does not look like a bot token/.test(err.message) && !err.message.includes(wrong));
  });

  test('config - TELEGRAM_OWNER_IDS: user ids, comma or space separated; anything else is refused with where to find the id', () => {
    assert.deepEqual(telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_OWNER_IDS: '12345, 67890 42' }).ownerIds, new Set(['12345', '67890', '42']));
    assert.throws(() => telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_OWNER_IDS: '12345,@olga' }), /TELEGRAM_OWNER_IDS holds "@olga", which is not a Telegram user id .*telegram:<id> address/);
  });

  test('config - TELEGRAM_API_ROOT: trailing slashes dropped; plain http only to loopback, since the token is in every URL', () => {
    assert.equal(telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: 'http://127.0.0.1:8081/' }).apiRoot, 'http://127.0.0.1:8081');
    assert.equal(telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: 'https://bots.example.com/tg' }).apiRoot, 'https://bots.example.com/tg');
    assert.throws(() => telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: 'http://bots.example.com' }), /must use https:\/\//);
    assert.throws(() => telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: 'ftp://x' }), /http\(s\) URL/);
    assert.throws(() => telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: 'https://u:p@x.example' }), /without credentials/);
  });

  test('config - HAKO_ATTACHMENT_MAX_BYTES is read as every channel reads it; a self-hosted Bot API may be given more than 20 MB', () => {
    assert.equal(telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, HAKO_ATTACHMENT_MAX_BYTES: '1000' }).maxBytes, 1000);
    assert.equal(telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: 'https://bots.example.com', HAKO_ATTACHMENT_MAX_BYTES: String(50 * 1024 * 1024) }).maxBytes, 50 * 1024 * 1024);
    for (const bad of ['0', '-1', '1.5', '20MB']) assert.throws(() => telegramConfig({ TELEGRAM_BOT_TOKEN: TOKEN, HAKO_ATTACHMENT_MAX_BYTES: bad }), /^Error: telegram: HAKO_ATTACHMENT_MAX_BYTES must be a positive whole number of bytes/);
  });
});

describe('telegram errors', () => {
  test('errors - the token is scrubbed from any text, also one it was not told about', () => {
    const url = `request to https://api.telegram.org/bot${TOKEN}/getUpdates failed, reason: ECONNRESET`;
    assert.equal(scrub(url, TOKEN), 'request to https://api.telegram.org/bot[token]/getUpdates failed, reason: ECONNRESET');
    assert.equal(scrub(`other 987654321:${'A'.repeat(35)} here`, TOKEN), 'other [token] here');
  });

  test('errors - grammY errors are classified by code; network errors are scrubbed', () => {
    const grammy = (code: number, description: string, parameters = {}) => ({ name: 'GrammyError', error_code: code, description, parameters });
    assert.equal(classify(grammy(401, 'Unauthorized'), TOKEN).kind, 'unauthorized');
    assert.deepEqual(classify(grammy(429, 'Too Many Requests: retry after 7', { retry_after: 7 }), TOKEN), { kind: 'rate', retryAfter: 7, text: '429 Too Many Requests: retry after 7' });
    assert.deepEqual(classify(grammy(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"), TOKEN).kind, 'conflict');
    assert.equal((classify(grammy(409, 'Conflict: terminated by other getUpdates request'), TOKEN) as { webhook: boolean }).webhook, false);
    assert.equal(classify(grammy(502, 'Bad Gateway'), TOKEN).kind, 'network');
    assert.deepEqual(classify(grammy(400, 'Bad Request: chat not found'), TOKEN), { kind: 'refused', code: 400, description: 'Bad Request: chat not found', text: '400 Bad Request: chat not found' });
    const http = { name: 'HttpError', message: "Network request for 'getMe' failed!", error: { name: 'FetchError', message: `request to http://127.0.0.1:1/bot${TOKEN}/getMe failed, reason: connect ECONNREFUSED` } };
    const f = classify(http, TOKEN);
    assert.equal(f.kind, 'network');
    assert.ok(!f.text.includes(TOKEN) && f.text.includes('ECONNREFUSED'), f.text);
    assert.equal(classify({ name: 'HttpError', error: { name: 'AbortError', message: 'aborted' } }, TOKEN).kind, 'aborted');
  });

  test('errors - backoff doubles from 1 s to at most 60 s, spread by ±20 %', () => {
    assert.deepEqual([1, 2, 3, 4, 7, 20].map((n) => backoff(n, () => 0.5)), [1000, 2000, 4000, 8000, 60_000, 60_000]);
    assert.equal(backoff(1, () => 0), 800);
    assert.equal(backoff(1, () => 1), 1200);
  });
});
