// Provider for the Anthropic Messages API through the official SDK. Translates the neutral
// Message list to content blocks and back; never throws (see Provider contract).

import Anthropic, { APIConnectionError, APIUserAbortError } from '@anthropic-ai/sdk';
import { MODEL_BASE_URLS, PLACEHOLDER_API_KEY } from '../../protocol/container.ts';
import type { ToolSpec } from '../../protocol/tools.ts';
import { failure } from './errors.ts';
import type { Message, ModelRequest, ModelResult, Provider, ProviderOptions, ToolCall } from './provider.ts';

const MAX_TOKENS = 4096;

type Block = Anthropic.Messages.ContentBlockParam;
type WireMessage = { role: 'user' | 'assistant'; content: Block[] };
/** agent/media.ts sends only these types (others are converted to JPEG first). */
type AnthropicImageType = 'image/jpeg' | 'image/png' | 'image/gif' | 'image/webp';

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function blocksOf(m: Message): { role: 'user' | 'assistant'; blocks: Block[] } {
  switch (m.role) {
    case 'user': {
      const blocks: Block[] = m.text ? [{ type: 'text', text: m.text }] : [];
      for (const img of m.images ?? []) blocks.push({ type: 'image', source: { type: 'base64', media_type: img.mime as AnthropicImageType, data: img.base64 } });
      return { role: 'user', blocks };
    }
    case 'assistant': {
      const blocks: Block[] = m.text ? [{ type: 'text', text: m.text }] : [];
      // The API requires an object; arguments that were not one were already answered with an error.
      for (const c of m.toolCalls) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: isPlainObject(c.args) ? c.args : {} });
      return { role: 'assistant', blocks };
    }
    case 'tool':
      return { role: 'user', blocks: [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.text || '(empty)', is_error: m.isError }] };
  }
}

/**
 * Consecutive messages of one role are merged into one wire message: the tool results of
 * a step (and a user message that follows them after max_steps) become a single user
 * message, as the API requires alternating roles and tool_result blocks right after tool_use.
 */
export function toAnthropicMessages(messages: readonly Message[]): WireMessage[] {
  const out: WireMessage[] = [];
  for (const m of messages) {
    const { role, blocks } = blocksOf(m);
    if (blocks.length === 0) continue; // empty text blocks are rejected by the API
    const last = out.at(-1);
    if (last && last.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  }
  return out;
}

function toAnthropicTool(t: ToolSpec): Anthropic.Messages.Tool {
  return { name: t.name, description: t.description, input_schema: { type: 'object', properties: t.parameters.properties, required: [...t.parameters.required] } };
}

function fromAnthropicMessage(msg: Anthropic.Messages.Message): ModelResult {
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const b of msg.content) {
    if (b.type === 'text') text += b.text;
    else if (b.type === 'tool_use') toolCalls.push({ id: b.id, name: b.name, args: b.input });
  }
  const r = msg.stop_reason;
  const stopReason = toolCalls.length > 0 || r === 'tool_use' ? 'tool_use'
    : r === 'max_tokens' || r === 'model_context_window_exceeded' ? 'length'
    : 'stop';
  return { stopReason, text, toolCalls };
}

export class AnthropicProvider implements Provider {
  #client: Anthropic;
  #options: ProviderOptions;

  constructor(options: ProviderOptions) {
    this.#options = options;
    this.#client = new Anthropic({
      baseURL: options.baseURL ?? MODEL_BASE_URLS.anthropic,
      apiKey: PLACEHOLDER_API_KEY,
      maxRetries: options.maxRetries ?? 2,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async complete(req: ModelRequest): Promise<ModelResult> {
    const params = {
      model: this.#options.model,
      max_tokens: MAX_TOKENS,
      system: req.system,
      messages: toAnthropicMessages(req.messages),
      tools: req.tools.map(toAnthropicTool),
    };
    try {
      const msg = this.#options.stream
        ? await this.#client.messages.stream(params, { signal: req.signal }).finalMessage()
        : await this.#client.messages.create(params, { signal: req.signal });
      return fromAnthropicMessage(msg);
    } catch (err) {
      return failure('anthropic', err, { isAbort: err instanceof APIUserAbortError, isConnection: err instanceof APIConnectionError }, req.signal);
    }
  }
}
