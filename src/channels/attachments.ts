// The one way a file that arrives with a message — over the HTTP API, the web chat or any
// chat channel — enters a group's workspace: `inbox/<YYYY-MM-DD>/<name>`, listed in the
// message text as `[attached: inbox/2026-11-30/quote.pdf (application/pdf, 120 KB)]`.
// Invariants: a name is one safe path segment (no slash, control character or leading dot);
// a file is only ever created new (O_EXCL), a clash gets a `-2`, `-3`… suffix; the group
// folder is agent-writable, so no link is ever followed (core/beneath.ts): an agent that
// swaps inbox/ or a day folder for a link to elsewhere cannot make the host write there.
// Sizes are checked before anything is written.

import fs from 'node:fs';
import path from 'node:path';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import { writeNewBeneath } from '../core/beneath.ts';
import { groupPaths } from '../core/paths.ts';

/** The workspace folder attachments go into, one sub-folder per (UTC) day. */
export const INBOX_DIR = 'inbox';

export const DEFAULT_ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024;
export const DEFAULT_ATTACHMENT_TOTAL_BYTES = 50 * 1024 * 1024;
/** Files one HTTP message may carry. */
export const MAX_ATTACHMENTS = 20;
const MAX_CLASHES = 1000;

export interface AttachmentLimits {
  /** Bytes one file may have (HAKO_ATTACHMENT_MAX_BYTES). */
  readonly perFile: number;
  /** Bytes all files of one message may have together (HAKO_ATTACHMENT_TOTAL_BYTES). */
  readonly total: number;
}

function wholeBytes(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9]\d{0,12}$/.test(raw)) throw new Error(`${name} must be a positive whole number of bytes, found ${JSON.stringify(raw)} (e.g. ${name}=${fallback})`);
  return Number(raw);
}

/** The limits from the environment; throws with the setting's name when one is not a positive whole number. */
export function attachmentLimits(env: Readonly<Record<string, string | undefined>>): AttachmentLimits {
  const perFile = wholeBytes(env, 'HAKO_ATTACHMENT_MAX_BYTES', DEFAULT_ATTACHMENT_MAX_BYTES);
  const total = wholeBytes(env, 'HAKO_ATTACHMENT_TOTAL_BYTES', Math.max(DEFAULT_ATTACHMENT_TOTAL_BYTES, perFile));
  return { perFile, total };
}

/** attachmentLimits for a chat channel's settings: an error starts with the channel's name. */
export function channelAttachmentLimits(channel: string, env: Readonly<Record<string, string | undefined>>): AttachmentLimits {
  try {
    return attachmentLimits(env);
  } catch (err) {
    throw new Error(`${channel}: ${(err as Error).message}`);
  }
}

/** `512 bytes`, `120 KB`, `3.4 MB`. */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return bytes === 1 ? '1 byte' : `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Why files of these sizes may not be saved (naming the limit and its setting), or undefined. */
export function sizeProblem(files: readonly { readonly name: string; readonly bytes: number }[], limits: AttachmentLimits): string | undefined {
  const big = files.find((f) => f.bytes > limits.perFile);
  if (big) return `attachment "${big.name}" is ${big.bytes} bytes; the limit is ${limits.perFile} bytes per file (HAKO_ATTACHMENT_MAX_BYTES)`;
  const sum = files.reduce((n, f) => n + f.bytes, 0);
  if (sum > limits.total) return `the attachments are ${sum} bytes together; the limit is ${limits.total} bytes per message (HAKO_ATTACHMENT_TOTAL_BYTES)`;
  return undefined;
}

/** One path segment that is safe on every file system and still says what the file was: `pass_wd.PDF`. */
export function attachmentName(original: string): string {
  const base = path.basename(original.replace(/\\/g, '/')).normalize('NFC')
    .replace(/[^\p{L}\p{N}._-]+/gu, '_').replace(/^[._-]+/, '');
  // Keep the end: the extension says what the file is.
  return base.slice(-100).replace(/^[._-]+/, '') || 'file';
}

/** `quote.pdf` → `quote-2.pdf` (the n-th name tried when the first is taken). */
function numbered(name: string, n: number): string {
  if (n === 1) return name;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}-${n}${name.slice(dot)}` : `${name}-${n}`;
}

export interface SavedAttachment {
  /** Where the file is on the host. */
  readonly hostPath: string;
  /** Where the agent sees it, e.g. /workspace/group/inbox/2026-11-30/photo.jpg. */
  readonly agentPath: string;
  /** The path inside the group's workspace, e.g. inbox/2026-11-30/photo.jpg. */
  readonly path: string;
  readonly bytes: number;
}

/**
 * Writes `data` as a new file in the group's `inbox/<today>/`. Throws when the data is over
 * `maxBytes`, or when inbox/ or the day folder is not a plain folder (a link is refused,
 * never followed).
 */
export function saveAttachment(home: string, group: string, original: string, data: Uint8Array, maxBytes: number, now = new Date()): SavedAttachment {
  if (data.length > maxBytes) throw new Error(`attachment "${original}" is ${data.length} bytes; the limit is ${maxBytes} (HAKO_ATTACHMENT_MAX_BYTES)`);
  const folder = groupPaths(home, group).folder;
  const dirs = [INBOX_DIR, now.toISOString().slice(0, 10)];
  const wanted = attachmentName(original);
  for (let n = 1; n <= MAX_CLASHES; n++) {
    const name = numbered(wanted, n);
    try {
      writeNewBeneath(folder, dirs, name, data);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'ELOOP' || code === 'ENOTDIR') throw new Error(`group "${group}": ${dirs.join('/')}/ in its folder is not a plain folder (${code}); the attachment was not saved (move the link away)`, { cause: err });
      throw err;
    }
    const rel = [...dirs, name].join('/');
    return { hostPath: path.join(folder, ...dirs, name), agentPath: `${CONTAINER_PATHS.group}/${rel}`, path: rel, bytes: data.length };
  }
  throw new Error(`group "${group}": ${MAX_CLASHES} files named like "${wanted}" arrived today; the attachment was not saved`);
}

/** The line a message carries for a saved file: `[attached: inbox/2026-11-30/quote.pdf (application/pdf, 120 KB)]`. */
export function attachmentLine(saved: SavedAttachment, mime: string): string {
  return `[attached: ${saved.path} (${mime}, ${humanSize(saved.bytes)})]`;
}

export interface IncomingFile {
  readonly name: string;
  readonly mime: string;
  readonly data: Uint8Array;
}

/**
 * Saves every file of one message (sizes checked first, so a refused message writes
 * nothing) and returns the text the agent gets: `text`, then one `[attached: …]` line each.
 */
export function saveWithMessage(home: string, group: string, text: string, files: readonly IncomingFile[], limits: AttachmentLimits, now = new Date()): { text: string; saved: SavedAttachment[] } {
  const problem = sizeProblem(files.map((f) => ({ name: f.name, bytes: f.data.length })), limits);
  if (problem) throw new Error(problem);
  const saved = files.map((f) => saveAttachment(home, group, f.name, f.data, limits.perFile, now));
  const lines = saved.map((s, i) => attachmentLine(s, files[i]!.mime));
  return { text: [text, ...lines].filter((l) => l.trim() !== '').join('\n'), saved };
}

/**
 * Removes files this module just saved (their message was refused after all), each through
 * descriptors of its folders opened O_NOFOLLOW, so a folder swapped for a link meanwhile
 * makes it remove nothing rather than a file elsewhere. Best effort: never throws.
 */
export function removeSaved(home: string, group: string, saved: readonly SavedAttachment[]): void {
  const folder = groupPaths(home, group).folder;
  const DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;
  for (const s of saved) {
    const parts = s.path.split('/');
    const fds: number[] = [];
    try {
      fds.push(fs.openSync(folder, DIR));
      for (const d of parts.slice(0, -1)) fds.push(fs.openSync(`/proc/self/fd/${fds.at(-1)}/${d}`, DIR));
      fs.unlinkSync(`/proc/self/fd/${fds.at(-1)}/${parts.at(-1)}`);
    } catch {
      // Already gone, or a folder became a link: leave it.
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
  }
}
