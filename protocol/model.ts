// The model string `<provider>/<model>` (HAKO_MODEL, a group's --model): one parser for the
// host (configuration, per-group settings, the proxy's provider) and the agent (which provider
// to load), so the host never accepts a string the agent then refuses.
// The model part is everything after the first slash (e.g. `openai/gpt-oss:20b`,
// `openai/meta-llama/Llama-3.1-8B:free`); surrounding white space is ignored.

import type { Parsed } from './ipc.ts';

export type ProviderName = 'anthropic' | 'openai';

export interface ModelRef {
  readonly provider: ProviderName;
  readonly model: string;
}

/** `setting` names where the value came from, for the reason (default HAKO_MODEL). */
export function parseModel(value: unknown, setting = 'HAKO_MODEL'): Parsed<ModelRef> {
  const expected = 'expected "anthropic/<model>" or "openai/<model>", e.g. anthropic/claude-sonnet-4-5, or openai/gpt-oss:20b for Ollama';
  if (typeof value !== 'string' || value.trim() === '') return { ok: false, reason: `${setting} is not set; ${expected}` };
  const m = /^(anthropic|openai)\/(\S.*)$/.exec(value.trim());
  if (!m) return { ok: false, reason: `${setting} is "${value}"; ${expected}` };
  return { ok: true, value: { provider: m[1] as ProviderName, model: m[2] as string } };
}
