// grammY on Node types its AbortSignal parameters with the abort-controller polyfill's
// type; at run time it only calls addEventListener/removeEventListener on the signal,
// which the platform's AbortSignal has. This is the one place that bridges the two types.

import type { Api } from 'grammy';

export type ApiSignal = NonNullable<Parameters<Api['getMe']>[0]>;

export function apiSignal(s: AbortSignal): ApiSignal {
  return s as unknown as ApiSignal;
}
