// Attachments in a turn (agent/media.ts): images reach both providers' wire formats with
// their exact bytes, through the real turn (runBatch), the official SDKs and the scripted
// model server; large images are downscaled with the real `gm`; a text-only model, a voice
// note and a file that leads outside the group folder get a path and a note instead.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HISTORY_FILE } from '../../protocol/container.ts';
import { parseHostInput, type BatchFile, type MessageAttachment } from '../../protocol/ipc.ts';
import { parseModel } from '../../protocol/model.ts';
import { attachmentsInText, gmResize, imageSize, MAX_IMAGE_SIDE, modelSeesImages, prepareMedia } from '../../agent/media.ts';
import { Outbox } from '../../agent/outbox.ts';
import { AnthropicProvider } from '../../agent/providers/anthropic.ts';
import { OpenAIProvider } from '../../agent/providers/openai.ts';
import { runBatch } from '../../agent/turn.ts';
import { readConfig } from '../../agent/config.ts';
import { startModelServer, type ModelServer } from '../support/model-server.ts';

/** A real 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const PHOTO: MessageAttachment = { path: 'inbox/2026-11-30/photo.png', mime: 'image/png', name: 'photo.png' };

async function workspace(t: TestContext): Promise<{ root: string; ws: string }> {
  const root = await mkdtemp(join(tmpdir(), 'hako-media-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const ws = join(root, 'group');
  await mkdir(join(ws, 'inbox', '2026-11-30'), { recursive: true });
  await writeFile(join(ws, PHOTO.path), PNG);
  return { root, ws };
}

async function turn(t: TestContext, o: { kind: 'anthropic' | 'openai'; modelImages: boolean; attachments: MessageAttachment[] }): Promise<{ s: ModelServer; ws: string }> {
  const { root, ws } = await workspace(t);
  const s = await startModelServer();
  t.after(() => s.close());
  s.script({ text: 'a red dot' });
  const opts = { model: 'test-model', stream: false, maxRetries: 0 };
  const provider = o.kind === 'anthropic' ? new AnthropicProvider({ ...opts, baseURL: s.anthropicBaseURL }) : new OpenAIProvider({ ...opts, baseURL: s.openaiBaseURL });
  for (const d of ['global', 'out']) await mkdir(join(root, d), { recursive: true });
  const batch: BatchFile = { v: 1, id: 'b1', type: 'batch', messages: [{ id: 'm1', sender: 'alice', text: 'what is this?', ts: '2026-11-30T09:00:00.000Z', attachments: o.attachments }] };
  const r = await runBatch(batch, {
    provider, outbox: new Outbox(join(root, 'out')), requests: { send: async () => { throw new Error('no host'); } }, log: () => {},
    signal: new AbortController().signal,
    settings: { assistantName: 'hako', group: 'team', isMain: true, workspace: ws, globalDir: join(root, 'global'), maxSteps: 2, contextTokens: 32_768, modelImages: o.modelImages },
  });
  assert.equal(r.stopReason, 'stop', r.error);
  return { s, ws };
}

const expectedText = (ws: string): string => `[2026-11-30T09:00:00.000Z] alice: what is this?\n\nAttachments:\n- image at ${ws}/${PHOTO.path} (image/png, "photo.png"): attached below as image 1`;

test('media - an attached image reaches the Anthropic request as an image block holding the exact bytes, base64', async (t) => {
  const { s, ws } = await turn(t, { kind: 'anthropic', modelImages: true, attachments: [PHOTO] });
  assert.deepEqual(s.requests[0]!.json.messages, [{ role: 'user', content: [
    { type: 'text', text: expectedText(ws) },
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') } },
  ] }]);
  assert.ok(Buffer.from(s.requests[0]!.json.messages[0].content[1].source.data, 'base64').equals(PNG));
});

test('media - an attached image reaches the OpenAI request as an image_url part with a data URL of the exact bytes', async (t) => {
  const { s, ws } = await turn(t, { kind: 'openai', modelImages: true, attachments: [PHOTO] });
  const user = s.requests[0]!.json.messages[1];
  assert.deepEqual(user, { role: 'user', content: [
    { type: 'text', text: expectedText(ws) },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } },
  ] });
});

test('media - the saved history keeps the image\'s path, never its bytes', async (t) => {
  const { ws } = await turn(t, { kind: 'anthropic', modelImages: true, attachments: [PHOTO] });
  const history = await readFile(join(ws, HISTORY_FILE), 'utf8');
  assert.ok(history.includes(PHOTO.path), 'the path is in the history');
  assert.ok(!history.includes(PNG.toString('base64')), 'the bytes are not');
  assert.ok(!history.includes('"images"'));
});

test('media - a text-only model gets the image\'s path and a note, and no image part', async (t) => {
  const { s, ws } = await turn(t, { kind: 'openai', modelImages: false, attachments: [PHOTO] });
  const user = s.requests[0]!.json.messages[1];
  assert.equal(typeof user.content, 'string');
  assert.match(user.content, new RegExp(`image at ${ws}/inbox/2026-11-30/photo\\.png .*text-only \\(HAKO_MODEL_IMAGES\\)`));
  assert.ok(!JSON.stringify(s.requests[0]!.json).includes(PNG.toString('base64')));
});

test('media - a voice note without a transcription service is mentioned by its path', async (t) => {
  const { ws } = await workspace(t);
  await writeFile(join(ws, 'inbox/2026-11-30/voice.ogg'), 'OggS');
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text: 'listen', ts: 't', attachments: [{ path: 'inbox/2026-11-30/voice.ogg', mime: 'audio/ogg', name: 'voice.ogg' }] }], { workspace: ws, images: true });
  assert.deepEqual(m.images, []);
  assert.equal(m.note, `\n\nAttachments:\n- voice note at ${ws}/inbox/2026-11-30/voice.ogg (audio/ogg, "voice.ogg"): no transcription configured`);
});

test('media - an image whose path leads outside the group folder through a link is not read', async (t) => {
  const { root, ws } = await workspace(t);
  await writeFile(join(root, 'secret.png'), PNG);
  await symlink(join(root, 'secret.png'), join(ws, 'inbox/2026-11-30/link.png'));
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text: 'x', ts: 't', attachments: [{ path: 'inbox/2026-11-30/link.png', mime: 'image/png', name: 'link.png' }] }], { workspace: ws, images: true, resize: async () => { throw new Error('must not resize'); } });
  assert.deepEqual(m.images, []);
  assert.match(m.note, /link\.png .*not shown: its path leads outside the group folder/);
});

test('media - an attachment path with ".." or an absolute path is refused by the batch validator', () => {
  for (const path of ['../other/x.png', '/etc/passwd', 'inbox/../../x']) {
    const r = parseHostInput({ v: 1, id: 'b', type: 'batch', messages: [{ id: 'm', sender: 's', text: 't', ts: 'x', attachments: [{ path, mime: 'image/png', name: 'x' }] }] });
    assert.equal(r.ok, false, path);
  }
  const ok = parseHostInput({ v: 1, id: 'b', type: 'batch', messages: [{ id: 'm', sender: 's', text: 't', ts: 'x', attachments: [PHOTO] }] });
  assert.equal(ok.ok, true);
});

test('media - an image larger than 1568 px is downscaled to a JPEG whose longest side is 1568 px (real gm)', async (t) => {
  const { ws } = await workspace(t);
  const big = join(ws, 'inbox/2026-11-30/big.png');
  try {
    execFileSync('gm', ['convert', '-size', '3000x2000', 'xc:red', big]);
  } catch {
    // CI installs graphicsmagick (.ci/run); the agent image ships it.
    t.skip('gm (graphicsmagick) is not installed');
    return;
  }
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text: 'x', ts: 't', attachments: [{ path: 'inbox/2026-11-30/big.png', mime: 'image/png', name: 'big.png' }] }], { workspace: ws, images: true, resize: gmResize });
  assert.equal(m.images.length, 1);
  assert.equal(m.images[0]!.mime, 'image/jpeg');
  assert.deepEqual(imageSize(Buffer.from(m.images[0]!.base64, 'base64')), { width: MAX_IMAGE_SIDE, height: Math.round(2000 * MAX_IMAGE_SIDE / 3000) });
});

test('media - a small image in a type the providers take is sent as it is, without resizing', async (t) => {
  const { ws } = await workspace(t);
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text: 'x', ts: 't', attachments: [PHOTO] }], { workspace: ws, images: true, resize: async () => { throw new Error('must not resize'); } });
  assert.deepEqual(m.images, [{ mime: 'image/png', base64: PNG.toString('base64') }]);
});

test('media - HAKO_MODEL_IMAGES=auto decides by model family; on and off override it', () => {
  const sees = (model: string, setting: 'auto' | 'on' | 'off' = 'auto'): boolean => {
    const ref = parseModel(model);
    assert.ok(ref.ok);
    return modelSeesImages(setting, ref.value);
  };
  for (const m of ['anthropic/claude-3-5-sonnet-latest', 'anthropic/claude-sonnet-4-5', 'anthropic/claude-opus-4-1', 'openai/gpt-4o', 'openai/gpt-4o-mini', 'openai/gpt-4.1-mini', 'openai/gpt-5', 'openai/openai/gpt-4o']) assert.equal(sees(m), true, m);
  for (const m of ['anthropic/claude-2.1', 'anthropic/claude-instant-1.2', 'openai/gpt-oss:20b', 'openai/llama3.1:8b', 'openai/qwen2.5vl', 'openai/gpt-3.5-turbo', 'openai/gpt-4']) assert.equal(sees(m), false, m);
  assert.equal(sees('openai/llava:7b', 'on'), true);
  assert.equal(sees('openai/gpt-4o', 'off'), false);
});

test('media - the agent refuses a HAKO_MODEL_IMAGES value that is not auto, on or off', () => {
  const r = readConfig({ HAKO_MODEL: 'openai/gpt-4o', HAKO_MODEL_IMAGES: 'yes' });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.problems.join(' '), /HAKO_MODEL_IMAGES is "yes"; expected auto, on or off/);
  const auto = readConfig({ HAKO_MODEL: 'openai/gpt-oss:20b' });
  assert.ok(auto.ok && auto.config.modelImages === false);
});

test('media - without a structured field, the host\'s "[attached: …]" lines in the text name the files', async (t) => {
  const { ws } = await workspace(t);
  const text = 'look\n[attached: inbox/2026-11-30/photo.png (image/png, 1 KB)]\n[attached: inbox/2026-11-30/quote.pdf (application/pdf, 120 KB)]\nnot [attached: inbox/2026-11-30/x.png (image/png, 1 KB)] mid-line';
  assert.deepEqual(attachmentsInText(text), [PHOTO, { path: 'inbox/2026-11-30/quote.pdf', mime: 'application/pdf', name: 'quote.pdf' }]);
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text, ts: 't' }], { workspace: ws, images: true });
  assert.deepEqual(m.images, [{ mime: 'image/png', base64: PNG.toString('base64') }]);
  assert.ok(!m.note.includes('quote.pdf'), 'other files are left to the host\'s listing');
});

test('media - an image is sent with the type its bytes have, not the type the sender claimed', async (t) => {
  const { ws } = await workspace(t);
  const m = await prepareMedia([{ id: 'm1', sender: 'a', text: 'x', ts: 't', attachments: [{ ...PHOTO, mime: 'image/jpeg' }] }], { workspace: ws, images: true, resize: async () => { throw new Error('must not resize'); } });
  assert.deepEqual(m.images, [{ mime: 'image/png', base64: PNG.toString('base64') }]);
});
