// The Discord channel's settings, read and checked once from the environment (merged over
// HAKO_CONFIG/secrets.env): the bot token, the REST base URL (the gateway URL comes from
// GET /gateway/bot), the owner's user ids and the attachment limit.
// Invariant: no message built here ever contains the token.

import { attachmentLimits } from '../attachments.ts';

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
  return { token, apiRoot: apiRoot(env.DISCORD_API_ROOT), ownerIds: ownerIds(env.DISCORD_OWNER_IDS), maxBytes: maxBytes(env) };
}

function apiRoot(raw: string | undefined): string {
  if (raw === undefined || raw.trim() === '') return DEFAULT_API_ROOT;
  const value = raw.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`discord: DISCORD_API_ROOT ${JSON.stringify(value)} is not a URL: give the REST base, e.g. ${DEFAULT_API_ROOT}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`discord: DISCORD_API_ROOT must be an http(s) URL, not ${url.protocol}`);
  // The token travels in every request's Authorization header: never in clear over a network.
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new Error('discord: DISCORD_API_ROOT must use https:// (plain http:// only to a loopback address such as 127.0.0.1): the bot token travels in every request');
  }
  if (url.search || url.hash || url.username || url.password) throw new Error('discord: DISCORD_API_ROOT must be a plain base URL, without credentials, query or fragment');
  return value;
}

function ownerIds(raw: string | undefined): string[] {
  const ids = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((id) => !SNOWFLAKE.test(id));
  if (bad !== undefined) throw new Error(`discord: DISCORD_OWNER_IDS must be comma-separated Discord user ids (digits, e.g. 80351110224678912), found ${JSON.stringify(bad)}: in Discord, Settings → Advanced → Developer Mode, then right-click yourself → Copy User ID`);
  return ids;
}

function maxBytes(env: Readonly<Record<string, string | undefined>>): number {
  try {
    return attachmentLimits(env).perFile;
  } catch (err) {
    throw new Error(`discord: ${(err as Error).message}`);
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}
