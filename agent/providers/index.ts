// Picks the provider from a HAKO_MODEL string (protocol/model.ts: `anthropic/<model>` or
// `openai/<model>`, the parser the host validates it with). Only the configured provider's
// module is loaded: a container only ever talks to one, and every module loaded is part of
// an agent's cold start.

import { parseModel } from '../../protocol/model.ts';
import type { Provider } from './provider.ts';

export { parseModel };

export interface ProviderForOptions {
  readonly stream?: boolean;
  /** Overrides the in-container proxy route, e.g. a test server. */
  readonly baseURL?: string;
  readonly maxRetries?: number;
  /** The proxy's socket (ProviderOptions.socketPath). */
  readonly socketPath?: string;
}

/** Rejects on an invalid model string: validate it first with `parseModel` (config does). */
export async function providerFor(model: string, options: ProviderForOptions = {}): Promise<Provider> {
  const ref = parseModel(model);
  if (!ref.ok) throw new Error(ref.reason);
  const opts = { model: ref.value.model, stream: options.stream ?? true, baseURL: options.baseURL, maxRetries: options.maxRetries, socketPath: options.socketPath };
  if (ref.value.provider === 'anthropic') return new (await import('./anthropic.ts')).AnthropicProvider(opts);
  return new (await import('./openai.ts')).OpenAIProvider(opts);
}
