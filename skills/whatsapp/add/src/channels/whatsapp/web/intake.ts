// Messages in, one at a time and in order: maps each message, decides whether it is new
// (a live `notify` always is; an `append` or history-synced one only from the high-water
// mark on), downloads its media into the group's workspace — only when a group is bound to
// the chat and the sender may engage it, so a stranger's file is never fetched — and hands
// it to the context with the key id as `ref`, so a message delivered twice (live, then
// again by a sync after a reconnect) is stored once. The triggering messages of the last
// while are kept to quote in the reply.

import { InputError, type ChannelContext } from '../../../core/channel.ts';
import type { Logger } from '../../../core/log.ts';
import { humanSize, saveAttachment } from '../../attachments.ts';
import type { WebConfig } from './config.ts';
import { mapMessage, type Mapped, type Me } from './inbound.ts';
import type { HighWater } from './mark.ts';
import { TooBig, type MediaDownload, type WAMessage } from './socket.ts';

/** How the messages came: live (`notify`), from another device or the offline queue (`append`), or a history sync. */
export type Arrival = 'notify' | 'append' | 'history';

const RECENT = 500;

export interface IntakeOptions {
  readonly config: WebConfig;
  readonly home: string;
  readonly log: Logger;
  readonly download: MediaDownload;
  readonly mark: HighWater;
}

export class Intake {
  #o: IntakeOptions;
  #ctx: ChannelContext;
  #chain: Promise<void> = Promise.resolve();
  /** Key id → message, for quoting (the newest RECENT), and to skip one already taken. */
  #recent = new Map<string, WAMessage>();

  constructor(o: IntakeOptions, ctx: ChannelContext) {
    this.#o = o;
    this.#ctx = ctx;
  }

  /** Queues the messages behind those before. Contract: never throws; failures are logged. */
  take(messages: readonly WAMessage[], arrival: Arrival, me: Me): void {
    const list = [...messages];
    // History comes newest first: take it oldest first, like everything else.
    if (arrival === 'history') list.reverse();
    this.#chain = this.#chain.then(async () => {
      for (const msg of list) await this.#one(msg, arrival, me);
    }).catch((err: unknown) => this.#o.log.error('whatsapp: taking messages failed', { reason: err instanceof Error ? err.message : String(err) }));
  }

  /** The message with this key id, when it came in the last while. */
  recent(ref: string): WAMessage | undefined {
    return this.#recent.get(ref);
  }

  /** Resolves once every message queued so far is taken. */
  idle(): Promise<void> {
    return this.#chain;
  }

  async #one(msg: WAMessage, arrival: Arrival, me: Me): Promise<void> {
    const { log, mark } = this.#o;
    const m = mapMessage(msg, me, this.#o.config.owners);
    if (!m || this.#recent.has(m.ref)) return;
    if (arrival !== 'notify' && !mark.takes(m.ts)) {
      log.debug('whatsapp: an older message from a sync is not taken', { chat: m.chat, arrival });
      return;
    }
    const text = await this.#withMedia(msg, m);
    try {
      const r = await this.#ctx.receive({
        chat: m.chat, ...(m.chatTitle ? { chatTitle: m.chatTitle } : {}), sender: m.sender, senderId: m.senderId,
        trusted: m.trusted, text, direct: m.direct, ref: m.ref,
      });
      log.debug('whatsapp: message in', { chat: m.chat, arrival, kind: r.kind, ...(r.kind === 'stored' ? { engaged: r.engaged, duplicate: r.duplicate === true } : {}) });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (err instanceof InputError && err.status !== 507) log.warn('whatsapp: a message was refused and is dropped', { chat: m.chat, reason: why });
      else log.error('whatsapp: a message could not be stored', { chat: m.chat, reason: why });
      return;
    }
    this.#remember(m.ref, msg);
    mark.advance(m.ts);
  }

  /** The text with a line for the media: where it was saved, or why not. */
  async #withMedia(msg: WAMessage, m: Mapped): Promise<string> {
    const f = m.media;
    if (!f) return m.text;
    const label = f.kind === 'document' ? `document "${f.name}"` : f.kind;
    const line = (s: string) => [m.text, s].filter((t) => t.trim() !== '').join('\n');
    const group = this.#ctx.groupFor(m.chat);
    if (!group) return line(`[${label}: not saved]`);
    const allow = this.#ctx.getGroup(group)?.allowedSenders;
    if (allow ? !allow.includes(m.senderId) : !m.trusted) return line(`[${label}: not saved: the sender may not engage this group]`);
    const max = this.#o.config.limits.perFile;
    try {
      if (f.size !== undefined && f.size > max) throw new TooBig(`over the ${humanSize(max)} limit (HAKO_ATTACHMENT_MAX_BYTES)`);
      const data = await this.#o.download(msg, max);
      const saved = saveAttachment(this.#o.home, group, f.name, data, max);
      this.#o.log.info('whatsapp: attachment saved', { group, kind: f.kind, bytes: saved.bytes });
      return line(`[${f.kind}: ${saved.agentPath} (${f.mime}, ${humanSize(saved.bytes)})]`);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (!(err instanceof TooBig)) this.#o.log.warn('whatsapp: an attachment was not saved', { group, kind: f.kind, reason: why });
      return line(`[${label}: not saved: ${why}]`);
    }
  }

  #remember(ref: string, msg: WAMessage): void {
    this.#recent.set(ref, msg);
    if (this.#recent.size > RECENT) this.#recent.delete(this.#recent.keys().next().value!);
  }
}
