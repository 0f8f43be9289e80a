// What a failed Discord call means for the channel, from discord.js's errors (matched by
// shape, so this module loads no discord.js): a refused token, a refusal of this one call,
// or a failure worth trying again. Every text is scrubbed of the token.

export type Failure =
  /** 401, TokenInvalid, gateway close 4004: the token was reset or is wrong. */
  | { readonly kind: 'unauthorized'; readonly text: string }
  /** Gateway close 4014: the Message Content intent is not enabled for the bot. */
  | { readonly kind: 'intents'; readonly text: string }
  /** A 4xx refusal of this call (10003 Unknown Channel, 50013 Missing Permissions, …). */
  | { readonly kind: 'refused'; readonly status: number; readonly code: number; readonly text: string }
  /** No answer, a dropped connection, a 5xx after discord.js's own retries: try again later. */
  | { readonly kind: 'network'; readonly text: string }
  | { readonly kind: 'aborted'; readonly text: string };

/** The owner's line for a refused token. */
export const TOKEN_REFUSED = 'discord: the bot token was refused (401 Unauthorized / gateway close 4004 Authentication failed): it was reset or is wrong; put the current token from the Developer Portal (Bot → Reset Token) in DISCORD_BOT_TOKEN in ~/.config/hako/secrets.env and restart hako';

/** The owner's line for a bot whose privileged intent is not enabled. */
export const INTENTS_REFUSED = 'discord: Discord refused the Message Content intent (gateway close 4014 Disallowed intents): in the Developer Portal, open the application → Bot → Privileged Gateway Intents, turn on MESSAGE CONTENT INTENT, save, and restart hako';

/** Removes the token from a text. */
export function scrub(text: string, token: string): string {
  return token ? text.split(token).join('[token]') : text;
}

export function classify(err: unknown, token: string): Failure {
  const e = err as { name?: unknown; status?: unknown; code?: unknown; message?: unknown; cause?: unknown } | null;
  const message = scrub(err instanceof Error ? err.message : String(err), token);
  if (e && (e.code === 'TokenInvalid' || e.status === 401 || /Authentication failed/.test(message))) return { kind: 'unauthorized', text: message };
  if (/disallowed intents/i.test(message)) return { kind: 'intents', text: INTENTS_REFUSED };
  if (e && (e.name === 'AbortError' || (err instanceof DOMException && err.name === 'AbortError'))) return { kind: 'aborted', text: 'cancelled' };
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return { kind: 'refused', status: e.status, code: typeof e.code === 'number' ? e.code : 0, text: `${e.status} ${message}` };
  }
  const cause = e?.cause instanceof Error ? `: ${scrub(e.cause.message, token)}` : '';
  return { kind: 'network', text: `${message}${cause}` };
}

/** Exponential backoff after consecutive failures: 1 s, 2 s, 4 s … at most 60 s, ±20 % so restarts spread out. */
export function backoff(failures: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}
