// Provider for OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, LM Studio, …)
// through the official SDK. Never throws (see Provider contract); tool-call arguments are
// parsed defensively because local models often emit broken JSON.

import OpenAI, { APIConnectionError, APIUserAbortError } from 'openai';
import { randomUUID } from 'node:crypto';
import { MODEL_BASE_URLS, PLACEHOLDER_API_KEY } from '../../protocol/container.ts';
import type { ToolSpec } from '../../protocol/tools.ts';
import { failure } from './errors.ts';
import type { Message, ModelRequest, ModelResult, ModelStopReason, Provider, ProviderOptions, ToolCall } from './provider.ts';

type WireMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

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

function toOpenAITool(t: ToolSpec): OpenAI.Chat.Completions.ChatCompletionFunctionTool {
  return { type: 'function', function: { name: t.name, description: t.description, parameters: { ...t.parameters, required: [...t.parameters.required] } } };
}

/** Parsed JSON when valid; the raw string otherwise (the loop reports it to the model). */
export function parseArguments(raw: string | undefined | null): unknown {
  if (raw === undefined || raw === null || raw.trim() === '') return {}; // some servers send "" for no arguments
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

interface PartialCall { id?: string; name: string; args: string }

function finish(text: string, calls: readonly PartialCall[], finishReason: string | null | undefined): ModelResult {
  const toolCalls: ToolCall[] = calls.map((c) => ({ id: c.id || `call_${randomUUID()}`, name: c.name, args: parseArguments(c.args) }));
  // Some compatible servers report "stop" even when they return tool calls.
  const stopReason: ModelStopReason = toolCalls.length > 0 ? 'tool_use' : finishReason === 'length' ? 'length' : 'stop';
  return { stopReason, text, toolCalls };
}

export class OpenAIProvider implements Provider {
  #client: OpenAI;
  #options: ProviderOptions;

  constructor(options: ProviderOptions) {
    this.#options = options;
    this.#client = new OpenAI({
      baseURL: options.baseURL ?? MODEL_BASE_URLS.openai,
      apiKey: PLACEHOLDER_API_KEY,
      maxRetries: options.maxRetries ?? 2,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async complete(req: ModelRequest): Promise<ModelResult> {
    const body = {
      model: this.#options.model,
      messages: toOpenAIMessages(req.system, req.messages),
      tools: req.tools.map(toOpenAITool),
    };
    try {
      return this.#options.stream ? await this.#streamed(body, req.signal) : await this.#whole(body, req.signal);
    } catch (err) {
      return failure('openai', err, { isAbort: err instanceof APIUserAbortError, isConnection: err instanceof APIConnectionError }, req.signal);
    }
  }

  async #whole(body: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming, signal?: AbortSignal): Promise<ModelResult> {
    const res = await this.#client.chat.completions.create(body, { signal });
    const choice = res.choices[0];
    if (!choice) return { stopReason: 'error', text: '', toolCalls: [], error: 'openai: the response has no choices', retryable: false };
    const calls: PartialCall[] = [];
    for (const c of choice.message.tool_calls ?? []) {
      if (c.type === 'function') calls.push({ id: c.id, name: c.function.name, args: c.function.arguments });
    }
    return finish(choice.message.content ?? '', calls, choice.finish_reason);
  }

  async #streamed(body: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming, signal?: AbortSignal): Promise<ModelResult> {
    // Without include_usage a stream reports no tokens, and the host's daily budget could not count them.
    const stream = await this.#client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal });
    let text = '';
    let finishReason: string | null | undefined;
    // Tool-call deltas carry an index; the id and name come once, arguments in fragments.
    const calls = new Map<number, PartialCall>();
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.content) text += choice.delta.content;
      for (const d of choice.delta.tool_calls ?? []) {
        const call = calls.get(d.index) ?? { name: '', args: '' };
        if (d.id) call.id = d.id;
        if (d.function?.name) call.name += d.function.name;
        if (d.function?.arguments) call.args += d.function.arguments;
        calls.set(d.index, call);
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    const ordered = [...calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
    return finish(text, ordered, finishReason);
  }
}
