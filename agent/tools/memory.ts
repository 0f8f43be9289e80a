// The remember tool: keeps the group's MEMORY.md (or, for the main group only, the global
// one) up to date, one `## section` at a time. Invariants: the file is never written through
// a link (it is read O_NOFOLLOW and replaced by a new file renamed over it, so it is never
// half written either); it never grows past MEMORY_MAX_BYTES — a write that would is refused
// with what to do instead; only main may write global memory (its mount is also read-only
// everywhere else, so this check is the friendly refusal, not the boundary).

import { crypto } from '../builtins.ts';
import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import { MEMORY_MAX_BYTES } from '../../protocol/tools.ts';
import { fail, ok, type ToolHandler } from './types.ts';

/** How much of an existing MEMORY.md is read: the owner may have made it larger than the limit. */
const READ_MAX_BYTES = 1024 * 1024;
const TITLE_MAX_CHARS = 100;

type Mode = 'append' | 'replace';

/** The section's heading line is `## <title>`; it runs to the next `#`/`##` heading or the end. */
function findSection(lines: readonly string[], title: string): { start: number; end: number } | null {
  const want = title.trim().toLowerCase();
  const start = lines.findIndex((l) => /^##\s/.test(l) && l.slice(2).trim().toLowerCase() === want);
  if (start === -1) return null;
  let end = start + 1;
  while (end < lines.length && !/^#{1,2}\s/.test(lines[end]!)) end++;
  return { start, end };
}

/** Drops blank lines at the end of a block. */
function trimEnd(lines: readonly string[]): string[] {
  const out = [...lines];
  while (out.length && out.at(-1)!.trim() === '') out.pop();
  return out;
}

/** MEMORY.md after the change; pure, so the size rule can be checked before anything is written. */
export function applyRemember(current: string, title: string, text: string, mode: Mode): string {
  const lines = current.replace(/\r\n/g, '\n').split('\n');
  const body = text.replace(/\r\n/g, '\n').trim();
  if (body === '' && mode === 'append') return current;
  const found = findSection(lines, title);
  if (!found) {
    if (body === '') return current;
    const head = trimEnd(lines);
    return [...head, ...(head.length ? [''] : []), `## ${title.trim()}`, '', body, ''].join('\n');
  }
  const before = trimEnd(lines.slice(0, found.start));
  const after = lines.slice(found.end);
  const old = trimEnd(lines.slice(found.start + 1, found.end));
  const kept = mode === 'append' && old.length ? old : [''];
  const section = mode === 'replace' && body === '' ? [] : [lines[found.start]!, ...kept, body, ''];
  const rest = [...section, ...after];
  const joined = [...before, ...(before.length && rest.length ? [''] : []), ...rest];
  return `${trimEnd(joined).join('\n')}\n`;
}

/** The file's text ('' when missing); throws ELOOP for a link, and a plain error for anything but a file. */
async function readNoFollow(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('MEMORY.md is not a regular file');
    if (st.size > READ_MAX_BYTES) throw new Error(`MEMORY.md is ${st.size} bytes, too large to edit with remember; ask the owner to shorten it (hako memory edit)`);
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, st.size, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Replaces `dir/MEMORY.md` by a new file renamed over it: a link there is replaced, never followed. */
async function writeWhole(dir: string, text: string): Promise<void> {
  const tmp = join(dir, `.MEMORY.md.remember-${crypto.randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.close();
    await rename(tmp, join(dir, 'MEMORY.md'));
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

function argsError(args: Readonly<Record<string, unknown>>, isMain: boolean): string | null {
  const title = args.section as string;
  if (title.trim() === '' || title.includes('\n') || title.length > TITLE_MAX_CHARS) return `section must be a one-line title of 1-${TITLE_MAX_CHARS} characters, e.g. "Clients"`;
  if (args.mode !== undefined && args.mode !== 'append' && args.mode !== 'replace') return 'mode must be "append" (add to the section, the default) or "replace" (rewrite it; empty text removes it)';
  if (args.scope !== undefined && args.scope !== 'group' && args.scope !== 'global') return 'scope must be "group" (the default) or "global"';
  if (/^#{1,2}\s/m.test(args.text as string)) return 'text may not contain "#" or "##" heading lines (they would start another section); use ### for sub-headings, or one remember call per section';
  if (args.scope === 'global' && !isMain) return 'only the main group may change global memory; remember this in the group\'s own memory instead (scope "group")';
  return null;
}

function describe(err: unknown, file: string): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ELOOP') return `${file} is a symbolic link; remember never follows one. Remove it (bash: rm ${file}) and call remember again`;
  if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return `${file} is read-only in this container`;
  return `${file}: ${err instanceof Error ? err.message : String(err)}`;
}

/** The handler, with the global folder given (the container's, or a test's). */
export function rememberTool(globalDir: string): ToolHandler {
  return async (args, ctx) => {
    const problem = argsError(args, ctx.isMain);
    if (problem) return fail(problem);
    const dir = args.scope === 'global' ? globalDir : ctx.workspace;
    const file = join(dir, 'MEMORY.md');
    const mode = (args.mode ?? 'append') as Mode;
    try {
      const current = await readNoFollow(file);
      const next = applyRemember(current, args.section as string, args.text as string, mode);
      const size = Buffer.byteLength(next);
      // Over the limit only a write that shrinks the file is let through: that is how it gets back under.
      if (size > MEMORY_MAX_BYTES && size >= Buffer.byteLength(current)) {
        return fail(`not saved: ${file} would be ${size} bytes, over its limit of ${MEMORY_MAX_BYTES} bytes. Summarise first: rewrite the longest or stale sections shorter with mode "replace" (empty text removes a section), then remember this again`);
      }
      if (next === current) return ok(`nothing to change in ${file}`);
      await writeWhole(dir, next);
      return ok(`remembered under "## ${(args.section as string).trim()}" in ${file} (${mode}; now ${size} of ${MEMORY_MAX_BYTES} bytes)`);
    } catch (err) {
      return fail(describe(err, file));
    }
  };
}

/** As the agent runs it: the global folder is where agent/config.ts finds it. */
export const remember: ToolHandler = rememberTool(process.env.HAKO_GLOBAL_DIR || CONTAINER_PATHS.global);
