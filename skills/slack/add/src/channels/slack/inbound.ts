// A Slack message event as hako sees it: which chat address it came from, who sent it,
// whether it is addressed to the assistant, its text for the model, the thread a reply
// belongs in, and the files it carries. Pure: parsed from `unknown` (the event is input
// from outside); the channel looks up names, downloads files and hands the result on.
//
// Chat addresses are `slack:<conversation id>` (C… channels, G… private channels, D…
// direct messages). The `ref` is `<ts>` for a message at the top of a conversation and
// `<ts>/<thread_ts>` for one inside a thread: unique per message (Slack's retries of the
// same event map to the same ref, so the core stores it once) and enough to answer in
// the right thread.

export interface BotIdentity {
  /** The bot user's id (auth.test `user_id`): mentions are `<@this>`. */
  readonly userId: string;
  readonly botId?: string;
}

export interface FileRef {
  readonly id: string;
  readonly name: string;
  readonly mime: string;
  readonly size?: number;
  readonly url: string;
}

export interface Mapped {
  readonly channel: string;
  readonly chat: string;
  readonly user: string;
  readonly im: boolean;
  /** The text for the model: Slack's escapes and link syntax undone, the bot's mention as `@<name>`. */
  readonly text: string;
  readonly direct: boolean;
  readonly ref: string;
  readonly files: readonly FileRef[];
}

/** Message subtypes that are a person's message; every other subtype (edits, deletes, joins, bots) is not taken. */
const TAKEN_SUBTYPES = new Set([undefined, 'file_share', 'thread_broadcast']);
const CONVERSATION = /^[CGD][A-Z0-9]{2,30}$/;
const TS = /^\d{1,12}\.\d{1,9}$/;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Maps one event; undefined for what hako does not take. */
export function mapEvent(raw: unknown, bot: BotIdentity, assistantName: string): Mapped | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  if (e.type !== 'message') return undefined;
  const subtype = str(e.subtype);
  if (!TAKEN_SUBTYPES.has(subtype) || e.bot_id !== undefined || e.bot_profile !== undefined) return undefined;
  const user = str(e.user);
  const channel = str(e.channel);
  const ts = str(e.ts);
  if (!user || user === bot.userId || !channel || !CONVERSATION.test(channel) || !ts || !TS.test(ts)) return undefined;
  const thread = str(e.thread_ts);
  const files = filesOf(e.files);
  const rawText = str(e.text) ?? '';
  if (rawText.trim() === '' && files.length === 0) return undefined;
  const im = str(e.channel_type) === 'im' || channel.startsWith('D');
  const mention = new RegExp(`<@${bot.userId}(\\|[^>]*)?>`).test(rawText);
  return {
    channel, chat: `slack:${channel}`, user, im,
    text: plainText(rawText, bot.userId, assistantName),
    direct: im || mention,
    ref: thread && TS.test(thread) && thread !== ts ? `${ts}/${thread}` : ts,
    files,
  };
}

/** The thread a reply to `ref` goes in: the thread the message was in, or the message itself. */
export function threadOf(ref: string | undefined): string | undefined {
  if (ref === undefined) return undefined;
  const [ts, thread] = ref.split('/');
  if (!ts || !TS.test(ts)) return undefined;
  return thread && TS.test(thread) ? thread : ts;
}

export function isConversation(address: string): boolean {
  return CONVERSATION.test(address);
}

/** Slack's message syntax → what a person reads: `<@U1>` → `@U1`, `<url|label>` → `label (url)`, `&lt;` → `<`. */
export function plainText(text: string, botUserId: string, assistantName: string): string {
  return text
    .replace(/<@([UW][A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, label?: string) => (id === botUserId ? `@${assistantName}` : `@${label || id}`))
    .replace(/<#([CG][A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, label?: string) => `#${label || id}`)
    .replace(/<!(here|channel|everyone)(?:\|[^>]*)?>/g, '@$1')
    .replace(/<((?:https?|mailto):[^|>]+)\|([^>]+)>/g, '$2 ($1)')
    .replace(/<((?:https?|mailto):[^>]+)>/g, '$1')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function filesOf(raw: unknown): FileRef[] {
  if (!Array.isArray(raw)) return [];
  const out: FileRef[] = [];
  for (const f of raw as Record<string, unknown>[]) {
    const url = str(f?.url_private_download) ?? str(f?.url_private);
    const id = str(f?.id);
    if (!url || !id) continue;
    const size = typeof f.size === 'number' && Number.isSafeInteger(f.size) ? f.size : undefined;
    out.push({ id, name: str(f.name) ?? str(f.title) ?? id, mime: str(f.mimetype) ?? 'application/octet-stream', url, ...(size !== undefined ? { size } : {}) });
  }
  return out;
}
