// The neutral model interface the loop speaks; each provider module only translates it to
// one wire format. Invariant: `complete` never throws — failures come back as data.

import type { ToolSpec } from '../../protocol/tools.ts';

/** One tool call as the model made it. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /**
   * Whatever the model sent as arguments: normally a JSON object; the raw string when the
   * model sent text that is not valid JSON (the loop turns that into a tool error result).
   */
  readonly args: unknown;
}

/** An image for a multimodal model: the exact bytes, base64, and their type (png, jpeg, gif, webp). */
export interface ImagePart {
  readonly mime: string;
  readonly base64: string;
}

export type Message =
  /** `images` are sent after the text; they live only in the turn, never in the saved history. */
  | { readonly role: 'user'; readonly text: string; readonly images?: readonly ImagePart[] }
  | { readonly role: 'assistant'; readonly text: string; readonly toolCalls: readonly ToolCall[] }
  | { readonly role: 'tool'; readonly toolCallId: string; readonly name: string; readonly text: string; readonly isError: boolean };

export type ModelStopReason = 'stop' | 'tool_use' | 'length' | 'error' | 'aborted';

export interface ModelResult {
  readonly stopReason: ModelStopReason;
  readonly text: string;
  readonly toolCalls: readonly ToolCall[];
  /** Set when stopReason is 'error' or 'aborted'. */
  readonly error?: string;
  /** For 'error': whether the same request might succeed later (network, 5xx, 429, overloaded). */
  readonly retryable?: boolean;
}

export interface ModelRequest {
  readonly system: string;
  readonly messages: readonly Message[];
  readonly tools: readonly ToolSpec[];
  readonly signal?: AbortSignal;
}

export interface Provider {
  /**
   * Contract: never throws and never rejects. Resolves with stopReason 'error' (with
   * `error` and `retryable`) when the request failed after its retries, and with
   * 'aborted' when `signal` fired. The provider honours `signal` for the whole request.
   */
  complete(req: ModelRequest): Promise<ModelResult>;
}

/** Options shared by both providers; `baseURL` overrides the in-container proxy route (tests). */
export interface ProviderOptions {
  readonly model: string;
  readonly stream: boolean;
  readonly baseURL?: string;
  /** Tries after the first before a failure is reported (default 2, as the vendors' clients). */
  readonly maxRetries?: number;
  /**
   * In a container, the group proxy's socket: requests go straight to it, with only the base
   * URL's path (not through the in-container TCP forwarder, which stays for tools).
   */
  readonly socketPath?: string;
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

