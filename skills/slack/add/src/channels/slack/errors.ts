// What a failed Web API call means for the channel, from @slack/web-api's errors (matched
// by their `code` and `data`, so this module needs no Slack code): a refused credential, a
// rate limit the client gave up waiting out, a network failure, or a refusal of this one
// call. Texts never carry a token: Slack's errors name the method and the error, and
// `scrub` removes any token-shaped string anyway.

export type Failure =
  /** The token was revoked or is wrong (invalid_auth, token_revoked, account_inactive, …): nothing works until the owner fixes it. */
  | { readonly kind: 'revoked'; readonly error: string; readonly text: string }
  /** 429 that the client stopped retrying. */
  | { readonly kind: 'rate'; readonly retryAfter: number; readonly text: string }
  /** No answer, a dropped connection, a 5xx: try again later. */
  | { readonly kind: 'network'; readonly text: string }
  /** Any other refusal of this call (channel_not_found, not_in_channel, …). */
  | { readonly kind: 'refused'; readonly error: string; readonly text: string };

/** Slack's errors for a credential that will not work again without the owner. */
const REVOKED = new Set(['invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive', 'team_disabled', 'user_removed_from_team', 'app_uninstalled']);

/** Removes Slack tokens (xoxb-…, xapp-…, xoxp-…) from a text. */
export function scrub(text: string): string {
  return text.replace(/\bx(?:ox[a-z]|app)-[A-Za-z0-9-]+/g, '[token]');
}

export function classify(err: unknown): Failure {
  const e = err as { code?: unknown; data?: { error?: unknown }; retryAfter?: unknown; statusCode?: unknown; message?: unknown } | null;
  const message = scrub(err instanceof Error ? err.message : String(err));
  if (e?.code === 'slack_webapi_platform_error') {
    const error = String(e.data?.error ?? 'unknown_error');
    return REVOKED.has(error) ? { kind: 'revoked', error, text: error } : { kind: 'refused', error, text: error };
  }
  if (e?.code === 'slack_webapi_rate_limited_error') return { kind: 'rate', retryAfter: Number(e.retryAfter) || 1, text: `rate limited (429), retry after ${Number(e.retryAfter) || 1} s` };
  if (e?.code === 'slack_webapi_http_error') return { kind: 'network', text: `HTTP ${String(e.statusCode)}` };
  return { kind: 'network', text: message };
}

export type Credential = 'SLACK_BOT_TOKEN' | 'SLACK_APP_TOKEN';

/** The owner's one line for a refused credential: what failed, and the setting that fixes it. */
export function refusedLine(credential: Credential, error: string): string {
  const what = credential === 'SLACK_BOT_TOKEN' ? 'the bot token' : 'the app-level token';
  return `slack: Slack refused ${what} (${error}): it was revoked or is wrong; put a current one in ${credential} in ~/.config/hako/secrets.env and restart hako`;
}

/** Exponential backoff after consecutive failures: 1 s, 2 s, 4 s … at most 60 s, ±20 %. */
export function backoff(failures: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}
