// The LINE channel's settings, read and checked once from the environment (merged over
// HAKO_CONFIG/secrets.env): the channel access token and secret, the API base URLs, the
// owner's user ids and the attachment limit. Invariant: no message built here contains a
// credential.

import { apiBaseUrl } from '../api-base.ts';
import { channelAttachmentLimits } from '../attachments.ts';

export interface LineConfig {
  readonly token: string;
  readonly secret: string;
  /** The Messaging API (api.line.me), without a trailing slash. */
  readonly apiRoot: string;
  /** The content API (api-data.line.me), without a trailing slash. */
  readonly dataApiRoot: string;
  /** `line:<userId>` of each owner: only they are `trusted` (engage a group without an allowlist). */
  readonly owners: ReadonlySet<string>;
  /** The largest attachment downloaded into a workspace, in bytes. */
  readonly maxBytes: number;
}

export const DEFAULT_API_ROOT = 'https://api.line.me';
export const DEFAULT_DATA_API_ROOT = 'https://api-data.line.me';

const WHERE = 'in ~/.config/hako/secrets.env (or the environment)';
const USER_ID = /^U[0-9a-f]{32}$/;

/** Throws an Error that says what is wrong and how to fix it. */
export function lineConfig(env: Readonly<Record<string, string | undefined>>): LineConfig {
  const token = env.LINE_CHANNEL_ACCESS_TOKEN?.trim() ?? '';
  if (!token) throw new Error(`line: LINE_CHANNEL_ACCESS_TOKEN is not set: issue a long-lived channel access token in the LINE Developers Console (Messaging API tab) and put it ${WHERE}`);
  if (!/^[A-Za-z0-9+/=._-]{20,}$/.test(token)) throw new Error(`line: LINE_CHANNEL_ACCESS_TOKEN does not look like a channel access token (letters, digits, + / = . _ -): check it ${WHERE}`);
  const secret = env.LINE_CHANNEL_SECRET?.trim() ?? '';
  if (!secret) throw new Error(`line: LINE_CHANNEL_SECRET is not set: copy the channel secret from the LINE Developers Console (Basic settings tab) ${WHERE}; without it no webhook can be verified`);
  if (!/^[0-9a-fA-F]{32}$/.test(secret)) throw new Error(`line: LINE_CHANNEL_SECRET does not look like a channel secret (32 hexadecimal characters): check it ${WHERE}`);
  return {
    token, secret,
    apiRoot: root('LINE_API_ROOT', env.LINE_API_ROOT, DEFAULT_API_ROOT),
    dataApiRoot: root('LINE_DATA_API_ROOT', env.LINE_DATA_API_ROOT, DEFAULT_DATA_API_ROOT),
    owners: owners(env.LINE_OWNER_IDS),
    maxBytes: channelAttachmentLimits('line', env).perFile,
  };
}

/** LINE's API bases are origins; the access token travels in every request's Authorization header. */
function root(name: string, raw: string | undefined, fallback: string): string {
  return apiBaseUrl(raw, { channel: 'line', name, what: "the API's base", fallback, secret: 'the channel access token', originOnly: true });
}

function owners(raw: string | undefined): ReadonlySet<string> {
  const ids = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((id) => !USER_ID.test(id));
  if (bad) throw new Error(`line: LINE_OWNER_IDS names ${JSON.stringify(bad)}, which is not a LINE user id (U followed by 32 hexadecimal characters; hako's notice about your chat shows yours)`);
  return new Set(ids.map((id) => `line:${id}`));
}
