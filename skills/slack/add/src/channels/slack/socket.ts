// The Socket Mode link: bolt's SocketModeClient (apps.connections.open with the app-level
// token, then the WebSocket it names) kept connected by this loop rather than by the
// client's own reconnect, so that a refused token ends it with one clear line instead of
// retrying forever, and every other failure is retried with backoff. An envelope is
// acknowledged only after its event is handled (stored): one that is not comes again.
// States: connecting → connected ⇄ reconnecting (with the last failure) → refused | stopped.

import { EventEmitter } from 'node:events';
import type { Logger } from '../../core/log.ts';
import { backoff, classify, scrub, type Failure } from './errors.ts';

/** The slice of @slack/socket-mode's SocketModeClient the link uses. */
export interface SocketClient extends EventEmitter {
  start(): Promise<unknown>;
  disconnect(): Promise<void>;
}

export interface SlackEnvelope {
  readonly type: string;
  readonly body: { readonly type?: unknown; readonly event?: unknown; readonly event_id?: unknown } | undefined;
  readonly retry_num?: number;
  ack(response?: Record<string, unknown>): Promise<void>;
}

export type LinkState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'connected'; readonly since: number }
  | { readonly kind: 'reconnecting'; readonly failures: number; readonly reason: string }
  | { readonly kind: 'refused'; readonly failure: Failure }
  | { readonly kind: 'stopped' };

export interface SocketLinkOptions {
  readonly client: SocketClient;
  /** Handles one events_api envelope's event; resolves true when it may be acknowledged. */
  readonly handle: (eventId: string | undefined, event: unknown) => Promise<boolean>;
  /** Called once when Slack refuses the app-level token. */
  readonly onRefused: (f: Failure & { kind: 'revoked' }) => void;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

export class SocketLink {
  #o: SocketLinkOptions;
  state: LinkState = { kind: 'connecting' };

  constructor(o: SocketLinkOptions) {
    this.#o = o;
    o.client.on('slack_event', (e: SlackEnvelope) => void this.#envelope(e));
  }

  /** Runs until stopped or refused. Contract: never rejects. */
  async run(): Promise<void> {
    const { client, log, signal } = this.#o;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await client.start();
      } catch (err) {
        if (signal.aborted) break;
        const f = err === undefined ? { kind: 'network' as const, text: 'the WebSocket closed before hello' } : classify(err);
        if (f.kind === 'revoked') {
          this.state = { kind: 'refused', failure: f };
          this.#o.onRefused(f);
          return;
        }
        failures++;
        this.state = { kind: 'reconnecting', failures, reason: f.text };
        log.warn('slack: cannot open the Socket Mode connection; trying again', { failures, reason: f.text });
        await sleep(backoff(failures), signal);
        continue;
      }
      if (failures > 0 || this.state.kind === 'reconnecting') log.info('slack: Socket Mode connected again');
      failures = 0;
      this.state = { kind: 'connected', since: Date.now() };
      // Registered at once after hello: a close is a later event, so none is missed.
      const closed = new Promise<void>((r) => client.once('disconnected', () => r()));
      await Promise.race([closed, aborted(signal)]);
      if (signal.aborted) break;
      // A refresh Slack asked for, or a dropped connection: connect again at once, then back off.
      this.state = { kind: 'reconnecting', failures: 0, reason: 'the connection closed' };
      log.info('slack: the Socket Mode connection closed; reconnecting');
    }
    this.state = { kind: 'stopped' };
  }

  problem(): string | undefined {
    const s = this.state;
    if (s.kind === 'reconnecting' && s.failures > 0) return `slack: the Socket Mode connection is down (${s.reason}); hako keeps reconnecting`;
    return undefined;
  }

  /** Handles one envelope and acknowledges it once its message is stored. Contract: never rejects. */
  async #envelope(e: SlackEnvelope): Promise<void> {
    try {
      if (e.type !== 'events_api' || e.body?.type !== 'event_callback') return await e.ack();
      const eventId = typeof e.body.event_id === 'string' ? e.body.event_id : undefined;
      if (await this.#o.handle(eventId, e.body.event)) await e.ack();
    } catch (err) {
      // The ack did not go out (the socket closed): Slack sends the envelope again.
      this.#o.log.debug('slack: an envelope was not acknowledged', { reason: scrub(err instanceof Error ? err.message : String(err)) });
    }
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      r();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
