// Reads and validates the agent's environment once, at start. Every problem says what was
// expected, what was found and how to fix it. Path overrides exist for host-side tests only.

import { CONTAINER_PATHS, FORWARDER_PORT } from '../protocol/container.ts';
import { groupNameProblem } from '../protocol/names.ts';
import { parseModel, type ModelRef } from '../protocol/model.ts';
import { modelSeesImages, type ImageSetting } from './media.ts';

export interface AgentConfig {
  readonly model: ModelRef;
  readonly group: string;
  readonly isMain: boolean;
  readonly assistantName: string;
  readonly maxSteps: number;
  /** Sub-agents one spawn_agents call may run (0: the tool is off). */
  readonly maxSubagents: number;
  /** The host's time limit for one turn: sub-agents get a deadline inside it. */
  readonly turnTimeoutSeconds: number;
  /** Tokens one model request may use, the answer included (the host sends the group's effective budget). */
  readonly contextTokens: number;
  readonly stream: boolean;
  /** Whether the model is sent images (HAKO_MODEL_IMAGES, decided by media.ts modelSeesImages). */
  readonly modelImages: boolean;
  /** Set when the host has a transcription service (HAKO_TRANSCRIBE_MODEL): voice notes go through the proxy's route. */
  readonly transcribeModel: string | null;
  readonly ipcDir: string;
  readonly workspace: string;
  readonly globalDir: string;
  readonly proxySocket: string;
  /** 0 = any free port (tests). */
  readonly forwarderPort: number;
  /**
   * HAKO_IPC_EVENTS: whether inotify reports the files the host writes into in/ — true under
   * runc on Linux, false under gVisor; null (unset) when the host cannot tell: the inbox learns it.
   */
  readonly ipcEvents: boolean | null;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: AgentConfig }
  /** `ipcDir` is still known so the agent can answer batches with the problem. */
  | { readonly ok: false; readonly problems: readonly string[]; readonly ipcDir: string };

type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_MAX_STEPS = 30;
export const DEFAULT_MAX_SUBAGENTS = 4;
export const DEFAULT_TURN_TIMEOUT_SECONDS = 600;
/** Only when the host sent no budget (tests): a middle-sized window. The host always sends one. */
export const DEFAULT_CONTEXT_TOKENS = 32_768;

function flag(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  problems.push(`${name} is "${v}"; expected 1 or 0`);
  return fallback;
}

function int(env: Env, name: string, o: { fallback: number; min: number; max: number }, problems: string[]): number {
  const v = env[name];
  if (v === undefined || v === '') return o.fallback;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= o.min && n <= o.max)) {
    problems.push(`${name} is "${v}"; expected a whole number from ${o.min} to ${o.max} (default ${o.fallback})`);
    return o.fallback;
  }
  return n;
}

export function readConfig(env: Env): ConfigResult {
  const problems: string[] = [];
  const ipcDir = env.HAKO_IPC_DIR || CONTAINER_PATHS.ipc;
  const model = parseModel(env.HAKO_MODEL);
  if (!model.ok) problems.push(model.reason);
  const group = env.HAKO_GROUP || 'unknown';
  if (env.HAKO_GROUP) {
    const p = groupNameProblem(group);
    if (p) problems.push(`HAKO_GROUP: ${p}`);
  }
  const config = {
    group,
    isMain: flag(env, 'HAKO_IS_MAIN', false, problems),
    assistantName: (env.HAKO_ASSISTANT_NAME ?? '').trim().slice(0, 64) || 'hako',
    maxSteps: int(env, 'HAKO_MAX_STEPS', { fallback: DEFAULT_MAX_STEPS, min: 1, max: 1000 }, problems),
    contextTokens: int(env, 'HAKO_CONTEXT_TOKENS', { fallback: DEFAULT_CONTEXT_TOKENS, min: 4096, max: 10_000_000 }, problems),
    maxSubagents: int(env, 'HAKO_MAX_SUBAGENTS', { fallback: DEFAULT_MAX_SUBAGENTS, min: 0, max: 16 }, problems),
    turnTimeoutSeconds: int(env, 'HAKO_TURN_TIMEOUT', { fallback: DEFAULT_TURN_TIMEOUT_SECONDS, min: 5, max: 86_400 }, problems),
    stream: flag(env, 'HAKO_STREAM', true, problems),
    ipcDir,
    workspace: env.HAKO_WORKSPACE || CONTAINER_PATHS.group,
    globalDir: env.HAKO_GLOBAL_DIR || CONTAINER_PATHS.global,
    proxySocket: env.HAKO_PROXY_SOCKET || CONTAINER_PATHS.proxySocket,
    forwarderPort: int(env, 'HAKO_FORWARDER_PORT', { fallback: FORWARDER_PORT, min: 0, max: 65535 }, problems),
    ipcEvents: env.HAKO_IPC_EVENTS ? flag(env, 'HAKO_IPC_EVENTS', false, problems) : null,
  };
  const images = env.HAKO_MODEL_IMAGES || 'auto';
  if (images !== 'auto' && images !== 'on' && images !== 'off') problems.push(`HAKO_MODEL_IMAGES is "${images}"; expected auto, on or off`);
  if (!model.ok || problems.length > 0) return { ok: false, problems, ipcDir };
  return { ok: true, config: { ...config, model: model.value, modelImages: modelSeesImages(images as ImageSetting, model.value), transcribeModel: env.HAKO_TRANSCRIBE_MODEL || null } };
}
