// Channel message → store → trigger rules → queue. The message is durable in SQLite
// before the agent is even considered, so nothing a channel accepted can be lost.

import type { AcceptResult, Inbound } from './channel.ts';
import { InputError } from './channel.ts';
import { isDiskFull } from './disk.ts';
import type { Group, GroupStore, MessageStore, StoredMessage } from './store-contract.ts';

/** Whether `text` calls the agent: the trigger word, case-insensitive, as a whole word. */
export function hasTrigger(text: string, trigger: string): boolean {
  const escaped = trigger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
}

/**
 * Whether a message engages the agent: never from a sender outside the group's
 * allowlist; always in the main group and direct chats; elsewhere only with the trigger.
 * A message that does not engage is still kept, as context for the next one that does.
 */
export function shouldEngage(group: Group, m: Pick<Inbound, 'text' | 'direct' | 'sender'>, assistantName: string): boolean {
  if (group.allowedSenders && !group.allowedSenders.includes(m.sender)) return false;
  if (group.isMain || m.direct) return true;
  return hasTrigger(m.text, group.trigger ?? `@${assistantName}`);
}

export interface RouterOptions {
  readonly store: Pick<GroupStore, 'getGroup'> & Pick<MessageStore, 'addUserMessage'>;
  readonly assistantName: string;
  readonly maxChars: number;
  /** Called after storing, so subscribers (SSE) see each message once. */
  readonly onStored: (m: StoredMessage) => void;
  /** Asks the queue to serve the group. */
  readonly enqueue: (group: string) => void;
  /** Why the group's model cannot be used now, if it cannot (the message still waits). */
  readonly modelProblem: (group: Group) => string | null;
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
  return {
    async accept(m: Inbound): Promise<AcceptResult> {
      const group = opts.store.getGroup(m.group);
      if (!group) throw new InputError(404, `unknown group "${m.group}" (register it with: hako groups add ${m.group})`);
      if (typeof m.text !== 'string' || m.text.trim() === '') throw new InputError(400, 'message text is empty');
      if (m.text.length > opts.maxChars) throw new InputError(413, `message is ${m.text.length} characters; the limit is ${opts.maxChars}`);
      const engaged = shouldEngage(group, m, opts.assistantName);
      const message = storeOrRefuse(() => opts.store.addUserMessage({ group: group.name, sender: m.sender, text: m.text, engage: engaged }));
      opts.onStored(message);
      if (!engaged) return { message, engaged };
      const problem = opts.modelProblem(group);
      opts.enqueue(group.name);
      return problem ? { message, engaged, warning: `${problem} (the message is kept)` } : { message, engaged };
    },
  };
}

export type Router = ReturnType<typeof createRouter>;
