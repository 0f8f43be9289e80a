// Images and voice notes through a real host, real containers and the scripted model: an
// image sent over the HTTP API reaches the model's request as an image part with its exact
// bytes; a large one is downscaled inside the container (GraphicsMagick in the image); a
// voice note is transcribed through the group proxy by a local speech-to-text server that
// alone sees the key.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { imageSize, MAX_IMAGE_SIDE } from '../../agent/media.ts';
import { startModelServer, type ModelServer } from '../support/model-server.ts';
import { HakoProcess } from '../support/hako.ts';

/** A real 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const KEY = 'sk-e2e-transcribe-0815';

/** A 3000×2000 PNG (a gradient: about 45 KB, well under the attachment limits) made with gm on the host; null without gm. */
function bigPng(): Buffer | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-media-e2e-'));
  try {
    execFileSync('gm', ['convert', '-size', '3000x2000', 'gradient:red-blue', path.join(dir, 'big.png')]);
    return fs.readFileSync(path.join(dir, 'big.png'));
  } catch {
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('images and voice notes', () => {
  let model: ModelServer;
  let hako: HakoProcess;
  let stt: http.Server;
  const heard: { auth: string | undefined; bytes: number }[] = [];

  before(async () => {
    model = await startModelServer();
    stt = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => { bytes += c.length; });
      req.on('end', () => {
        heard.push({ auth: req.headers.authorization, bytes });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"remind me to send the quote on Friday"}');
      });
    });
    await new Promise<void>((r) => stt.listen(0, '127.0.0.1', r));
    const port = (stt.address() as { port: number }).port;
    hako = await HakoProcess.start({
      env: {
        HAKO_MODEL: 'openai/gpt-4o', OPENAI_BASE_URL: model.openaiBaseURL,
        HAKO_TRANSCRIBE_URL: `http://127.0.0.1:${port}/v1`, HAKO_TRANSCRIBE_API_KEY: KEY,
      },
    });
  });
  after(async () => {
    await hako.stop();
    hako.cleanup();
    await model.close();
    await new Promise<void>((r) => stt.close(() => r()));
  });

  const send = async (text: string, attachments: unknown[]) => {
    const r = await hako.api('/api/groups/main/messages', { method: 'POST', body: JSON.stringify({ text, sender: 'tester', attachments }) });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await hako.waitForReplies('main', r.body.id);
  };
  const userParts = () => model.requests.at(-1)!.json.messages.at(-1).content;

  test('media - an image sent over the API reaches a gpt-4o request as an image_url part holding its exact bytes', async () => {
    model.script({ text: 'a dot' });
    await send('what is this?', [{ name: 'dot.png', mime: 'image/png', data: PNG.toString('base64') }]);
    const parts = userParts();
    assert.ok(Array.isArray(parts), JSON.stringify(parts));
    assert.deepEqual(parts.at(-1), { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } });
    assert.match(parts[0].text, /image at \/workspace\/group\/inbox\/\d{4}-\d{2}-\d{2}\/dot\.png .*attached below as image 1/);
  });

  test('media - a 3000×2000 image is downscaled inside the container to a JPEG of at most 1568 px', async (t) => {
    const big = bigPng();
    if (!big) return t.skip('gm (graphicsmagick) is not installed on the host to make the test image');
    model.script({ text: 'a big picture' });
    await send('and this?', [{ name: 'big.png', mime: 'image/png', data: big.toString('base64') }]);
    const url: string = userParts().at(-1).image_url.url;
    assert.ok(url.startsWith('data:image/jpeg;base64,'), url.slice(0, 40));
    const jpeg = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
    assert.deepEqual(imageSize(jpeg), { width: MAX_IMAGE_SIDE, height: Math.round(2000 * MAX_IMAGE_SIDE / 3000) });
  });

  test('media - a voice note is transcribed through the group proxy: the transcript reaches the model, the key only the speech-to-text server', async () => {
    model.script({ text: 'will do' });
    const ogg = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(2000, 7)]);
    await send('(voice)', [{ name: 'note.ogg', mime: 'audio/ogg', data: ogg.toString('base64') }]);
    const text: string = userParts();
    assert.match(text, /voice note at \/workspace\/group\/inbox\/\d{4}-\d{2}-\d{2}\/note\.ogg \(audio\/ogg, "note\.ogg"\): transcript: "remind me to send the quote on Friday"/);
    assert.equal(heard.length, 1);
    assert.equal(heard[0]!.auth, `Bearer ${KEY}`);
    assert.ok(heard[0]!.bytes > ogg.length, 'the whole file was uploaded');
    assert.ok(!JSON.stringify(model.requests).includes(KEY));
    // Audited like a model call; the container was started without the key or the service's address.
    const egress = JSON.parse((await hako.cli(['audit', '--kind', 'egress', '--json'])).stdout) as { data: { kind: string; allowed: boolean; path: string } }[];
    assert.ok(egress.some((e) => e.data.kind === 'model' && e.data.allowed && e.data.path === '/transcribe/audio/transcriptions'), JSON.stringify(egress));
    const starts = (await hako.cli(['audit', '--kind', 'container.start', '--json'])).stdout;
    assert.ok(starts.includes('HAKO_TRANSCRIBE_MODEL=whisper-1'), 'the container knows transcription is there');
    assert.ok(!starts.includes(KEY) && !starts.includes(`127.0.0.1:${(stt.address() as { port: number }).port}`), 'but not its key or address');
  });
});
