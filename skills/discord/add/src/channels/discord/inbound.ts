// A Discord message as hako sees it: which chat address it came from, who sent it, whether
// it is addressed to the assistant, its text, and the files it carries. Pure: the channel
// turns discord.js's Message into `DiscordMessage`, downloads the files and hands the
// result to the context.
//
// Addresses: `discord:<channel id>` for a guild text channel, a thread or a DM channel. A
// thread message goes to the group bound to the thread, else to the one bound to its parent
// channel (its `ref` then carries the thread, so the reply still lands in the thread); with
// neither bound, the notice names the parent channel.
// Invariants: the bot's own messages, other bots', webhooks' and system messages are never
// mapped; `trusted` is true only for a user id in DISCORD_OWNER_IDS.

export interface DiscordUser {
  readonly id: string;
  readonly username: string;
  /** The name shown on the profile (Discord's global_name), if set. */
  readonly globalName?: string | null;
  readonly bot?: boolean;
}

export type Place =
  | { readonly kind: 'dm' }
  | { readonly kind: 'channel'; readonly name: string; readonly guild: string }
  | { readonly kind: 'thread'; readonly name: string; readonly parentId: string; readonly guild: string };

export interface DiscordAttachment {
  readonly url: string;
  readonly name: string;
  readonly size: number;
  readonly contentType?: string | null;
}

/** The fields of a message the channel reads, as plain data. */
export interface DiscordMessage {
  readonly id: string;
  readonly channelId: string;
  readonly place: Place;
  readonly author: DiscordUser;
  /** The author's nickname in the guild, if any. */
  readonly nickname?: string | null;
  readonly content: string;
  /** The users the message mentions (`<@id>` in its content, or the author of the message it replies to, when pinged). */
  readonly mentions: readonly DiscordUser[];
  /** The author of the message this one replies to. */
  readonly repliesTo?: string | null;
  readonly attachments: readonly DiscordAttachment[];
  readonly webhookId?: string | null;
  /** Not a user's message (a join, a pin, a thread created notice). */
  readonly system: boolean;
}

export interface Mapped {
  readonly chat: string;
  readonly chatTitle: string;
  readonly sender: string;
  readonly senderId: string;
  readonly trusted: boolean;
  readonly text: string;
  readonly direct: boolean;
  /** `<message id>`, or through a parent channel's binding `<message id>/<thread id>`. */
  readonly ref: string;
  readonly attachments: readonly DiscordAttachment[];
}

const SNOWFLAKE = /^\d{1,21}$/;

/** A user's name as Discord shows it: the guild nickname, the global display name, else the username. */
export function displayName(u: DiscordUser, nickname?: string | null): string {
  return nickname?.trim() || u.globalName?.trim() || u.username;
}

/**
 * Maps one message; undefined for what hako does not take. `bound` tells whether a chat
 * address has a group (to route a thread message to its thread's or its channel's group).
 */
export function mapMessage(m: DiscordMessage, bot: DiscordUser, ownerIds: readonly string[], bound: (chat: string) => boolean): Mapped | undefined {
  if (m.author.id === bot.id || m.author.bot || m.webhookId || m.system) return undefined;
  const text = readableMentions(m.content, m.mentions, bot);
  if (text.trim() === '' && m.attachments.length === 0) return undefined;

  const own = `discord:${m.channelId}`;
  const viaParent = m.place.kind === 'thread' && !bound(own);
  const chat = viaParent && m.place.kind === 'thread' ? `discord:${m.place.parentId}` : own;
  const ref = viaParent ? `${m.id}/${m.channelId}` : m.id;
  const sender = displayName(m.author, m.nickname);
  const mentioned = m.mentions.some((u) => u.id === bot.id) || m.repliesTo === bot.id;
  return {
    chat, chatTitle: title(m.place, sender), sender, senderId: `discord:${m.author.id}`, trusted: ownerIds.includes(m.author.id),
    text, ref, attachments: m.attachments, direct: m.place.kind === 'dm' || mentioned,
  };
}

function title(p: Place, sender: string): string {
  if (p.kind === 'dm') return `${sender} (direct message)`;
  return `#${p.name} in ${p.guild}`;
}

/** `<@123>` and `<@!123>` become `@name`, so the model reads names (the bot's own: `@<its username>`). */
function readableMentions(content: string, mentions: readonly DiscordUser[], bot: DiscordUser): string {
  return content.replace(/<@!?(\d{1,21})>/g, (whole, id: string) => {
    if (id === bot.id) return `@${bot.username}`;
    const u = mentions.find((x) => x.id === id);
    return u ? `@${displayName(u)}` : whole;
  });
}

/** An outbound address: a channel, thread or DM channel id. */
export function parseAddress(address: string): string | undefined {
  return SNOWFLAKE.test(address) ? address : undefined;
}

/** A ref given back with a reply: the message it answers and, through a parent's binding, the thread it is in. */
export function parseRef(ref: string): { messageId: string; thread?: string } | undefined {
  const m = /^(\d{1,21})(?:\/(\d{1,21}))?$/.exec(ref);
  if (!m) return undefined;
  return m[2] ? { messageId: m[1]!, thread: m[2] } : { messageId: m[1]! };
}

/** The text the agent sees: the message, then one line per file. */
export function composeText(text: string, fileLines: readonly string[]): string {
  return [text, ...fileLines].filter((s) => s.trim() !== '').join('\n');
}
