// The group's conversation, persisted as JSON in the group folder. Invariants: a missing or
// corrupt file loads as empty (a corrupt one is kept aside, never silently overwritten);
// saves are atomic (tmp + rename); trimming cuts only before a user message, so a tool call
// and its result are never separated. Trimming is only a backstop for compaction (compact.ts).
// The file is read and written with synchronous calls: it is on the turn's path, a few
// syscalls on a file in the page cache, and each asynchronous call would cost a thread-pool
// round trip inside a one-CPU container.

import { closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Message, ToolCall } from './providers/provider.ts';

export const HISTORY_MAX_MESSAGES = 200;
/** A rough bound on what earlier turns cost the model's context window (~100k tokens). */
export const HISTORY_MAX_CHARS = 400_000;
/** Old tool output matters less than the conversation; store at most this much of each. */
export const HISTORY_TOOL_RESULT_CHARS = 20_000;

export interface LoadedHistory {
  readonly messages: Message[];
  /** Set when the file was corrupt: where it was moved and why. */
  readonly recovered?: { readonly movedTo: string; readonly reason: string };
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parseToolCall(x: unknown): ToolCall | null {
  if (!isObj(x) || typeof x.id !== 'string' || typeof x.name !== 'string') return null;
  return { id: x.id, name: x.name, args: x.args };
}

export function parseMessage(x: unknown): Message | null {
  if (!isObj(x)) return null;
  if (x.role === 'user' && typeof x.text === 'string') return { role: 'user', text: x.text };
  if (x.role === 'assistant' && typeof x.text === 'string' && Array.isArray(x.toolCalls)) {
    const toolCalls = x.toolCalls.map(parseToolCall);
    if (toolCalls.some((c) => c === null)) return null;
    return { role: 'assistant', text: x.text, toolCalls: toolCalls as ToolCall[] };
  }
  if (x.role === 'tool' && typeof x.toolCallId === 'string' && typeof x.name === 'string' && typeof x.text === 'string' && typeof x.isError === 'boolean') {
    return { role: 'tool', toolCallId: x.toolCallId, name: x.name, text: x.text, isError: x.isError };
  }
  return null;
}

function parseHistory(raw: string): Message[] | string {
  let data: unknown;
  try { data = JSON.parse(raw); } catch (err) { return `invalid JSON: ${(err as Error).message}`; }
  if (!isObj(data) || data.v !== 1 || !Array.isArray(data.messages)) return 'expected {"v":1,"messages":[…]}';
  const out: Message[] = [];
  for (const [i, m] of data.messages.entries()) {
    const parsed = parseMessage(m);
    if (!parsed) return `message ${i} has an unexpected shape`;
    out.push(parsed);
  }
  return out;
}

export async function loadHistory(file: string): Promise<LoadedHistory> {
  let raw: string;
  try {
    // O_NONBLOCK: a FIFO planted in its place fails the read instead of blocking the agent.
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try { raw = readFileSync(fd, 'utf8'); } finally { closeSync(fd); }
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return { messages: [] };
    throw err; // unreadable (permissions, I/O): a broken precondition, not a corrupt file
  }
  const parsed = parseHistory(raw);
  if (typeof parsed !== 'string') return { messages: parsed };
  const movedTo = `${file}.corrupt-${Date.now()}`;
  renameSync(file, movedTo);
  return { messages: [], recovered: { movedTo, reason: parsed } };
}

function size(m: Message): number {
  if (m.role === 'assistant') return m.text.length + m.toolCalls.reduce((n, c) => n + c.name.length + JSON.stringify(c.args ?? null).length, 0);
  return m.text.length;
}

/**
 * Drops the oldest turns until at most `maxMessages` and `maxChars` remain, cutting only
 * right before a user message. A single turn larger than the limits is kept whole.
 */
export function trimHistory(messages: readonly Message[], limits: { maxMessages?: number; maxChars?: number } = {}): Message[] {
  const maxMessages = limits.maxMessages ?? HISTORY_MAX_MESSAGES;
  const maxChars = limits.maxChars ?? HISTORY_MAX_CHARS;
  const charsFrom: number[] = new Array(messages.length + 1).fill(0);
  for (let i = messages.length - 1; i >= 0; i--) charsFrom[i] = (charsFrom[i + 1] as number) + size(messages[i] as Message);
  const fits = (c: number): boolean => messages.length - c <= maxMessages && (charsFrom[c] as number) <= maxChars;
  if (fits(0)) return [...messages];
  let lastUser = 0;
  for (let c = 1; c < messages.length; c++) {
    if (messages[c]?.role !== 'user') continue;
    if (fits(c)) return messages.slice(c);
    lastUser = c;
  }
  return messages.slice(lastUser);
}

function shrinkToolResult(m: Message): Message {
  if (m.role !== 'tool' || m.text.length <= HISTORY_TOOL_RESULT_CHARS) return m;
  return { ...m, text: `${m.text.slice(0, HISTORY_TOOL_RESULT_CHARS)}\n[… ${m.text.length - HISTORY_TOOL_RESULT_CHARS} characters cut from history]` };
}

/** Replaces the saved history atomically: a crash leaves the old file or the new one, never a mix. */
export async function saveHistory(file: string, messages: readonly Message[]): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ v: 1, messages }), 'utf8');
  renameSync(tmp, file);
}

/**
 * Appends a turn's messages and saves the trimmed result atomically. Returns what was saved.
 * The trim is a backstop: compaction (compact.ts) normally keeps the history far smaller.
 */
export async function appendHistory(file: string, before: readonly Message[], turn: readonly Message[]): Promise<Message[]> {
  const messages = trimHistory([...before, ...turn.map(shrinkToolResult)]);
  await saveHistory(file, messages);
  return messages;
}
