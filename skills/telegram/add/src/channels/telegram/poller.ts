// The long poll: getUpdates in a loop, each update handed over in order and confirmed (the
// next getUpdates carries its id + 1) only once it was handled, so nothing is lost when
// hako dies. After a network error or a 5xx it waits with exponential backoff; after a
// 429 exactly `retry_after`; a webhook in the way is deleted; a refused token (401) ends
// the loop for good with one clear line, never a crash loop.

import type { Api } from 'grammy';
import type { Update } from 'grammy/types';
import type { Logger } from '../../core/log.ts';
import { apiSignal } from './api-signal.ts';
import { backoff, classify, TOKEN_REFUSED, type Failure } from './errors.ts';

/** How long one getUpdates waits for an update, in seconds (Telegram allows up to 50). */
export const POLL_TIMEOUT = 30;

export type PollState =
  | { readonly kind: 'polling' }
  | { readonly kind: 'failing'; readonly failures: number; readonly since: number; readonly reason: string }
  | { readonly kind: 'conflict'; readonly reason: string }
  | { readonly kind: 'refused' }
  | { readonly kind: 'stopped' };

export interface PollerOptions {
  readonly api: Api;
  readonly token: string;
  readonly apiRoot: string;
  readonly log: Logger;
  /**
   * Contract: handles one update; resolves true once it is done with it (stored, or
   * deliberately dropped), false to have it fetched again after a pause. Never rejects.
   */
  readonly handle: (u: Update) => Promise<boolean>;
  /** Learns who the bot is (getMe) before the first poll; retried like a poll when it fails. */
  readonly identify: () => Promise<void>;
  /** Called once when the token is refused. */
  readonly onRefused: () => void;
  readonly signal: AbortSignal;
}

export class Poller {
  #o: PollerOptions;
  #state: PollState = { kind: 'polling' };
  #offset = 0;
  /** The offset of the last poll the server answered: updates below it are surely confirmed. */
  #confirmed = 0;

  constructor(o: PollerOptions) {
    this.#o = o;
  }

  get state(): PollState {
    return this.#state;
  }

  /** What is wrong with polling now, for `hako status`; undefined while it works. */
  problem(): string | undefined {
    const s = this.#state;
    if (s.kind === 'refused') return TOKEN_REFUSED;
    if (s.kind === 'conflict') return `telegram: ${s.reason}`;
    if (s.kind === 'failing' && s.failures >= 3) {
      return `telegram: the Bot API at ${this.#o.apiRoot} has not answered since ${new Date(s.since).toISOString().slice(11, 19)} UTC (${s.reason}); retrying`;
    }
    return undefined;
  }

  /** Polls until the signal aborts or the token is refused. Contract: never rejects. */
  async run(): Promise<void> {
    const { api, signal } = this.#o;
    let identified = false;
    while (!signal.aborted && this.#state.kind !== 'refused') {
      if (!identified) {
        try {
          await this.#o.identify();
          identified = true;
        } catch (err) {
          await this.#failed(classify(err, this.#o.token));
          continue;
        }
      }
      let updates: Update[];
      const offset = this.#offset;
      try {
        updates = await api.getUpdates({ offset, timeout: POLL_TIMEOUT, allowed_updates: ['message'] }, apiSignal(signal));
        this.#confirmed = offset;
      } catch (err) {
        await this.#failed(classify(err, this.#o.token));
        continue;
      }
      this.#recovered();
      for (const u of updates) {
        if (signal.aborted) break;
        if (!(await this.#o.handle(u))) {
          await this.#pause(backoff(1));
          break;
        }
        this.#offset = u.update_id + 1;
      }
    }
    if (this.#state.kind !== 'refused') this.#state = { kind: 'stopped' };
  }

  /** After a stop: tells Telegram which updates were handled since the last poll, so none comes again. */
  async confirm(): Promise<void> {
    if (this.#offset <= this.#confirmed || this.#state.kind === 'refused') return;
    try {
      await this.#o.api.getUpdates({ offset: this.#offset, limit: 1, timeout: 0 }, apiSignal(AbortSignal.timeout(3000)));
      this.#confirmed = this.#offset;
    } catch (err) {
      this.#o.log.debug('telegram: could not confirm the last updates; they may come again', { reason: classify(err, this.#o.token).text });
    }
  }

  async #failed(f: Failure): Promise<void> {
    const { log } = this.#o;
    switch (f.kind) {
      case 'aborted':
        return;
      case 'unauthorized':
        this.#state = { kind: 'refused' };
        log.error(TOKEN_REFUSED);
        this.#o.onRefused();
        return;
      case 'rate':
        log.warn('telegram: Telegram asks to slow down (429); polling again after its retry_after', { retryAfter: f.retryAfter });
        await this.#pause(f.retryAfter * 1000);
        return;
      case 'conflict':
        if (f.webhook) {
          log.info('telegram: the bot had a webhook set; deleting it to use long polling');
          try {
            await this.#o.api.deleteWebhook({}, apiSignal(this.#o.signal));
            return;
          } catch (err) {
            return this.#failed(classify(err, this.#o.token));
          }
        }
        if (this.#state.kind !== 'conflict') log.warn('telegram: another program is polling this bot (409 Conflict); hako retries, but only one can receive its messages', { reason: f.text });
        this.#state = { kind: 'conflict', reason: 'another program is polling this bot (409 Conflict): stop it, or give hako a bot of its own' };
        await this.#pause(backoff(3));
        return;
      case 'network':
      case 'refused': {
        const prev = this.#state;
        const failures = prev.kind === 'failing' ? prev.failures + 1 : 1;
        if (failures === 1) log.warn('telegram: getUpdates failed; retrying with backoff', { reason: f.text });
        else log.debug('telegram: getUpdates failed again', { failures, reason: f.text });
        this.#state = { kind: 'failing', failures, since: prev.kind === 'failing' ? prev.since : Date.now(), reason: f.text };
        await this.#pause(backoff(failures));
        return;
      }
    }
  }

  #recovered(): void {
    const s = this.#state;
    if (s.kind === 'failing' || s.kind === 'conflict') {
      this.#o.log.info('telegram: polling again', s.kind === 'failing' ? { failures: s.failures } : {});
      this.#state = { kind: 'polling' };
    }
  }

  /** Waits, or less when the channel stops. */
  async #pause(ms: number): Promise<void> {
    const { signal } = this.#o;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
