// Channel message → store → trigger rules → queue. The message is durable in SQLite
// before the agent is even considered, so nothing a channel accepted can be lost.

import type { AcceptResult, ChatInbound, Inbound, ReceiveResult } from './channel.ts';
import { InputError, parseChat } from './channel.ts';
import { isDiskFull } from './disk.ts';
import type { Group, GroupStore, MessageStore, StoredMessage } from './store-contract.ts';

/** The channel's reference to a message is kept for its reply; bigger is a channel bug. */
const MAX_REF = 4096;

/** Whether `text` calls the agent: the trigger word, case-insensitive, as a whole word. */
export function hasTrigger(text: string, trigger: string): boolean {
  const escaped = trigger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
}

/**
 * Whether a message engages the agent: never from a sender outside the group's allowlist,
 * nor, when it has none, from a sender its channel does not trust (a stranger's e-mail);
 * always in the main group and direct chats; elsewhere only with the trigger. A message
 * that does not engage is still kept, as context for the next one that does.
 */
export function shouldEngage(group: Group, m: Pick<ChatInbound, 'text' | 'direct' | 'senderId' | 'trusted'>, assistantName: string): boolean {
  if (group.allowedSenders ? !group.allowedSenders.includes(m.senderId) : !m.trusted) return false;
  if (group.isMain || m.direct) return true;
  return hasTrigger(m.text, group.trigger ?? `@${assistantName}`);
}

export interface RouterOptions {
  readonly store: Pick<GroupStore, 'getGroup' | 'mainGroup' | 'groupForChat' | 'noteUnknownChat'> & Pick<MessageStore, 'addUserMessage' | 'messageByRef'>;
  readonly assistantName: string;
  readonly maxChars: number;
  /** Called after storing, so subscribers (SSE) see each message once. */
  readonly onStored: (m: StoredMessage) => void;
  /** Asks the queue to serve the group. */
  readonly enqueue: (group: string) => void;
  /** Why the group's model cannot be used now, if it cannot (the message still waits). */
  readonly modelProblem: (group: Group) => string | null;
  /** A chat no group is bound to wrote for the first time: the owner is told (never throws). */
  readonly unknownChat: (m: ChatInbound) => void;
}

/** A full disk is the caller's 507, not a hako bug: the failed insert stored nothing. */
function storeOrRefuse(insert: () => StoredMessage): StoredMessage {
  try {
    return insert();
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    throw new InputError(507, 'the message was not stored: the disk that holds hako\'s data is full; send it again once the owner has freed space there');
  }
}

export function createRouter(opts: RouterOptions) {
  /** Checks, stores, publishes and, when it engages, queues one message of a known group. */
  function take(group: Group, m: Pick<ChatInbound, 'sender' | 'senderId' | 'trusted' | 'text' | 'direct'> & { chat?: string; ref?: string }): AcceptResult {
    if (typeof m.text !== 'string' || m.text.trim() === '') throw new InputError(400, 'message text is empty');
    if (m.text.length > opts.maxChars) throw new InputError(413, `message is ${m.text.length} characters; the limit is ${opts.maxChars}`);
    const engaged = shouldEngage(group, m, opts.assistantName);
    const message = storeOrRefuse(() => opts.store.addUserMessage({
      group: group.name, sender: m.sender, text: m.text, engage: engaged,
      ...(m.chat ? { chat: m.chat, senderId: m.senderId } : {}), ...(m.ref ? { ref: m.ref } : {}),
    }));
    opts.onStored(message);
    if (!engaged) return { message, engaged };
    const problem = opts.modelProblem(group);
    opts.enqueue(group.name);
    return problem ? { message, engaged, warning: `${problem} (the message is kept)` } : { message, engaged };
  }

  return {
    /** A local channel's message: its caller is the owner, who names the group. */
    async accept(m: Inbound): Promise<AcceptResult> {
      const group = opts.store.getGroup(m.group);
      if (!group) throw new InputError(404, `unknown group "${m.group}" (register it with: hako groups add ${m.group})`);
      return take(group, { ...m, senderId: m.sender, trusted: true });
    },

    /** A chat channel's message: the group is the one bound to its chat; with none, nothing is stored. */
    async receive(m: ChatInbound): Promise<ReceiveResult> {
      if (!parseChat(m.chat)) throw new InputError(400, `chat address ${JSON.stringify(m.chat)} is not <channel>:<address>`);
      if (m.ref !== undefined && m.ref.length > MAX_REF) throw new InputError(400, `a message reference of ${m.ref.length} characters is over ${MAX_REF}`);
      // A platform hands a message over again when hako died before confirming it: kept once.
      const known = m.ref === undefined ? undefined : opts.store.messageByRef(m.chat, m.ref);
      if (known) return { kind: 'stored', message: known, engaged: false, duplicate: true };
      const bound = opts.store.groupForChat(m.chat);
      const group = bound ? opts.store.getGroup(bound) : m.mainIfUnbound ? opts.store.mainGroup() : undefined;
      if (!group) {
        const told = opts.store.noteUnknownChat(m.chat, m.chatTitle);
        if (told) opts.unknownChat(m);
        return { kind: 'unbound', told };
      }
      return { kind: 'stored', ...take(group, m) };
    },
  };
}

/** The owner's notice about a chat no group is bound to, with the command that binds it. */
export function unknownChatNotice(m: Pick<ChatInbound, 'chat' | 'chatTitle'>, suggest: (title: string) => string | undefined): string {
  const { channel, address } = parseChat(m.chat)!;
  const name = (m.chatTitle && suggest(m.chatTitle)) ?? 'NAME';
  const which = m.chatTitle ? `${channel} chat ${JSON.stringify(m.chatTitle)} (${address})` : `${channel} chat ${address}`;
  return `${which} wrote to me, but no group is bound to it, so nothing it sends is kept or answered. `
    + `To let me answer there: \`hako groups add ${name} --chat ${m.chat}\` (or \`hako groups set GROUP --chat ${m.chat}\` for an existing group; I can do it too if you ask me to register it).`;
}

export type Router = ReturnType<typeof createRouter>;
