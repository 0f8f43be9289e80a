// One update in: maps the message, downloads its files into the group's workspace — only
// when a group is bound to the chat and the sender may engage it, so a stranger's file is
// never fetched — and hands the message to the context. Whatever goes wrong with a file,
// the message itself still arrives, with a line saying what was not saved.

import type { Api } from 'grammy';
import type { Update } from 'grammy/types';
import { InputError, type ChannelContext } from '../../core/channel.ts';
import type { Logger } from '../../core/log.ts';
import { saveAttachment } from '../attachments.ts';
import { scrub } from './errors.ts';
import { fetchFile, TooBig } from './files.ts';
import { composeText, mapMessage, type BotIdentity, type Mapped } from './inbound.ts';

export interface IntakeOptions {
  readonly api: Api;
  readonly token: string;
  readonly apiRoot: string;
  readonly home: string;
  readonly maxBytes: number;
  /** TELEGRAM_OWNER_IDS (config.ts). */
  readonly ownerIds: ReadonlySet<string>;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

/** Contract: resolves true when the update is done with (stored, unbound, or refused for good), false to try it again later; never rejects. */
export async function intake(o: IntakeOptions, ctx: ChannelContext, bot: BotIdentity, u: Update): Promise<boolean> {
  if (!u.message) return true;
  const m = mapMessage(u.message, bot, (chat) => ctx.groupFor(chat) !== undefined);
  if (!m) return true;
  const group = ctx.groupFor(m.chat);
  // A bound private chat has one writer, whom the owner bound; in a group chat anyone who
  // joins can write, so only the owner's ids are trusted there (or the group's allowlist).
  const trusted = m.privateChat || o.ownerIds.has(m.senderId.slice('telegram:'.length));
  const lines = await fileLines(o, ctx, m, group, trusted);
  const text = composeText(m.text, lines, m.notes);
  try {
    const r = await ctx.receive({
      chat: m.chat, ...(m.chatTitle ? { chatTitle: m.chatTitle } : {}), sender: m.sender, senderId: m.senderId,
      trusted, text, direct: m.direct, ref: m.ref,
    });
    o.log.debug('telegram: message in', { chat: m.chat, kind: r.kind, ...(r.kind === 'stored' ? { engaged: r.engaged } : {}) });
    return true;
  } catch (err) {
    const reason = scrub(err instanceof Error ? err.message : String(err), o.token);
    if (err instanceof InputError && err.status !== 507) {
      o.log.warn('telegram: a message was refused and is dropped', { chat: m.chat, reason });
      return true;
    }
    o.log.warn('telegram: a message could not be stored; it is fetched again', { chat: m.chat, reason });
    return false;
  }
}

async function fileLines(o: IntakeOptions, ctx: ChannelContext, m: Mapped, group: string | undefined, trusted: boolean): Promise<string[]> {
  if (m.files.length === 0) return [];
  if (!group) return m.files.map((f) => `[${f.kind}: not saved]`);
  const allow = ctx.getGroup(group)?.allowedSenders;
  if (allow && !allow.includes(m.senderId)) return m.files.map((f) => `[${f.kind}: not saved: the sender is not on the group's allowlist]`);
  if (!allow && !trusted) return m.files.map((f) => `[${f.kind}: not saved: the sender may not engage this group]`);
  const lines: string[] = [];
  for (const f of m.files) {
    try {
      const data = await fetchFile({ api: o.api, apiRoot: o.apiRoot, token: o.token, fileId: f.fileId, maxBytes: o.maxBytes, signal: o.signal, ...(f.size !== undefined ? { knownSize: f.size } : {}) });
      const saved = saveAttachment(o.home, group, f.name, data, o.maxBytes);
      lines.push(`[${f.kind}: ${saved.agentPath}]`);
      o.log.info('telegram: attachment saved', { group, kind: f.kind, bytes: saved.bytes });
    } catch (err) {
      const reason = err instanceof TooBig ? err.message : scrub(err instanceof Error ? err.message : String(err), o.token);
      lines.push(`[${f.kind}${f.kind === 'document' ? ` "${f.name}"` : ''}: not saved: ${reason}]`);
      if (!(err instanceof TooBig)) o.log.warn('telegram: an attachment was not saved', { group, kind: f.kind, reason });
    }
  }
  return lines;
}
