// Picks the provider from a HAKO_MODEL string: `anthropic/<model>` or `openai/<model>`.
// The model part is everything after the first slash (e.g. `openai/gpt-oss:20b`).
// Only the configured provider's module (and so its SDK) is loaded: a container only ever
// talks to one, and loading an SDK is a large part of an agent's cold start.

import type { Parsed } from '../../protocol/ipc.ts';
import type { Provider } from './provider.ts';

export type ProviderName = 'anthropic' | 'openai';

export interface ModelRef {
  readonly provider: ProviderName;
  readonly model: string;
}

export function parseModel(value: unknown): Parsed<ModelRef> {
  const example = 'e.g. HAKO_MODEL=anthropic/claude-sonnet-4-5 or HAKO_MODEL=openai/gpt-oss:20b';
  if (typeof value !== 'string' || value.trim() === '') return { ok: false, reason: `HAKO_MODEL is not set; expected "<provider>/<model>", ${example}` };
  const m = /^(anthropic|openai)\/(\S.*)$/.exec(value.trim());
  if (!m) return { ok: false, reason: `HAKO_MODEL is "${value}"; expected "anthropic/<model>" or "openai/<model>", ${example}` };
  return { ok: true, value: { provider: m[1] as ProviderName, model: m[2] as string } };
}

export interface ProviderForOptions {
  readonly stream?: boolean;
  /** Overrides the in-container proxy route, e.g. a test server. */
  readonly baseURL?: string;
  readonly maxRetries?: number;
}

/** Rejects on an invalid model string: validate it first with `parseModel` (config does). */
export async function providerFor(model: string, options: ProviderForOptions = {}): Promise<Provider> {
  const ref = parseModel(model);
  if (!ref.ok) throw new Error(ref.reason);
  const opts = { model: ref.value.model, stream: options.stream ?? true, baseURL: options.baseURL, maxRetries: options.maxRetries };
  if (ref.value.provider === 'anthropic') return new (await import('./anthropic.ts')).AnthropicProvider(opts);
  return new (await import('./openai.ts')).OpenAIProvider(opts);
}
