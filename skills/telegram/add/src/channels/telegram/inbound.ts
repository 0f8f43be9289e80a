// A Telegram message as hako sees it: which chat address it came from, who sent it,
// whether it is addressed to the assistant, its text, and the files it carries. Pure: the
// channel downloads the files and hands the result to the context.
//
// Chat addresses: `telegram:<chat id>` for a chat (private chats have the user's id,
// groups a negative id, supergroups -100…); `telegram:<chat id>/<topic id>` for one topic
// of a forum supergroup. A topic message goes to the group bound to its topic, else to
// the one bound to the whole chat (its `ref` then carries the topic, so the reply still
// lands in the topic); with neither bound, the notice names the whole chat.

import type { Message, MessageEntity, User } from 'grammy/types';

export interface BotIdentity {
  readonly id: number;
  readonly username: string;
}

export interface IncomingFile {
  readonly kind: 'photo' | 'document' | 'voice';
  readonly fileId: string;
  /** A file name for the workspace (the sender's for documents). */
  readonly name: string;
  /** As Telegram reports it; may be missing. */
  readonly size?: number;
}

export interface Mapped {
  readonly chat: string;
  readonly chatTitle?: string;
  readonly sender: string;
  readonly senderId: string;
  /** A private chat with the bot: only its one user writes there. */
  readonly privateChat: boolean;
  /** The message's own text or caption, without the file lines. */
  readonly text: string;
  readonly direct: boolean;
  /** `<message id>` or, in a topic reached through the whole chat's binding, `<message id>/<topic id>`. */
  readonly ref: string;
  readonly files: readonly IncomingFile[];
  /** Lines for content that is not downloaded (a sticker, a video), already final. */
  readonly notes: readonly string[];
}

/** An outbound address or ref, parsed: the chat id and, for a forum topic, its id. */
export function parseAddress(address: string): { chatId: number; thread?: number } | undefined {
  const m = /^(-?\d{1,20})(?:\/(\d{1,12}))?$/.exec(address);
  if (!m) return undefined;
  const chatId = Number(m[1]);
  if (!Number.isSafeInteger(chatId)) return undefined;
  return m[2] ? { chatId, thread: Number(m[2]) } : { chatId };
}

export function parseRef(ref: string): { messageId: number; thread?: number } | undefined {
  const m = /^(\d{1,12})(?:\/(\d{1,12}))?$/.exec(ref);
  if (!m) return undefined;
  return m[2] ? { messageId: Number(m[1]), thread: Number(m[2]) } : { messageId: Number(m[1]) };
}

export function userName(u: Pick<User, 'first_name' | 'last_name' | 'username' | 'id'>): string {
  const name = [u.first_name, u.last_name].filter(Boolean).join(' ').trim();
  return name || (u.username ? `@${u.username}` : `user ${u.id}`);
}

/**
 * Maps one message; undefined for what hako does not take (service messages, the bot's
 * own messages, messages with nothing to show). `bound` tells whether a chat address has
 * a group (to route a topic message to its topic's or its chat's group).
 */
export function mapMessage(msg: Message, bot: BotIdentity, bound: (chat: string) => boolean): Mapped | undefined {
  const from = msg.from;
  if (from?.id === bot.id) return undefined;
  const text = msg.text ?? msg.caption ?? '';
  const entities = msg.entities ?? msg.caption_entities ?? [];
  const files = filesOf(msg);
  const notes = notesOf(msg);
  if (text.trim() === '' && files.length === 0 && notes.length === 0) return undefined;

  const chat = msg.chat;
  const topic = msg.is_topic_message && msg.message_thread_id !== undefined ? msg.message_thread_id : undefined;
  const topicChat = topic !== undefined ? `telegram:${chat.id}/${topic}` : undefined;
  const viaTopic = topicChat !== undefined && bound(topicChat);
  const address = viaTopic ? topicChat : `telegram:${chat.id}`;
  const ref = topic !== undefined && !viaTopic ? `${msg.message_id}/${topic}` : String(msg.message_id);

  const senderChat = msg.sender_chat;
  const sender = senderChat ? (senderChat.title ?? 'anonymous') : from ? userName(from) : 'unknown';
  const senderId = `telegram:${senderChat ? senderChat.id : from ? from.id : 0}`;
  const chatTitle = chat.type === 'private' ? userName(chat as unknown as User) : chat.title;

  return {
    chat: address, ...(chatTitle ? { chatTitle } : {}), sender, senderId, privateChat: chat.type === 'private', text, ref, files, notes,
    direct: chat.type === 'private' || mentions(text, entities, bot) || repliesToBot(msg, bot),
  };
}

/** An `@botname` mention, a mention of the bot by id, or a `/command@botname`. */
function mentions(text: string, entities: readonly MessageEntity[], bot: BotIdentity): boolean {
  const handle = `@${bot.username}`.toLowerCase();
  for (const e of entities) {
    const part = text.slice(e.offset, e.offset + e.length).toLowerCase();
    if (e.type === 'mention' && part === handle) return true;
    if (e.type === 'text_mention' && e.user?.id === bot.id) return true;
    if (e.type === 'bot_command' && part.endsWith(handle)) return true;
  }
  return false;
}

/** A reply to one of the bot's messages (a topic's opening message is not a reply someone chose). */
function repliesToBot(msg: Message, bot: BotIdentity): boolean {
  const target = msg.reply_to_message;
  return target !== undefined && target.from?.id === bot.id && target.forum_topic_created === undefined;
}

function filesOf(msg: Message): IncomingFile[] {
  const out: IncomingFile[] = [];
  if (msg.photo && msg.photo.length > 0) {
    // The sizes come smallest first: the last is the original.
    const best = msg.photo.at(-1)!;
    out.push({ kind: 'photo', fileId: best.file_id, name: 'photo.jpg', ...(best.file_size !== undefined ? { size: best.file_size } : {}) });
  }
  if (msg.document) {
    const d = msg.document;
    out.push({ kind: 'document', fileId: d.file_id, name: d.file_name || 'document', ...(d.file_size !== undefined ? { size: d.file_size } : {}) });
  }
  if (msg.voice) {
    const v = msg.voice;
    out.push({ kind: 'voice', fileId: v.file_id, name: v.mime_type === 'audio/mpeg' ? 'voice.mp3' : 'voice.ogg', ...(v.file_size !== undefined ? { size: v.file_size } : {}) });
  }
  return out;
}

function notesOf(msg: Message): string[] {
  const notes: string[] = [];
  if (msg.sticker) notes.push(`[sticker${msg.sticker.emoji ? ` ${msg.sticker.emoji}` : ''}]`);
  if (msg.video) notes.push('[video: not saved]');
  if (msg.video_note) notes.push('[video message: not saved]');
  if (msg.audio) notes.push(`[audio${msg.audio.title ? ` "${msg.audio.title}"` : ''}: not saved]`);
  if (msg.animation) notes.push('[animation: not saved]');
  if (msg.location) notes.push(`[location: ${msg.location.latitude}, ${msg.location.longitude}]`);
  if (msg.contact) notes.push(`[contact: ${[msg.contact.first_name, msg.contact.last_name].filter(Boolean).join(' ')} ${msg.contact.phone_number}]`);
  if (msg.poll) notes.push(`[poll: ${msg.poll.question}]`);
  return notes;
}

/** The text the agent sees: the message, then one line per file or other content. */
export function composeText(text: string, fileLines: readonly string[], notes: readonly string[]): string {
  return [text, ...fileLines, ...notes].filter((s) => s.trim() !== '').join('\n');
}

/** Human size for a line the model reads: `3.2 MB`. */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
