// The model ↔ tool loop as a typed event stream. Yields events, returns the turn's result.
// Invariants: never throws for model or tool failures (they are data); at most `maxSteps`
// model calls per turn; tools run one at a time in the order the model asked for them.

import type { ToolSpec } from '../protocol/tools.ts';
import type { ImagePart, Message, ModelResult, Provider, ToolCall } from './providers/provider.ts';
import { argsProblem } from './tools/args.ts';
import type { ToolExecutor } from './tools/index.ts';
import type { ToolArgs, ToolResult } from './tools/types.ts';

export interface LoopOptions {
  readonly provider: Provider;
  readonly system: string;
  /** Earlier turns, oldest first; not modified. */
  readonly history: readonly Message[];
  /** The user message that starts this turn. */
  readonly input: string;
  /** Images that go with the input (agent/media.ts); the loop returns them in `messages` as given. */
  readonly inputImages?: readonly ImagePart[];
  readonly tools: readonly ToolSpec[];
  readonly execute: ToolExecutor;
  readonly maxSteps: number;
  readonly signal?: AbortSignal;
  /** Contract: pure; returns the messages of one request cut to the context budget (see budget.ts). Unset: sent as they are. */
  readonly fit?: (messages: readonly Message[]) => readonly Message[];
  /** Contract: pure; returns a tool result cut to its share of the budget, before the model or the history sees it. */
  readonly capToolResult?: (text: string) => string;
}

export type LoopStopReason = 'stop' | 'max_steps' | 'error' | 'aborted';

export interface LoopResult {
  readonly stopReason: LoopStopReason;
  /** The reply: the model's final text (plus a note when the turn was cut short). */
  readonly text: string;
  readonly error?: string;
  /** For 'error': whether running the turn again might succeed. */
  readonly retryable?: boolean;
  /** The messages this turn added (user input first), to append to the history. */
  readonly messages: readonly Message[];
}

export type LoopEvent =
  | { readonly type: 'turn_start'; readonly historyLength: number }
  | { readonly type: 'model_request'; readonly step: number; readonly messages: number }
  | { readonly type: 'model_response'; readonly step: number; readonly result: ModelResult; readonly ms: number }
  | { readonly type: 'tool_start'; readonly step: number; readonly call: ToolCall }
  | { readonly type: 'tool_end'; readonly step: number; readonly call: ToolCall; readonly result: ToolResult; readonly ms: number }
  | { readonly type: 'turn_end'; readonly result: LoopResult };

/** Checks name and arguments, then runs the tool. Never throws: every failure is a result the model sees. */
async function runTool(call: ToolCall, o: LoopOptions, signal: AbortSignal): Promise<ToolResult> {
  const spec = o.tools.find((t) => t.name === call.name);
  if (!spec) {
    return { text: `unknown tool "${call.name}"; available tools: ${o.tools.map((t) => t.name).join(', ')}`, isError: true };
  }
  const problem = argsProblem(spec, call.args);
  if (problem) return { text: problem, isError: true };
  try {
    return await o.execute(call.name, call.args as ToolArgs, signal);
  } catch (err) {
    return { text: `${call.name} failed: ${err instanceof Error ? err.message : String(err)}`, isError: true };
  }
}

function maxStepsNote(maxSteps: number): string {
  return `(I stopped after ${maxSteps} steps before finishing. Ask me to continue if you want me to go on.)`;
}

export async function* runLoop(o: LoopOptions): AsyncGenerator<LoopEvent, LoopResult> {
  const signal = o.signal ?? new AbortController().signal;
  const added: Message[] = [{ role: 'user', text: o.input, ...(o.inputImages?.length ? { images: o.inputImages } : {}) }];
  let lastText = '';
  yield { type: 'turn_start', historyLength: o.history.length };

  const end = (r: Omit<LoopResult, 'messages'>): LoopResult => ({ ...r, messages: added });

  for (let step = 1; step <= o.maxSteps; step++) {
    if (signal.aborted) {
      const result = end({ stopReason: 'aborted', text: lastText, error: 'the turn was aborted' });
      yield { type: 'turn_end', result };
      return result;
    }
    const messages = o.fit ? o.fit([...o.history, ...added]) : [...o.history, ...added];
    yield { type: 'model_request', step, messages: messages.length };
    const started = Date.now();
    const res = await o.provider.complete({ system: o.system, messages, tools: o.tools, signal });
    yield { type: 'model_response', step, result: res, ms: Date.now() - started };

    if (res.stopReason === 'error' || res.stopReason === 'aborted') {
      const result = end({ stopReason: res.stopReason, text: lastText, error: res.error ?? res.stopReason, retryable: res.retryable ?? false });
      yield { type: 'turn_end', result };
      return result;
    }
    added.push({ role: 'assistant', text: res.text, toolCalls: res.toolCalls });
    if (res.text.trim() !== '') lastText = res.text;

    if (res.toolCalls.length === 0) {
      const text = res.stopReason === 'length' ? `${res.text}\n\n(My reply was cut off at the output limit.)` : res.text;
      const result = end({ stopReason: 'stop', text });
      yield { type: 'turn_end', result };
      return result;
    }

    for (const call of res.toolCalls) {
      yield { type: 'tool_start', step, call };
      const t0 = Date.now();
      const r = await runTool(call, o, signal);
      added.push({ role: 'tool', toolCallId: call.id, name: call.name, text: o.capToolResult ? o.capToolResult(r.text) : r.text, isError: r.isError });
      yield { type: 'tool_end', step, call, result: r, ms: Date.now() - t0 };
    }
  }

  const note = maxStepsNote(o.maxSteps);
  const result = signal.aborted
    ? end({ stopReason: 'aborted', text: lastText, error: 'the turn was aborted' })
    : end({ stopReason: 'max_steps', text: lastText ? `${lastText}\n\n${note}` : note });
  yield { type: 'turn_end', result };
  return result;
}

/** Runs the loop to the end, handing each event to `onEvent`. For consumers that only fold. */
export async function runToEnd(o: LoopOptions, onEvent: (e: LoopEvent) => void): Promise<LoopResult> {
  const gen = runLoop(o);
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
    onEvent(r.value);
  }
}
