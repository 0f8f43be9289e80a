// The WhatsApp channel's settings, read and checked once from the environment (merged over
// HAKO_CONFIG/secrets.env): which of the two ways is chosen — the official Cloud API (a
// business number, webhook in, Graph API out) or WhatsApp Web (a personal number, Baileys) —
// and, for the Cloud API, its credentials, Graph API base, owner numbers and attachment limit.
// Invariant: no message built here ever contains a credential's value.

import { apiBaseUrl } from '../api-base.ts';
import { channelAttachmentLimits } from '../attachments.ts';

export type WhatsAppMode =
  | { readonly kind: 'cloud' }
  | { readonly kind: 'web' }
  | { readonly kind: 'off'; readonly reason: string };

export interface CloudConfig {
  readonly accessToken: string;
  readonly phoneNumberId: string;
  readonly appSecret: string;
  readonly verifyToken: string;
  /** The Graph API base with its version, without a trailing slash. */
  readonly graphUrl: string;
  /** Senders (wa_id, digits only) who are the owner: `trusted` when no allowlist names senders. */
  readonly owners: ReadonlySet<string>;
  /** The largest attachment downloaded into a workspace, in bytes. */
  readonly maxBytes: number;
}

/** Graph API versions live about two years; v24.0 (October 2025) is the one Meta's WhatsApp pages document now. */
export const DEFAULT_GRAPH_URL = 'https://graph.facebook.com/v24.0';
/** The Cloud API serves media of at most 100 MB (documents); images and audio are far smaller. */

const WHERE = 'in ~/.config/hako/secrets.env (or the environment)';
const CLOUD_NEEDS = ['WHATSAPP_PHONE_NUMBER_ID', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN'] as const;

type Env = Readonly<Record<string, string | undefined>>;

function set(env: Env, name: string): boolean {
  return (env[name]?.trim() ?? '') !== '';
}

/** Which way the settings choose; `off` says why neither (or both). */
export function whatsappMode(env: Env): WhatsAppMode {
  const cloud = set(env, 'WHATSAPP_ACCESS_TOKEN');
  const web = env.WHATSAPP_WEB?.trim() === 'on';
  if (cloud && web) {
    return { kind: 'off', reason: 'both WHATSAPP_ACCESS_TOKEN (the Cloud API) and WHATSAPP_WEB=on (WhatsApp Web) are set: choose one, and remove the other from secrets.env' };
  }
  if (web) return { kind: 'web' };
  if (!cloud) {
    return { kind: 'off', reason: 'neither way is configured: set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN for the Cloud API (a business number), or WHATSAPP_WEB=on for WhatsApp Web (a personal number)' };
  }
  const missing = CLOUD_NEEDS.filter((k) => !set(env, k));
  if (missing.length) return { kind: 'off', reason: `the Cloud API also needs ${missing.join(', ')} (WHATSAPP_ACCESS_TOKEN is set): put them ${WHERE}` };
  return { kind: 'cloud' };
}

/** Throws an Error that says what is wrong and how to fix it. */
export function cloudConfig(env: Env): CloudConfig {
  const mode = whatsappMode(env);
  if (mode.kind !== 'cloud') throw new Error(`whatsapp: ${mode.kind === 'off' ? mode.reason : 'WHATSAPP_WEB=on chooses WhatsApp Web, not the Cloud API'}`);
  const phoneNumberId = env.WHATSAPP_PHONE_NUMBER_ID!.trim();
  if (!/^\d{1,30}$/.test(phoneNumberId)) {
    throw new Error(`whatsapp: WHATSAPP_PHONE_NUMBER_ID must be the phone number's id (digits, from the app's WhatsApp > API Setup page), found ${JSON.stringify(phoneNumberId)}`);
  }
  return {
    accessToken: env.WHATSAPP_ACCESS_TOKEN!.trim(),
    phoneNumberId,
    appSecret: env.WHATSAPP_APP_SECRET!.trim(),
    verifyToken: env.WHATSAPP_VERIFY_TOKEN!.trim(),
    graphUrl: apiBaseUrl(env.WHATSAPP_GRAPH_URL, { channel: 'whatsapp', name: 'WHATSAPP_GRAPH_URL', what: 'the Graph API base with its version', fallback: DEFAULT_GRAPH_URL, secret: 'the access token' }),
    owners: owners(env.WHATSAPP_OWNER_NUMBERS),
    maxBytes: channelAttachmentLimits('whatsapp', env).perFile,
  };
}

function owners(raw: string | undefined): ReadonlySet<string> {
  const out = new Set<string>();
  for (const part of (raw ?? '').split(/[,\s]+/)) {
    if (!part) continue;
    const digits = part.replace(/^\+/, '').replace(/[-.()]/g, '');
    if (!/^\d{6,15}$/.test(digits)) {
      throw new Error(`whatsapp: WHATSAPP_OWNER_NUMBERS must list phone numbers in international form, comma-separated (e.g. 491701234567,15551234567), found ${JSON.stringify(part)}`);
    }
    out.add(digits);
  }
  return out;
}
