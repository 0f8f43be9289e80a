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
import { hostClient, NotRunningError } from './client.ts';

export const help = `Usage: hako chat <group> [--sender NAME] [--timeout SECONDS]

Chat with a group through the running hako (start it first with "npm start").
It shows the recent conversation, then every new message with its sender.
Type a message and press Enter; Ctrl+D or /quit ends the chat. When hako stops,
the chat says so, keeps what you type and sends it once hako is back.
With input from a pipe, each line is sent and the chat waits for its answer
(at most --timeout seconds each, default 300) before exiting; it exits 1 when
an answer did not come, or at once when the model is not ready (the message
is kept and answered later).`;

interface ApiMessage { id: string; role: 'user' | 'assistant'; sender: string; text: string; ts: string }

/** How many messages of the conversation an interactive chat shows when it opens. */
const HISTORY = 10;

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
    const groupPath = `/api/groups/${encodeURIComponent(group)}`;
    const { messages } = await client.call(`${groupPath}/messages`) as { messages: ApiMessage[] };
    const sender = parsed.values.sender ?? process.env.USER ?? 'user';
    const interactive = process.stdin.isTTY === true;
    const rl = readline.createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, prompt: '> ' });
    // Taken at once: piped lines read before a later `for await` began would be lost.
    const lines = rl[Symbol.asyncIterator]();

    // Interactive output goes above the prompt line, which is then drawn again with what
    // the user had typed; piped output is plain lines (notices on stderr, for scripts).
    let prompting = false;
    const say = (line: string) => {
      if (!interactive) return void process.stdout.write(`${line}\n`);
      process.stdout.write(`\r\x1b[K${line}\n`);
      if (prompting) rl.prompt(true);
    };
    const notice = (line: string) => (interactive ? say(`-- ${line}`) : void process.stderr.write(`hako: ${line}\n`));

    const seen = new Set(messages.map((m) => m.id));
    let newest = messages.at(-1)?.id;
    // Texts this chat sent whose event may arrive before the POST's answer: not echoed.
    const inFlight: string[] = [];
    let answered = 0;
    const onAnswer: (() => void)[] = [];
    const show = (m: ApiMessage) => {
      if (seen.has(m.id)) return;
      seen.add(m.id);
      newest = m.id;
      if (m.role === 'user' && m.sender === sender) {
        const i = inFlight.indexOf(m.text);
        if (i >= 0) return void inFlight.splice(i, 1);
      }
      if (m.role === 'assistant') answered++;
      // Piped output is the answers only: a script reads what it asked for.
      if (interactive || m.role === 'assistant') say(renderMessage(m, { columns: columns() }));
      onAnswer.splice(0).forEach((f) => f());
    };

    const unsent: string[] = [];
    let connected = false;
    const send = async (text: string): Promise<{ warning?: string } | 'later'> => {
      inFlight.push(text);
      try {
        const r = await client.call(`${groupPath}/messages`, { method: 'POST', body: { text, sender, direct: true } });
        return r.warning ? { warning: safeLine(String(r.warning)) } : {};
      } catch (err) {
        inFlight.splice(inFlight.indexOf(text), 1);
        if (!(err instanceof NotRunningError) || !interactive) throw err;
        unsent.push(text);
        notice('hako is not running: kept what you typed; it is sent when hako is back');
        return 'later';
      }
    };
    /** Shows the messages that came while the connection was down, then sends what was typed meanwhile. Never rejects. */
    const catchUp = async () => {
      try {
        const after = newest ? `?after=${encodeURIComponent(newest)}` : '';
        const missed = await client.call(`${groupPath}/messages${after}`) as { messages: ApiMessage[] };
        missed.messages.forEach(show);
      } catch (err) {
        notice(`could not load the messages missed while away: ${safeLine(err instanceof Error ? err.message : String(err))}`);
      }
      for (const text of unsent.splice(0)) {
        const r = await send(text).catch((err: unknown) => notice(`not sent: ${safeLine(err instanceof Error ? err.message : String(err))}`));
        if (r === 'later') break;
        if (r?.warning) notice(r.warning);
      }
    };

    const stream = new AbortController();
    let opened!: () => void;
    const open = new Promise<void>((r) => { opened = r; });
    let lost = false;
    const following = follow(`${client.base}${groupPath}/events`, client.headers, stream.signal, {
      message: show,
      open: () => {
        connected = true;
        opened();
        if (!lost) return;
        lost = false;
        notice('reconnected to hako');
        void catchUp();
      },
      drop: (reason) => {
        if (!connected) return;
        connected = false;
        lost = true;
        notice(`lost the connection to hako (${reason}); reconnecting…`);
      },
    });
    // Subscribe before sending, so no answer can slip between the two.
    await Promise.race([open, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (interactive) {
      for (const m of messages.slice(-HISTORY)) process.stdout.write(`${renderMessage(m, { columns: columns() })}\n`);
      console.log(`chatting with "${group}" as ${safeLine(sender)} (Ctrl+D to leave)`);
      prompting = true;
      rl.prompt();
    }
    let failed = 0;
    try {
      for await (const line of { [Symbol.asyncIterator]: () => lines }) {
        const text = line.trim();
        if (text === '/quit') break;
        if (text && !connected && interactive) {
          unsent.push(text);
          notice('not connected to hako: kept what you typed; it is sent when hako is back');
        } else if (text) {
          const before = answered;
          const r = await send(text);
          if (r !== 'later' && r.warning) notice(r.warning);
          // Without a ready model no answer can come: a script is not kept waiting for one.
          if (r !== 'later' && r.warning && !interactive) failed++;
          else if (!interactive) await waitFor(() => answered > before, onAnswer, timeoutS * 1000, group);
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
    if (unsent.length) console.error(`hako: ${unsent.length} typed line(s) were never sent: hako was not running`);
    if (failed) console.error(`hako: not waiting for answers: the model is not ready (${failed} message(s) kept, answered once it is)`);
    return failed || unsent.length ? 1 : 0;
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

/** Reads the SSE stream until aborted, reconnecting every second after a dropped connection. */
async function follow(url: string, headers: Readonly<Record<string, string>>, signal: AbortSignal, on: { message(m: ApiMessage): void; open(): void; drop(reason: string): void }): Promise<void> {
  while (!signal.aborted) {
    let reason = 'hako closed it';
    try {
      const res = await fetch(url, { headers, signal });
      if (!res.ok || !res.body) throw new Error(`the event stream answered ${res.status}`);
      on.open();
      let buf = '';
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const lines = buf.slice(0, i).split('\n');
          buf = buf.slice(i + 2);
          // Only messages: other events (a turn "working") are for the web chat.
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data && event === 'message') on.message(JSON.parse(data) as ApiMessage);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      reason = err instanceof Error && err.message === 'fetch failed' ? 'hako is not running' : err instanceof Error ? err.message : String(err);
    }
    on.drop(reason);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
