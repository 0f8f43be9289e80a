// One assistant message out through the Cloud API: Markdown → WhatsApp markup, cut at
// 4,096 characters, sent piece by piece in order, the first quoting the triggering message
// (context.message_id); a file is uploaded (POST /{phone-number-id}/media) and sent as an
// image or a document with the text as its caption. A rate limit is waited out with
// exponential backoff and the piece sent again; any other refusal rejects and the host keeps
// the message. Pieces already delivered are remembered by message id, so a message sent
// again after a failure does not repeat them.

import { readFile } from 'node:fs/promises';
import type { Outbound } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { splitText } from '../split.ts';
import { markdownToWhatsApp } from './format.ts';
import { classify, type Failure, type Graph } from './graph.ts';

export const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
/** Waits after consecutive rate limits: 1 s, 2 s, 4 s, 8 s, 16 s; then the send fails and the host retries later. */
const RATE_WAITS_MS = [1000, 2000, 4000, 8000, 16000];
const MEMORY = 500;
const IMAGE = /\.(jpe?g|png)$/i;
const IMAGE_MAX = 5 * 1024 * 1024;

export interface OutboxOptions {
  readonly graph: Graph;
  readonly phoneNumberId: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Called when a call meets a refused token. */
  readonly onRefused: () => void;
  /** Waits between retries (tests pass a faster one). */
  readonly rateWaitsMs?: readonly number[];
}

/** A chat address is the other side's phone number in international form, digits only. */
export function parseAddress(address: string): string | undefined {
  const digits = address.replace(/^\+/, '');
  return /^\d{6,20}$/.test(digits) ? digits : undefined;
}

export class Outbox {
  #o: OutboxOptions;
  /** Outbound id → pieces already delivered (the file counts as piece 0 when there is one). */
  #delivered = new Map<string, number>();

  constructor(o: OutboxOptions) {
    this.#o = o;
  }

  async send(m: Outbound): Promise<void> {
    const to = parseAddress(m.address);
    if (!to) throw new Error(`whatsapp: ${JSON.stringify(m.address)} is not a WhatsApp chat address (a phone number in international form, digits only)`);
    const text = markdownToWhatsApp(m.text);
    const steps: ((quote: boolean) => Promise<void>)[] = [];
    let rest = text;
    if (m.file) {
      const file = m.file;
      const caption = text.length <= CAPTION_LIMIT ? text : '';
      if (caption) rest = '';
      steps.push((quote) => this.#file(to, file, caption, quote ? m.replyTo : undefined));
    }
    if (rest.trim() || !m.file) {
      for (const piece of splitText(rest, TEXT_LIMIT)) steps.push((quote) => this.#text(to, piece, quote ? m.replyTo : undefined));
    }
    for (let k = this.#delivered.get(m.id) ?? 0; k < steps.length; k++) {
      await this.#retrying(to, () => steps[k]!(k === 0));
      this.#remember(m.id, k + 1);
    }
    this.#delivered.delete(m.id);
  }

  async #text(to: string, body: string, replyTo: string | undefined): Promise<void> {
    await this.#o.graph.call('POST', `/${this.#o.phoneNumberId}/messages`, {
      messaging_product: 'whatsapp', recipient_type: 'individual', to, type: 'text',
      text: { body, preview_url: false },
      ...(replyTo ? { context: { message_id: replyTo } } : {}),
    });
  }

  async #file(to: string, file: { path: string; name: string }, caption: string, replyTo: string | undefined): Promise<void> {
    const data = await readFile(file.path);
    const image = IMAGE.test(file.name) && data.length <= IMAGE_MAX;
    const mime = image ? (/\.png$/i.test(file.name) ? 'image/png' : 'image/jpeg') : 'application/octet-stream';
    const form = new FormData();
    form.set('messaging_product', 'whatsapp');
    form.set('type', mime);
    form.set('file', new Blob([data], { type: mime }), file.name);
    const uploaded = await this.#o.graph.call('POST', `/${this.#o.phoneNumberId}/media`, form);
    const id = typeof uploaded.id === 'string' ? uploaded.id : undefined;
    if (!id) throw new Error('whatsapp: the media upload gave no id');
    const kind = image ? 'image' : 'document';
    await this.#o.graph.call('POST', `/${this.#o.phoneNumberId}/messages`, {
      messaging_product: 'whatsapp', recipient_type: 'individual', to, type: kind,
      [kind]: { id, ...(caption ? { caption } : {}), ...(kind === 'document' ? { filename: file.name } : {}) },
      ...(replyTo ? { context: { message_id: replyTo } } : {}),
    });
  }

  async #retrying(to: string, call: () => Promise<void>): Promise<void> {
    const waits = this.#o.rateWaitsMs ?? RATE_WAITS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        const f = classify(err);
        if (f.kind === 'rate' && attempt < waits.length) {
          this.#o.log.info('whatsapp: the Cloud API asks to slow down; sending again after a pause', { to: mask(to), waitMs: waits[attempt], reason: f.text });
          await wait(waits[attempt]!, this.#o.signal);
          continue;
        }
        if (f.kind === 'unauthorized') this.#o.onRefused();
        throw new Error(`whatsapp: the message to ${mask(to)} was not sent: ${describe(f)}`, { cause: err });
      }
    }
  }

  #remember(id: string, pieces: number): void {
    this.#delivered.delete(id);
    this.#delivered.set(id, pieces);
    if (this.#delivered.size > MEMORY) this.#delivered.delete(this.#delivered.keys().next().value!);
  }
}

/** A phone number in a log line: enough to tell chats apart, not the whole number. */
export function mask(number: string): string {
  return number.length > 4 ? `…${number.slice(-4)}` : number;
}

function describe(f: Failure): string {
  switch (f.kind) {
    case 'unauthorized': return `the access token was refused (${f.text})`;
    case 'rate': return `the Cloud API still asks to slow down (${f.text})`;
    case 'aborted': return 'the channel stopped';
    default: return f.text;
  }
}

/** Waits `ms`; rejects when the signal aborts (the channel stops, the host keeps the message). */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('whatsapp: the channel stopped'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('whatsapp: the channel stopped'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
