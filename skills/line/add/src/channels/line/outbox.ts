// One assistant message out: Markdown → plain text, cut at 5,000 characters, sent in
// requests of at most five messages, in order. The first request answers with the
// triggering event's reply token when the channel still holds one (unused, within its time
// limit); everything else — and a reply LINE refuses — goes by push, each request with an
// X-Line-Retry-Key derived from the message id and its position, so a push sent again
// (after a 429, a dropped connection or a host crash) is delivered once: LINE answers 409.
// A 429 is waited out with our own backoff (LINE sends no retry-after). Requests already
// delivered are remembered by message id, so a send again after a failure skips them.

import { createHash } from 'node:crypto';
import type { messagingApi } from '@line/bot-sdk';
import type { Outbound } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { backoff, classify, type Failure } from './errors.ts';
import { linePieces } from './format.ts';

/** Attempts per request after a 429 or a dropped connection before the send fails (the host keeps it). */
const RETRIES = 6;
/** Messages partly delivered, remembered this long at most. */
const MEMORY = 500;

export interface OutboxOptions {
  readonly api: Pick<messagingApi.MessagingApiClient, 'replyMessage' | 'pushMessage'>;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** The reply token for a ref, once: undefined when there is none or its time is up. */
  readonly takeReplyToken: (ref: string) => string | undefined;
  /** Called when a send meets a refused token. */
  readonly onRefused: () => void;
  /** Milliseconds to wait before attempt `n` (1-based) after a 429 or a dropped connection. */
  readonly backoff?: (n: number) => number;
}

export class Outbox {
  #o: OutboxOptions;
  /** Outbound id → requests already delivered. */
  #delivered = new Map<string, number>();

  constructor(o: OutboxOptions) {
    this.#o = o;
  }

  async send(m: Outbound, text: string): Promise<void> {
    const to = m.address;
    if (!/^[A-Za-z0-9]{1,64}$/.test(to)) throw new Error(`line: ${JSON.stringify(to)} is not a LINE chat address (a user, group or room id)`);
    const requests = linePieces(text);
    for (let k = this.#delivered.get(m.id) ?? 0; k < requests.length; k++) {
      const messages = requests[k]!.map((t) => ({ type: 'text' as const, text: t }));
      const token = k === 0 && m.replyTo !== undefined ? this.#o.takeReplyToken(m.replyTo) : undefined;
      const replied = token !== undefined && await this.#reply(to, token, messages);
      if (!replied) await this.#push(to, messages, retryKey(m.id, k));
      this.#remember(m.id, k + 1);
    }
    this.#delivered.delete(m.id);
  }

  /** True when LINE took the reply; false when the token no longer works (then push). */
  async #reply(to: string, replyToken: string, messages: messagingApi.TextMessage[]): Promise<boolean> {
    try {
      await this.#o.api.replyMessage({ replyToken, messages });
      return true;
    } catch (err) {
      const f = classify(err);
      if (f.kind === 'unauthorized') this.#fail(to, f);
      // A reply cannot be retried safely (no retry key): push instead, which can.
      this.#o.log.info('line: the reply token did not work; sending by push', { chat: to, reason: f.text });
      return false;
    }
  }

  async #push(to: string, messages: messagingApi.TextMessage[], key: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#o.api.pushMessage({ to, messages }, key);
        return;
      } catch (err) {
        const f = classify(err);
        // 409: this retry key was accepted before (a push whose answer we lost): delivered.
        if (f.kind === 'accepted') return;
        if ((f.kind === 'rate' || f.kind === 'network') && attempt <= RETRIES) {
          const ms = (this.#o.backoff ?? backoff)(attempt);
          this.#o.log.info(f.kind === 'rate' ? 'line: LINE asks to slow down (429); pushing again after a backoff' : 'line: a push failed; pushing again after a backoff', { chat: to, waitMs: ms, reason: f.text });
          await wait(ms, this.#o.signal);
          continue;
        }
        this.#fail(to, f);
      }
    }
  }

  #fail(to: string, f: Failure): never {
    if (f.kind === 'unauthorized') this.#o.onRefused();
    throw new Error(`line: the message to chat ${to} was not sent: ${describe(f)}`);
  }

  #remember(id: string, requests: number): void {
    this.#delivered.delete(id);
    this.#delivered.set(id, requests);
    if (this.#delivered.size > MEMORY) this.#delivered.delete(this.#delivered.keys().next().value!);
  }
}

/** A UUID (LINE's retry-key format) that is the same for the same message and request, across restarts. */
export function retryKey(id: string, request: number): string {
  const h = createHash('sha256').update(`hako-line:${id}:${request}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function describe(f: Failure): string {
  switch (f.kind) {
    case 'unauthorized': return 'the channel access token was refused (401)';
    case 'rate': return `LINE kept answering 429 (rate limit) after ${RETRIES} tries`;
    default: return f.text;
  }
}

/** Waits `ms`; rejects when the signal aborts (the channel stops, the host keeps the message). */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('line: the channel stopped'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('line: the channel stopped'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
