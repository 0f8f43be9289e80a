// The archive: the full transcript of every turn, appended as readable Markdown to
// conversations/YYYY-MM-DD.md (UTC day) in the group folder, for the agent to grep when
// its history holds only a summary. Invariants: only appends; never follows a link (the
// folder is the agent's own and may hold anything); one entry is one write, so entries
// from concurrent writers (sub-agents) do not interleave; never throws into the turn.

import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errorText, stderrLogger } from './log.ts';
import type { Message } from './providers/provider.ts';

export const ARCHIVE_DIR = 'conversations';

export interface ArchiveEntry {
  readonly at: Date;
  /** What the turn was, e.g. `batch b-12` or `scheduled task t-3, run 2`. */
  readonly title: string;
  readonly messages: readonly Message[];
}

/** A code fence longer than any run of backticks in `text`, so the block cannot be closed early. */
function fenced(text: string, info = ''): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${info}\n${text}\n${fence}`;
}

function renderMessage(m: Message): string {
  if (m.role === 'user') return `**user**\n\n${m.text}`;
  if (m.role === 'tool') return `**tool result** \`${m.name}\`${m.isError ? ' (error)' : ''}\n\n${fenced(m.text)}`;
  const parts = m.text.trim() === '' ? [] : [`**assistant**\n\n${m.text}`];
  for (const c of m.toolCalls) parts.push(`**tool call** \`${c.name}\`\n\n${fenced(typeof c.args === 'string' ? c.args : JSON.stringify(c.args, null, 2), 'json')}`);
  return parts.join('\n\n');
}

/** The messages as Markdown: who said what, tool calls with their arguments and results in fences. */
export function renderTranscript(messages: readonly Message[]): string {
  return messages.map(renderMessage).filter((s) => s !== '').join('\n\n');
}

export function renderEntry(entry: ArchiveEntry): string {
  const when = entry.at.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return `\n## ${when} · ${entry.title}\n\n${renderTranscript(entry.messages)}\n`;
}

export function archiveFile(groupDir: string, at: Date): string {
  return join(groupDir, ARCHIVE_DIR, `${at.toISOString().slice(0, 10)}.md`);
}

/** Makes conversations/ unless it is there; refuses one that is a link or not a folder. */
function archiveDir(groupDir: string): string {
  const dir = join(groupDir, ARCHIVE_DIR);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${dir} is not a plain folder (a link or a file): move it away so the archive can be written`);
  return dir;
}

/**
 * Appends one turn's transcript. Contract: never throws and never rejects; a failure is
 * logged to stderr (as the agent's log lines are) and the turn goes on without it. The
 * calls are synchronous: a few syscalls on the turn's path, without a thread-pool round
 * trip for each (see history.ts).
 */
export async function archiveTurn(groupDir: string, entry: { at: Date; title: string; messages: readonly Message[] }): Promise<void> {
  let fd: number | undefined;
  try {
    archiveDir(groupDir);
    const file = archiveFile(groupDir, entry.at);
    // O_NONBLOCK: a FIFO planted here fails at once (no reader) instead of blocking the agent.
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
    if (!fstatSync(fd).isFile()) throw new Error(`${file} is not a regular file`);
    writeSync(fd, renderEntry(entry));
  } catch (err) {
    stderrLogger('archive_failed', { title: entry.title, error: errorText(err) });
  } finally {
    if (fd !== undefined) try { closeSync(fd); } catch { /* nothing to keep */ }
  }
}
