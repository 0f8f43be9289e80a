// The one configuration loader: reads the environment once, validates it, and returns
// plain readonly data. Every other module receives a Config; none reads process.env.

import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseModel, type ProviderName } from '../../protocol/model.ts';
import { reserveProblem } from './disk.ts';

export type { ProviderName };

export interface ProviderConfig {
  /** The real key. Lives only in the host process; never passed to a container. */
  readonly apiKey: string | undefined;
  readonly baseURL: string;
  /** Whether the upstream can be used without a key (a local OpenAI-compatible server). */
  readonly keyOptional: boolean;
}

export interface Config {
  readonly home: string;
  readonly configDir: string;
  readonly httpPort: number;
  readonly httpToken: string | undefined;
  /** Host header names the HTTP API answers to besides the loopback ones (HAKO_HTTP_HOSTS). */
  readonly httpHosts: readonly string[];
  /** The address the HTTP API listens on (HAKO_HTTP_BIND); only loopback unless httpExposure says otherwise. */
  readonly httpBind: string;
  /** How a non-loopback bind is protected: see HttpExposure. */
  readonly httpExposure: HttpExposure;
  /** Where platforms post webhooks (Slack's Events API, WhatsApp Cloud, LINE): a listener of its own, never the API's. */
  readonly webhookPort: number;
  readonly webhookBind: string;
  /** `provider/model`, or undefined when not configured (messages wait until it is). */
  readonly model: string | undefined;
  readonly providers: Readonly<Record<ProviderName, ProviderConfig>>;
  readonly assistantName: string;
  readonly maxContainers: number;
  readonly idleTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  /** Longest delay between retries; a model outage keeps retrying at this pace. */
  readonly retryMaxMs: number;
  /** The owner's time zone (IANA name) for cron schedules. */
  readonly tz: string;
  readonly maxMessageChars: number;
  readonly limits: Limits;
  /** Free space kept on HAKO_HOME's file system for the database: below it no container runs. */
  readonly diskReserve: string;
  readonly runtime: string | undefined;
  /** Model tokens (input + output) all groups together may use per owner's day (HAKO_TOKENS_PER_DAY); null: no limit. */
  readonly tokensPerDay: number | null;
  /** HAKO_LOG_LEVEL: `debug` also logs each hop of a turn and the agent's progress lines; anything else is `info`. */
  readonly logLevel: 'debug' | 'info';
  /** Passed to the agent: model calls per turn, whether to stream them, sub-agents per spawn_agents call. */
  readonly agent: { readonly maxSteps: number; readonly stream: boolean; readonly maxSubagents: number; readonly images: ImageSetting };
  /** Tokens one model request may use, answer included (HAKO_CONTEXT_TOKENS); null: the model's default (defaultContextTokens). */
  readonly contextTokens: number | null;
  /** An OpenAI-compatible speech-to-text upstream (HAKO_TRANSCRIBE_URL); null: voice notes are only saved. */
  readonly transcription: TranscriptionConfig | null;
}

/** Reached only through the group proxy's transcription route; the key never leaves the host. */
export interface TranscriptionConfig {
  /** Base URL below which `/audio/transcriptions` is called, e.g. https://api.openai.com/v1. */
  readonly baseURL: string;
  readonly apiKey: string | undefined;
  readonly model: string;
}

/** Resource limits of one group's container and turns; a group may override each. */
export interface Limits {
  readonly memory: string;
  readonly cpus: string;
  readonly pids: number;
  readonly tmpfs: string;
  /** Wall-clock seconds one turn may take. */
  readonly turnTimeoutSeconds: number;
  /** Characters of messages (replies and send_message) one turn may write. */
  readonly maxOutputChars: number;
  /** Scheduled tasks (pending, active or paused) the group may have at once. */
  readonly maxTasks: number;
  /** Size the group's folder and IPC out/ may occupy on disk (the host measures it). */
  readonly disk: string;
}

/** Checks one limit value; returns a reason, or null when it is fine. */
export function limitProblem(name: keyof Limits, value: unknown): string | null {
  const size = /^\d+(\.\d+)?[kmg]$/i;
  switch (name) {
    case 'memory': return typeof value === 'string' && size.test(value) ? null : 'memory must be a size like 512m or 2g';
    case 'tmpfs': return typeof value === 'string' && size.test(value) ? null : 'tmpfs must be a size like 64m';
    case 'cpus': return typeof value === 'string' && Number(value) > 0 && Number(value) <= 256 ? null : 'cpus must be a number of cores like 0.5 or 2';
    case 'pids': return Number.isInteger(value) && (value as number) >= 16 && (value as number) <= 65_536 ? null : 'pids must be a whole number from 16 to 65536';
    case 'turnTimeoutSeconds': return Number.isInteger(value) && (value as number) >= 5 && (value as number) <= 86_400 ? null : 'turn timeout must be 5 to 86400 seconds';
    case 'maxOutputChars': return Number.isInteger(value) && (value as number) >= 1000 && (value as number) <= 10_000_000 ? null : 'max output must be 1000 to 10000000 characters';
    case 'disk': return typeof value === 'string' && size.test(value) ? null : 'disk must be a size like 500m or 2g';
    case 'maxTasks': return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 1000 ? null : 'max tasks must be a whole number from 0 to 1000';
  }
}

/**
 * What stands between the HTTP API and the network: 'loopback' (nothing needed, the default),
 * 'behind-tls' (the owner says TLS terminates in a proxy in front: HAKO_HTTP_BEHIND_TLS=1,
 * and the session cookie is then Secure), or 'insecure' (the owner accepts plain HTTP off
 * this machine: HAKO_HTTP_ALLOW_INSECURE=1).
 */
export type HttpExposure = 'loopback' | 'behind-tls' | 'insecure';

/** Whether `address` (a host or an address to listen on) is this machine only: 127.0.0.0/8, ::1 (any spelling) or localhost. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  if (a === 'localhost') return true;
  if (net.isIPv4(a)) return a.startsWith('127.');
  return net.isIPv6(a) && (a === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(a) || /^::ffff:127\./.test(a));
}

/**
 * Why the HTTP API may not listen on `bind`, or null. Fails closed: off loopback, the
 * sign-in code, the session cookie and the bearer token would cross the network in clear
 * text, so a non-loopback address needs the owner to say what protects it.
 */
export function bindProblem(bind: string, exposure: HttpExposure): string | null {
  if (isLoopback(bind) || exposure !== 'loopback') return null;
  return `HAKO_HTTP_BIND=${bind} is not a loopback address: the web chat and API would be served over plain HTTP beyond this machine, ` +
    'with sign-in codes, session cookies and the API token readable on the network. Keep HAKO_HTTP_BIND=127.0.0.1 and put a TLS proxy ' +
    'in front (Caddy or tailscale serve: see "Reach it from your phone" in README.md); if TLS already terminates in front of this address, ' +
    'set HAKO_HTTP_BEHIND_TLS=1; to accept plain HTTP anyway, set HAKO_HTTP_ALLOW_INSECURE=1';
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number from ${min} to ${max} (unset it to use ${fallback})`);
  }
  return n;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

function url(env: Env, name: string, fallback: string): string {
  const raw = env[name] || fallback;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an http(s) URL (example: https://api.openai.com/v1)`);
  }
  return raw.replace(/\/+$/, '');
}

function checkLimits(l: Limits): Limits {
  for (const [k, v] of Object.entries(l)) {
    const problem = limitProblem(k as keyof Limits, v);
    if (problem) throw new ConfigError(`container limits: ${problem} (got ${JSON.stringify(v)})`);
  }
  return l;
}

function diskReserve(raw: string): string {
  const problem = reserveProblem(raw);
  if (problem) throw new ConfigError(`HAKO_DISK_RESERVE=${JSON.stringify(raw)} is invalid: ${problem} (unset it to use 512m)`);
  return raw;
}

function timeZone(raw: string | undefined): string {
  const tz = raw || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new ConfigError(`HAKO_TZ=${JSON.stringify(raw)} is not a time zone: use an IANA name such as Europe/Berlin or America/New_York`);
  }
  return tz;
}

function httpHosts(raw: string | undefined): string[] {
  const names = (raw ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  const bad = names.find((h) => !/^([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/i.test(h));
  if (bad !== undefined) throw new ConfigError(`HAKO_HTTP_HOSTS: "${bad}" is not a host name: use names like hako.lan or localhost:9000, separated by commas`);
  return names;
}

function flag(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: use 1 or 0 (unset means 0)`);
}

/** HAKO_MODEL_IMAGES: whether the model is sent images; `auto` lets the agent decide by model family (agent/media.ts). */
export type ImageSetting = 'auto' | 'on' | 'off';

function imageSetting(raw: string | undefined): ImageSetting {
  const v = raw || 'auto';
  if (v !== 'auto' && v !== 'on' && v !== 'off') {
    throw new ConfigError(`HAKO_MODEL_IMAGES=${JSON.stringify(raw)} is invalid: expected auto (the default: Claude 3+, gpt-4o, gpt-4.1, gpt-5 see images), on or off (text-only: the model gets the file's path)`);
  }
  return v;
}

function bindAddress(name: string, raw: string | undefined): string {
  const bind = raw || '127.0.0.1';
  if (bind !== 'localhost' && net.isIP(bind.replace(/^\[|\]$/g, '')) === 0) {
    throw new ConfigError(`${name}=${JSON.stringify(bind)} is not an IP address: use 127.0.0.1 (the default), ::1, or an address of this machine such as 0.0.0.0`);
  }
  return bind.replace(/^\[|\]$/g, '');
}

function httpExposure(env: Env, bind: string): HttpExposure {
  const behindTls = flag(env, 'HAKO_HTTP_BEHIND_TLS');
  const insecure = flag(env, 'HAKO_HTTP_ALLOW_INSECURE');
  if (behindTls && insecure) throw new ConfigError('HAKO_HTTP_BEHIND_TLS=1 and HAKO_HTTP_ALLOW_INSECURE=1 contradict each other: set only the one that is true');
  const exposure: HttpExposure = behindTls ? 'behind-tls' : insecure ? 'insecure' : 'loopback';
  const problem = bindProblem(bind, exposure);
  if (problem) throw new ConfigError(problem);
  return exposure;
}

/** A daily token budget: a whole number of tokens, or unset / "none" for no limit. */
export function tokenBudget(raw: string | undefined, name: string): number | null {
  if (raw === undefined || raw === '' || raw === 'none') return null;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number of tokens such as 2000000, or "none" for no limit`);
  return n;
}

export function loadConfig(env: Env = process.env): Config {
  const home = path.resolve(expandHome(env.HAKO_HOME || '~/.hako'));
  const configDir = path.resolve(expandHome(env.HAKO_CONFIG || '~/.config/hako'));
  if (configDir === home || configDir.startsWith(home + path.sep)) {
    throw new ConfigError(`HAKO_CONFIG (${configDir}) must lie outside HAKO_HOME (${home}): the policy must never be reachable from a group folder`);
  }
  const model = env.HAKO_MODEL || undefined;
  const parsedModel = model === undefined ? undefined : parseModel(model);
  if (parsedModel?.ok === false) throw new ConfigError(parsedModel.reason);
  const assistantName = env.HAKO_ASSISTANT_NAME || 'hako';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(assistantName)) {
    throw new ConfigError(`HAKO_ASSISTANT_NAME=${JSON.stringify(assistantName)} is invalid: use 1-32 letters, digits, "-" or "_"`);
  }
  const openaiBase = url(env, 'OPENAI_BASE_URL', 'https://api.openai.com/v1');
  return {
    home,
    configDir,
    httpPort: int(env, 'HAKO_HTTP_PORT', 7878, 0, 65535),
    httpToken: env.HAKO_HTTP_TOKEN || undefined,
    httpHosts: httpHosts(env.HAKO_HTTP_HOSTS),
    httpBind: bindAddress('HAKO_HTTP_BIND', env.HAKO_HTTP_BIND),
    httpExposure: httpExposure(env, bindAddress('HAKO_HTTP_BIND', env.HAKO_HTTP_BIND)),
    webhookPort: int(env, 'HAKO_WEBHOOK_PORT', 7879, 0, 65535),
    webhookBind: bindAddress('HAKO_WEBHOOK_BIND', env.HAKO_WEBHOOK_BIND),
    model,
    providers: {
      anthropic: { apiKey: env.ANTHROPIC_API_KEY || undefined, baseURL: url(env, 'ANTHROPIC_BASE_URL', 'https://api.anthropic.com'), keyOptional: false },
      // A self-hosted OpenAI-compatible server (Ollama, vLLM) usually needs no key.
      openai: { apiKey: env.OPENAI_API_KEY || undefined, baseURL: openaiBase, keyOptional: !!env.OPENAI_BASE_URL },
    },
    assistantName,
    maxContainers: int(env, 'HAKO_MAX_CONTAINERS', 4, 1, 256),
    idleTimeoutMs: int(env, 'HAKO_IDLE_TIMEOUT', 600, 0, 86_400) * 1000,
    maxAttempts: int(env, 'HAKO_MAX_ATTEMPTS', 5, 1, 100),
    retryBaseMs: int(env, 'HAKO_RETRY_BASE_MS', 2000, 10, 3_600_000),
    retryMaxMs: int(env, 'HAKO_RETRY_MAX_MS', 300_000, 10, 86_400_000),
    tz: timeZone(env.HAKO_TZ),
    maxMessageChars: 16_000,
    limits: checkLimits({
      memory: env.HAKO_CONTAINER_MEMORY || '1g',
      cpus: env.HAKO_CONTAINER_CPUS || '1',
      pids: int(env, 'HAKO_CONTAINER_PIDS', 256, 16, 65_536),
      tmpfs: env.HAKO_CONTAINER_TMPFS || '256m',
      turnTimeoutSeconds: int(env, 'HAKO_TURN_TIMEOUT', 600, 5, 86_400),
      maxOutputChars: int(env, 'HAKO_MAX_OUTPUT_CHARS', 200_000, 1000, 10_000_000),
      maxTasks: int(env, 'HAKO_MAX_TASKS', 20, 0, 1000),
      disk: env.HAKO_GROUP_DISK || '1g',
    }),
    diskReserve: diskReserve(env.HAKO_DISK_RESERVE || '512m'),
    runtime: env.HAKO_RUNTIME || undefined,
    tokensPerDay: tokenBudget(env.HAKO_TOKENS_PER_DAY, 'HAKO_TOKENS_PER_DAY'),
    logLevel: env.HAKO_LOG_LEVEL === 'debug' ? 'debug' : 'info',
    agent: { maxSteps: int(env, 'HAKO_MAX_STEPS', 30, 1, 1000), stream: env.HAKO_STREAM !== '0', maxSubagents: int(env, 'HAKO_MAX_SUBAGENTS', 4, 0, 16), images: imageSetting(env.HAKO_MODEL_IMAGES) },
    contextTokens: contextTokens(env.HAKO_CONTEXT_TOKENS, 'HAKO_CONTEXT_TOKENS'),
    transcription: transcription(env),
  };
}

function transcription(env: Env): TranscriptionConfig | null {
  if (!env.HAKO_TRANSCRIBE_URL) return null;
  const baseURL = url(env, 'HAKO_TRANSCRIBE_URL', '');
  const model = env.HAKO_TRANSCRIBE_MODEL || 'whisper-1';
  if (!/^[\w.:/-]{1,100}$/.test(model)) throw new ConfigError(`HAKO_TRANSCRIBE_MODEL=${JSON.stringify(model)} is not a model name (example: whisper-1)`);
  // OpenAI's own endpoint takes the OpenAI key; any other upstream gets only its own key.
  const apiKey = env.HAKO_TRANSCRIBE_API_KEY || (new URL(baseURL).origin === 'https://api.openai.com' ? env.OPENAI_API_KEY || undefined : undefined);
  return { baseURL, apiKey, model };
}

/** Smallest context budget: the system prompt and tool descriptions alone take about 3000 tokens. */
export const MIN_CONTEXT_TOKENS = 4096;
export const MAX_CONTEXT_TOKENS = 10_000_000;

/** A context budget: a whole number of tokens, or unset / "default" for the model's default. */
export function contextTokens(raw: string | undefined, name: string): number | null {
  if (raw === undefined || raw === '' || raw === 'default') return null;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < MIN_CONTEXT_TOKENS || n > MAX_CONTEXT_TOKENS) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number of tokens from ${MIN_CONTEXT_TOKENS} to ${MAX_CONTEXT_TOKENS} (the model's context window, e.g. 32768), or "default"`);
  }
  return n;
}

/**
 * The context window to assume when nobody set one. Claude models take 200k tokens and
 * OpenAI's own current models at least 128k; any other OpenAI-compatible server is taken to
 * be a local one (Ollama, vLLM, llama.cpp), whose window is whatever it was started with:
 * Ollama's default num_ctx is a few thousand tokens, so 8192 is the safe guess.
 */
export function defaultContextTokens(provider: ProviderName, baseURL: string): number {
  if (provider === 'anthropic') return 200_000;
  return hostOf(baseURL) === 'api.openai.com' ? 128_000 : 8192;
}

function hostOf(u: string): string {
  try { return new URL(u).hostname.toLowerCase(); } catch { return ''; }
}

/** Whether an OpenAI-compatible base URL looks like an Ollama server (its default port). */
export function looksLikeOllama(baseURL: string): boolean {
  try { return new URL(baseURL).port === '11434'; } catch { return false; }
}

/** The budget a group's model requests get: the group's own, else HAKO_CONTEXT_TOKENS, else the model's default. */
export function effectiveContextTokens(config: Config, groupTokens: number | null, model: string): { tokens: number; from: 'group' | 'HAKO_CONTEXT_TOKENS' | 'default' } {
  if (groupTokens !== null) return { tokens: groupTokens, from: 'group' };
  if (config.contextTokens !== null) return { tokens: config.contextTokens, from: 'HAKO_CONTEXT_TOKENS' };
  const parsed = parseModel(model, 'model');
  if (!parsed.ok) return { tokens: defaultContextTokens('openai', ''), from: 'default' };
  const provider = parsed.value.provider;
  return { tokens: defaultContextTokens(provider, config.providers[provider].baseURL), from: 'default' };
}

/** Why the model cannot be called for `model`, or null when it can. */
export function modelProblem(config: Config, model: string | undefined): string | null {
  if (!model) return 'no model configured: set HAKO_MODEL (e.g. anthropic/claude-sonnet-4-5 or openai/gpt-oss:20b) and restart hako';
  const parsed = parseModel(model, 'model');
  if (!parsed.ok) return parsed.reason;
  const p = config.providers[parsed.value.provider];
  if (!p.apiKey && !p.keyOptional) {
    const key = parsed.value.provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)';
    return `model ${model} needs ${key}: set it and restart hako; waiting messages will then be answered`;
  }
  return null;
}
