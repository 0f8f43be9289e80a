// Token arithmetic for the context budget: how much a request may carry and how to make it
// fit. Invariants: every estimate errs high (a request judged to fit does fit, whatever the
// tokenizer); fitting never splits a tool call from its result and never drops the newest
// user message; all functions are pure.

import type { ToolSpec } from '../protocol/tools.ts';
import type { Message } from './providers/provider.ts';

/**
 * Why 3 bytes per token: BPE tokenizers average about 4 bytes of English prose per token,
 * but fewer for code, JSON, numbers and non-Latin scripts (a CJK character is 3 UTF-8 bytes
 * and usually one token, sometimes two). Counting one token per 3 bytes over-estimates
 * prose by a third and is near the truth for the rest: the budget is spent early rather
 * than the server refusing (or, like Ollama, silently cutting) an over-long prompt.
 */
export const BYTES_PER_TOKEN = 3;
/** Role markers and message framing each provider adds around a message. */
export const MESSAGE_OVERHEAD_TOKENS = 8;
/** Room kept for the answer: what the Anthropic provider asks for (max_tokens), at most a quarter of the budget. */
export const ANSWER_RESERVE_TOKENS = 4096;

export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / BYTES_PER_TOKEN);
}

export function messageTokens(m: Message): number {
  const calls = m.role === 'assistant' ? m.toolCalls.reduce((n, c) => n + estimateTokens(c.id + c.name + JSON.stringify(c.args ?? null)) + MESSAGE_OVERHEAD_TOKENS, 0) : 0;
  const name = m.role === 'tool' ? estimateTokens(m.toolCallId + m.name) : 0;
  return MESSAGE_OVERHEAD_TOKENS + estimateTokens(m.text) + calls + name;
}

export function messagesTokens(messages: readonly Message[]): number {
  return messages.reduce((n, m) => n + messageTokens(m), 0);
}

/** The tool descriptions as they travel in every request (name, description, JSON schema). */
export function toolsTokens(tools: readonly ToolSpec[]): number {
  return estimateTokens(JSON.stringify(tools));
}

/** How one turn's budget is shared out; all figures in estimated tokens. */
export interface BudgetPlan {
  /** What the request (system prompt, tools, messages) may carry: the budget minus the answer's room. */
  readonly input: number;
  /** What the messages of one request may carry: `input` minus the system prompt and the tools. */
  readonly messages: number;
  /** Above this the history is compacted before the turn: half of `messages`, the rest is the turn's own. */
  readonly history: number;
  /** What compaction keeps verbatim (the newest turns); older ones go into the summary. */
  readonly keep: number;
  /** What the summary may take. */
  readonly summary: number;
  /** The most one tool result may take. */
  readonly toolResult: number;
}

/** `contextTokens`: the whole window; `fixed`: the system prompt plus the tool descriptions. */
export function planBudget(contextTokens: number, fixed: number): BudgetPlan {
  const input = contextTokens - Math.min(ANSWER_RESERVE_TOKENS, Math.floor(contextTokens / 4));
  const messages = Math.max(0, input - fixed);
  return {
    input,
    messages,
    history: Math.floor(messages / 2),
    keep: Math.floor(messages / 4),
    summary: Math.max(128, Math.floor(messages / 8)),
    toolResult: Math.max(128, Math.floor(messages / 4)),
  };
}

/** The text cut to at most `maxTokens` (the note included), on a character boundary. */
export function capText(text: string, maxTokens: number, note: (cutBytes: number) => string): string {
  const bytes = Buffer.from(text, 'utf8');
  const max = maxTokens * BYTES_PER_TOKEN;
  if (bytes.length <= max) return text;
  const room = Math.max(0, max - Buffer.byteLength(note(bytes.length), 'utf8') - 2);
  // A cut inside a multi-byte character decodes to U+FFFD: drop that partial character.
  const head = bytes.subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
  return `${head}\n${note(bytes.length - Buffer.byteLength(head, 'utf8'))}`;
}

/** A tool result capped for the budget; the model is told what was cut and how to get the rest. */
export function capToolResult(text: string, maxTokens: number): string {
  return capText(text, maxTokens, (n) => `[… ${n} more bytes cut to fit the context budget; narrow the command (head, grep, a line range) to see them]`);
}

/** Index of the first message of each turn (a user message), oldest first. */
export function turnStarts(messages: readonly Message[]): number[] {
  const out: number[] = [];
  messages.forEach((m, i) => { if (m.role === 'user') out.push(i); });
  return out;
}

/** The newest whole turns that fit in `limit` (at least the newest turn, whatever its size). */
export function newestTurnsWithin(messages: readonly Message[], limit: number): Message[] {
  const starts = turnStarts(messages);
  let from = starts.at(-1) ?? 0;
  for (let i = starts.length - 2; i >= 0; i--) {
    const start = starts[i] as number;
    if (messagesTokens(messages.slice(start)) > limit) break;
    from = start;
  }
  return messages.slice(from);
}

const ELIDED = '[tool output removed to fit the context budget; run the tool again if you need it]';

/**
 * The messages of one request made to fit `limit`: first the oldest turns are left out
 * (whole), then the oldest tool results are replaced by a short note, and last the newest
 * user message is cut. Returns the messages unchanged when they fit.
 */
export function fitMessages(messages: readonly Message[], limit: number): Message[] {
  if (messagesTokens(messages) <= limit) return [...messages];
  const out = newestTurnsWithin(messages, limit);
  let total = messagesTokens(out);
  for (let i = 0; i < out.length && total > limit; i++) {
    const m = out[i] as Message;
    if (m.role !== 'tool' || m.text === ELIDED) continue;
    const shrunk = { ...m, text: ELIDED };
    total += messageTokens(shrunk) - messageTokens(m);
    out[i] = shrunk;
  }
  const first = out[0];
  if (total > limit && first?.role === 'user') {
    const rest = total - messageTokens(first);
    out[0] = { role: 'user', text: capText(first.text, Math.max(16, limit - rest - MESSAGE_OVERHEAD_TOKENS), (n) => `[… ${n} bytes cut to fit the context budget]`) };
  }
  return out;
}
