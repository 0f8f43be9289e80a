// One Slack event in, from the socket or the Events API alike: mapped (inbound.ts), its
// sender's name looked up (users.info, cached), its files downloaded into the group's
// inbox — only when a group is bound to the chat and the sender may engage it, so a
// stranger's file is never fetched — and handed to the context. The same event delivered
// again (Slack retries an unacknowledged one) is handled once: an event id seen before
// resolves as the first did, and the core refuses a second message with the same ref.
// Events of one conversation are handled one after another, in the order they came: a
// name lookup or a download never lets a later message be stored before an earlier one.

import { InputError, type ChannelContext } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { attachmentLine, saveAttachment, type AttachmentLimits } from '../attachments.ts';
import { scrub } from './errors.ts';
import { fetchFile, TooBig } from './files.ts';
import { mapEvent, type BotIdentity, type Mapped } from './inbound.ts';

/** The slice of the Web API client intake needs. */
export interface Lookups {
  userName(id: string): Promise<string>;
  chatTitle(channel: string): Promise<string | undefined>;
}

export interface IntakeOptions {
  readonly ctx: ChannelContext;
  readonly lookups: Lookups;
  readonly assistantName: string;
  readonly ownerIds: ReadonlySet<string>;
  readonly home: string;
  readonly token: string;
  readonly fileOrigins: readonly string[];
  readonly limits: AttachmentLimits;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

/** Event ids remembered, to take a redelivered event once. */
const REMEMBERED = 2000;

export class Intake {
  #o: IntakeOptions;
  /** event id → its handling (true: done with; false: to be delivered again). */
  #seen = new Map<string, Promise<boolean>>();
  /** conversation id → the handling of its latest event. */
  #chains = new Map<string, Promise<boolean>>();

  constructor(o: IntakeOptions) {
    this.#o = o;
  }

  /** Contract: resolves true when the event is done with (stored, unbound, ignored or refused for good), false when Slack should deliver it again; never rejects. */
  take(eventId: string | undefined, event: unknown, bot: BotIdentity): Promise<boolean> {
    const earlier = eventId ? this.#seen.get(eventId) : undefined;
    if (earlier) return earlier;
    const channel = String((event as { channel?: unknown } | null)?.channel ?? '');
    const previous = this.#chains.get(channel) ?? Promise.resolve(true);
    const handling = previous.then(() => this.#handle(event, bot)).catch((err: unknown) => {
      this.#o.log.warn('slack: an event could not be handled; Slack delivers it again', { reason: scrub(err instanceof Error ? err.message : String(err)) });
      return false;
    });
    this.#chains.set(channel, handling);
    // `handling` never rejects (its .catch above): the second handler only satisfies the rule.
    handling.then(() => { if (this.#chains.get(channel) === handling) this.#chains.delete(channel); }, () => {});
    if (eventId) {
      this.#seen.set(eventId, handling);
      // A failed one may come again and be tried again.
      handling.then((done) => { if (!done) this.#seen.delete(eventId); }, () => {});
      if (this.#seen.size > REMEMBERED) this.#seen.delete(this.#seen.keys().next().value!);
    }
    return handling;
  }

  async #handle(event: unknown, bot: BotIdentity): Promise<boolean> {
    const o = this.#o;
    const m = mapEvent(event, bot, o.assistantName);
    if (!m) return true;
    const group = o.ctx.groupFor(m.chat);
    const trusted = o.ownerIds.has(m.user);
    const sender = await o.lookups.userName(m.user);
    const chatTitle = group ? undefined : await o.lookups.chatTitle(m.channel);
    const senderId = `slack:${m.user}`;
    const lines = await this.#files(m, group, senderId, trusted);
    const text = [m.text, ...lines].filter((l) => l.trim() !== '').join('\n');
    try {
      const r = await o.ctx.receive({ chat: m.chat, ...(chatTitle ? { chatTitle } : {}), sender, senderId, trusted, text, direct: m.direct, ref: m.ref });
      o.log.debug('slack: message in', { chat: m.chat, kind: r.kind, ...(r.kind === 'stored' ? { engaged: r.engaged, duplicate: !!r.duplicate } : {}) });
      return true;
    } catch (err) {
      const reason = scrub(err instanceof Error ? err.message : String(err));
      if (err instanceof InputError && err.status !== 507) {
        o.log.warn('slack: a message was refused and is dropped', { chat: m.chat, reason });
        return true;
      }
      o.log.warn('slack: a message could not be stored; Slack delivers it again', { chat: m.chat, reason });
      return false;
    }
  }

  async #files(m: Mapped, group: string | undefined, senderId: string, trusted: boolean): Promise<string[]> {
    const o = this.#o;
    if (m.files.length === 0) return [];
    if (!group) return m.files.map((f) => `[file "${f.name}": not saved]`);
    const allow = o.ctx.getGroup(group)?.allowedSenders;
    if (allow ? !allow.includes(senderId) : !trusted) return m.files.map((f) => `[file "${f.name}": not saved: the sender may not engage this group]`);
    const lines: string[] = [];
    let total = 0;
    for (const f of m.files) {
      try {
        const data = await fetchFile({ url: f.url, token: o.token, origins: o.fileOrigins, maxBytes: Math.min(o.limits.perFile, o.limits.total - total), signal: o.signal, ...(f.size !== undefined ? { knownSize: f.size } : {}) });
        total += data.length;
        const saved = saveAttachment(o.home, group, f.name, data, o.limits.perFile);
        lines.push(attachmentLine(saved, f.mime));
        o.log.info('slack: attachment saved', { group, bytes: saved.bytes });
      } catch (err) {
        const reason = err instanceof TooBig ? err.message : scrub(err instanceof Error ? err.message : String(err));
        lines.push(`[file "${f.name}": not saved: ${reason}]`);
        if (!(err instanceof TooBig)) o.log.warn('slack: an attachment was not saved', { group, reason });
      }
    }
    return lines;
  }
}
