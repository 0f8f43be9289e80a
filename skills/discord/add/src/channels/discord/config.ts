// The Discord channel's settings, read and checked once from the environment (merged over
// HAKO_CONFIG/secrets.env): the bot token, the REST base URL (the gateway URL comes from
// GET /gateway/bot), the owner's user ids and the attachment limit.
// Invariant: no message built here ever contains the token.

import { apiBaseUrl } from '../api-base.ts';
import { channelAttachmentLimits } from '../attachments.ts';

export interface DiscordConfig {
  readonly token: string;
  /** REST base without a trailing slash and without the version (discord.js adds `/v10`). */
  readonly apiRoot: string;
  /** User ids whose messages are `trusted` (DISCORD_OWNER_IDS). */
  readonly ownerIds: readonly string[];
  /** The largest attachment downloaded into a workspace, in bytes (HAKO_ATTACHMENT_MAX_BYTES). */
  readonly maxBytes: number;
}

export const DEFAULT_API_ROOT = 'https://discord.com/api';
const WHERE = 'in ~/.config/hako/secrets.env (or the environment)';
/** Three dot-separated base64url parts, as the Developer Portal shows a bot token. */
const TOKEN = /^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$/;
const SNOWFLAKE = /^\d{15,21}$/;

/** Throws an Error that says what is wrong and how to fix it. */
export function discordConfig(env: Readonly<Record<string, string | undefined>>): DiscordConfig {
  const token = env.DISCORD_BOT_TOKEN?.trim() ?? '';
  if (!token) throw new Error(`discord: DISCORD_BOT_TOKEN is not set: put the bot token from the Developer Portal (Bot → Reset Token) ${WHERE}`);
  if (!TOKEN.test(token)) throw new Error(`discord: DISCORD_BOT_TOKEN does not look like a bot token (three parts separated by dots, without "Bot " in front): check it ${WHERE}`);
  return {
    token,
    apiRoot: apiBaseUrl(env.DISCORD_API_ROOT, { channel: 'discord', name: 'DISCORD_API_ROOT', what: 'the REST base', fallback: DEFAULT_API_ROOT, secret: 'the bot token' }),
    ownerIds: ownerIds(env.DISCORD_OWNER_IDS),
    maxBytes: channelAttachmentLimits('discord', env).perFile,
  };
}

function ownerIds(raw: string | undefined): string[] {
  const ids = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((id) => !SNOWFLAKE.test(id));
  if (bad !== undefined) throw new Error(`discord: DISCORD_OWNER_IDS must be comma-separated Discord user ids (digits, e.g. 80351110224678912), found ${JSON.stringify(bad)}: in Discord, Settings → Advanced → Developer Mode, then right-click yourself → Copy User ID`);
  return ids;
}
