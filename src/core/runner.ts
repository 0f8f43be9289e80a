// One container per group: start it with the hardened spec, reuse it while warm, stop it
// when idle, on eviction or on shutdown, and reap orphans a crashed host left behind.
//
// Invariants: a group never has two containers; a group's proxy socket exists exactly
// while its container may run; the spec never carries a secret.

import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CONTAINER_PATHS, FORWARDER_PORT } from '../../protocol/container.ts';
import { effectiveContextTokens, type Config } from './config.ts';
import { parseModel } from '../../protocol/model.ts';
import type { Logger } from './log.ts';
import { relayAgentLines } from './agent-lines.ts';
import { groupPaths, homePaths } from './paths.ts';
import { startGroupProxy, type GroupProxy, type ModelDecision } from './proxy.ts';
import type { Usage } from './usage.ts';
import { domainsFor, loadEgressConfig, loadMountPolicy, loadSecrets, othersOf, PolicyError, resolveMounts } from './policy.ts';
import { secretPlaceholder, type DecisionRecord, type SecretBinding } from './egress.ts';
import type { Cancel, ContainerExit, ContainerSpec, Mount, Runtime } from './runtime.ts';
import type { Group } from './store-contract.ts';

export const LABEL_MANAGED = 'dev.hako.managed';
export const LABEL_GROUP = 'dev.hako.group';
export const LABEL_HOME = 'dev.hako.home';

type Live = { readonly name: string; readonly proxy: GroupProxy; readonly exited: Promise<ContainerExit> };

export type RunState =
  | { readonly kind: 'starting' }
  | ({ readonly kind: 'busy' } & Live)
  | ({ readonly kind: 'warm'; readonly since: number; readonly timer: NodeJS.Timeout | undefined } & Live)
  | ({ readonly kind: 'stopping' } & Live);

export interface RunnerOptions {
  readonly config: Config;
  readonly runtime: Runtime;
  readonly image: string;
  readonly log: Logger;
  /** Called after a group's container has ended and its slot is free. Contract: must not throw. */
  readonly onExit: (group: string, exit: ContainerExit) => void;
  /** Contract: every registered group as stored now (for the mount overlap rule); may throw (the start fails). */
  readonly groups: () => readonly Group[];
  /** Records the exact engine arguments of each container start (audit, tests); a throw refuses the start. */
  readonly onStart?: (group: string, args: readonly string[]) => void;
  /** Names in secrets.env the host itself reads (chat channels' settings): never a container's, and no egress rule needed. */
  readonly hostSecrets?: readonly string[];
  /** Passed to each group's proxy: the outcome of every model request. */
  readonly onUpstream?: (provider: 'anthropic' | 'openai', ok: boolean) => void;
  /** Contract: records every egress and model-route decision (plain data, never a secret value); throws only when it could not, and the proxy then refuses the request. */
  readonly onEgress?: (group: string, d: DecisionRecord | ModelDecision) => void;
  /** Passed to each group's proxy (see ProxyOptions.budget and onUsage): the daily token budget. */
  readonly budget?: (group: string) => string | null;
  readonly onUsage?: (group: string, usage: Usage) => void;
  /** Passed to each group's proxy (see ProxyOptions.onText): a streamed reply's text so far. */
  readonly onText?: (group: string, text: string) => void;
}

/** uid:gid for the container: the host user, or 1000:1000 when the host runs as root. */
export function containerUser(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid };
}

/** Creates the group's folders with owners and modes that let only its container in. */
export function prepareGroupDirs(home: string, group: string): void {
  const p = groupPaths(home, group);
  const h = homePaths(home);
  const owner = containerUser();
  const asRoot = process.getuid?.() === 0;
  for (const dir of [p.folder, p.ipcOut, h.global]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // global/ too: main's container writes it (the other groups mount it read-only).
    if (asRoot) fs.chownSync(dir, owner.uid, owner.gid);
  }
  // in/ and run/ are written by the host only and mounted read-only.
  for (const dir of [p.ipcIn, p.ipcRejected, p.run]) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(p.ipcRejected, 0o700);
  fs.chmodSync(h.global, 0o755);
  // global/ is written by main's agent: it too may hold a link by now.
  createOnce(h.globalMemory, '# Global memory\n\nShared by every group; only the main group\'s agent may change it.\n', asRoot ? owner : undefined);
  // The group folder is agent-writable: MEMORY.md may be anything by now, even a link.
  createOnce(p.memory, `# ${group}\n\nStanding instructions and memory for this group. The agent reads this file before every turn and may update it.\n`, asRoot ? owner : undefined);
}

/**
 * Creates `file` only if nothing (not even a dangling link) is there. O_EXCL never
 * follows a link, and the owner is set on the open descriptor, not on the path.
 */
function createOnce(file: string, content: string, owner?: { uid: number; gid: number }): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    fs.writeSync(fd, content);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
  } finally {
    fs.closeSync(fd);
  }
}

export function containerSpec(config: Config, image: string, group: Group, model: string, extra: readonly Mount[] = [], secretNames: readonly string[] = []): ContainerSpec {
  const proxy = `http://127.0.0.1:${FORWARDER_PORT}`;
  const p = groupPaths(config.home, group.name);
  const user = containerUser();
  return {
    name: `hako-${group.name}-${randomBytes(4).toString('hex')}`,
    image,
    labels: { [LABEL_MANAGED]: '1', [LABEL_GROUP]: group.name, [LABEL_HOME]: config.home },
    mounts: [
      { host: p.folder, container: CONTAINER_PATHS.group, readonly: false },
      // Global memory: every group reads it; only the owner's main group may change it.
      { host: homePaths(config.home).global, container: CONTAINER_PATHS.global, readonly: !group.isMain },
      { host: p.ipcIn, container: `${CONTAINER_PATHS.ipc}/in`, readonly: true },
      { host: p.ipcOut, container: `${CONTAINER_PATHS.ipc}/out`, readonly: false },
      { host: p.run, container: '/run/hako', readonly: true },
      ...extra,
    ],
    env: {
      HAKO_MODEL: model,
      HAKO_GROUP: group.name,
      HAKO_IS_MAIN: group.isMain ? '1' : '0',
      HAKO_ASSISTANT_NAME: config.assistantName,
      HAKO_MAX_STEPS: String(config.agent.maxSteps),
      HAKO_MAX_SUBAGENTS: String(config.agent.maxSubagents),
      HAKO_MODEL_IMAGES: config.agent.images,
      // Only the model's name: the URL and key stay with the proxy.
      ...(config.transcription ? { HAKO_TRANSCRIBE_MODEL: config.transcription.model } : {}),
      // The agent gives its sub-agents a deadline inside the turn's, so the parent can still answer.
      HAKO_TURN_TIMEOUT: String(group.limits.turnTimeoutSeconds ?? config.limits.turnTimeoutSeconds),
      HAKO_CONTEXT_TOKENS: String(effectiveContextTokens(config, group.contextTokens, model).tokens),
      HAKO_STREAM: config.agent.stream ? '1' : '0',
      // The agent writes its per-turn progress lines only when the host would keep them.
      HAKO_LOG_LEVEL: config.logLevel,
      ...ipcEventsEnv(config.runtime),
      HOME: '/tmp',
      // curl, git and npm go through the forwarder to the group's proxy.
      HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy, NO_PROXY: 'localhost,127.0.0.1', no_proxy: 'localhost,127.0.0.1',
      // The container only ever sees placeholders; the proxy puts the value in on the way out.
      ...Object.fromEntries(secretNames.map((n) => [n, secretPlaceholder(n)])),
      ...(secretNames.length ? { HAKO_SECRETS: secretNames.join(',') } : {}),
    },
    user: `${user.uid}:${user.gid}`,
    limits: { ...config.limits, ...group.limits },
    ...(config.runtime ? { ociRuntime: config.runtime } : {}),
  };
}

/**
 * Tells the agent whether inotify reports the host's writes into its in/ (its poll's pace):
 * a sandbox runtime (gVisor) keeps its own kernel, which never sees them; runc on Linux
 * shares the host's; elsewhere (a desktop VM's file sharing) the agent finds out itself.
 */
export function ipcEventsEnv(runtime: string | undefined): { HAKO_IPC_EVENTS?: '0' | '1' } {
  if (runtime && runtime !== 'runc') return { HAKO_IPC_EVENTS: '0' };
  return process.platform === 'linux' ? { HAKO_IPC_EVENTS: '1' } : {};
}

/** The group's own provider and its settings: the only model upstream its proxy reaches. */
function providerOf(config: Config, model: string) {
  const parsed = parseModel(model);
  if (!parsed.ok) throw new Error(parsed.reason);
  return { provider: parsed.value.provider, providerConfig: config.providers[parsed.value.provider] };
}

export class Runner {
  readonly #opts: RunnerOptions;
  readonly #state = new Map<string, RunState>();

  constructor(opts: RunnerOptions) {
    this.#opts = opts;
  }

  state(group: string): RunState | undefined {
    return this.#state.get(group);
  }

  slotHolders(): ReadonlySet<string> {
    return new Set(this.#state.keys());
  }

  isReusable(group: string): boolean {
    const s = this.#state.get(group);
    return s?.kind === 'warm' || s?.kind === 'busy';
  }

  evicting(): number {
    return [...this.#state.values()].filter((s) => s.kind === 'stopping').length;
  }

  evictIdle(keep: ReadonlySet<string>): boolean {
    let oldest: [string, number] | undefined;
    for (const [g, s] of this.#state) {
      if (s.kind === 'warm' && !keep.has(g) && (!oldest || s.since < oldest[1])) oldest = [g, s.since];
    }
    if (!oldest) return false;
    this.#opts.log.info('evicting warm container for a waiting group', { group: oldest[0] });
    this.stop(oldest[0]);
    return true;
  }

  /** Makes the group's container ready for a batch: reuse the warm one or start one; `signal` kills a container it starts. */
  async acquire(group: Group, model: string, opts: Cancel = {}): Promise<string> {
    const s = this.#state.get(group.name);
    if (s?.kind === 'warm') {
      if (s.timer) clearTimeout(s.timer);
      this.#state.set(group.name, { kind: 'busy', name: s.name, proxy: s.proxy, exited: s.exited });
      return s.name;
    }
    if (s) throw new Error(`group "${group.name}" already has a container in state ${s.kind}`);
    this.#state.set(group.name, { kind: 'starting' });
    try {
      return await this.#start(group, model, opts.signal);
    } catch (err) {
      this.#state.delete(group.name);
      throw err;
    }
  }

  async #start(group: Group, model: string, signal: AbortSignal | undefined): Promise<string> {
    const { config, runtime, log } = this.#opts;
    prepareGroupDirs(config.home, group.name);
    // Checked again at every start: a folder or link may have changed since registration.
    const extra = resolveMounts(loadMountPolicy(config.configDir), group.mounts, { group: group.name, isMain: group.isMain, home: config.home, configDir: config.configDir, others: othersOf(this.#opts.groups(), group.name) });
    const egressConfig = loadEgressConfig(config.configDir);
    const values = loadSecrets(config.configDir, egressConfig.secrets, this.#opts.hostSecrets);
    const secrets: SecretBinding[] = egressConfig.secrets
      .filter((r) => r.groups.includes(group.name) && values.has(r.name))
      .map((r) => ({ name: r.name, value: values.get(r.name)!, hosts: r.hosts, headers: r.headers }));
    const spec = containerSpec(config, this.#opts.image, group, model, extra, secrets.map((s) => s.name));
    const { onEgress, budget, onUsage, onText } = this.#opts;
    const proxy = await startGroupProxy({
      group: group.name,
      socketPath: groupPaths(config.home, group.name).proxySocket,
      ...providerOf(config, model),
      onModelDecision: (d) => onEgress?.(group.name, d),
      log,
      socketOwner: containerUser(),
      ...(this.#opts.onUpstream ? { onUpstream: this.#opts.onUpstream } : {}),
      ...(budget ? { budget: () => budget(group.name) } : {}),
      transcription: config.transcription,
      ...(onUsage ? { onUsage: (u: Usage) => onUsage(group.name, u) } : {}),
      ...(onText ? { onText: (text: string) => onText(group.name, text) } : {}),
      egress: {
        group: group.name,
        policy: { allow: domainsFor(egressConfig, group.name) },
        secrets,
        onDecision: (d) => onEgress?.(group.name, d),
      },
    });
    try {
      this.#opts.onStart?.(group.name, runtime.args(spec));
    } catch (err) {
      await proxy.close();
      throw err;
    }
    const started = Date.now();
    const container = runtime.run(spec, { signal, onLog: relayAgentLines(log, { group: group.name, container: spec.name }) });
    log.info('container started', { group: group.name, container: spec.name });
    let ended = false;
    const exited = container.exited.then(async (exit) => {
      ended = true;
      await proxy.close();
      this.#state.delete(group.name);
      const level = exit.code === 0 || this.#stopping.has(spec.name) ? 'info' : 'warn';
      this.#stopping.delete(spec.name);
      log[level]('container exited', { group: group.name, container: spec.name, code: exit.code, ms: Date.now() - started, ...(level === 'warn' ? { tail: exit.tail.slice(-2000) } : {}) });
      this.#opts.onExit(group.name, exit);
      return exit;
    });
    // Before any batch: a mounted folder swapped after the policy check is caught here.
    const wrong = await runtime.verifyMounts(spec, container, { signal });
    if (wrong) {
      log.warn('container killed: a mount is not what was checked', { group: group.name, container: spec.name, problem: wrong });
      this.#stopping.add(spec.name);
      await runtime.remove([spec.name]);
    }
    if (wrong || ended) {
      const exit = await exited;
      if (wrong) throw new PolicyError(`group "${group.name}": ${wrong}; the container was killed before it got any work`);
      throw new Error(`group "${group.name}": the container exited with code ${exit.code} as it started: ${exit.tail.slice(-500)}`);
    }
    this.#state.set(group.name, { kind: 'busy', name: spec.name, proxy, exited });
    return spec.name;
  }

  readonly #stopping = new Set<string>();

  /**
   * The batch is finished: kill what the turn left running (a compromised agent's
   * background processes must not outlive its turn), then keep the container warm until
   * the idle timeout. When its processes cannot be checked it is recycled instead.
   * Resolves with how many processes were killed, or null when it was recycled.
   */
  async release(group: string): Promise<number | null> {
    const s = this.#state.get(group);
    if (s?.kind !== 'busy') return 0;
    const killed = await this.#opts.runtime.killStrays(s.name);
    if (this.#state.get(group) !== s) return killed; // it exited or was stopped meanwhile
    if (killed === null) {
      this.#opts.log.info('recycling the container: its processes cannot be checked from the host', { group, container: s.name });
      this.stop(group);
      return null;
    }
    const idle = this.#opts.config.idleTimeoutMs;
    const timer = idle > 0 ? setTimeout(() => this.stop(group), idle) : undefined;
    timer?.unref();
    this.#state.set(group, { kind: 'warm', since: Date.now(), timer, name: s.name, proxy: s.proxy, exited: s.exited });
    if (idle === 0) this.stop(group);
    return killed;
  }

  /** Starts stopping the group's container, if it has one (`stopAll` waits for the ends). Never throws. */
  stop(group: string, graceMs = 5000): void {
    const s = this.#state.get(group);
    if (!s || s.kind === 'starting' || s.kind === 'stopping') return;
    if (s.kind === 'warm' && s.timer) clearTimeout(s.timer);
    this.#state.set(group, { kind: 'stopping', name: s.name, proxy: s.proxy, exited: s.exited });
    this.#stopping.add(s.name);
    this.#opts.runtime.stop(s.name, { graceMs }).catch((err: unknown) => this.#opts.log.error('could not stop a container', { group, container: s.name, error: String(err) }));
  }

  /** Stops every container and resolves once all have exited. */
  async stopAll(): Promise<void> {
    for (const g of this.#state.keys()) this.stop(g);
    await Promise.all([...this.#state.values()].map((s) => ('exited' in s ? s.exited : undefined)));
  }

  /** Removes containers of this HAKO_HOME left by a previous host process. */
  async reapOrphans(): Promise<number> {
    const names = await this.#opts.runtime.list({ [LABEL_MANAGED]: '1', [LABEL_HOME]: this.#opts.config.home });
    const mine = new Set([...this.#state.values()].flatMap((s) => ('name' in s ? [s.name] : [])));
    const orphans = names.filter((n) => !mine.has(n));
    await this.#opts.runtime.remove(orphans);
    if (orphans.length) this.#opts.log.info('reaped orphan containers', { count: orphans.length });
    return orphans.length;
  }
}
