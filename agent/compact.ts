// Compaction: when the history outgrows its share of the context budget, the oldest turns
// are summarised by the model (one extra call with its own prompt; tool calls and results
// are part of the transcript it reads) and replaced by one summary message. Invariants:
// never throws (a failed summary falls back to leaving out the oldest turns for this
// request only, which the caller does not save); never writes anything itself — the
// caller saves the result atomically, so a crash here leaves the old history as it was;
// the newest turns it keeps are whole (a tool call stays with its result).

import { renderTranscript } from './archive.ts';
import { capText, capToolResult, estimateTokens, messagesTokens, newestTurnsWithin, toolsTokens, type BudgetPlan } from './budget.ts';
import type { Message, Provider } from './providers/provider.ts';
import type { ToolSpec } from '../protocol/tools.ts';

/** Starts the summary message, so the model (and a reader of history.json) knows what it is. */
export const SUMMARY_HEADING = '[Summary of the earlier conversation, written when it outgrew the context budget. The full transcript is in conversations/*.md in the group folder.]';

/** Each tool result in the summariser's transcript is cut to this: the summary keeps what was done, not raw output. */
const TRANSCRIPT_TOOL_RESULT_TOKENS = 500;

export type CompactOutcome =
  /** The history fits its share: nothing to do. */
  | { readonly kind: 'kept'; readonly messages: readonly Message[] }
  /** The oldest `folded` messages became one summary message: save `messages`. */
  | { readonly kind: 'compacted'; readonly messages: readonly Message[]; readonly folded: number; readonly ms: number }
  /** The summary failed: `messages` are the newest turns that fit, for this request only (do not save). */
  | { readonly kind: 'cut'; readonly messages: readonly Message[]; readonly dropped: number; readonly reason: string };

export interface CompactOptions {
  readonly provider: Provider;
  /** The turn's tools: offered so the request looks like every other one (some servers refuse an empty list); the prompt says not to call them. */
  readonly tools: readonly ToolSpec[];
  readonly history: readonly Message[];
  readonly plan: BudgetPlan;
  readonly signal?: AbortSignal;
}

export function summaryPrompt(maxTokens: number): string {
  // Words are about 1.3 tokens; asking for half as many words as tokens leaves margin.
  const words = Math.max(50, Math.floor(maxTokens / 2));
  return [
    'You are summarising a chat assistant\'s conversation so it can go on without the full text.',
    'The user message holds the transcript: the people\'s messages, the assistant\'s answers, and the tools it called with their results.',
    `Write a summary of at most ${words} words that the assistant will read instead of the transcript. Keep: who asked for what, decisions and facts learned, names, numbers, dates, file paths it wrote, commitments and open questions, and what is still to do. Fold tool calls into what they achieved ("wrote notes/acme.md with the quote"). Drop small talk and raw output.`,
    'If the transcript starts with an earlier summary, merge it in: the result must stand alone.',
    'Answer with the summary text only. Do not call any tool.',
  ].join('\n');
}

/** The part of the history to fold (the oldest turns) and the part to keep verbatim. */
export function splitForCompaction(history: readonly Message[], keepTokens: number): { old: Message[]; recent: Message[] } {
  const recent = newestTurnsWithin(history, keepTokens);
  return { old: history.slice(0, history.length - recent.length), recent };
}

/** The transcript for the summariser, cut to `maxTokens`: the middle goes first (the start holds the earlier summary, the end the latest turns). */
export function summaryInput(old: readonly Message[], maxTokens: number): string {
  const shrunk = old.map((m) => m.role === 'tool' ? { ...m, text: capToolResult(m.text, TRANSCRIPT_TOOL_RESULT_TOKENS) } : m);
  const text = renderTranscript(shrunk);
  if (estimateTokens(text) <= maxTokens) return text;
  const half = Math.floor(maxTokens / 2);
  const head = capText(text, half, () => '');
  const tailBytes = Buffer.from(text, 'utf8');
  const tail = tailBytes.subarray(Math.max(0, tailBytes.length - (half - 32) * 3)).toString('utf8').replace(/^\uFFFD+/, '');
  return `${head}\n[… the middle of the transcript is left out here to fit the context budget …]\n${tail}`;
}

function summaryMessage(text: string, plan: BudgetPlan): Message {
  return { role: 'user', text: `${SUMMARY_HEADING}\n\n${capText(text.trim(), plan.summary, (n) => `[… ${n} bytes of the summary cut]`)}` };
}

/** Compacts `history` when it exceeds `plan.history`. Contract: never throws; honours `signal` through the provider. */
export async function compactHistory(o: CompactOptions): Promise<CompactOutcome> {
  if (messagesTokens(o.history) <= o.plan.history) return { kind: 'kept', messages: o.history };
  const { old, recent } = splitForCompaction(o.history, o.plan.keep);
  const cut = (reason: string): CompactOutcome => {
    const messages = newestTurnsWithin(o.history, o.plan.history);
    return { kind: 'cut', messages, dropped: o.history.length - messages.length, reason };
  };
  if (old.length === 0) return cut('the newest turn alone is larger than the history\'s share');
  const system = summaryPrompt(o.plan.summary);
  // The summariser's own request must fit: its prompt, the tools, the transcript and its answer.
  const room = o.plan.input - estimateTokens(system) - toolsTokens(o.tools) - o.plan.summary - 64;
  if (room < 256) return cut('the context budget leaves no room for a summary request');
  const started = Date.now();
  const res = await o.provider.complete({ system, messages: [{ role: 'user', text: summaryInput(old, room) }], tools: o.tools, ...(o.signal ? { signal: o.signal } : {}) });
  if (res.stopReason === 'error' || res.stopReason === 'aborted') return cut(`the summary call failed: ${res.error ?? res.stopReason}`);
  if (res.toolCalls.length > 0 || res.text.trim() === '') return cut('the model called a tool or wrote nothing instead of a summary');
  return { kind: 'compacted', messages: [summaryMessage(res.text, o.plan), ...recent], folded: old.length, ms: Date.now() - started };
}
