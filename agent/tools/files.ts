// The file tools: read_file, write_file, edit_file. Paths are relative to the workspace
// (absolute paths are used as given: the container's mounts are the boundary). Reads are bounded.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fail, ok, type ToolHandler } from './types.ts';

export const READ_MAX_CHARS = 200_000;
/** UTF-8 needs at most 4 bytes per character, so this many bytes always holds READ_MAX_CHARS. */
const READ_MAX_BYTES = READ_MAX_CHARS * 4;

export function resolveIn(workspace: string, path: string): string {
  return resolve(workspace, path);
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory (use glob to list it)';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'permission denied (the folder may be read-only)';
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads with synchronous calls: four thread-pool round trips (stat, open, read, close) were
 * ~1.5 ms of a warm tool turn, the read itself ~20 µs. Blocking stays bounded: the open does
 * not wait (O_NONBLOCK, so a FIFO cannot hang the agent), only a regular file is read, and
 * at most READ_MAX_BYTES of it.
 */
export const readFileTool: ToolHandler = async (args, ctx) => {
  const path = args.path as string;
  const abs = resolveIn(ctx.workspace, path);
  let fd: number | undefined;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (st.isDirectory()) return fail(`${path}: is a directory (use glob to list it)`);
    if (!st.isFile()) return fail(`${path}: not a regular file (a device, pipe or socket is not read)`);
    const buf = Buffer.alloc(Math.min(st.size, READ_MAX_BYTES));
    const bytesRead = buf.length === 0 ? 0 : readSync(fd, buf, 0, buf.length, 0);
    const bytes = buf.subarray(0, bytesRead);
    if (bytes.subarray(0, 8192).includes(0)) return fail(`${path}: binary file (${st.size} bytes), not shown`);
    const text = bytes.toString('utf8');
    if (text.length > READ_MAX_CHARS || st.size > READ_MAX_BYTES) {
      return ok(`${text.slice(0, READ_MAX_CHARS)}\n[… file truncated: showing the first ${READ_MAX_CHARS} characters of ${st.size} bytes]`);
    }
    return ok(text.length > 0 ? text : '(empty file)');
  } catch (err) {
    return fail(`${path}: ${describe(err)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
};

export const writeFileTool: ToolHandler = async (args, ctx) => {
  const path = args.path as string;
  const content = args.content as string;
  const abs = resolveIn(ctx.workspace, path);
  try {
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content, 'utf8');
    return ok(`wrote ${content.length} characters to ${path}`);
  } catch (err) {
    return fail(`${path}: ${describe(err)}`);
  }
};

function countOccurrences(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

export const editFileTool: ToolHandler = async (args, ctx) => {
  const path = args.path as string;
  const oldText = args.old_text as string;
  const newText = args.new_text as string;
  if (oldText.length === 0) return fail('old_text is empty; give the exact text to replace');
  const abs = resolveIn(ctx.workspace, path);
  try {
    const text = await readFile(abs, 'utf8');
    const count = countOccurrences(text, oldText);
    if (count !== 1) {
      const hint = count === 0 ? 'check the exact text with read_file' : 'include more surrounding text to make it unique';
      return fail(`old_text occurs ${count} times in ${path}; it must occur exactly once (${hint})`);
    }
    const at = text.indexOf(oldText);
    // Slicing, not String.replace, so "$&" and friends in new_text stay literal.
    await writeFile(abs, text.slice(0, at) + newText + text.slice(at + oldText.length), 'utf8');
    return ok(`edited ${path}`);
  } catch (err) {
    return fail(`${path}: ${describe(err)}`);
  }
};
