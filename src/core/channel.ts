// The seam between the core and chat channels. A channel only translates: it hands
// inbound messages to `accept` and delivers the assistant's messages it is given.

import type { GroupStore, StoredMessage } from './store-contract.ts';

export interface Inbound {
  readonly group: string;
  readonly sender: string;
  readonly text: string;
  /** A one-to-one chat with the owner: always engages the agent, like the main group. */
  readonly direct: boolean;
}

export type AcceptResult = { readonly message: StoredMessage; readonly engaged: boolean; readonly warning?: string };

/** Groups are read as GroupStore's contract gives them. */
export interface ChannelContext extends Pick<GroupStore, 'getGroup' | 'listGroups'> {
  /**
   * Contract: stores the message durably before returning. Throws InputError (with an
   * HTTP-ish status) for an unknown group or bad text, and with 507 when the disk is too
   * full to store it (nothing was stored); never loses a stored message.
   */
  accept(m: Inbound): Promise<AcceptResult>;
  listMessages(group: string, afterId?: string): StoredMessage[] | undefined;
  /** Every message as it is stored, user and assistant alike. Returns an unsubscribe. */
  subscribe(fn: (m: StoredMessage) => void): () => void;
  /**
   * The owner's controls, given only to local channels whose every caller is the owner
   * (the token-guarded HTTP API). Contract: `taskAction` throws InputError (404 unknown
   * task, 409 wrong state); the others do not throw.
   */
  readonly owner?: {
    status(): unknown;
    tasks(): unknown[];
    taskAction(id: string, action: 'pause' | 'resume' | 'cancel' | 'run' | 'approve' | 'reject'): unknown;
  };
}

/**
 * Contract: `start` resolves once the channel accepts traffic and rejects with a clear
 * reason if it cannot; `deliver` is called for each assistant message of a group the
 * channel serves and may throw (the host logs it); `stop` is idempotent.
 */
export interface Channel {
  readonly name: string;
  start(ctx: ChannelContext): Promise<void>;
  deliver(m: StoredMessage): Promise<void>;
  stop(): Promise<void>;
}

export class InputError extends Error {
  override name = 'InputError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}
