// Token usage: the parser on realistic captured responses of both providers (JSON and SSE,
// cut at every byte), the budget decision, the usage store on real SQLite (and the migration
// an old database gets), and the proxy's tap and refusal against the scripted model server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { budgetProblem, dayIn, usageParser, type Usage } from '../../src/core/usage.ts';
import { MIGRATIONS, Store } from '../../src/core/store.ts';
import { databaseBefore } from '../support/old-database.ts';
import { startGroupProxy, type ModelDecision } from '../../src/core/proxy.ts';
import { silentLogger } from '../../src/core/log.ts';
import { loadConfig } from '../../src/core/config.ts';
import { startModelServer } from '../support/model-server.ts';

// Shapes as the real APIs send them (ids shortened); the numbers are what must be counted.
const ANTHROPIC_JSON = JSON.stringify({
  id: 'msg_01XFDUDYJgAACzvnptvVoYEL', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929',
  content: [{ type: 'text', text: 'Hallo, wie kann ich helfen? — 😀' }], stop_reason: 'end_turn', stop_sequence: null,
  usage: { input_tokens: 2095, cache_creation_input_tokens: 100, cache_read_input_tokens: 1800, output_tokens: 503, service_tier: 'standard' },
});

const ANTHROPIC_SSE = [
  'event: message_start',
  'data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":2}}}',
  '',
  'event: content_block_start',
  'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
  '',
  'event: ping',
  'data: {"type": "ping"}',
  '',
  'event: content_block_delta',
  'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Grüße 😀 — usage: {\\"output_tokens\\": 99999} "}}',
  '',
  'event: content_block_stop',
  'data: {"type":"content_block_stop","index":0}',
  '',
  'event: message_delta',
  'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}',
  '',
  'event: message_stop',
  'data: {"type":"message_stop"}',
  '',
  '',
].join('\n');

const OPENAI_JSON = JSON.stringify({
  id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG', object: 'chat.completion', created: 1741570283, model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, message: { role: 'assistant', content: 'The image shows a wooden boardwalk.', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1117, completion_tokens: 46, total_tokens: 1163, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } },
  service_tier: 'default', system_fingerprint: 'fp_fc9f1d7035',
});

const OPENAI_SSE = [
  'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}',
  '',
  'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hallo 😀"},"logprobs":null,"finish_reason":null}],"usage":null}',
  '',
  'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}',
  '',
  'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}',
  '',
  'data: [DONE]',
  '',
  '',
].join('\n');

const SSE = 'text/event-stream; charset=utf-8';
const JSON_TYPE = 'application/json';

function parse(contentType: string, chunks: readonly Buffer[]): Usage | null {
  const p = usageParser(contentType);
  for (const c of chunks) p.push(c);
  return p.end().usage;
}

/** Every way of cutting the body in two, and byte by byte: a cut may fall inside a line or a UTF-8 character. */
function everyCut(body: string): Buffer[][] {
  const bytes = Buffer.from(body);
  const cuts: Buffer[][] = [];
  for (let i = 0; i <= bytes.length; i++) cuts.push([bytes.subarray(0, i), bytes.subarray(i)]);
  cuts.push([...bytes].map((b) => Buffer.from([b])));
  return cuts;
}

const cases: [string, string, string, Usage][] = [
  ['Anthropic JSON - input, cache writes and cache reads count as input', JSON_TYPE, ANTHROPIC_JSON, { input: 2095 + 100 + 1800, output: 503 }],
  ['Anthropic SSE - message_start gives the input, the last message_delta the output total', SSE, ANTHROPIC_SSE, { input: 482, output: 15 }],
  ['OpenAI JSON - prompt and completion tokens', JSON_TYPE, OPENAI_JSON, { input: 1117, output: 46 }],
  ['OpenAI SSE - the final chunk with usage (stream_options.include_usage)', SSE, OPENAI_SSE, { input: 9, output: 12 }],
];

for (const [name, type, body, expected] of cases) {
  test(`usage parser - ${name}, however the body is cut into chunks`, () => {
    for (const chunks of everyCut(body)) assert.deepEqual(parse(type, chunks), expected, `cut into ${chunks.map((c) => c.length).join('+')} bytes`);
  });
}

test('usage parser - SSE with CRLF line ends and a stream cut off after its last event still counts', () => {
  assert.deepEqual(parse(SSE, [Buffer.from(OPENAI_SSE.replace(/\n/g, '\r\n'))]), { input: 9, output: 12 });
  const cut = ANTHROPIC_SSE.slice(0, ANTHROPIC_SSE.indexOf('event: content_block_start'));
  assert.deepEqual(parse(SSE, [Buffer.from(cut.trimEnd())]), { input: 482, output: 2 }, 'the input of message_start is counted when the stream breaks off');
});

test('usage parser - a body without usage, an error body, garbage and a stream without include_usage report none and never throw', () => {
  assert.equal(parse(JSON_TYPE, [Buffer.from('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')]), null);
  assert.equal(parse(JSON_TYPE, [Buffer.from('{"usage": {"input_tokens": ')]), null);
  assert.equal(parse(JSON_TYPE, [Buffer.from([0xff, 0xfe, 0x00])]), null);
  assert.equal(parse(SSE, [Buffer.from(OPENAI_SSE.split('\n').filter((l) => !l.includes('"choices":[]')).join('\n'))]), null);
  assert.equal(parse(SSE, [Buffer.from('data: {not json\n\ndata: {"usage":{"output_tokens":-5,"input_tokens":"9"}}\n\n')]), null);
  assert.equal(parse('', [Buffer.from(OPENAI_JSON)])?.input, 1117, 'no content type: read as JSON');
});

test('usage parser - a JSON body over the bound is not kept, and says so', () => {
  const p = usageParser(JSON_TYPE);
  const mb = Buffer.alloc(1024 * 1024, 0x20);
  for (let i = 0; i < 9; i++) p.push(mb);
  p.push(Buffer.from(OPENAI_JSON));
  assert.deepEqual(p.end(), { usage: null, unreadable: true });
});

test('dayIn - the day is the owner\'s: the same instant is a different day in Tokyo and New York', () => {
  const instant = Date.parse('2026-03-01T02:30:00Z');
  assert.equal(dayIn('UTC', instant), '2026-03-01');
  assert.equal(dayIn('America/New_York', instant), '2026-02-28');
  assert.equal(dayIn('Asia/Tokyo', Date.parse('2026-02-28T15:00:00Z')), '2026-03-01', '00:00 in Tokyo starts the next day');
});

test('budgetProblem - the group\'s own budget, then the one for all groups; reached means used >= budget', () => {
  const base = { group: 'team', groupBudget: null, globalBudget: null, groupUsed: 10_000, totalUsed: 50_000, tz: 'Europe/Berlin' };
  assert.equal(budgetProblem(base), null, 'no budget: no limit');
  assert.equal(budgetProblem({ ...base, groupBudget: 10_001 }), null);
  const own = budgetProblem({ ...base, groupBudget: 10_000 });
  assert.equal(own?.which, 'group');
  assert.equal(own?.text, 'the daily token budget of 10000 for group "team" is used up (10000 used today); messages wait until tomorrow (00:00 Europe/Berlin) or until the owner raises it: hako groups set team --tokens-per-day N (or none)');
  const all = budgetProblem({ ...base, groupBudget: 20_000, globalBudget: 40_000 });
  assert.equal(all?.which, 'global');
  assert.match(all!.text, /daily token budget of 40000 for all groups \(HAKO_TOKENS_PER_DAY\) is used up \(50000 used today\).*set HAKO_TOKENS_PER_DAY higher \(or unset it\) and restart hako/);
});

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-usage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('UsageStore (sqlite) - tokens add up per group and day, and a removed group\'s tokens still count', (t) => {
  const s = new Store(path.join(tempDir(t), 'hako.db'));
  t.after(() => s.close());
  s.addGroup({ name: 'team', isMain: false, trigger: null, model: null });
  s.addUsage('team', '2026-03-01', { input: 100, output: 20 });
  s.addUsage('team', '2026-03-01', { input: 50, output: 5 });
  s.addUsage('main', '2026-03-01', { input: 1, output: 1 });
  s.addUsage('team', '2026-03-02', { input: 7, output: 7 });
  assert.deepEqual(s.usageOn('2026-03-01'), [
    { group: 'main', input: 1, output: 1, requests: 1 },
    { group: 'team', input: 150, output: 25, requests: 2 },
  ]);
  s.removeGroup('team');
  assert.equal(s.usageOn('2026-03-01').length, 2);
  assert.deepEqual(s.usageOn('2026-03-03'), []);
});

test('store migrations - a database of the version before usage gains the usage table and keeps its groups, with no own budget', (t) => {
  const file = path.join(tempDir(t), 'hako.db');
  databaseBefore(file, 'CREATE TABLE usage');
  const s = new Store(file);
  t.after(() => s.close());
  assert.equal(s.schemaVersion, MIGRATIONS.length);
  assert.equal(s.getGroup('main')?.tokensPerDay, null);
  s.addUsage('main', '2026-03-01', { input: 3, output: 4 });
  assert.deepEqual(s.usageOn('2026-03-01'), [{ group: 'main', input: 3, output: 4, requests: 1 }]);
});

function post(socketPath: string, p: string, body: object): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('proxy - each model response\'s usage is reported as it streamed through unchanged; a used-up budget answers 429 without calling the model', async (t) => {
  const model = await startModelServer();
  const dir = tempDir(t);
  const reported: Usage[] = [];
  const decisions: ModelDecision[] = [];
  let spent: string | null = null;
  const proxy = await startGroupProxy({
    group: 'team', socketPath: path.join(dir, 'proxy.sock'), log: silentLogger,
    provider: 'anthropic', providerConfig: { apiKey: 'sk-test', baseURL: model.anthropicBaseURL, keyOptional: false },
    onModelDecision: (d) => decisions.push(d), onUsage: (u) => reported.push(u), budget: () => spent,
  });
  t.after(async () => { await proxy.close(); await model.close(); });
  const ask = { model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
  model.script({ text: 'streamed answer' }, { text: 'whole answer' });
  const streamed = await post(path.join(dir, 'proxy.sock'), '/anthropic/v1/messages', { ...ask, stream: true });
  const whole = await post(path.join(dir, 'proxy.sock'), '/anthropic/v1/messages', ask);
  assert.equal(streamed.status, 200);
  assert.match(streamed.body, /event: message_delta/, 'the stream reached the client');
  const fromStream = /"output_tokens":(\d+)\}\}/.exec(streamed.body.slice(streamed.body.indexOf('message_delta')))![1];
  const wholeUsage = JSON.parse(whole.body).usage as { input_tokens: number; output_tokens: number };
  assert.equal(reported.length, 2);
  assert.equal(reported[0]!.output, Number(fromStream));
  assert.deepEqual(reported[1], { input: wholeUsage.input_tokens, output: wholeUsage.output_tokens });

  spent = 'the daily token budget of 10 for group "team" is used up (12 used today)';
  const refused = await post(path.join(dir, 'proxy.sock'), '/anthropic/v1/messages', ask);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['x-should-retry'], 'false', 'the SDK does not retry what only the owner or the next day can change');
  assert.match(JSON.parse(refused.body).error.message, /^hako refused the model request: the daily token budget of 10/);
  assert.equal(model.requests.length, 2, 'the refused request never reached the model');
  assert.deepEqual(decisions.map((d) => d.allowed), [true, true, false], 'the refusal is recorded');
});

test('HAKO_TOKENS_PER_DAY - unset or "none" is no limit; a whole number is the budget; anything else is refused at start with a hint', () => {
  const env = { HAKO_HOME: '/tmp/hako-usage-home', HAKO_CONFIG: '/tmp/hako-usage-config' };
  assert.equal(loadConfig(env).tokensPerDay, null);
  assert.equal(loadConfig({ ...env, HAKO_TOKENS_PER_DAY: 'none' }).tokensPerDay, null);
  assert.equal(loadConfig({ ...env, HAKO_TOKENS_PER_DAY: '2_000_000' }).tokensPerDay, 2_000_000);
  for (const bad of ['0', '-5', '1.5', 'lots', '1e99']) {
    assert.throws(() => loadConfig({ ...env, HAKO_TOKENS_PER_DAY: bad }), /HAKO_TOKENS_PER_DAY=".*" is invalid: expected a whole number of tokens such as 2000000, or "none" for no limit/, bad);
  }
});
