// Turns the images and voice notes that came with a batch into what the model gets: images
// as image parts for a model that sees images (downscaled with GraphicsMagick's `gm` when
// too large), for a text-only model a line with the path and a note instead. A voice note
// is transcribed through the group proxy's route when the host has a transcription service
// (the URL and key stay on the host); otherwise it is mentioned by path.
// Invariants: only regular files inside the group folder are read (the path must stay in
// it after links are resolved); image bytes exist only in the turn's request: the history
// keeps the text, which names each file's path (withoutImages).
//
// Contract with the attachment path (host side, src/channels/attachments.ts): a batch
// message may carry `attachments: [{ path, mime, name }]` (protocol/ipc.ts
// MessageAttachment, `path` relative to the group folder, e.g. inbox/2026-11-30/photo.jpg);
// without that field, the text's `[attached: inbox/<day>/<name> (<mime>, <size>)]` lines
// (attachmentLine) are read instead. The declared type is only a hint: an image's bytes
// decide the type sent to the model.

import { execFile } from 'node:child_process';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { InboundMessage, MessageAttachment } from '../protocol/ipc.ts';
import type { ModelRef } from '../protocol/model.ts';
import type { ImagePart, Message } from './providers/provider.ts';

/** HAKO_MODEL_IMAGES: `auto` decides by model family (modelSeesImages). */
export type ImageSetting = 'auto' | 'on' | 'off';

/** Longest side and size the providers take without downscaling themselves (Anthropic's guidance). */
export const MAX_IMAGE_SIDE = 1568;
export const MAX_IMAGE_BYTES = 3_750_000;
/** Larger files are not read at all: a picture this big is a mistake or an attack. */
export const MAX_IMAGE_INPUT_BYTES = 50_000_000;
/** OpenAI's limit for one transcription upload. */
export const MAX_AUDIO_BYTES = 25_000_000;
export const AUDIO_MIMES: readonly string[] = ['audio/ogg', 'audio/mpeg', 'audio/mp4', 'audio/wav', 'audio/webm'];

/**
 * Whether the model is sent images. Pure. `auto`: Claude 3 and later, OpenAI's gpt-4o,
 * gpt-4.1, gpt-5 and o3/o4; anything else (gpt-oss, local models) is treated as text-only.
 */
export function modelSeesImages(setting: ImageSetting, model: ModelRef): boolean {
  if (setting !== 'auto') return setting === 'on';
  // A router's model names carry a vendor prefix (openai/gpt-4o): judge the last part.
  const name = model.model.toLowerCase().split('/').at(-1) ?? '';
  if (model.provider === 'anthropic') return name.startsWith('claude-') && !/^claude-(instant|[12])([.-]|$)/.test(name);
  return /^(chatgpt-4o|gpt-4o|gpt-4\.1|gpt-5|o3|o4)([.:-]|$)/.test(name);
}

const ATTACHED_LINE = /^\[attached: (inbox\/\d{4}-\d{2}-\d{2}\/[\p{L}\p{N}._-]+) \(([A-Za-z0-9.+-]+\/[A-Za-z0-9.+-]+)[^,)]*, [^)\n]*\)\]$/gmu;

/** The files a message's text lists as `[attached: …]` lines (the host's attachment listing). */
export function attachmentsInText(text: string): MessageAttachment[] {
  return [...text.matchAll(ATTACHED_LINE)].map((m) => ({ path: m[1] as string, mime: (m[2] as string).toLowerCase(), name: (m[1] as string).split('/').at(-1) as string }));
}

/** The image type the bytes really are, of the four both providers take as they are; null for anything else (converted to JPEG). */
export function sniffImage(b: Uint8Array): string | null {
  const at = (i: number, ...xs: number[]): boolean => xs.every((x, k) => b[i + k] === x);
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'image/webp';
  return null;
}

/** Width and height from a PNG, GIF or JPEG header; null for anything else or a broken file. */
export function imageSize(b: Uint8Array): { width: number; height: number } | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 24 && v.getUint32(0) === 0x89504e47) return { width: v.getUint32(16), height: v.getUint32(20) };
  if (b.length >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return { width: v.getUint16(6, true), height: v.getUint16(8, true) };
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  // JPEG: walk the segments to the first start-of-frame marker (C0-CF except C4, C8, CC).
  for (let i = 2; i + 9 < b.length;) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1] as number;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: v.getUint16(i + 7), height: v.getUint16(i + 5) };
    }
    i += 2 + v.getUint16(i + 2);
  }
  return null;
}

/** Whether the image must be downscaled or converted (to JPEG) before it is sent. */
export function needsResize(bytes: Uint8Array): boolean {
  const mime = sniffImage(bytes);
  if (mime === null || bytes.length > MAX_IMAGE_BYTES) return true;
  const size = imageSize(bytes);
  return size !== null && Math.max(size.width, size.height) > MAX_IMAGE_SIDE;
}

/**
 * Contract: resolves with a JPEG whose longest side is at most MAX_IMAGE_SIDE; rejects when
 * `gm` is missing or fails. Only the first frame of an animation is kept.
 */
export type Resize = (file: string) => Promise<Uint8Array>;

export const gmResize: Resize = (file) => new Promise((resolve, reject) => {
  // `[0]`: first frame only; the host's sanitised names never contain brackets of their own.
  const args = ['convert', `${file}[0]`, '-resize', `${MAX_IMAGE_SIDE}x${MAX_IMAGE_SIDE}>`, '+profile', '*', '-quality', '85', 'JPEG:-'];
  execFile('gm', args, { encoding: 'buffer', maxBuffer: 4 * MAX_IMAGE_BYTES, timeout: 60_000 }, (err, stdout, stderr) => {
    if (err) reject(new Error(`gm convert failed: ${String(stderr).trim().slice(0, 200) || err.message}`));
    else resolve(stdout);
  });
});

/** The file's real path when it is a regular file inside the workspace; an error sentence otherwise. */
async function insideWorkspace(workspace: string, rel: string, maxBytes = MAX_IMAGE_INPUT_BYTES): Promise<{ real: string } | { problem: string }> {
  if (rel.startsWith('/') || rel.split('/').includes('..')) return { problem: 'its path leaves the group folder' };
  try {
    const root = await realpath(workspace);
    const real = await realpath(join(workspace, rel));
    if (!real.startsWith(root + sep)) return { problem: 'its path leads outside the group folder' };
    const st = await lstat(real);
    if (!st.isFile()) return { problem: 'it is not a regular file' };
    if (st.size > maxBytes) return { problem: `it is ${st.size} bytes, over the ${maxBytes} this reads` };
    return { real };
  } catch (err) {
    return { problem: `it could not be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
}

async function loadImage(workspace: string, a: MessageAttachment, resize: Resize): Promise<ImagePart | string> {
  const found = await insideWorkspace(workspace, a.path);
  if ('problem' in found) return `not shown: ${found.problem}`;
  const bytes = await readFile(found.real);
  if (!needsResize(bytes)) return { mime: sniffImage(bytes) as string, base64: bytes.toString('base64') };
  try {
    return { mime: 'image/jpeg', base64: Buffer.from(await resize(found.real)).toString('base64') };
  } catch (err) {
    return `not shown: it is too large or of a type the model does not take, and downscaling failed (${(err as Error).message})`;
  }
}

/**
 * Contract: resolves with the transcript of the audio file; rejects with a sentence when the
 * service refused or failed. Honours the turn's signal.
 */
export type Transcribe = (file: { readonly bytes: Buffer; readonly mime: string; readonly name: string }) => Promise<string>;

/** POSTs the file as OpenAI-compatible multipart to `url` (the proxy's TRANSCRIBE_PATH). */
export function httpTranscriber(o: { url: string; model: string; signal?: AbortSignal }): Transcribe {
  return async (file) => {
    const form = new FormData();
    form.append('model', o.model);
    form.append('file', new Blob([new Uint8Array(file.bytes)], { type: file.mime }), file.name);
    const res = await fetch(o.url, { method: 'POST', body: form, ...(o.signal ? { signal: o.signal } : {}) });
    const body = await res.text();
    if (!res.ok) throw new Error(`the transcription service answered ${res.status}: ${body.slice(0, 300)}`);
    let text: unknown;
    try { text = (JSON.parse(body) as { text?: unknown }).text; } catch { text = undefined; }
    if (typeof text !== 'string') throw new Error('the transcription service sent no "text"');
    return text;
  };
}

async function transcribeNote(workspace: string, a: MessageAttachment, transcribe: Transcribe): Promise<string> {
  const found = await insideWorkspace(workspace, a.path, MAX_AUDIO_BYTES);
  if ('problem' in found) return `not transcribed: ${found.problem}`;
  try {
    const text = await transcribe({ bytes: await readFile(found.real), mime: a.mime, name: a.name });
    return `transcript: ${JSON.stringify(text.trim())}`;
  } catch (err) {
    return `not transcribed: ${(err as Error).message}`;
  }
}

export interface MediaOptions {
  /** The group folder as the agent sees it (attachment paths are relative to it). */
  readonly workspace: string;
  readonly images: boolean;
  /** Default gmResize (tests inject one). */
  readonly resize?: Resize;
  /** Unset: no transcription service; voice notes are only mentioned. */
  readonly transcribe?: Transcribe;
}

export interface PreparedMedia {
  /** Lines to append to the batch's text: one per image or voice note; empty when there is none. */
  readonly note: string;
  readonly images: readonly ImagePart[];
}

/** Reads the batch's attachments. Never throws for a bad file: the note says what happened. */
export async function prepareMedia(messages: readonly InboundMessage[], o: MediaOptions): Promise<PreparedMedia> {
  const lines: string[] = [];
  const images: ImagePart[] = [];
  for (const a of messages.flatMap((m) => m.attachments ?? attachmentsInText(m.text))) {
    const where = `${join(o.workspace, a.path)} (${a.mime}, "${a.name}")`;
    if (a.mime.startsWith('image/') && o.images) {
      const part = await loadImage(o.workspace, a, o.resize ?? gmResize);
      if (typeof part === 'string') lines.push(`- image at ${where}: ${part}`);
      else {
        images.push(part);
        lines.push(`- image at ${where}: attached below as image ${images.length}`);
      }
    } else if (a.mime.startsWith('image/')) {
      lines.push(`- image at ${where}: this model is set up as text-only (HAKO_MODEL_IMAGES), so it is not shown; use your tools on the file if the image matters`);
    } else if (AUDIO_MIMES.includes(a.mime)) {
      lines.push(`- voice note at ${where}: ${o.transcribe ? await transcribeNote(o.workspace, a, o.transcribe) : 'no transcription configured'}`);
    }
    // Other files: the host's own listing names them, and prompt.ts gives a PDF's text.
  }
  return { note: lines.length ? `\n\nAttachments:\n${lines.join('\n')}` : '', images };
}

/** The turn's messages as the history keeps them: image bytes dropped (the text names each file). */
export function withoutImages(messages: readonly Message[]): Message[] {
  return messages.map((m) => (m.role === 'user' && m.images ? { role: 'user', text: m.text } : m));
}
