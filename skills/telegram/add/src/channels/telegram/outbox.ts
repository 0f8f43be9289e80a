// One assistant message out: Markdown → text and entities, cut at 4,096 characters, sent
// piece by piece in order, the first as a reply to the triggering message (and in its
// forum topic). A 429 is waited out (retry_after) and the piece sent again; a piece
// Telegram refuses for its formatting goes again as plain text; any other refusal rejects
// and the host keeps the message. Pieces already delivered are remembered by message id,
// so a message sent again after a failure does not repeat them.

import type { Api } from 'grammy';
import type { MessageEntity } from 'grammy/types';
import { apiSignal } from './api-signal.ts';
import type { Outbound } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { classify, type Failure } from './errors.ts';
import { markdownToTelegram, splitFormatted, trimFormatted, type Formatted } from './format.ts';
import { parseAddress, parseRef } from './inbound.ts';

export const TEXT_LIMIT = 4096;
/** The longest wait for a 429 inside one send; longer, the send fails and the host retries later. */
const MAX_RATE_WAIT_S = 60;
const RATE_RETRIES = 5;
/** Telegram's words when the formatting, not the message, is the problem. */
const FORMAT_REFUSED = /can't parse|entit|url/i;
/** Messages partly delivered, remembered this long at most. */
const MEMORY = 500;

export interface OutboxOptions {
  readonly api: Api;
  readonly token: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Called when a send meets a refused token. */
  readonly onRefused: () => void;
}

export class Outbox {
  #o: OutboxOptions;
  /** Outbound id → pieces already delivered. */
  #delivered = new Map<string, number>();

  constructor(o: OutboxOptions) {
    this.#o = o;
  }

  async send(m: Outbound): Promise<void> {
    const addr = parseAddress(m.address);
    if (!addr) throw new Error(`telegram: ${JSON.stringify(m.address)} is not a Telegram chat address (a chat id, or chat id/topic id)`);
    const reply = m.replyTo !== undefined ? parseRef(m.replyTo) : undefined;
    const thread = addr.thread ?? reply?.thread;
    let formatted = markdownToTelegram(m.text);
    if (formatted.text === '') formatted = trimFormatted({ text: m.text, entities: [] });
    const pieces = splitFormatted(formatted, TEXT_LIMIT);
    for (let k = this.#delivered.get(m.id) ?? 0; k < pieces.length; k++) {
      await this.#piece(addr.chatId, pieces[k]!, { ...(thread !== undefined ? { thread } : {}), ...(k === 0 && reply ? { replyTo: reply.messageId } : {}) });
      this.#remember(m.id, k + 1);
    }
    this.#delivered.delete(m.id);
  }

  async #piece(chatId: number, piece: Formatted, at: { thread?: number; replyTo?: number }): Promise<void> {
    let plain = piece.entities.length === 0;
    for (let rateRetries = 0; ;) {
      try {
        await this.#o.api.sendMessage(chatId, piece.text, {
          ...(plain ? {} : { entities: piece.entities as MessageEntity[] }),
          ...(at.thread !== undefined ? { message_thread_id: at.thread } : {}),
          ...(at.replyTo !== undefined ? { reply_parameters: { message_id: at.replyTo, allow_sending_without_reply: true } } : {}),
        }, apiSignal(this.#o.signal));
        return;
      } catch (err) {
        const f = classify(err, this.#o.token);
        if (f.kind === 'rate' && rateRetries < RATE_RETRIES && f.retryAfter <= MAX_RATE_WAIT_S) {
          rateRetries++;
          this.#o.log.info('telegram: Telegram asks to slow down (429); sending again after its retry_after', { chat: chatId, retryAfter: f.retryAfter });
          await wait(f.retryAfter * 1000, this.#o.signal);
          continue;
        }
        if (f.kind === 'refused' && f.code === 400 && !plain && FORMAT_REFUSED.test(f.description)) {
          this.#o.log.warn('telegram: Telegram refused the formatting of a reply; sending it as plain text', { chat: chatId, reason: f.text });
          plain = true;
          continue;
        }
        if (f.kind === 'unauthorized') this.#o.onRefused();
        throw new Error(`telegram: the message to chat ${chatId} was not sent: ${describe(f)}`);
      }
    }
  }

  #remember(id: string, pieces: number): void {
    this.#delivered.delete(id);
    this.#delivered.set(id, pieces);
    if (this.#delivered.size > MEMORY) this.#delivered.delete(this.#delivered.keys().next().value!);
  }
}

function describe(f: Failure): string {
  switch (f.kind) {
    case 'unauthorized': return 'the bot token was refused (401)';
    case 'rate': return `Telegram asks to wait ${f.retryAfter} s (429)`;
    case 'aborted': return 'the channel stopped';
    default: return f.text;
  }
}

/** Waits `ms`; rejects when the signal aborts (the channel stops, the host keeps the message). */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('telegram: the channel stopped'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('telegram: the channel stopped'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
