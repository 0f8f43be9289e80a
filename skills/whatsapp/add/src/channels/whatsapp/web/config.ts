// WhatsApp Web's settings, read once from the environment: where the link's auth state and
// the high-water mark live (HAKO_HOME/channels/whatsapp, never the project or a container),
// the phone number for a pairing code, the owner's numbers and the attachment limits.
// Invariant: every message says which setting to fix.

import path from 'node:path';
import { attachmentLimits, type AttachmentLimits } from '../../attachments.ts';

export interface WebConfig {
  /** Baileys' multi-file auth state: folder 0700, files 0600. */
  readonly authDir: string;
  /** The high-water mark of messages taken (web-state.json, 0600). */
  readonly statePath: string;
  /** WHATSAPP_WEB_PHONE in digits: pair by code instead of QR. */
  readonly phone?: string;
  /** WHATSAPP_OWNER_NUMBERS in digits: the senders hako trusts when a group has no allowlist. */
  readonly owners: ReadonlySet<string>;
  readonly limits: AttachmentLimits;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Throws an Error naming the setting that is wrong and what it should look like. */
export function webConfig(env: Env, home: string): WebConfig {
  const dir = path.join(home, 'channels', 'whatsapp');
  const phone = number(env.WHATSAPP_WEB_PHONE, 'WHATSAPP_WEB_PHONE');
  return {
    authDir: path.join(dir, 'auth'),
    statePath: path.join(dir, 'web-state.json'),
    ...(phone ? { phone } : {}),
    owners: new Set((env.WHATSAPP_OWNER_NUMBERS ?? '').split(/[,;\n]+/).map((p) => p.trim()).filter(Boolean).map((p) => number(p, 'WHATSAPP_OWNER_NUMBERS')!)),
    limits: attachmentLimits(env),
  };
}

/** `+49 151-123 45678` → `4915112345678`; undefined when empty. */
function number(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const digits = raw.trim().replace(/^\+/, '').replace(/[\s\-.()]/g, '');
  if (!/^[1-9]\d{5,14}$/.test(digits)) {
    throw new Error(`whatsapp: ${name} must be phone numbers in international form without the leading 00 (e.g. 4915112345678), comma-separated, found ${JSON.stringify(raw)}`);
  }
  return digits;
}
