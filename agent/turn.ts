// One batch → one turn: load history, build the prompt, run the loop, write the outputs.
// Invariants: outputs for a batch end with exactly one `done`, or with one `error` and no
// `done`; history is saved only for turns that produced an answer (a failed batch is re-run
// by the host, and must not appear twice). A scheduled task's run is a batch too: with
// context `group` it continues the conversation like a message; with `isolated` it starts
// from an empty one and leaves the group's history untouched.

import { join } from 'node:path';
import { HISTORY_FILE } from '../protocol/container.ts';
import type { BatchFile } from '../protocol/ipc.ts';
import { appendHistory, loadHistory, type LoadedHistory } from './history.ts';
import { errorText, type Logger } from './log.ts';
import { runToEnd, type LoopEvent, type LoopResult } from './loop.ts';
import type { Outbox } from './outbox.ts';
import { splitText } from './outbox.ts';
import { buildSystemPrompt, formatBatch, formatTaskRun } from './prompt.ts';
import type { Provider } from './providers/provider.ts';
import type { Requests } from './requests.ts';
import { AGENT_TOOLS, createToolExecutor } from './tools/index.ts';

export interface TurnSettings {
  readonly assistantName: string;
  readonly group: string;
  readonly isMain: boolean;
  readonly workspace: string;
  readonly globalDir: string;
  readonly maxSteps: number;
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

export async function runBatch(batch: BatchFile, deps: TurnDeps): Promise<LoopResult> {
  const { settings: s, outbox, log } = deps;
  const historyFile = join(s.workspace, HISTORY_FILE);
  // An isolated task run neither reads nor writes the chat's conversation.
  const isolated = batch.task?.context === 'isolated';
  const loaded: LoadedHistory = isolated ? { messages: [] } : await loadHistory(historyFile);
  if (loaded.recovered) log('history_recovered', { batch: batch.id, ...loaded.recovered });

  const execute = createToolExecutor({
    workspace: s.workspace,
    group: s.group,
    isMain: s.isMain,
    sendMessage: async (m) => {
      const name = await outbox.write({ type: 'send_message', batch: batch.id, text: m.text, ...(m.group ? { group: m.group } : {}), ...(m.file ? { file: m.file } : {}) });
      log('output', { batch: batch.id, type: 'send_message', file: name });
    },
    request: (req, signal) => deps.requests.send(req, signal),
  });
  const result = await runToEnd({
    provider: deps.provider,
    system: await buildSystemPrompt({ ...s, ...(batch.task ? { task: batch.task } : {}) }),
    history: loaded.messages,
    input: batch.task ? formatTaskRun(batch.task, batch.messages) : formatBatch(batch.messages),
    tools: AGENT_TOOLS,
    execute,
    maxSteps: s.maxSteps,
    signal: deps.signal,
  }, (e) => logEvent(log, batch.id, e));

  if (result.stopReason === 'error' || result.stopReason === 'aborted') {
    const message = (result.stopReason === 'aborted' ? 'the agent was stopped before it finished' : result.error ?? 'model error').slice(0, 4000);
    const name = await outbox.write({ type: 'error', batch: batch.id, message, retryable: result.stopReason === 'aborted' || (result.retryable ?? false) });
    log('output', { batch: batch.id, type: 'error', file: name });
    return result;
  }
  if (!isolated) {
    try {
      await appendHistory(historyFile, loaded.messages, result.messages);
    } catch (err) {
      // The answer still goes out: losing one turn of context beats losing the reply.
      log('history_save_failed', { batch: batch.id, error: errorText(err) });
    }
  }
  if (result.text.trim() !== '') {
    for (const text of splitText(result.text)) {
      const name = await outbox.write({ type: 'reply', batch: batch.id, text });
      log('output', { batch: batch.id, type: 'reply', file: name });
    }
  }
  const name = await outbox.write({ type: 'done', batch: batch.id });
  log('output', { batch: batch.id, type: 'done', file: name });
  return result;
}
