// Streamed reply text: the parser on realistic streams of both providers (cut at every byte,
// with CRLF, junk and over-long lines), a JSON body, and bounded memory; and the proxy's tap,
// which tells the text as it passes without holding back the bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { MAX_EVENT, MAX_TEXT, streamTextParser } from '../../src/core/stream-text.ts';
import { startGroupProxy } from '../../src/core/proxy.ts';
import { silentLogger } from '../../src/core/log.ts';
import { startModelServer } from '../support/model-server.ts';

const SSE = 'text/event-stream; charset=utf-8';

// Shapes as the real APIs send them (ids shortened). The reply text is "Grüße 😀, world!".
const ANTHROPIC = [
  'event: message_start',
  'data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":4,"output_tokens":1}}}',
  '',
  'event: content_block_start',
  'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
  '',
  'event: ping',
  'data: {"type": "ping"}',
  '',
  'event: content_block_delta',
  'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Grüße 😀"}}',
  '',
  'event: content_block_delta',
  'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", world!"}}',
  '',
  'event: content_block_stop',
  'data: {"type":"content_block_stop","index":0}',
  '',
  'event: content_block_start',
  'data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"bash","input":{}}}',
  '',
  'event: content_block_delta',
  'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"command\\": \\"ls\\"}"}}',
  '',
  'event: content_block_stop',
  'data: {"type":"content_block_stop","index":1}',
  '',
  'event: message_delta',
  'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}',
  '',
  'event: message_stop',
  'data: {"type":"message_stop"}',
  '',
  '',
].join('\n');

const OPENAI = [
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"Grüße 😀"},"finish_reason":null}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":", world!"},"finish_reason":null}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"bash","arguments":"{\\"command\\": \\"ls\\"}"}}]},"finish_reason":null}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
  '',
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":20,"total_tokens":24}}',
  '',
  'data: [DONE]',
  '',
  '',
].join('\n');

const REPLY = 'Grüße 😀, world!';

/** Feeds `body` in the given pieces; returns what each push added, what end added, and the parser. */
function feed(contentType: string | undefined, pieces: readonly Uint8Array[]) {
  const p = streamTextParser(contentType);
  const added = pieces.map((c) => p.push(c));
  const last = p.end();
  return { p, added, last };
}

for (const [name, body] of [['anthropic', ANTHROPIC], ['openai', OPENAI]] as const) {
  test(`stream text - ${name}: the reply's text is read, and nothing of tool calls, usage or pings`, () => {
    const { p, added, last } = feed(SSE, [Buffer.from(body)]);
    assert.equal(p.text, REPLY);
    assert.deepEqual([added.join(''), last, p.truncated], [REPLY, '', false]);
  });

  test(`stream text - ${name}: cut into two chunks at every byte (mid-line, mid-character), the text is the same and each push returns what it added`, () => {
    const bytes = Buffer.from(body);
    for (let i = 0; i <= bytes.length; i++) {
      const { p, added, last } = feed(SSE, [bytes.subarray(0, i), bytes.subarray(i)]);
      assert.equal(p.text, REPLY, `cut at byte ${i}`);
      assert.equal(added.join('') + last, REPLY, `cut at byte ${i}`);
    }
  });

  test(`stream text - ${name}: fed one byte at a time, the text grows as each delta's event ends`, () => {
    const p = streamTextParser(SSE);
    const seen: string[] = [];
    for (const b of Buffer.from(body)) if (p.push(Uint8Array.of(b)) !== '') seen.push(p.text);
    assert.deepEqual(seen, ['Grüße 😀', REPLY]);
  });

  test(`stream text - ${name}: CRLF line ends, split between CR and LF, read the same`, () => {
    const bytes = Buffer.from(body.replaceAll('\n', '\r\n'));
    for (let i = 0; i <= bytes.length; i += 7) {
      const { p } = feed(SSE, [bytes.subarray(0, i), bytes.subarray(i)]);
      assert.equal(p.text, REPLY, `cut at byte ${i}`);
    }
    const cr = feed(SSE, [Buffer.from(body.replaceAll('\n', '\r'))]);
    assert.equal(cr.p.text, REPLY, 'CR-only line ends');
  });

  test(`stream text - ${name}: a stream cut off after a complete data line (no blank line yet) still yields that line's text on end`, () => {
    const end = body.indexOf('\n', body.indexOf(', world!'));
    const { p } = feed(SSE, [Buffer.from(body.slice(0, end))]);
    assert.equal(p.text, REPLY);
  });
}

test('stream text - a non-streamed JSON body yields nothing, even one full of text', () => {
  const json = JSON.stringify({ choices: [{ index: 0, delta: { content: 'not a stream' }, message: { content: 'hello' } }] });
  const { p, added, last } = feed('application/json', [Buffer.from(`data: ${json}\n\n`)]);
  assert.deepEqual([p.streaming, p.text, added, last], [false, '', [''], '']);
  assert.equal(feed(undefined, [Buffer.from(OPENAI)]).p.text, '', 'no content type: not a stream');
});

test('stream text - junk is ignored and never throws: bad JSON, wrong types, other choices, binary noise', () => {
  const junk = [
    'data: {not json',
    '',
    'data: {"choices":[{"index":0,"delta":{"content":42}}]}',
    '',
    'data: {"choices":[{"index":1,"delta":{"content":"second choice"}}]}',
    '',
    'data: {"choices":"nope"}',
    '',
    'data: {"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"hmm"}}',
    '',
    'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":null}}',
    '',
    'data: null',
    '',
    'data: [1,2,3]',
    '',
    ': a comment with data: {"choices":[{"delta":{"content":"no"}}]}',
    'id: 5',
    'retry: 10',
    'event: content_block_delta',
    'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"kept"}}',
    '',
    '',
  ].join('\n');
  const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
  const { p } = feed(SSE, [Buffer.from(junk), noise, Buffer.from('\n\ndata: {"choices":[{"delta":{"content":" too"}}]}\n\n')]);
  assert.equal(p.text, 'kept too');
});

test('stream text - an event whose data comes on several lines is read as one (joined with LF)', () => {
  const { p } = feed(SSE, [Buffer.from('data: {"choices":[{"index":0,\ndata: "delta":{"content":"two lines"}}]}\n\n')]);
  assert.equal(p.text, 'two lines');
});

test('stream text - a line longer than MAX_EVENT is skipped whole, in one chunk or many, and the events after it are read', () => {
  const huge = `data: {"choices":[{"delta":{"content":"${'x'.repeat(MAX_EVENT + 10)}"}}]}\n\n`;
  const after = 'data: {"choices":[{"delta":{"content":"after"}}]}\n\n';
  const one = feed(SSE, [Buffer.from(huge + after)]);
  assert.deepEqual([one.p.text, one.p.truncated], ['after', true]);
  const bytes = Buffer.from(huge + after);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 64 * 1024) pieces.push(bytes.subarray(i, i + 64 * 1024));
  const many = feed(SSE, pieces);
  assert.deepEqual([many.p.text, many.p.truncated], ['after', true]);
});

test('stream text - a huge line that no chunk ends is dropped as it grows (not kept whole), and the events after it are read', () => {
  const p = streamTextParser(SSE);
  const chunk = Buffer.alloc(256 * 1024, 'y');
  p.push(Buffer.from('data: '));
  for (let i = 0; i < 4 * (MAX_EVENT / chunk.length) + 1; i++) p.push(chunk);
  p.push(Buffer.from('\n\ndata: {"choices":[{"delta":{"content":"still reads"}}]}\n\n'));
  p.end();
  assert.deepEqual([p.text, p.truncated], ['still reads', true]);
});

test('stream text - the text kept stops at MAX_TEXT characters and says it was truncated', () => {
  const p = streamTextParser(SSE);
  const piece = 'z'.repeat(64 * 1024);
  let added = 0;
  for (let i = 0; i < MAX_TEXT / piece.length + 2; i++) added += p.push(Buffer.from(`data: {"choices":[{"delta":{"content":"${piece}"}}]}\n\n`)).length;
  assert.deepEqual([p.text.length, added, p.truncated], [MAX_TEXT, MAX_TEXT, true]);
});

/** A POST through the proxy's socket; `shows(text)` resolves once the streamed text the client got so far is `text`. */
function send(socketPath: string, p: string, body: object) {
  let received = '';
  const seen = streamTextParser('text/event-stream');
  const waiters: { text: string; resolve: () => void }[] = [];
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.on('data', (c: Buffer) => {
        received += c.toString('utf8');
        seen.push(c);
        for (const w of waiters.filter((w) => w.text === seen.text)) w.resolve();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: received }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  const shows = (text: string) => seen.text === text ? Promise.resolve() : new Promise<void>((resolve) => { waiters.push({ text, resolve }); });
  return { done, shows };
}

for (const provider of ['anthropic', 'openai'] as const) {
  test(`proxy - ${provider}: a streamed reply's text is told as it passes (the first words while the model still writes, the whole text at the end), and the client gets the same stream`, async (t) => {
    const model = await startModelServer();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-stream-text-'));
    const told: string[] = [];
    let firstTold!: () => void;
    const first = new Promise<void>((r) => { firstTold = r; });
    const proxy = await startGroupProxy({
      group: 'team', socketPath: path.join(dir, 'proxy.sock'), log: silentLogger, provider,
      providerConfig: { apiKey: 'sk-test', baseURL: provider === 'anthropic' ? model.anthropicBaseURL : model.openaiBaseURL, keyOptional: false },
      onText: (text) => { told.push(text); firstTold(); },
    });
    t.after(async () => { await proxy.close(); await model.close(); fs.rmSync(dir, { recursive: true, force: true }); });
    let release!: () => void;
    const full = 'Hello there — a reply 😀 written in two goes.';
    model.script({ text: full, pause: { at: 'Hello there'.length, until: new Promise<void>((r) => { release = r; }) } }, { text: 'not streamed' });
    const route = provider === 'anthropic' ? '/anthropic/v1/messages' : '/openai/chat/completions';
    const ask = { model: 'test-model', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
    const streamed = send(path.join(dir, 'proxy.sock'), route, { ...ask, stream: true });
    await first;
    // The model holds the rest, so the client can only have the first words if the tap held nothing back.
    await streamed.shows('Hello there');
    assert.ok(told.length > 0 && told.every((text) => text !== '' && 'Hello there'.startsWith(text)), `told while the model holds the rest: ${JSON.stringify(told)}`);
    release();
    const r = await streamed.done;
    assert.equal(r.status, 200);
    const all = streamTextParser('text/event-stream');
    all.push(Buffer.from(r.body));
    all.end();
    assert.equal(all.text, full, 'the client got the whole stream');
    assert.equal(told.at(-1), full, 'the whole text is told when the response ends');
    for (const [i, text] of told.entries()) if (i > 0) assert.ok(text.startsWith(told[i - 1]!) && text !== told[i - 1], `each report grows the last: ${JSON.stringify(told)}`);
    const before = told.length;
    const whole = await send(path.join(dir, 'proxy.sock'), route, ask).done;
    assert.equal(whole.status, 200);
    assert.equal(told.length, before, 'a non-streamed reply tells nothing');
  });
}

test('proxy - a throwing onText is logged and the stream still reaches the client whole', async (t) => {
  const model = await startModelServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-stream-text-'));
  const warned: string[] = [];
  const log = { ...silentLogger, warn: (msg: string) => { warned.push(msg); } };
  const proxy = await startGroupProxy({
    group: 'team', socketPath: path.join(dir, 'proxy.sock'), log, provider: 'openai',
    providerConfig: { apiKey: 'sk-test', baseURL: model.openaiBaseURL, keyOptional: false },
    onText: () => { throw new Error('watcher broke'); },
  });
  t.after(async () => { await proxy.close(); await model.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  model.script({ text: 'still delivered' });
  const r = await send(path.join(dir, 'proxy.sock'), '/openai/chat/completions', { model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }).done;
  const p = streamTextParser('text/event-stream');
  p.push(Buffer.from(r.body));
  assert.deepEqual([r.status, p.text], [200, 'still delivered']);
  assert.ok(warned.includes('could not pass on the streamed text of a model response'), warned.join(', '));
});
