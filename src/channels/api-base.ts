// A chat channel's API base URL setting (TELEGRAM_API_ROOT, SLACK_API_URL, DISCORD_API_ROOT,
// WHATSAPP_GRAPH_URL, LINE_API_ROOT …), checked one way for every channel. The platform's
// credential travels in every request to that base, so it must be https, or plain http
// only to a loopback address (a local emulator in tests), and the URL may carry no
// credentials, query or fragment. Errors start with the channel's name and say what to give.

import { isLoopback } from '../core/config.ts';

export interface ApiBaseSetting {
  /** The channel, first word of every error: `telegram`. */
  readonly channel: string;
  /** The setting's name: `TELEGRAM_API_ROOT`. */
  readonly name: string;
  /** What to give, for a value that is not a URL: "the Bot API server's base". */
  readonly what: string;
  /** The platform's own base, used when the setting is unset or empty. */
  readonly fallback: string;
  /** What travels in every request: "the bot token". */
  readonly secret: string;
  /** Only an origin (scheme, host, port) is allowed, no path. */
  readonly originOnly?: boolean;
}

/** The setting's value without trailing slashes, or the fallback; throws when it is not allowed. */
export function apiBaseUrl(raw: string | undefined, s: ApiBaseSetting): string {
  if (raw === undefined || raw.trim() === '') return s.fallback;
  const value = raw.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${s.channel}: ${s.name} ${JSON.stringify(value)} is not a URL: give ${s.what}, e.g. ${s.fallback}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${s.channel}: ${s.name} must be an http(s) URL, not ${url.protocol}`);
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new Error(`${s.channel}: ${s.name} must use https:// (plain http:// only to a loopback address such as 127.0.0.1): ${s.secret} travels in every request`);
  }
  const extras = url.search || url.hash || url.username || url.password;
  if (s.originOnly && (extras || (url.pathname !== '/' && url.pathname !== ''))) {
    throw new Error(`${s.channel}: ${s.name} must be a plain origin such as ${s.fallback}, without a path, credentials, query or fragment`);
  }
  if (extras) {
    throw new Error(`${s.channel}: ${s.name} must be a plain base URL, without credentials, query or fragment`);
  }
  return value;
}
