// What a failed Bot API call means for the channel, from grammY's errors (matched by shape,
// so this module needs no grammY): a refused token, a rate limit, a conflict, a network
// failure or a refusal of this one call. Every text is scrubbed of the token, which
// grammY's network errors carry inside the request URL.

export type Failure =
  /** 401: the token was revoked or is wrong; nothing will work until the owner fixes it. */
  | { readonly kind: 'unauthorized'; readonly text: string }
  /** 429: wait `retryAfter` seconds. */
  | { readonly kind: 'rate'; readonly retryAfter: number; readonly text: string }
  /** 409: another program polls this bot, or a webhook is set. */
  | { readonly kind: 'conflict'; readonly webhook: boolean; readonly text: string }
  /** No answer, a dropped connection, a 5xx: try again later. */
  | { readonly kind: 'network'; readonly text: string }
  /** The call was cancelled (the channel stops). */
  | { readonly kind: 'aborted'; readonly text: string }
  /** Any other refusal of this call (400 chat not found, 403 bot was blocked, …). */
  | { readonly kind: 'refused'; readonly code: number; readonly description: string; readonly text: string };

/** Removes the token (and any `bot<id>:<secret>` path segment) from a text. */
export function scrub(text: string, token: string): string {
  const out = token ? text.split(token).join('[token]') : text;
  return out.replace(/\b(bot)?\d{3,20}:[A-Za-z0-9_-]{30,64}/g, (_m, bot: string | undefined) => `${bot ?? ''}[token]`);
}

export function classify(err: unknown, token: string): Failure {
  const e = err as { name?: unknown; error_code?: unknown; description?: unknown; parameters?: { retry_after?: unknown }; error?: unknown; message?: unknown } | null;
  if (e && e.name === 'GrammyError' && typeof e.error_code === 'number') {
    const description = scrub(String(e.description ?? ''), token);
    const code = e.error_code;
    const text = `${code} ${description}`;
    if (code === 401) return { kind: 'unauthorized', text };
    if (code === 429) {
      const after = Number(e.parameters?.retry_after);
      return { kind: 'rate', retryAfter: Number.isFinite(after) && after >= 0 ? after : 5, text };
    }
    if (code === 409) return { kind: 'conflict', webhook: /webhook/i.test(description), text };
    if (code >= 500) return { kind: 'network', text };
    return { kind: 'refused', code, description, text };
  }
  if (e && e.name === 'HttpError') {
    const inner = e.error as { name?: unknown; message?: unknown; code?: unknown } | undefined;
    if (inner?.name === 'AbortError') return { kind: 'aborted', text: 'cancelled' };
    const reason = inner?.message ? String(inner.message) : inner?.code ? String(inner.code) : String(e.message ?? 'no answer');
    return { kind: 'network', text: scrub(reason, token) };
  }
  if (e && (e.name === 'AbortError' || (err instanceof DOMException && err.name === 'AbortError'))) return { kind: 'aborted', text: 'cancelled' };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'network', text: scrub(message, token) };
}

/** Exponential backoff after consecutive failures: 1 s, 2 s, 4 s … at most 60 s, ±20 % so restarts spread out. */
export function backoff(failures: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** The owner's line for a refused token. */
export const TOKEN_REFUSED = 'telegram: the bot token was refused (401 Unauthorized): it was revoked or is wrong; put the current token from BotFather in TELEGRAM_BOT_TOKEN in ~/.config/hako/secrets.env and restart hako';
