// A Runtime for tests without Docker: each "container" is the real agent (agent/main.ts) run
// as a host process, with its container paths (protocol/container.ts) mapped to the host
// folders the spec mounts there, so a host with this runtime answers exactly as with Docker.
// The shared suite (runtime-conformance.ts) holds it to the same Contract as DockerRuntime.
//
// Invariants: no isolation at all — a test double for scripted agents only, never for an
// untrusted one; the agent gets the spec's environment plus PATH, nothing of the test's own;
// each container is its own process group, so stop, crash and killStrays reach its children.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTAINER_PATHS } from '../../protocol/container.ts';
import type { Cancel, ContainerExit, ContainerSpec, RunningContainer, Runtime } from '../../src/core/runtime.ts';
import { collectLines, hardenedArgs } from '../../src/runtime/docker.ts';

const AGENT = new URL('../../agent/main.ts', import.meta.url).pathname;
/** A container that ignores SIGTERM and never ends by itself: only a forced stop ends it. */
const HANG = 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1 << 30);';

/** What the next `run` does: run the agent, fail as a missing image does, or hang. */
export type Behaviour = 'agent' | 'fail' | 'hang';

interface Container {
  readonly spec: ContainerSpec;
  readonly child: ChildProcess;
  readonly exited: Promise<ContainerExit>;
}

export class FakeRuntime implements Runtime {
  readonly name = 'fake';
  /** The image that runs the agent; `hangImage` runs a container that ignores SIGTERM; any other image "is not found". */
  readonly image: string;
  readonly hangImage: string;
  /** Every spec given to `run`, in order. */
  readonly started: ContainerSpec[] = [];
  readonly #planned: Behaviour[] = [];
  readonly #live = new Map<string, Container>();

  constructor(opts: { image?: string; hangImage?: string } = {}) {
    this.image = opts.image ?? 'hako-agent:fake';
    this.hangImage = opts.hangImage ?? 'hako-hang:fake';
  }

  /** The behaviours of the next runs, in order (then the image decides again). */
  plan(...next: Behaviour[]): void {
    this.#planned.push(...next);
  }

  /** Kills the container now, as a crash or the OOM killer would (exit code 137). */
  crash(name: string): void {
    this.#signal(name, 'SIGKILL');
  }

  /** Names of the containers running now. */
  running(): string[] {
    return [...this.#live.keys()];
  }

  async available(): Promise<string | null> {
    return null;
  }

  args(spec: ContainerSpec): readonly string[] {
    return hardenedArgs(spec);
  }

  run(spec: ContainerSpec, opts: Cancel & { readonly onLog?: (line: string) => void } = {}): RunningContainer {
    hardenedArgs(spec); // the same refusals as the real engine (root, bad mount paths)
    this.started.push(spec);
    const behaviour = this.#planned.shift() ?? (spec.image === this.image ? 'agent' : spec.image === this.hangImage ? 'hang' : 'fail');
    const env = behaviour === 'agent' ? agentEnv(spec) : undefined;
    if (behaviour === 'fail' || typeof env === 'string') {
      const tail = typeof env === 'string' ? env : `Unable to find image '${spec.image}' locally (fake runtime)`;
      return { name: spec.name, exited: Promise.resolve({ code: 125, tail }) };
    }
    const args = behaviour === 'hang' ? ['-e', HANG] : [AGENT];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const tail = collectLines(child, opts.onLog);
    const onAbort = () => this.#signal(spec.name, 'SIGKILL');
    const exited = new Promise<ContainerExit>((resolve) => {
      child.on('error', (err) => resolve({ code: -1, tail: `could not run the agent: ${err.message}` }));
      child.on('close', (code, signal) => {
        this.#live.delete(spec.name);
        opts.signal?.removeEventListener('abort', onAbort);
        // A killed container reports 128 + the signal number, as the engine does.
        resolve({ code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), tail: tail.join('\n') });
      });
    });
    this.#live.set(spec.name, { spec, child, exited });
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    return { name: spec.name, exited };
  }

  /** The fake binds by path at start and cannot prove an extra mount's identity: such specs are refused (fail closed). */
  async verifyMounts(spec: ContainerSpec): Promise<string | null> {
    return spec.mounts.some((m) => m.identity) ? 'the fake runtime cannot check extra mounts' : null;
  }

  async stop(name: string, opts: Cancel & { readonly graceMs: number }): Promise<void> {
    const c = this.#live.get(name);
    if (!c) return;
    this.#signal(name, 'SIGTERM');
    const kill = () => this.#signal(name, 'SIGKILL');
    const timer = setTimeout(kill, opts.graceMs);
    opts.signal?.addEventListener('abort', kill, { once: true });
    if (opts.signal?.aborted) kill();
    await c.exited;
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', kill);
  }

  async list(labels: Readonly<Record<string, string>>): Promise<string[]> {
    return [...this.#live.values()].filter((c) => Object.entries(labels).every(([k, v]) => c.spec.labels[k] === v)).map((c) => c.spec.name);
  }

  async remove(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((n) => {
      const c = this.#live.get(n);
      this.#signal(n, 'SIGKILL');
      return c?.exited;
    }));
  }

  /** Kills every process of the container's process group except the agent; null off Linux. */
  async killStrays(name: string): Promise<number | null> {
    const pid = this.#live.get(name)?.child.pid;
    if (pid === undefined || process.platform !== 'linux') return null;
    let killed = 0;
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === pid) continue;
      try {
        // The group id is the 3rd field after the ")" that ends the command name.
        const fields = fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(')').pop()!.trim().split(' ');
        if (Number(fields[2]) !== pid) continue;
        process.kill(Number(entry), 'SIGKILL');
        killed++;
      } catch {
        // Gone meanwhile.
      }
    }
    return killed;
  }

  #signal(name: string, signal: NodeJS.Signals): void {
    const pid = this.#live.get(name)?.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * The agent's environment: the spec's, with each container path it reads mapped to the host
 * folder mounted there (agent/config.ts's host-side overrides); or why the spec cannot run.
 */
function agentEnv(spec: ContainerSpec): NodeJS.ProcessEnv | string {
  const host = (container: string): string | undefined => spec.mounts.find((m) => m.container === container)?.host;
  const ipcIn = host(`${CONTAINER_PATHS.ipc}/in`);
  const ipcOut = host(`${CONTAINER_PATHS.ipc}/out`);
  const run = host(path.dirname(CONTAINER_PATHS.proxySocket));
  const workspace = host(CONTAINER_PATHS.group);
  const global = host(CONTAINER_PATHS.global);
  if (!ipcIn || !ipcOut || !run || !workspace || !global || path.dirname(ipcIn) !== path.dirname(ipcOut)) {
    return 'fake runtime: the spec must mount the group folder, global, ipc/in and ipc/out (siblings) and /run/hako';
  }
  return {
    ...spec.env,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HAKO_IPC_DIR: path.dirname(ipcIn),
    HAKO_WORKSPACE: workspace,
    HAKO_GLOBAL_DIR: global,
    HAKO_PROXY_SOCKET: path.join(run, path.basename(CONTAINER_PATHS.proxySocket)),
    HAKO_FORWARDER_PORT: '0',
  };
}
