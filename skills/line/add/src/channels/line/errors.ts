// What a failed Messaging API call means for the channel, from the SDK's HTTPFetchError
// (matched by shape, so this module needs no SDK): a refused token, a rate limit, a retry
// key LINE already took, a network failure or a refusal of this one call. LINE's error
// bodies are `{"message": "…", "details": [...]}`; no text built here carries a credential.

export type Failure =
  /** 401: the channel access token was revoked or is wrong; nothing works until the owner fixes it. */
  | { readonly kind: 'unauthorized'; readonly text: string }
  /** 429: LINE gives no retry-after; the caller backs off on its own. */
  | { readonly kind: 'rate'; readonly text: string }
  /** 409 on a push with X-Line-Retry-Key: LINE accepted this very request before. */
  | { readonly kind: 'accepted'; readonly text: string }
  /** No answer, a dropped connection, a 5xx: try again later. */
  | { readonly kind: 'network'; readonly text: string }
  /** Any other refusal (400 invalid reply token, 400 bad request, 403, 404). */
  | { readonly kind: 'refused'; readonly status: number; readonly message: string; readonly text: string };

export function classify(err: unknown): Failure {
  const e = err as { name?: unknown; status?: unknown; body?: unknown; message?: unknown; cause?: unknown } | null;
  if (e && typeof e.status === 'number' && typeof e.body === 'string') {
    const status = e.status;
    const message = lineMessage(e.body);
    const text = `${status} ${message}`;
    if (status === 401) return { kind: 'unauthorized', text };
    if (status === 429) return { kind: 'rate', text };
    if (status === 409) return { kind: 'accepted', text };
    if (status >= 500) return { kind: 'network', text };
    return { kind: 'refused', status, message, text };
  }
  const cause = e?.cause as { code?: unknown; message?: unknown } | undefined;
  const reason = cause?.code ? String(cause.code) : cause?.message ? String(cause.message) : err instanceof Error ? err.message : String(err);
  return { kind: 'network', text: reason };
}

/** LINE's `message` (and the first detail), or the start of a body that is not LINE's JSON. */
function lineMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { message?: unknown; details?: { message?: unknown; property?: unknown }[] };
    const first = Array.isArray(j.details) ? j.details[0] : undefined;
    const detail = first ? ` (${String(first.property ?? '')}: ${String(first.message ?? '')})` : '';
    if (typeof j.message === 'string') return `${j.message}${detail}`;
  } catch {
    // not JSON
  }
  return body.slice(0, 200) || 'no message';
}

/** Exponential backoff after consecutive failures: 1 s, 2 s, 4 s … at most 30 s, ±20 % so retries spread out. */
export function backoff(failures: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** The owner's line for a refused token. */
export const TOKEN_REFUSED = 'line: the channel access token was refused (401 Unauthorized): it was revoked, expired or is wrong; issue a new one in the LINE Developers Console (Messaging API tab), put it in LINE_CHANNEL_ACCESS_TOKEN in ~/.config/hako/secrets.env and restart hako';
