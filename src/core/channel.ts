// The seam between the core and chat channels. A channel only translates: it hands inbound
// messages to the context and sends the assistant's messages addressed to it.
//
// Two kinds of channel use it. A local channel (the HTTP API and web chat) serves the owner:
// it names the group itself (`accept`) and sees every stored message through `subscribe`.
// A chat channel (Telegram, e-mail, … added as skills) reports where a message came from
// (`receive` with a chat address); the group is whatever the owner bound to that address,
// and a reply is sent back only to the chat its triggering message came from (`send`).
//
// Invariants: a chat address is `<channel>:<address>` and belongs to at most one group; a
// message from an address no group is bound to reaches no agent (main is told once).

import type { GroupStore, StoredMessage } from './store-contract.ts';

export interface Inbound {
  readonly group: string;
  readonly sender: string;
  readonly text: string;
  /** A one-to-one chat with the owner: always engages the agent, like the main group. */
  readonly direct: boolean;
}

/** A message from a chat platform, as its channel reports it. */
export interface ChatInbound {
  /** `<channel>:<address>`, e.g. `telegram:-1001234567890`, `email:hako+sales@example.com`. */
  readonly chat: string;
  /** The chat's name on the platform, for the owner's notice about an unknown chat. */
  readonly chatTitle?: string;
  /** Shown to the model, e.g. "Alice Smith". */
  readonly sender: string;
  /** The sender's stable identity, which a group's sender allowlist names (`telegram:12345`, `email:a@b.c`). */
  readonly senderId: string;
  /** Whether this sender may engage the agent when the group has no allowlist (e-mail: only the owner's addresses). */
  readonly trusted: boolean;
  readonly text: string;
  /** A one-to-one chat, or a message addressed to the assistant (a mention, a reply to it): engages without the trigger. */
  readonly direct: boolean;
  /** The channel's own reference to this message (a message id, e-mail headers as JSON), given back with its reply; at most 4 KB. */
  readonly ref?: string;
  /** With no group bound to `chat`, the message goes to the main group instead (e-mail to the mailbox's own address). */
  readonly mainIfUnbound?: boolean;
}

export type AcceptResult = { readonly message: StoredMessage; readonly engaged: boolean; readonly warning?: string };

export type ReceiveResult =
  /** `duplicate`: a message with this chat and ref was stored before; nothing was stored now. */
  | (AcceptResult & { readonly kind: 'stored'; readonly duplicate?: boolean })
  /** No group is bound to the chat: nothing is stored; `told` when this was the first time (main was told). */
  | { readonly kind: 'unbound'; readonly told: boolean };

/** Groups are read as GroupStore's contract gives them. */
export interface ChannelContext extends Pick<GroupStore, 'getGroup' | 'listGroups'> {
  /**
   * Contract: stores the message durably before returning. Throws InputError (with an
   * HTTP-ish status) for an unknown group or bad text, and with 507 when the disk is too
   * full to store it (nothing was stored); never loses a stored message.
   */
  accept(m: Inbound): Promise<AcceptResult>;
  /** Like `accept`, for a chat channel: the group is the one bound to `m.chat`. */
  receive(m: ChatInbound): Promise<ReceiveResult>;
  /** The group bound to a chat address, if any (e.g. to save an attachment before `receive`). */
  groupFor(chat: string): string | undefined;
  listMessages(group: string, afterId?: string): StoredMessage[] | undefined;
  /** Every message as it is stored, user and assistant alike. Returns an unsubscribe. */
  subscribe(fn: (m: StoredMessage) => void): () => void;
  /**
   * Every turn of the agent as it starts (`working` true) and ends (false), for a local
   * channel's "working…" indicator; and, while it runs, the model's text so far in the
   * current streamed response (`working` true with `text`: the whole text, not a delta; a
   * new response starts again from its first words). Such text is provisional: it is never
   * stored, the committed reply follows as a message, and it must not be sent to a chat.
   * A watcher that ignores `text` sees only extra `working` true calls. Contract: `fn` is
   * called synchronously and must not throw (a throw is logged and ignored). Returns an
   * unsubscribe.
   */
  watchTurns(fn: (group: string, working: boolean, text?: string) => void): () => void;
  /**
   * A request from outside that a channel refused (a webhook with a bad signature, a
   * replayed one): logged and audited as `webhook.refused` with `channel`, `reason` and
   * `detail` (no body, header or secret: the caller passes only what is safe to keep), at
   * most REFUSALS_AUDITED_PER_MINUTE a minute per channel (then one `webhook.flood`).
   */
  refused(channel: string, reason: string, detail?: Readonly<Record<string, string>>): void;
  /**
   * The owner's controls, given only to local channels whose every caller is the owner
   * (the token-guarded HTTP API). Contract: `taskAction` throws InputError (404 unknown
   * task, 409 wrong state); `addTask` throws InputError (400 with the schedule_task
   * tool's reason: bad schedule, unknown group, empty prompt, too many tasks); the others
   * do not throw.
   */
  readonly owner?: {
    status(): unknown;
    tasks(): unknown[];
    addTask(req: OwnerTaskRequest): unknown;
    taskAction(id: string, action: 'pause' | 'resume' | 'cancel' | 'run' | 'approve' | 'reject'): unknown;
  };
}

/** A task the owner schedules (`hako tasks add`): the schedule_task tool's fields, group named. */
export interface OwnerTaskRequest {
  readonly group: string;
  readonly prompt: string;
  readonly cron?: unknown;
  readonly every_seconds?: unknown;
  readonly at?: unknown;
  readonly context?: 'group' | 'isolated';
}

/** One assistant message for one chat. */
export interface Outbound {
  /** The stored message's id: the same message may be sent again after a crash, never with another id. */
  readonly id: string;
  readonly group: string;
  /** The address within the channel (the part after `<channel>:`). */
  readonly address: string;
  readonly text: string;
  /** The `ref` of the message this answers, when it answers one. */
  readonly replyTo?: string;
  /** A file to send with the text: the host's copy (`path`) and the name the agent gave it. */
  readonly file?: { readonly path: string; readonly name: string };
}

/**
 * A request the platform posted to hako's webhook listener (HAKO_WEBHOOK_PORT, never the
 * API port), routed by the first path segment to the channel of that name: a request to
 * `/line/callback` reaches the `line` channel with `path` `/callback`.
 */
export interface WebhookRequest {
  readonly method: string;
  /** The path after `/<channel>`, starting with `/` (`/` when nothing follows). */
  readonly path: string;
  /** The query string without `?` ('' when none). */
  readonly query: string;
  /** Header names in lower case; a repeated header's values joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body, exactly as received (signatures are computed over these bytes). */
  readonly body: Buffer;
  /** The peer's address (the reverse proxy's, behind one). */
  readonly remote: string;
}

/** The channel's answer. With `refused`, the listener also audits the request as `webhook.refused` (use 401/403). */
export interface WebhookReply {
  readonly status: number;
  readonly body?: string;
  readonly contentType?: string;
  /** Why the request was refused (bad signature, replay, …): logged and audited, never sent back. */
  readonly refused?: string;
}

/**
 * Contract: `start` resolves once the channel takes traffic and rejects with a clear reason
 * if it cannot; `send` (chat channels only) resolves once the platform took the whole
 * message, splitting it at the platform's limit, and rejects with a reason otherwise (the
 * host keeps it to send again); `typing` shows that the agent works in a chat until the
 * returned function is called and never throws; `stop` is idempotent.
 */
export interface Channel {
  readonly name: string;
  start(ctx: ChannelContext): Promise<void>;
  send?(m: Outbound): Promise<void>;
  typing?(address: string): () => void;
  /**
   * Webhook channels: answers a request posted to `/<name>/…` on the webhook listener.
   * Contract: verifies the request (signature, age) before anything is stored; a stored
   * message is stored (`ctx.receive`) before it resolves with 2xx; never throws (a throw
   * is answered 500 and logged); answers 503 while the channel is not running.
   */
  webhook?(req: WebhookRequest): Promise<WebhookReply>;
  /** What is wrong with the channel now (a revoked token, the server unreachable), for `hako status`; undefined when it works. */
  problem?(): string | undefined;
  stop(): Promise<void>;
}

/** What a channel module needs from the host to make its channel. */
export interface ChannelDeps {
  /** The process environment merged over HAKO_CONFIG/secrets.env. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly home: string;
  readonly assistantName: string;
  readonly log: import('./log.ts').Logger;
}

/**
 * A channel as a skill adds it: registered in src/channels/installed.ts by one import line.
 * `hako start` makes the channel when every `required` setting is present and says why not
 * otherwise; `secrets` are masked out of every log line and audit record.
 */
export interface ChannelModule {
  readonly name: string;
  readonly required: readonly string[];
  /** Further settings it reads when present (e.g. TELEGRAM_API_ROOT). */
  readonly optional?: readonly string[];
  readonly secrets: readonly string[];
  /**
   * Why the channel stays off with these settings (e.g. neither of two ways is configured),
   * or undefined when it can start. When given it decides instead of `required`.
   */
  off?(env: ChannelDeps['env']): string | undefined;
  create(deps: ChannelDeps): Channel | Promise<Channel>;
  /** A doctor check (`hako doctor`, `hako skill add`): undefined when all is well, else what is wrong and how to fix it. */
  check?(deps: ChannelDeps): Promise<string | undefined>;
}

export class InputError extends Error {
  override name = 'InputError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export { parseChat } from '../../protocol/names.ts';
