// One batch → one turn: load history, build the prompt, run the loop, write the outputs.
// Invariants: outputs for a batch end with exactly one `done`, or with one `error` and no
// `done`; history is saved only for turns that produced an answer (a failed batch is re-run
// by the host, and must not appear twice). A scheduled task's run is a batch too: with
// context `group` it continues the conversation like a message; with `isolated` it starts
// from an empty one and leaves the group's history untouched. Every turn, failed ones too,
// is archived (archive.ts) before the history is saved; no request exceeds the group's
// context budget: an oversized history is compacted first (compact.ts), and each request
// is fitted (budget.ts). A compacted history is saved atomically before the turn runs.

import { join } from 'node:path';
import { HISTORY_FILE } from '../protocol/container.ts';
import type { BatchFile } from '../protocol/ipc.ts';
import { archiveTurn } from './archive.ts';
import { capText, capToolResult, estimateTokens, fitMessages, messagesTokens, planBudget, toolsTokens, type BudgetPlan } from './budget.ts';
import { compactHistory } from './compact.ts';
import { DEFAULT_CONTEXT_TOKENS, DEFAULT_MAX_SUBAGENTS, DEFAULT_TURN_TIMEOUT_SECONDS } from './config.ts';
import { appendHistory, loadHistory, saveHistory, type LoadedHistory } from './history.ts';
import type { Message } from './providers/provider.ts';
import { errorText, type Logger } from './log.ts';
import { httpTranscriber, prepareMedia, withoutImages } from './media.ts';
import { runToEnd, type LoopEvent, type LoopResult } from './loop.ts';
import type { Outbox } from './outbox.ts';
import { splitText } from './outbox.ts';
import { buildSystemPrompt, formatBatchWithDocuments, formatTaskRun } from './prompt.ts';
import type { Provider } from './providers/provider.ts';
import type { Requests } from './requests.ts';
import { AGENT_TOOLS, createToolExecutor, TOOL_HANDLERS } from './tools/index.ts';
import { spawnAgentsTool, type Swarm } from './tools/spawn.ts';

export interface TurnSettings {
  readonly assistantName: string;
  readonly group: string;
  readonly isMain: boolean;
  readonly workspace: string;
  readonly globalDir: string;
  readonly maxSteps: number;
  /** Tokens one model request may use, the answer included (default DEFAULT_CONTEXT_TOKENS). */
  readonly contextTokens?: number;
  /** Sub-agents per spawn_agents call (default DEFAULT_MAX_SUBAGENTS). */
  readonly maxSubagents?: number;
  /** The host's limit for this turn (default DEFAULT_TURN_TIMEOUT_SECONDS): sub-agents end inside it. */
  readonly turnTimeoutSeconds?: number;
  /** Whether attached images are sent to the model (media.ts); default false: path and note only. */
  readonly modelImages?: boolean;
  /** The proxy's transcription route and model, when the host has one (media.ts). */
  readonly transcribe?: { readonly url: string; readonly model: string };
}

export interface TurnDeps {
  readonly provider: Provider;
  readonly outbox: Outbox;
  /** Sends the task tools' requests and waits for the host's responses. */
  readonly requests: Pick<Requests, 'send'>;
  readonly log: Logger;
  /** Aborts the model call and the running tool (shutdown). */
  readonly signal: AbortSignal;
  readonly settings: TurnSettings;
}

/** Folds loop events into log lines: sizes and names, never contents. */
function logEvent(log: Logger, batch: string, e: LoopEvent): void {
  switch (e.type) {
    case 'turn_start': return log('turn_start', { batch, history: e.historyLength });
    case 'model_request': return log('model_request', { batch, step: e.step, messages: e.messages });
    case 'model_response': return log('model_response', {
      batch, step: e.step, ms: e.ms, stopReason: e.result.stopReason, textChars: e.result.text.length,
      toolCalls: e.result.toolCalls.map((c) => c.name), ...(e.result.error ? { error: e.result.error } : {}),
    });
    case 'tool_start': return log('tool_start', { batch, step: e.step, tool: e.call.name, callId: e.call.id });
    case 'tool_end': return log('tool_end', { batch, step: e.step, tool: e.call.name, callId: e.call.id, ms: e.ms, isError: e.result.isError, chars: e.result.text.length });
    case 'turn_end': return log('turn_end', { batch, stopReason: e.result.stopReason, textChars: e.result.text.length, ...(e.result.error ? { error: e.result.error } : {}) });
  }
}

/**
 * The history this turn starts from: compacted (and saved) when it outgrew its share of
 * the budget, or — when the summary failed — only its newest turns, for this request only:
 * the file keeps the rest, and the next turn tries again.
 */
async function historyForTurn(deps: TurnDeps, batchId: string, file: string, history: readonly Message[], plan: BudgetPlan): Promise<{ sent: readonly Message[]; saved: readonly Message[] }> {
  const { log } = deps;
  const c = await compactHistory({ provider: deps.provider, tools: AGENT_TOOLS, history, plan, signal: deps.signal });
  if (c.kind === 'kept') return { sent: history, saved: history };
  if (c.kind === 'cut') {
    log('history_cut', { batch: batchId, dropped: c.dropped, reason: c.reason });
    return { sent: c.messages, saved: history };
  }
  log('history_compacted', { batch: batchId, folded: c.folded, kept: c.messages.length - 1, ms: c.ms, tokensBefore: messagesTokens(history), tokensAfter: messagesTokens(c.messages) });
  try {
    await saveHistory(file, c.messages);
  } catch (err) {
    // The summary still serves this turn; saving the turn's history afterwards tries again.
    log('history_save_failed', { batch: batchId, error: errorText(err) });
  }
  return { sent: c.messages, saved: c.messages };
}

/** What spawn_agents lends its sub-agents: this turn's provider, budget and deadline; a prompt with memory but no history. */
function swarmFor(batchId: string, deps: TurnDeps, plan: BudgetPlan, startedAt: Date): Swarm {
  const s = deps.settings;
  return {
    provider: deps.provider,
    systemPrompt: () => buildSystemPrompt({ ...s, subAgent: true }),
    tools: AGENT_TOOLS,
    executorFor: (ctx) => createToolExecutor(ctx),
    maxSteps: s.maxSteps,
    maxAgents: s.maxSubagents ?? DEFAULT_MAX_SUBAGENTS,
    deadline: startedAt.getTime() + (s.turnTimeoutSeconds ?? DEFAULT_TURN_TIMEOUT_SECONDS) * 1000,
    turn: batchId,
    log: deps.log,
    fit: (messages) => fitMessages(messages, plan.messages),
    capToolResult: (text) => capToolResult(text, plan.toolResult),
  };
}

/**
 * The system prompt within 60% of what a request may carry (the tools count against it),
 * so a small model's window is not filled by memory files alone and the conversation keeps
 * the rest. The memory files, then the skill instructions, come last in the prompt, so
 * they are what gets cut (the instructions first).
 */
function fitSystemPrompt(system: string, contextTokens: number, onCut: (bytes: number) => void): string {
  const share = Math.max(256, Math.floor(planBudget(contextTokens, 0).input * 0.6) - toolsTokens(AGENT_TOOLS));
  if (estimateTokens(system) <= share) return system;
  onCut(Buffer.byteLength(system, 'utf8') - share * 3);
  return capText(system, share, (n) => `[… ${n} bytes of memory and skill instructions left out to fit the context budget (HAKO_CONTEXT_TOKENS); keep MEMORY.md short]`);
}

function turnTitle(batch: BatchFile, stopReason: string): string {
  const what = batch.task ? `scheduled task ${batch.task.id}, run ${batch.task.run}${batch.task.context === 'isolated' ? ' (isolated)' : ''}` : `batch ${batch.id}`;
  return stopReason === 'stop' ? what : `${what} (${stopReason})`;
}

export async function runBatch(batch: BatchFile, deps: TurnDeps): Promise<LoopResult> {
  const { settings: s, outbox, log } = deps;
  const historyFile = join(s.workspace, HISTORY_FILE);
  const startedAt = new Date();
  // An isolated task run neither reads nor writes the chat's conversation.
  const isolated = batch.task?.context === 'isolated';
  const loaded: LoadedHistory = isolated ? { messages: [] } : await loadHistory(historyFile);
  if (loaded.recovered) log('history_recovered', { batch: batch.id, ...loaded.recovered });
  const contextTokens = s.contextTokens ?? DEFAULT_CONTEXT_TOKENS;
  const system = fitSystemPrompt(await buildSystemPrompt({ ...s, ...(batch.task ? { task: batch.task } : {}) }), contextTokens, (cut) => log('system_prompt_cut', { batch: batch.id, bytes: cut }));
  const plan = planBudget(contextTokens, estimateTokens(system) + toolsTokens(AGENT_TOOLS));
  const history = await historyForTurn(deps, batch.id, historyFile, loaded.messages, plan);

  const execute = createToolExecutor({
    workspace: s.workspace,
    group: s.group,
    isMain: s.isMain,
    sendMessage: async (m) => {
      const name = await outbox.write({ type: 'send_message', batch: batch.id, text: m.text, ...(m.group ? { group: m.group } : {}), ...(m.file ? { file: m.file } : {}) });
      log('output', { batch: batch.id, type: 'send_message', file: name });
    },
    request: (req, signal) => deps.requests.send(req, signal),
  }, { ...TOOL_HANDLERS, spawn_agents: spawnAgentsTool(swarmFor(batch.id, deps, plan, startedAt)) });
  const media = await prepareMedia(batch.messages, {
    workspace: s.workspace, images: s.modelImages ?? false,
    ...(s.transcribe ? { transcribe: httpTranscriber({ ...s.transcribe, signal: deps.signal }) } : {}),
  });
  const result = await runToEnd({
    provider: deps.provider,
    system,
    history: history.sent,
    input: (batch.task ? formatTaskRun(batch.task, batch.messages) : await formatBatchWithDocuments(batch.messages, s.workspace)) + media.note,
    inputImages: media.images,
    tools: AGENT_TOOLS,
    execute,
    maxSteps: s.maxSteps,
    signal: deps.signal,
    fit: (messages) => fitMessages(messages, plan.messages),
    capToolResult: (text) => capToolResult(text, plan.toolResult),
  }, (e) => logEvent(log, batch.id, e));
  const archive = () => archiveTurn(s.workspace, { at: startedAt, title: turnTitle(batch, result.stopReason), messages: result.messages });
  if (result.stopReason === 'error' || result.stopReason === 'aborted') {
    await archive();
    const message = (result.stopReason === 'aborted' ? 'the agent was stopped before it finished' : result.error ?? 'model error').slice(0, 4000);
    const name = await outbox.write({ type: 'error', batch: batch.id, message, retryable: result.stopReason === 'aborted' || (result.retryable ?? false) });
    log('output', { batch: batch.id, type: 'error', file: name });
    return result;
  }
  // The reply goes out before the archive and the history are written: the person waits for
  // it, and the next batch comes only after `done`, so it still reads this turn's history.
  if (result.text.trim() !== '') {
    for (const text of splitText(result.text)) {
      const name = await outbox.write({ type: 'reply', batch: batch.id, text });
      log('output', { batch: batch.id, type: 'reply', file: name });
    }
  }
  await archive();
  if (!isolated) {
    try {
      await appendHistory(historyFile, history.saved, withoutImages(result.messages));
    } catch (err) {
      // The turn still ends: losing one turn of context beats holding the group.
      log('history_save_failed', { batch: batch.id, error: errorText(err) });
    }
  }
  const name = await outbox.write({ type: 'done', batch: batch.id });
  log('output', { batch: batch.id, type: 'done', file: name });
  return result;
}
