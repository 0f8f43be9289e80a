// The API base URL settings of the chat channels (src/channels/api-base.ts): one rule for all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiBaseUrl, type ApiBaseSetting } from '../../src/channels/api-base.ts';
import { channelAttachmentLimits } from '../../src/channels/attachments.ts';

const telegram: ApiBaseSetting = { channel: 'telegram', name: 'TELEGRAM_API_ROOT', what: "the Bot API server's base", fallback: 'https://api.telegram.org', secret: 'the bot token' };

test('api base - unset or empty is the platform\'s own base; a set one loses its trailing slashes', () => {
  assert.equal(apiBaseUrl(undefined, telegram), 'https://api.telegram.org');
  assert.equal(apiBaseUrl('  ', telegram), 'https://api.telegram.org');
  assert.equal(apiBaseUrl(' https://bots.example.com/root// ', telegram), 'https://bots.example.com/root');
});

test('api base - plain http only to a loopback address, since the credential travels in every request', () => {
  for (const ok of ['http://127.0.0.1:8081', 'http://127.5.6.7', 'http://localhost:9000/x', 'http://[::1]:8081']) assert.equal(apiBaseUrl(ok, telegram), ok.replace(/\/+$/, ''));
  assert.throws(() => apiBaseUrl('http://bots.example.com', telegram),
    { message: 'telegram: TELEGRAM_API_ROOT must use https:// (plain http:// only to a loopback address such as 127.0.0.1): the bot token travels in every request' });
  assert.throws(() => apiBaseUrl('http://127.0.0.1.example.com', telegram), /must use https/);
});

test('api base - not a URL, another scheme, credentials, a query or a fragment are refused with what to give', () => {
  assert.throws(() => apiBaseUrl('bots.example.com', telegram), { message: 'telegram: TELEGRAM_API_ROOT "bots.example.com" is not a URL: give the Bot API server\'s base, e.g. https://api.telegram.org' });
  assert.throws(() => apiBaseUrl('ftp://bots.example.com', telegram), { message: 'telegram: TELEGRAM_API_ROOT must be an http(s) URL, not ftp:' });
  for (const bad of ['https://u:p@bots.example.com', 'https://bots.example.com/?a=1', 'https://bots.example.com/#x']) {
    assert.throws(() => apiBaseUrl(bad, telegram), { message: 'telegram: TELEGRAM_API_ROOT must be a plain base URL, without credentials, query or fragment' });
  }
});

test('api base - an origin-only setting refuses a path', () => {
  const line: ApiBaseSetting = { channel: 'line', name: 'LINE_API_ROOT', what: "the API's base", fallback: 'https://api.line.me', secret: 'the channel access token', originOnly: true };
  assert.equal(apiBaseUrl('http://127.0.0.1:9000/', line), 'http://127.0.0.1:9000');
  assert.throws(() => apiBaseUrl('https://x.example/path', line), { message: 'line: LINE_API_ROOT must be a plain origin such as https://api.line.me, without a path, credentials, query or fragment' });
});

test('channel attachment limits - an invalid limit is refused with the channel\'s name first', () => {
  assert.equal(channelAttachmentLimits('slack', { HAKO_ATTACHMENT_MAX_BYTES: '1000' }).perFile, 1000);
  assert.throws(() => channelAttachmentLimits('slack', { HAKO_ATTACHMENT_MAX_BYTES: 'lots' }), /^Error: slack: HAKO_ATTACHMENT_MAX_BYTES must be a positive whole number of bytes/);
});
