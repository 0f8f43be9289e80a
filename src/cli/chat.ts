// `hako chat <group>`: a terminal chat that talks to the running host through its local
// HTTP API (so it works beside the web chat and needs no access to the database).
// With a non-interactive stdin it sends each line and waits for the answers, for scripts.
// Message text comes from agents and chat users: it is printed escaped (safe-text.ts), and
// every row after a message's first is indented, so no message can print a line that
// looks like another sender's or like hako's own.

import readline from 'node:readline';
import { loadConfig } from '../core/config.ts';
import { safeLine, safeText } from '../core/safe-text.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { hostClient } from './client.ts';

export const help = `Usage: hako chat <group> [--sender NAME] [--timeout SECONDS]

Chat with a group through the running hako (start it first with "npm start").
Type a message and press Enter; Ctrl+D or /quit ends the chat.
With input from a pipe, each line is sent and the chat waits for its answer
(at most --timeout seconds each, default 300) before exiting.`;

interface ApiMessage { id: string; role: 'user' | 'assistant'; sender: string; text: string; ts: string }

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { sender: { type: 'string' }, timeout: { type: 'string' } }, help);
    if (!parsed) return 0;
    const [group, extra] = parsed.positionals;
    if (!group) throw new UsageError('missing group name');
    if (extra) throw new UsageError(`unexpected argument "${extra}"`);
    const timeoutS = Number(parsed.values.timeout ?? 300);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--timeout must be a positive number of seconds');
    const client = hostClient(loadConfig());
    const { base, headers } = client;
    const { messages } = await client.call(`/api/groups/${encodeURIComponent(group)}/messages`) as { messages: ApiMessage[] };
    const sender = parsed.values.sender ?? process.env.USER ?? 'user';
    const interactive = process.stdin.isTTY === true;
    const printed = new Set(messages.map((m) => m.id));
    let answered = 0;
    const onAnswer: (() => void)[] = [];
    const show = (m: ApiMessage) => {
      if (printed.has(m.id) || m.role !== 'assistant') return;
      printed.add(m.id);
      answered++;
      process.stdout.write(`${interactive ? '\n' : ''}${renderMessage(m, { columns: columns() })}\n${interactive ? '> ' : ''}`);
      onAnswer.splice(0).forEach((f) => f());
    };
    const stream = new AbortController();
    let opened!: () => void;
    const open = new Promise<void>((r) => { opened = r; });
    const following = follow(`${base}/api/groups/${encodeURIComponent(group)}/events`, headers, stream.signal, show, () => opened());
    // Subscribe before sending, so no answer can slip between the two.
    await Promise.race([open, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (interactive) {
      for (const m of messages.slice(-10)) process.stdout.write(`${renderMessage(m, { columns: columns() })}\n`);
      console.log(`chatting with "${group}" (Ctrl+D to leave)`);
    }
    const rl = readline.createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, prompt: '> ' });
    if (interactive) rl.prompt();
    try {
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/quit') break;
        if (text) {
          const before = answered;
          const r = await client.call(`/api/groups/${encodeURIComponent(group)}/messages`, { method: 'POST', body: { text, sender, direct: true } });
          if (r.warning) console.error(`hako: ${safeLine(String(r.warning))}`);
          if (!interactive) await waitFor(() => answered > before, onAnswer, timeoutS * 1000, group);
        }
        if (interactive) rl.prompt();
      }
    } finally {
      // However the chat ends (a timeout or an error included), nothing may keep the process
      // alive: the event stream and standard input are let go.
      rl.close();
      stream.abort();
      await following;
    }
    return 0;
  });
}

const INDENT = '  ';

/** The terminal's width when stdout is one, so that rows are broken by us, not by it. */
function columns(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns : undefined;
}

/**
 * A message as terminal rows: `sender: first line`, and every further row (the message's
 * own lines, and with `opts.columns` the parts of a line too long for the terminal) indented,
 * so that only the sender prefix ever starts a row.
 */
export function renderMessage(m: { sender: string; text: string }, opts: { columns?: number | undefined } = {}): string {
  const { columns } = opts;
  const [first = '', ...rest] = safeText(m.text).split('\n');
  const lines = [`${safeLine(m.sender)}: ${first}`, ...rest];
  if (!columns || columns <= INDENT.length + 8) return lines.join(`\n${INDENT}`);
  const rows: string[] = [];
  for (const line of lines) rows.push(...breakRow(line, rows.length === 0 ? columns : columns - INDENT.length, columns - INDENT.length));
  return rows.join(`\n${INDENT}`);
}

/**
 * Splits a line into rows no wider than the terminal. Widths are counted high (a tab as 8
 * columns, every non-ASCII character as 2), so a break of ours always comes before the
 * terminal's own wrap could put text in the first column.
 */
function breakRow(line: string, firstWidth: number, width: number): string[] {
  const rows: string[] = [];
  let row = '';
  let used = 0;
  for (const ch of line) {
    const w = ch === '\t' ? 8 : ch.codePointAt(0)! < 0x80 ? 1 : 2;
    if (row && used + w > (rows.length === 0 ? firstWidth : width)) {
      rows.push(row);
      row = '';
      used = 0;
    }
    row += ch;
    used += w;
  }
  rows.push(row);
  return rows;
}

function waitFor(done: () => boolean, hooks: (() => void)[], ms: number, group: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (done()) return resolve();
    const timer = setTimeout(() => reject(new Error(`no answer from "${group}" within ${ms / 1000} s (the message is kept; see hako status/logs)`)), ms);
    const check = () => {
      if (done()) { clearTimeout(timer); resolve(); } else hooks.push(check);
    };
    hooks.push(check);
  });
}

/** Reads the SSE stream until aborted, reconnecting after a dropped connection. */
async function follow(url: string, headers: Readonly<Record<string, string>>, signal: AbortSignal, onMessage: (m: ApiMessage) => void, onOpen: () => void): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { headers, signal });
      if (!res.ok || !res.body) throw new Error('no event stream');
      onOpen();
      let buf = '';
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const data = buf.slice(0, i).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          buf = buf.slice(i + 2);
          if (data) onMessage(JSON.parse(data) as ApiMessage);
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
