// Provider for the Anthropic Messages API on its wire format, over http.ts. Translates the
// neutral Message list to content blocks and back; never throws (see Provider contract).

import { MODEL_BASE_URLS, PLACEHOLDER_API_KEY } from '../../protocol/container.ts';
import type { ToolSpec } from '../../protocol/tools.ts';
import { failure } from './errors.ts';
import { postJson, readReply, type Endpoint, type EventFold } from './http.ts';
import { parseArguments, type Message, type ModelRequest, type ModelResult, type Provider, type ProviderOptions, type ToolCall } from './provider.ts';

const MAX_TOKENS = 4096;
/** The API version the wire shapes below are written against (sent on every request). */
const API_VERSION = '2023-06-01';

type Block =
  | { type: 'text'; text: string }
  | { type: 'image'; source: { type: 'base64'; media_type: string; data: string } }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content: string; is_error: boolean };
type WireMessage = { role: 'user' | 'assistant'; content: Block[] };
type WireTool = { name: string; description: string; input_schema: unknown };

/** The parts of a `message` (whole, or as `message_start` begins it) read here. */
interface AnthropicMessage {
  content?: { type: string; text?: string; id?: string; name?: string; input?: unknown }[];
  stop_reason?: string | null;
}
/** One streamed event's data; `type` names the event. */
interface StreamEvent {
  type: string;
  index?: number;
  content_block?: { type: string; text?: string; id?: string; name?: string; input?: unknown };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  error?: { type?: string; message?: string };
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function blocksOf(m: Message): { role: 'user' | 'assistant'; blocks: Block[] } {
  switch (m.role) {
    case 'user': {
      const blocks: Block[] = m.text ? [{ type: 'text', text: m.text }] : [];
      for (const img of m.images ?? []) blocks.push({ type: 'image', source: { type: 'base64', media_type: img.mime, data: img.base64 } }); // media.ts sends only jpeg, png, gif, webp
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

function toAnthropicTool(t: ToolSpec): WireTool {
  return { name: t.name, description: t.description, input_schema: { type: 'object', properties: t.parameters.properties, required: [...t.parameters.required] } };
}

function stopReasonOf(reason: string | null | undefined, hasCalls: boolean): ModelResult['stopReason'] {
  if (hasCalls || reason === 'tool_use') return 'tool_use';
  return reason === 'max_tokens' || reason === 'model_context_window_exceeded' ? 'length' : 'stop';
}

/** The result of a whole (not streamed) message. */
export function fromAnthropicMessage(msg: AnthropicMessage): ModelResult {
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const b of msg.content ?? []) {
    if (b.type === 'text') text += b.text ?? '';
    else if (b.type === 'tool_use') toolCalls.push({ id: b.id ?? '', name: b.name ?? '', args: b.input ?? {} });
  }
  return { stopReason: stopReasonOf(msg.stop_reason, toolCalls.length > 0), text, toolCalls };
}

type OpenBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; json: string } | { type: 'other' };

/** Folds a stream's events into one result; pure, so it is tested on recorded streams. */
export class AnthropicStream implements EventFold<ModelResult> {
  #blocks: OpenBlock[] = [];
  #stopReason: string | null | undefined;

  /** One event's data. Throws on an `error` event (e.g. overloaded mid-stream). */
  push(data: string): void {
    const e = JSON.parse(data) as StreamEvent;
    switch (e.type) {
      case 'content_block_start': {
        const b = e.content_block;
        if (e.index === undefined || !b) return;
        this.#blocks[e.index] = b.type === 'text' ? { type: 'text', text: b.text ?? '' }
          : b.type === 'tool_use' ? { type: 'tool_use', id: b.id ?? '', name: b.name ?? '', json: '' }
          : { type: 'other' }; // thinking and the like: not part of the reply
        return;
      }
      case 'content_block_delta': {
        const block = e.index === undefined ? undefined : this.#blocks[e.index];
        if (block?.type === 'text' && e.delta?.type === 'text_delta') block.text += e.delta.text ?? '';
        else if (block?.type === 'tool_use' && e.delta?.type === 'input_json_delta') block.json += e.delta.partial_json ?? '';
        return;
      }
      case 'message_delta':
        if (e.delta?.stop_reason) this.#stopReason = e.delta.stop_reason;
        return;
      case 'error':
        throw new Error(e.error?.message ?? e.error?.type ?? 'the stream reported an error');
    }
  }

  result(): ModelResult {
    let text = '';
    const toolCalls: ToolCall[] = [];
    for (const b of this.#blocks) {
      if (b?.type === 'text') text += b.text;
      else if (b?.type === 'tool_use') toolCalls.push({ id: b.id, name: b.name, args: parseArguments(b.json) });
    }
    return { stopReason: stopReasonOf(this.#stopReason, toolCalls.length > 0), text, toolCalls };
  }
}

export class AnthropicProvider implements Provider {
  #options: ProviderOptions;
  #endpoint: Endpoint;

  constructor(options: ProviderOptions) {
    this.#options = options;
    this.#endpoint = { baseURL: options.baseURL ?? MODEL_BASE_URLS.anthropic, ...(options.socketPath ? { socketPath: options.socketPath } : {}) };
  }

  async complete(req: ModelRequest): Promise<ModelResult> {
    const body = {
      model: this.#options.model,
      max_tokens: MAX_TOKENS,
      system: req.system,
      messages: toAnthropicMessages(req.messages),
      tools: req.tools.map(toAnthropicTool),
      ...(this.#options.stream ? { stream: true } : {}),
    };
    try {
      const headers = { 'x-api-key': PLACEHOLDER_API_KEY, 'anthropic-version': API_VERSION };
      const res = await postJson(this.#endpoint, '/v1/messages', headers, JSON.stringify(body), { signal: req.signal, maxRetries: this.#options.maxRetries ?? 2 });
      return await readReply(res, req.signal, (json) => fromAnthropicMessage(json as AnthropicMessage), new AnthropicStream());
    } catch (err) {
      return failure('anthropic', err, req.signal);
    }
  }
}
