// The Slack channel's settings, read and checked once from the environment (merged over
// HAKO_CONFIG/secrets.env): which of the two ways is configured — Socket Mode (bot token +
// app-level token) or the Events API over HTTP (bot token + signing secret) — the Web API
// base URL, the owner's user ids and the attachment limit.
// Invariant: no message built here ever contains a token or the signing secret.

import { apiBaseUrl } from '../api-base.ts';
import { channelAttachmentLimits, type AttachmentLimits } from '../attachments.ts';

type Env = Readonly<Record<string, string | undefined>>;

export type SlackMode =
  | { readonly kind: 'socket'; readonly botToken: string; readonly appToken: string }
  | { readonly kind: 'events'; readonly botToken: string; readonly signingSecret: string }
  | { readonly kind: 'off'; readonly reason: string };

export interface SlackConfig {
  readonly mode: Exclude<SlackMode, { kind: 'off' }>;
  /** With a trailing slash, as the Web API client wants it. */
  readonly apiUrl: string;
  /** Slack user ids whose messages are trusted (engage a group without an allowlist). */
  readonly ownerIds: ReadonlySet<string>;
  readonly limits: AttachmentLimits;
}

export const DEFAULT_API_URL = 'https://slack.com/api/';
const WHERE = 'in ~/.config/hako/secrets.env (or the environment)';

function value(env: Env, name: string): string {
  return env[name]?.trim() ?? '';
}

/** Which way the settings choose, or why the channel stays off (naming what is missing). */
export function slackMode(env: Env): SlackMode {
  const botToken = value(env, 'SLACK_BOT_TOKEN');
  const appToken = value(env, 'SLACK_APP_TOKEN');
  const signingSecret = value(env, 'SLACK_SIGNING_SECRET');
  if (!botToken) return { kind: 'off', reason: 'SLACK_BOT_TOKEN not set (with SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET for the Events API over HTTP)' };
  if (appToken) return { kind: 'socket', botToken, appToken };
  if (signingSecret) return { kind: 'events', botToken, signingSecret };
  return { kind: 'off', reason: 'SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (Events API over HTTP) not set' };
}

/** Throws an Error that says what is wrong and how to fix it. */
export function slackConfig(env: Env): SlackConfig {
  const mode = slackMode(env);
  if (mode.kind === 'off') throw new Error(`slack: ${mode.reason}: put them ${WHERE}`);
  if (!mode.botToken.startsWith('xoxb-')) {
    throw new Error(`slack: SLACK_BOT_TOKEN does not look like a bot token (it starts with xoxb-; copy the "Bot User OAuth Token" from your app's OAuth & Permissions page) ${WHERE}`);
  }
  if (mode.kind === 'socket' && !mode.appToken.startsWith('xapp-')) {
    throw new Error(`slack: SLACK_APP_TOKEN does not look like an app-level token (it starts with xapp-; make one with the connections:write scope under Basic Information → App-Level Tokens) ${WHERE}`);
  }
  const limits = channelAttachmentLimits('slack', env);
  // Bolt's WebClient wants the base with its trailing slash.
  const apiUrl = `${apiBaseUrl(env.SLACK_API_URL, { channel: 'slack', name: 'SLACK_API_URL', what: "the Web API's base", fallback: DEFAULT_API_URL.slice(0, -1), secret: 'the bot token' })}/`;
  return { mode, apiUrl, ownerIds: ownerIds(env.SLACK_OWNER_IDS), limits };
}

function ownerIds(raw: string | undefined): ReadonlySet<string> {
  const ids = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((id) => !/^[UW][A-Z0-9]{2,20}$/.test(id));
  if (bad) throw new Error(`slack: SLACK_OWNER_IDS holds ${JSON.stringify(bad)}, which is not a Slack user id (U… or W…; in Slack: your profile → ⋮ → Copy member ID)`);
  return new Set(ids);
}
