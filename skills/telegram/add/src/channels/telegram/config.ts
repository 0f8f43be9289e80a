// The Telegram channel's settings, read and checked once from the environment (merged over
// HAKO_CONFIG/secrets.env): the bot token, the Bot API base URL and the attachment limit.
// Invariant: no message built here ever contains the token.

import { apiBaseUrl } from '../api-base.ts';
import { channelAttachmentLimits } from '../attachments.ts';

export interface TelegramConfig {
  readonly token: string;
  /** Without a trailing slash, as grammY wants it. */
  readonly apiRoot: string;
  /** The largest attachment downloaded into a workspace, in bytes. */
  readonly maxBytes: number;
  /** TELEGRAM_OWNER_IDS: the user ids whose messages engage a bound group chat without an allowlist. */
  readonly ownerIds: ReadonlySet<string>;
}

export const DEFAULT_API_ROOT = 'https://api.telegram.org';
/**
 * The Bot API itself serves bots files of at most 20 MB: the default here, not the core's
 * 25 MB. A self-hosted Bot API server (TELEGRAM_API_ROOT) serves more: then set the limit.
 */
export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;

const TOKEN = /^\d{1,20}:[A-Za-z0-9_-]{30,64}$/;
const WHERE = 'in ~/.config/hako/secrets.env (or the environment)';

/** Throws an Error that says what is wrong and how to fix it. */
export function telegramConfig(env: Readonly<Record<string, string | undefined>>): TelegramConfig {
  const token = env.TELEGRAM_BOT_TOKEN?.trim() ?? '';
  if (!token) throw new Error(`telegram: TELEGRAM_BOT_TOKEN is not set: put the token BotFather gave you ${WHERE}`);
  if (!TOKEN.test(token)) {
    throw new Error(`telegram: TELEGRAM_BOT_TOKEN does not look like a bot token (BotFather gives digits, a colon and about 35 letters, digits, - or _): check it ${WHERE}`);
  }
  return {
    token,
    apiRoot: apiBaseUrl(env.TELEGRAM_API_ROOT, { channel: 'telegram', name: 'TELEGRAM_API_ROOT', what: "the Bot API server's base", fallback: DEFAULT_API_ROOT, secret: 'the bot token' }),
    maxBytes: env.HAKO_ATTACHMENT_MAX_BYTES ? channelAttachmentLimits('telegram', env).perFile : DEFAULT_MAX_BYTES,
    ownerIds: ownerIds(env.TELEGRAM_OWNER_IDS),
  };
}

function ownerIds(raw: string | undefined): ReadonlySet<string> {
  const ids = (raw ?? '').split(/[\s,]+/).filter(Boolean);
  const bad = ids.find((id) => !/^\d{1,20}$/.test(id));
  if (bad) throw new Error(`telegram: TELEGRAM_OWNER_IDS holds ${JSON.stringify(bad)}, which is not a Telegram user id (digits: the number in the telegram:<id> address of your private chat with the bot, which hako shows when you first write to it)`);
  return new Set(ids);
}
