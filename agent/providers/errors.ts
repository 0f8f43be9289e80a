// Turns whatever a model request threw into a ModelResult. Shared by both providers so that
// "retryable" means the same thing for every wire format: network, 408, 409, 429, 5xx, overloaded.

import { ConnectionError, HttpStatusError, isRetryableStatus } from './http.ts';
import type { ModelResult } from './provider.ts';

const MAX_ERROR_CHARS = 1000;

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export function failure(provider: string, err: unknown, signal?: AbortSignal): ModelResult {
  if (signal?.aborted) {
    return { stopReason: 'aborted', text: '', toolCalls: [], error: `${provider}: request aborted` };
  }
  const status = err instanceof HttpStatusError ? err.status : undefined;
  const message = messageOf(err);
  // Stream errors (e.g. an `overloaded_error` event mid-stream) arrive without a status.
  // A body cut off mid-way is the connection's fault, whatever its message says.
  const retryable = err instanceof ConnectionError || (err as { code?: unknown } | null)?.code === 'ECONNRESET'
    || (status !== undefined ? isRetryableStatus(status) : /overloaded|rate.?limit|timed? ?out|ECONNRESET|socket hang up/i.test(message));
  const prefix = status !== undefined ? `${provider} (HTTP ${status})` : provider;
  return {
    stopReason: 'error',
    text: '',
    toolCalls: [],
    error: `${prefix}: ${message}`.slice(0, MAX_ERROR_CHARS),
    retryable,
  };
}
