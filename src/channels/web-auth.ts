// Who may talk to the HTTP channel, decided before any route: the Host header (so a
// DNS-rebinding page gets nothing), and the web chat's sign-in. The long-lived API token
// never appears in a URL: `hako start` and `hako web` print a link with a one-time code,
// and the page trades it for a session cookie.
// Invariants: a code works once, and only within CODE_TTL_MS; a session is a random id
// known only to this process's memory (so it ends with the host) and expires; a request
// authenticated by the cookie that changes state must come from the page's own origin.

import { randomBytes } from 'node:crypto';
import type http from 'node:http';

export const CODE_TTL_MS = 10 * 60_000;
/** A session ends after this long unused, and after SESSION_MAX_MS in any case. */
export const SESSION_IDLE_MS = 12 * 3_600_000;
export const SESSION_MAX_MS = 7 * 24 * 3_600_000;
// Bounds on what unauthenticated or buggy callers can make this process remember.
const MAX_CODES = 32;
const MAX_SESSIONS = 64;

/**
 * Whether a Host header names this server: 127.0.0.1, localhost or [::1] with its port,
 * or one of `extra` (`name` for any port, `name:port` for that port only). Case-insensitive.
 */
export function hostAllowed(host: string | undefined, port: number, extra: readonly string[] = []): boolean {
  if (!host) return false;
  const h = host.toLowerCase();
  const loopback = ['127.0.0.1', 'localhost', '[::1]'];
  if (loopback.some((name) => h === `${name}:${port}` || (port === 80 && h === name))) return true;
  const name = h.replace(/:\d+$/, '');
  return extra.some((e) => {
    const want = e.toLowerCase();
    return want === h || want === name;
  });
}

/** Whether an Origin header is this same server, as named by the (already checked) Host. */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host) return false;
  const u = URL.parse(origin);
  return !!u && (u.protocol === 'http:' || u.protocol === 'https:') && u.host === host.toLowerCase() && u.origin === origin.toLowerCase();
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Why a cookie-authenticated request must be refused, or null. Browsers send the cookie
 * (SameSite=Strict) to every port of the same host, so another local page is "same-site":
 * reads need a same-origin or user-initiated fetch, and writes a matching Origin.
 */
export function cookieRequestProblem(req: Pick<http.IncomingMessage, 'method' | 'headers'>): string | null {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${site} request may not use the web session`;
  if (req.method === 'GET' || req.method === 'HEAD') return null;
  const origin = req.headers.origin;
  return sameOrigin(origin, req.headers.host) ? null : `a ${req.method} with the web session needs the Origin of this page (got ${origin ?? 'none'})`;
}

export type Redeemed = { readonly ok: true; readonly session: string } | { readonly ok: false; readonly reason: string };

export interface WebAuthOptions {
  /** Contract: returns milliseconds; defaults to Date.now. */
  readonly now?: () => number;
}

/** One-time codes and the sessions they open; all in memory. */
export class WebAuth {
  readonly #now: () => number;
  readonly #codes = new Map<string, number>(); // code → expires at
  readonly #sessions = new Map<string, { readonly started: number; used: number }>();

  constructor(opts: WebAuthOptions = {}) {
    this.#now = opts.now ?? Date.now;
  }

  /** A fresh single-use code, valid for CODE_TTL_MS. */
  issueCode(): { code: string; expiresAt: number } {
    this.#prune();
    const code = randomBytes(24).toString('base64url');
    const expiresAt = this.#now() + CODE_TTL_MS;
    this.#codes.set(code, expiresAt);
    evictOldest(this.#codes, MAX_CODES);
    return { code, expiresAt };
  }

  /** Spends `code` (whatever the outcome) and opens a session when it was valid. */
  redeem(code: string): Redeemed {
    const expiresAt = this.#codes.get(code);
    this.#codes.delete(code);
    if (expiresAt === undefined) return { ok: false, reason: 'this sign-in link is unknown or was already used' };
    if (this.#now() >= expiresAt) return { ok: false, reason: 'this sign-in link has expired (links work for 10 minutes)' };
    this.#prune();
    const session = randomBytes(32).toString('base64url');
    this.#sessions.set(session, { started: this.#now(), used: this.#now() });
    evictOldest(this.#sessions, MAX_SESSIONS);
    return { ok: true, session };
  }

  /** Whether `id` is a live session; using it keeps it alive. */
  check(id: string | undefined): boolean {
    if (!id) return false;
    const s = this.#sessions.get(id);
    if (!s) return false;
    const now = this.#now();
    if (!alive(s, now)) {
      this.#sessions.delete(id);
      return false;
    }
    s.used = now;
    return true;
  }

  #prune(): void {
    const now = this.#now();
    for (const [code, exp] of this.#codes) if (now >= exp) this.#codes.delete(code);
    for (const [id, s] of this.#sessions) if (!alive(s, now)) this.#sessions.delete(id);
  }
}

function alive(s: { readonly started: number; readonly used: number }, now: number): boolean {
  return now - s.used < SESSION_IDLE_MS && now - s.started < SESSION_MAX_MS;
}

/** Maps keep insertion order: drops the oldest entries beyond `max`. */
function evictOldest(map: Map<string, unknown>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}
