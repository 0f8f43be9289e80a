// The e-mail channel's settings, read once from the environment (merged over secrets.env)
// and validated with messages that say what was expected, what was found and how to fix it.
// The TLS rule: `imaps://` / `smtps://` (TLS from the first byte) or `?starttls=required`
// (the upgrade is demanded, never opportunistic) work with any host; plain `imap://` /
// `smtp://` are accepted only to a loopback address (a local bridge, the tests), because
// anywhere else the password and every message would cross the network readable.
// Pure: no I/O, no library import; loopback is the core's rule (isLoopback), one for all.

import { isLoopback } from '../../core/config.ts';
import { channelAttachmentLimits } from '../attachments.ts';
import { normalizeAddress } from './address.ts';

export type Security = 'tls' | 'starttls' | 'plain';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly security: Security;
}

export type EmailAuth =
  | { readonly kind: 'password'; readonly password: string }
  | { readonly kind: 'oauth2'; readonly token: string };

export interface EmailConfig {
  readonly imap: Endpoint;
  readonly smtp: Endpoint;
  /** The login name (for Gmail: the address). */
  readonly user: string;
  /** The mailbox's own address, lower-case: mail to it goes to main, and replies come from it. */
  readonly address: string;
  readonly auth: EmailAuth;
  /** The owner's addresses, lower-case: only mail from them is trusted. */
  readonly owners: readonly string[];
  /** The folder watched for new mail. */
  readonly mailbox: string;
  /** How often the mailbox is polled besides IDLE (a fallback for servers and networks that drop IDLE). */
  readonly pollMs: number;
  /** Attachments over this size are listed but not saved. */
  readonly attachmentMaxBytes: number;
  /** A message over this size is not downloaded: its headers are stored with a note. */
  readonly messageMaxBytes: number;
  /**
   * The authserv-id of the receiving server whose Authentication-Results header is
   * believed (Gmail: mx.google.com); with one, the owner's address counts only when that
   * header shows it was not forged (DMARC or aligned DKIM pass). Undefined: From is believed.
   */
  readonly authservId: string | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

export class EmailConfigError extends Error {
  override name = 'EmailConfigError';
}

const SECRETS_HINT = '~/.config/hako/secrets.env';
const DEFAULT_PORTS: Record<string, { port: number; security: Security }> = {
  imaps: { port: 993, security: 'tls' },
  imap: { port: 143, security: 'plain' },
  smtps: { port: 465, security: 'tls' },
  smtp: { port: 587, security: 'plain' },
};

/** Parses HAKO_EMAIL_IMAP / HAKO_EMAIL_SMTP and applies the TLS rule. */
export function parseEndpoint(variable: string, value: string, protocol: 'imap' | 'smtp'): Endpoint {
  const example = protocol === 'imap' ? 'imaps://imap.gmail.com:993' : 'smtps://smtp.gmail.com:465';
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new EmailConfigError(`email: ${variable}=${JSON.stringify(value)} is not a URL; expected e.g. ${example}`);
  }
  const scheme = url.protocol.replace(/:$/, '');
  const defaults = DEFAULT_PORTS[scheme];
  if (!defaults || !scheme.startsWith(protocol)) {
    throw new EmailConfigError(`email: ${variable} must start with ${protocol}s:// (TLS) or ${protocol}:// (found ${JSON.stringify(scheme + '://')}); e.g. ${example}`);
  }
  if (url.username || url.password) {
    throw new EmailConfigError(`email: ${variable} holds a user name or password; put the user in HAKO_EMAIL_USER and the password in HAKO_EMAIL_PASSWORD in ${SECRETS_HINT}, never in the URL`);
  }
  if (url.pathname !== '' && url.pathname !== '/') {
    throw new EmailConfigError(`email: ${variable} has a path (${JSON.stringify(url.pathname)}); only ${protocol}[s]://host[:port] is understood`);
  }
  let security = defaults.security;
  for (const [k, v] of url.searchParams) {
    if (k !== 'starttls' || v !== 'required') {
      throw new EmailConfigError(`email: ${variable} has an unknown option ${JSON.stringify(`${k}=${v}`)}; the only one is ?starttls=required`);
    }
    if (security === 'tls') throw new EmailConfigError(`email: ${variable} asks for STARTTLS on ${scheme}://, which is TLS already; drop ?starttls=required`);
    security = 'starttls';
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new EmailConfigError(`email: ${variable} names no host; expected e.g. ${example}`);
  const port = url.port ? Number(url.port) : defaults.port;
  if (security === 'plain' && !isLoopback(host)) {
    throw new EmailConfigError(`email: ${variable}=${value} would send the password and every message unencrypted to ${host}, which is not a loopback address; `
      + `use ${protocol}s://${host}${protocol === 'imap' ? ':993' : ':465'} (TLS) or ${protocol}://${host}:${port}?starttls=required`);
  }
  // The name localhost could be re-pointed in /etc/hosts; the address it promises cannot.
  return { host: host.toLowerCase() === 'localhost' ? '127.0.0.1' : host, port, security };
}

function positiveNumber(env: Env, variable: string, fallback: number, unit: string, min = 1): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new EmailConfigError(`email: ${variable}=${JSON.stringify(raw)} is not a positive number of ${unit}`);
  if (n < min) throw new EmailConfigError(`email: ${variable}=${raw} is below ${min} ${unit}`);
  return n;
}

/** HAKO_ATTACHMENT_MAX_BYTES as every channel reads it (src/channels/attachments.ts). */
function attachmentMaxBytes(env: Env): number {
  try {
    return channelAttachmentLimits('email', env).perFile;
  } catch (err) {
    throw new EmailConfigError((err as Error).message);
  }
}

/** Reads and validates every setting; throws EmailConfigError naming the variable to fix. */
export function parseEmailConfig(env: Env): EmailConfig {
  const need = (k: string): string => {
    const v = env[k]?.trim();
    if (!v) throw new EmailConfigError(`email: ${k} is not set`);
    return v;
  };
  const imap = parseEndpoint('HAKO_EMAIL_IMAP', need('HAKO_EMAIL_IMAP'), 'imap');
  const smtp = parseEndpoint('HAKO_EMAIL_SMTP', need('HAKO_EMAIL_SMTP'), 'smtp');
  const user = need('HAKO_EMAIL_USER');
  const addressRaw = env.HAKO_EMAIL_ADDRESS?.trim() || (user.includes('@') ? user : '');
  const address = normalizeAddress(addressRaw);
  if (!address) {
    throw new EmailConfigError(addressRaw
      ? `email: ${JSON.stringify(addressRaw)} is not an e-mail address (HAKO_EMAIL_ADDRESS or HAKO_EMAIL_USER)`
      : 'email: HAKO_EMAIL_USER is a login name, not an address; set HAKO_EMAIL_ADDRESS to the mailbox\'s address');
  }
  const password = env.HAKO_EMAIL_PASSWORD;
  const token = env.HAKO_EMAIL_OAUTH_TOKEN;
  if (password && token) throw new EmailConfigError(`email: both HAKO_EMAIL_PASSWORD and HAKO_EMAIL_OAUTH_TOKEN are set; keep only one in ${SECRETS_HINT}`);
  if (!password && !token) throw new EmailConfigError(`email: neither HAKO_EMAIL_PASSWORD (an app password) nor HAKO_EMAIL_OAUTH_TOKEN is set; add one to ${SECRETS_HINT} (mode 0600)`);
  const auth: EmailAuth = token ? { kind: 'oauth2', token } : { kind: 'password', password: password! };
  const ownersRaw = env.HAKO_EMAIL_OWNER?.trim() ? env.HAKO_EMAIL_OWNER.split(',').map((s) => s.trim()).filter(Boolean) : [address];
  const owners: string[] = [];
  for (const o of ownersRaw) {
    const n = normalizeAddress(o);
    if (!n) throw new EmailConfigError(`email: HAKO_EMAIL_OWNER holds ${JSON.stringify(o)}, which is not an e-mail address; list the owner's addresses, comma-separated`);
    if (!owners.includes(n)) owners.push(n);
  }
  const authservRaw = env.HAKO_EMAIL_AUTHSERV_ID?.trim();
  const gmail = imap.host === 'imap.gmail.com';
  // Anyone can write the owner's address as From. Gmail stamps every message it receives with
  // its verdict, so believing it is the default there; elsewhere the owner must say whose
  // verdict to believe, or that From is believed as written: never by default (fail closed).
  if (!authservRaw && !gmail) {
    throw new EmailConfigError(`email: on ${imap.host} hako cannot tell a forged From from the owner's: set HAKO_EMAIL_AUTHSERV_ID to the server that stamps Authentication-Results on your incoming mail (its first word, e.g. mx.example.com), or to "none" to believe From as written, knowing that anyone could then pose as the owner`);
  }
  const authservId = authservRaw === 'none' ? undefined : authservRaw || 'mx.google.com';
  if (authservId !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(authservId)) {
    throw new EmailConfigError(`email: HAKO_EMAIL_AUTHSERV_ID=${JSON.stringify(authservRaw)} is not a host name (e.g. mx.google.com), or "none"`);
  }
  return {
    imap, smtp, user, address, auth, owners,
    mailbox: env.HAKO_EMAIL_MAILBOX?.trim() || 'INBOX',
    // Not more often than every 10 s: the poll is only the fallback for a silent IDLE.
    pollMs: Math.round(positiveNumber(env, 'HAKO_EMAIL_POLL_SECONDS', 300, 'seconds', 10) * 1000),
    attachmentMaxBytes: attachmentMaxBytes(env),
    messageMaxBytes: Math.floor(positiveNumber(env, 'HAKO_EMAIL_MAX_MESSAGE_BYTES', 40 * 1024 * 1024, 'bytes')),
    authservId,
  };
}
