// Provider for OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, LM Studio, …) on
// the Chat Completions wire format, over http.ts. Never throws (see Provider contract);
// tool-call arguments are parsed defensively because local models often emit broken JSON.

import { crypto } from '../builtins.ts';
import { MODEL_BASE_URLS, PLACEHOLDER_API_KEY } from '../../protocol/container.ts';
import type { ToolSpec } from '../../protocol/tools.ts';
import { failure } from './errors.ts';
import { postJson, readReply, type Endpoint, type EventFold } from './http.ts';
import { parseArguments, type Message, type ModelRequest, type ModelResult, type ModelStopReason, type Provider, type ProviderOptions, type ToolCall } from './provider.ts';

type ContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };
type WireToolCall = { id: string; type: 'function'; function: { name: string; arguments: string } };
type WireMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | ContentPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: WireToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };
type WireTool = { type: 'function'; function: { name: string; description: string; parameters: unknown } };

/** The parts of a `chat.completion` (whole) and a `chat.completion.chunk` (streamed) read here. */
interface Completion {
  choices?: { message?: { content?: string | null; tool_calls?: { id?: string; type?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: string | null }[];
}
interface CompletionChunk {
  choices?: { delta?: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: string | null }[];
  error?: { message?: string };
}

export function toOpenAIMessages(system: string, messages: readonly Message[]): WireMessage[] {
  const out: WireMessage[] = [{ role: 'system', content: system }];
  for (const m of messages) {
    switch (m.role) {
      case 'user':
        if (!m.images?.length) out.push({ role: 'user', content: m.text });
        else {
          out.push({
            role: 'user',
            content: [
              { type: 'text', text: m.text },
              ...m.images.map((img) => ({ type: 'image_url' as const, image_url: { url: `data:${img.mime};base64,${img.base64}` } })),
            ],
          });
        }
        break;
      case 'assistant':
        if (m.toolCalls.length === 0) out.push({ role: 'assistant', content: m.text });
        else {
          out.push({
            role: 'assistant',
            content: m.text || null,
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: 'function' as const,
              function: { name: c.name, arguments: typeof c.args === 'string' ? c.args : JSON.stringify(c.args ?? {}) },
            })),
          });
        }
        break;
      case 'tool':
        // The wire format has no error flag, so the model learns it from the text.
        out.push({ role: 'tool', tool_call_id: m.toolCallId, content: m.isError ? `Error: ${m.text}` : m.text || '(empty)' });
        break;
    }
  }
  return out;
}

function toOpenAITool(t: ToolSpec): WireTool {
  return { type: 'function', function: { name: t.name, description: t.description, parameters: { ...t.parameters, required: [...t.parameters.required] } } };
}

interface PartialCall { id?: string; name: string; args: string }

function finish(text: string, calls: readonly PartialCall[], finishReason: string | null | undefined): ModelResult {
  const toolCalls: ToolCall[] = calls.map((c) => ({ id: c.id || `call_${crypto.randomUUID()}`, name: c.name, args: parseArguments(c.args) }));
  // Some compatible servers report "stop" even when they return tool calls.
  const stopReason: ModelStopReason = toolCalls.length > 0 ? 'tool_use' : finishReason === 'length' ? 'length' : 'stop';
  return { stopReason, text, toolCalls };
}

/** Folds a stream's chunks into one result; pure, so it is tested on recorded streams. */
export class OpenAIStream implements EventFold<ModelResult> {
  #text = '';
  #finishReason: string | null | undefined;
  // Tool-call deltas carry an index; the id and name come once, arguments in fragments.
  #calls = new Map<number, PartialCall>();
  #done = false;

  /** One `data:` payload; nothing counts after `[DONE]`. Throws on an error the stream reports. */
  push(data: string): void {
    if (this.#done || data === '[DONE]') {
      this.#done = true;
      return;
    }
    const chunk = JSON.parse(data) as CompletionChunk;
    if (chunk.error) throw new Error(chunk.error.message ?? 'the stream reported an error');
    const choice = chunk.choices?.[0];
    if (!choice) return; // e.g. the final usage chunk
    if (choice.delta?.content) this.#text += choice.delta.content;
    for (const d of choice.delta?.tool_calls ?? []) {
      const call = this.#calls.get(d.index) ?? { name: '', args: '' };
      if (d.id) call.id = d.id;
      if (d.function?.name) call.name += d.function.name;
      if (d.function?.arguments) call.args += d.function.arguments;
      this.#calls.set(d.index, call);
    }
    if (choice.finish_reason) this.#finishReason = choice.finish_reason;
  }

  result(): ModelResult {
    const ordered = [...this.#calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
    return finish(this.#text, ordered, this.#finishReason);
  }
}

/** The result of a whole (not streamed) `chat.completion`. */
export function fromCompletion(res: Completion): ModelResult {
  const choice = res.choices?.[0];
  if (!choice) return { stopReason: 'error', text: '', toolCalls: [], error: 'openai: the response has no choices', retryable: false };
  const calls: PartialCall[] = [];
  for (const c of choice.message?.tool_calls ?? []) {
    if ((c.type ?? 'function') === 'function') calls.push({ id: c.id, name: c.function?.name ?? '', args: c.function?.arguments ?? '' });
  }
  return finish(choice.message?.content ?? '', calls, choice.finish_reason);
}

export class OpenAIProvider implements Provider {
  #options: ProviderOptions;
  #endpoint: Endpoint;

  constructor(options: ProviderOptions) {
    this.#options = options;
    this.#endpoint = { baseURL: options.baseURL ?? MODEL_BASE_URLS.openai, ...(options.socketPath ? { socketPath: options.socketPath } : {}) };
  }

  async complete(req: ModelRequest): Promise<ModelResult> {
    const body = {
      model: this.#options.model,
      messages: toOpenAIMessages(req.system, req.messages),
      tools: req.tools.map(toOpenAITool),
      // Without include_usage a stream reports no tokens, and the host's daily budget could not count them.
      ...(this.#options.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
    try {
      const headers = { authorization: `Bearer ${PLACEHOLDER_API_KEY}` };
      const res = await postJson(this.#endpoint, '/chat/completions', headers, JSON.stringify(body), { signal: req.signal, maxRetries: this.#options.maxRetries ?? 2 });
      return await readReply(res, req.signal, (json) => fromCompletion(json as Completion), new OpenAIStream());
    } catch (err) {
      return failure('openai', err, req.signal);
    }
  }
}
