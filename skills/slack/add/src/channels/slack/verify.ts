// Whether a request posted to `/slack/events` comes from Slack: bolt's verifySlackRequest
// checks the v0 signature (HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the signing
// secret, compared in constant time) and refuses a timestamp older than 5 minutes; this
// adds what it leaves out — a timestamp more than 5 minutes ahead, and the same signed
// request seen twice within those minutes (a replay; Slack's own retries are signed anew
// and carry x-slack-retry-num). Runs before anything of the body is parsed or stored.

import type { WebhookRequest } from '../../core/channel.ts';

export const MAX_AGE_S = 5 * 60;

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** bolt's `verifySlackRequest` (given by the channel, which imports bolt lazily). */
export type VerifySlackRequest = (o: { signingSecret: string; body: string; headers: { 'x-slack-signature': string; 'x-slack-request-timestamp': number }; nowMilliseconds?: number }) => void;

export class RequestVerifier {
  #secret: string;
  #verify: VerifySlackRequest;
  #now: () => number;
  /** signature → when it stops mattering (its timestamp is then too old anyway), in ms. */
  #seen = new Map<string, number>();

  constructor(o: { signingSecret: string; verify: VerifySlackRequest; now?: () => number }) {
    this.#secret = o.signingSecret;
    this.#verify = o.verify;
    this.#now = o.now ?? Date.now;
  }

  check(req: Pick<WebhookRequest, 'headers' | 'body'>): Verdict {
    const signature = req.headers['x-slack-signature'] ?? '';
    const stamp = req.headers['x-slack-request-timestamp'] ?? '';
    if (!signature || !stamp) return { ok: false, reason: 'unsigned request (no x-slack-signature or x-slack-request-timestamp)' };
    if (!/^\d{1,12}$/.test(stamp)) return { ok: false, reason: 'bad x-slack-request-timestamp' };
    const now = this.#now();
    const ts = Number(stamp);
    if (Math.abs(now / 1000 - ts) > MAX_AGE_S) return { ok: false, reason: 'stale timestamp (more than 5 minutes off): a replayed or delayed request' };
    try {
      this.#verify({ signingSecret: this.#secret, body: req.body.toString('utf8'), headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': ts }, nowMilliseconds: now });
    } catch {
      return { ok: false, reason: 'bad signature' };
    }
    this.#forget(now);
    if (this.#seen.has(signature)) return { ok: false, reason: 'replayed request (this signature was seen before)' };
    this.#seen.set(signature, (ts + MAX_AGE_S) * 1000 + 1000);
    return { ok: true };
  }

  #forget(now: number): void {
    for (const [sig, until] of this.#seen) if (until < now) this.#seen.delete(sig);
  }
}
