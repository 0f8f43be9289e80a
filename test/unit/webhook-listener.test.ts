import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { MAX_BODY_BYTES, route, WebhookListener, webhookChannels } from '../../src/channels/webhook.ts';
import { HttpChannel } from '../../src/channels/http.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { Channel, WebhookReply, WebhookRequest } from '../../src/core/channel.ts';
import { recordingContext } from '../support/channel-conformance.ts';

const SECRET = 'channel-secret';

/** A channel that takes webhooks signed like LINE's (base64 HMAC of the raw body) and records what it was given. */
function signedChannel(name: string, opts: { throws?: boolean } = {}): Channel & { seen: WebhookRequest[] } {
  const seen: WebhookRequest[] = [];
  return {
    name,
    seen,
    start: async () => {},
    stop: async () => {},
    send: async () => {},
    async webhook(req): Promise<WebhookReply> {
      if (opts.throws) throw new Error('boom');
      const want = createHmac('sha256', SECRET).update(req.body).digest('base64');
      if (req.headers['x-signature'] !== want) return { status: 401, refused: 'bad signature' };
      seen.push(req);
      return { status: 200, body: '{"ok":true}', contentType: 'application/json' };
    },
  };
}

function post(port: number, p: string, body: string | Buffer, headers: Record<string, string> = {}, method = 'POST'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(method === 'GET' ? undefined : body);
  });
}

const sign = (body: string | Buffer) => createHmac('sha256', SECRET).update(body).digest('base64');

async function listening(t: { after(fn: () => Promise<void>): void }, channels: Channel[]) {
  const ctx = recordingContext();
  const refused: { channel: string; reason: string; detail?: Readonly<Record<string, string>> }[] = [];
  ctx.refused = (channel, reason, detail) => { refused.push({ channel, reason, ...(detail ? { detail } : {}) }); };
  const listener = new WebhookListener({ port: 0, bind: '127.0.0.1', channels, log: silentLogger });
  await listener.start(ctx);
  t.after(() => listener.stop());
  return { listener, refused };
}

test('webhook listener - a request reaches the channel its first path segment names, with the raw body, the rest of the path and the query', async (t) => {
  const line = signedChannel('line');
  const slack = signedChannel('slack');
  const { listener } = await listening(t, [line, slack]);
  const body = Buffer.from('{"events":[{"text":"caf\u00e9 \u2615"}]}');
  const res = await post(listener.port, '/line/callback?x=1', body, { 'x-signature': sign(body), 'content-type': 'application/json' });
  assert.equal(res.status, 200);
  assert.equal(res.body, '{"ok":true}');
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(slack.seen.length, 0);
  assert.equal(line.seen.length, 1);
  const got = line.seen[0]!;
  assert.deepEqual([got.method, got.path, got.query], ['POST', '/callback', 'x=1']);
  assert.ok(got.body.equals(body), 'the body is handed over byte for byte');
  assert.equal(got.headers['content-type'], 'application/json');
  assert.equal(got.remote, '127.0.0.1');
});

test('webhook listener - a request the channel refuses is answered with its status and audited through the context, naming the channel, the reason and the path only', async (t) => {
  const line = signedChannel('line');
  const { listener, refused } = await listening(t, [line]);
  const res = await post(listener.port, '/line/webhook', '{"events":[]}', { 'x-signature': 'forged' });
  assert.equal(res.status, 401);
  assert.doesNotMatch(res.body, /bad signature/, 'the reason is not told to the sender');
  assert.equal(line.seen.length, 0);
  assert.deepEqual(refused, [{ channel: 'line', reason: 'bad signature', detail: { path: '/webhook', remote: '127.0.0.1' } }]);
});

test('webhook listener - a path that names no webhook channel is 404 and reaches no channel, the API\'s paths included', async (t) => {
  const line = signedChannel('line');
  const plain: Channel = { name: 'telegram', start: async () => {}, stop: async () => {}, send: async () => {} };
  const { listener, refused } = await listening(t, [line, plain]);
  for (const p of ['/', '/api/messages', '/telegram/anything', '/LINE/webhook', '/../line/webhook', '/slack/events']) {
    const res = await post(listener.port, p, 'x', { 'x-signature': sign('x') });
    assert.equal(res.status, 404, p);
  }
  assert.equal(line.seen.length, 0);
  assert.deepEqual(refused, []);
});

test('webhook listener - a body over the limit is refused with 413 before any channel sees it', async (t) => {
  const line = signedChannel('line');
  const { listener } = await listening(t, [line]);
  const big = Buffer.alloc(MAX_BODY_BYTES + 1, 0x61);
  const res = await post(listener.port, '/line/webhook', big, { 'x-signature': sign(big) });
  assert.equal(res.status, 413);
  assert.equal(line.seen.length, 0);
});

test('webhook listener - a channel that throws is answered 500 and the listener goes on serving', async (t) => {
  const broken = signedChannel('broken', { throws: true });
  const line = signedChannel('line');
  const { listener } = await listening(t, [broken, line]);
  assert.equal((await post(listener.port, '/broken/x', '{}')).status, 500);
  assert.equal((await post(listener.port, '/line/webhook', '{}', { 'x-signature': sign('{}') })).status, 200);
});

test('webhook listener - methods other than GET and POST are refused with 405', async (t) => {
  const line = signedChannel('line');
  const { listener } = await listening(t, [line]);
  assert.equal((await post(listener.port, '/line/webhook', '{}', { 'x-signature': sign('{}') }, 'PUT')).status, 405);
  assert.equal(line.seen.length, 0);
});

test('webhook listener - a port in use is one error naming the address and the setting', async (t) => {
  const first = new WebhookListener({ port: 0, bind: '127.0.0.1', channels: [signedChannel('line')], log: silentLogger });
  await first.start(recordingContext());
  t.after(() => first.stop());
  const second = new WebhookListener({ port: first.port, bind: '127.0.0.1', channels: [signedChannel('line')], log: silentLogger });
  await assert.rejects(second.start(recordingContext()), (err: Error) => {
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${first.port}.*EADDRINUSE.*HAKO_WEBHOOK_PORT`));
    return true;
  });
});

test('webhook listener - the API port does not serve webhook paths: a platform\'s request there meets the token check, not a channel', async (t) => {
  const api = new HttpChannel({ port: 0, token: 't'.repeat(32), log: silentLogger });
  await api.start(recordingContext());
  t.after(() => api.stop());
  const res = await post(api.port, '/line/webhook', '{"events":[]}', { 'x-signature': sign('{"events":[]}'), host: `127.0.0.1:${api.port}` });
  assert.ok(res.status === 401 || res.status === 404, `status ${res.status}`);
});

test('webhook listener - only channels with a webhook handler are routed; with none, hako opens no webhook port', () => {
  const plain: Channel = { name: 'telegram', start: async () => {}, stop: async () => {}, send: async () => {} };
  assert.deepEqual(webhookChannels([plain]), []);
  assert.deepEqual(webhookChannels([plain, signedChannel('line')]).map((c) => c.name), ['line']);
});

test('webhook listener - route splits the channel name from the rest of the path and the query', () => {
  assert.deepEqual(route('/line/webhook?a=1&b=2'), { channel: 'line', path: '/webhook', query: 'a=1&b=2' });
  assert.deepEqual(route('/whatsapp'), { channel: 'whatsapp', path: '/', query: '' });
  assert.deepEqual(route('/slack/events/'), { channel: 'slack', path: '/events/', query: '' });
  assert.equal(route('/'), undefined);
  assert.equal(route('/Line/x'), undefined);
  assert.equal(route('//line'), undefined);
});
