// Turns whatever an SDK call threw into a ModelResult. Shared by both providers so that
// "retryable" means the same thing for every wire format: network, 408, 409, 429, 5xx, overloaded.

import type { ModelResult } from './provider.ts';

const MAX_ERROR_CHARS = 1000;

export interface ErrorFacts {
  /** The SDK's own classification, computed by the caller with `instanceof`. */
  readonly isAbort: boolean;
  readonly isConnection: boolean;
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

export function failure(provider: string, err: unknown, facts: ErrorFacts, signal?: AbortSignal): ModelResult {
  if (facts.isAbort || signal?.aborted) {
    return { stopReason: 'aborted', text: '', toolCalls: [], error: `${provider}: request aborted` };
  }
  const status = statusOf(err);
  const message = messageOf(err);
  // Stream errors (e.g. an `overloaded_error` event mid-stream) arrive without a status.
  const retryable = facts.isConnection
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
