// Voice notes through the real chain: the turn (runBatch) → the agent's forwarder → the
// group proxy's transcription route (src/core/proxy.ts) → a local OpenAI-compatible
// speech-to-text server. The transcript reaches the model; the key is put in by the proxy
// and seen only by the upstream; the route is closed (and audited) when nothing is configured.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRANSCRIBE_PATH } from '../../protocol/container.ts';
import type { BatchFile } from '../../protocol/ipc.ts';
import { startForwarder } from '../../agent/forwarder.ts';
import { httpTranscriber, prepareMedia } from '../../agent/media.ts';
import { Outbox } from '../../agent/outbox.ts';
import { OpenAIProvider } from '../../agent/providers/openai.ts';
import { runBatch } from '../../agent/turn.ts';
import { ConfigError, loadConfig, type TranscriptionConfig } from '../../src/core/config.ts';
import { containerSpec } from '../../src/core/runner.ts';
import type { Group } from '../../src/core/store-contract.ts';
import { silentLogger } from '../../src/core/log.ts';
import { startGroupProxy, type ModelDecision } from '../../src/core/proxy.ts';
import { startModelServer } from '../support/model-server.ts';

const KEY = 'sk-transcribe-secret-4711';
const OGG = Buffer.from('OggS\0fake voice bytes');
const VOICE = { path: 'inbox/2026-11-30/voice.ogg', mime: 'audio/ogg', name: 'voice.ogg' };

interface Seen { readonly method: string; readonly url: string; readonly auth: string | undefined; readonly body: Buffer }

/** A tiny speech-to-text server: records each request and answers with a fixed transcript. */
async function whisper(t: TestContext): Promise<{ baseURL: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text: 'call Bob on Monday about the quote' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { baseURL: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`, seen };
}

/** The host's proxy on a socket and the agent's forwarder in front of it, as in a container. */
async function chain(t: TestContext, transcription: TranscriptionConfig | null): Promise<{ root: string; ws: string; url: string; decisions: ModelDecision[] }> {
  const root = await mkdtemp(join(tmpdir(), 'hako-voice-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const ws = join(root, 'group');
  await mkdir(join(ws, 'inbox', '2026-11-30'), { recursive: true });
  await writeFile(join(ws, VOICE.path), OGG);
  const decisions: ModelDecision[] = [];
  const socketPath = join(root, 'proxy.sock');
  const proxy = await startGroupProxy({
    group: 'team', socketPath, log: silentLogger, provider: 'openai',
    providerConfig: { apiKey: 'sk-model', baseURL: 'http://127.0.0.1:9/v1', keyOptional: false },
    onModelDecision: (d) => decisions.push(d), transcription,
  });
  t.after(() => proxy.close());
  const fwd = await startForwarder({ port: 0, socketPath, onError: () => {} });
  t.after(() => fwd.close());
  return { root, ws, url: `http://127.0.0.1:${fwd.port}${TRANSCRIBE_PATH}`, decisions };
}

test('voice - with a transcription service configured, the transcript reaches the model and the key only the upstream', async (t) => {
  const stt = await whisper(t);
  const { root, ws, url, decisions } = await chain(t, { baseURL: stt.baseURL, apiKey: KEY, model: 'whisper-1' });
  const model = await startModelServer();
  t.after(() => model.close());
  model.script({ text: 'noted' });
  await mkdir(join(root, 'out'));
  const batch: BatchFile = { v: 1, id: 'b1', type: 'batch', messages: [{ id: 'm1', sender: 'alice', text: '', ts: '2026-11-30T09:00:00.000Z', attachments: [VOICE] }] };
  const r = await runBatch(batch, {
    provider: new OpenAIProvider({ model: 'm', stream: false, maxRetries: 0, baseURL: model.openaiBaseURL }),
    outbox: new Outbox(join(root, 'out')), requests: { send: async () => { throw new Error('no host'); } }, log: () => {},
    signal: new AbortController().signal,
    settings: { assistantName: 'hako', group: 'team', isMain: false, workspace: ws, globalDir: join(root, 'global'), maxSteps: 2, contextTokens: 32_768, transcribe: { url, model: 'whisper-1' } },
  });
  assert.equal(r.stopReason, 'stop', r.error);
  const sent = model.requests[0]!.json.messages[1].content as string;
  assert.ok(sent.includes(`voice note at ${ws}/${VOICE.path} (audio/ogg, "voice.ogg"): transcript: "call Bob on Monday about the quote"`), sent);

  assert.equal(stt.seen.length, 1);
  assert.equal(stt.seen[0]!.method, 'POST');
  assert.equal(stt.seen[0]!.url, '/v1/audio/transcriptions');
  assert.equal(stt.seen[0]!.auth, `Bearer ${KEY}`, 'the proxy put the host\'s key in');
  assert.ok(stt.seen[0]!.body.includes(OGG), 'the exact audio bytes were uploaded');
  assert.ok(stt.seen[0]!.body.includes('whisper-1'));
  assert.deepEqual(decisions.map((d) => [d.allowed, d.method, d.path]), [[true, 'POST', TRANSCRIBE_PATH]]);
  assert.ok(!JSON.stringify(decisions).includes(KEY), 'the audit record holds no key');
  assert.ok(!JSON.stringify(model.requests).includes(KEY), 'the model never sees the key');
});

test('voice - without a transcription service the route is closed and audited, and the voice note is mentioned by path', async (t) => {
  const { ws, url, decisions } = await chain(t, null);
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text: '', ts: 't', attachments: [VOICE] }], { workspace: ws, images: false, transcribe: httpTranscriber({ url, model: 'whisper-1' }) });
  assert.match(m.note, /voice note at .*voice\.ogg .*not transcribed: the transcription service answered 503: .*HAKO_TRANSCRIBE_URL/);
  assert.equal(decisions.length, 1);
  assert.equal(decisions[0]!.allowed, false);
  const plain = await prepareMedia([{ id: 'm1', sender: 'a', text: '', ts: 't', attachments: [VOICE] }], { workspace: ws, images: false });
  assert.match(plain.note, /voice note at .*inbox\/2026-11-30\/voice\.ogg .*: no transcription configured$/);
});

test('voice - the transcription route forwards only POST to the one path, never elsewhere on the upstream', async (t) => {
  const stt = await whisper(t);
  const { url, decisions } = await chain(t, { baseURL: stt.baseURL, apiKey: KEY, model: 'whisper-1' });
  const base = url.slice(0, url.indexOf('/transcribe'));
  for (const [method, path] of [['GET', TRANSCRIBE_PATH], ['POST', '/transcribe/files'], ['POST', '/transcribe/audio/transcriptions/../../models']] as const) {
    const res = await fetch(`${base}${path}`, { method, ...(method === 'POST' ? { body: 'x' } : {}) });
    assert.equal(res.status, 404, `${method} ${path}`);
    await res.text();
  }
  assert.equal(stt.seen.length, 0);
  assert.ok(decisions.every((d) => !d.allowed));
});

const env = { HAKO_HOME: '/tmp/hako-media-home', HAKO_CONFIG: '/tmp/hako-media-config' };
const group: Group = { name: 'team', isMain: false, trigger: null, model: null, allowedSenders: null, mounts: [], limits: {}, tokensPerDay: null, contextTokens: null, chats: [], createdAt: '' };

test('voice - the container gets only the transcription model\'s name: never the service\'s URL or key', () => {
  const config = loadConfig({ ...env, HAKO_TRANSCRIBE_URL: 'http://127.0.0.1:8000/v1/', HAKO_TRANSCRIBE_API_KEY: KEY });
  assert.deepEqual(config.transcription, { baseURL: 'http://127.0.0.1:8000/v1', apiKey: KEY, model: 'whisper-1' });
  const spec = containerSpec(config, 'img', group, 'openai/gpt-4o');
  assert.equal(spec.env.HAKO_TRANSCRIBE_MODEL, 'whisper-1');
  assert.equal(spec.env.HAKO_MODEL_IMAGES, 'auto');
  const all = JSON.stringify(spec);
  assert.ok(!all.includes(KEY) && !all.includes('127.0.0.1:8000'), 'neither key nor URL is in the container spec');
  assert.equal(containerSpec(loadConfig(env), 'img', group, 'openai/gpt-4o').env.HAKO_TRANSCRIBE_MODEL, undefined);
});

test('voice - OpenAI\'s own transcription endpoint takes OPENAI_API_KEY; any other upstream never gets it', () => {
  assert.equal(loadConfig({ ...env, OPENAI_API_KEY: 'sk-o', HAKO_TRANSCRIBE_URL: 'https://api.openai.com/v1' }).transcription?.apiKey, 'sk-o');
  assert.equal(loadConfig({ ...env, OPENAI_API_KEY: 'sk-o', HAKO_TRANSCRIBE_URL: 'http://whisper.lan:9000/v1' }).transcription?.apiKey, undefined);
});

test('images - the host refuses HAKO_MODEL_IMAGES other than auto, on or off, and names the choices', () => {
  assert.throws(() => loadConfig({ ...env, HAKO_MODEL_IMAGES: 'maybe' }), (e: unknown) => e instanceof ConfigError && /HAKO_MODEL_IMAGES="maybe" is invalid: expected auto/.test(e.message));
  assert.equal(containerSpec(loadConfig({ ...env, HAKO_MODEL_IMAGES: 'off' }), 'img', group, 'openai/gpt-4o').env.HAKO_MODEL_IMAGES, 'off');
});
