// The core's Runtime on the Docker Engine API (engine-api.ts): create, attach, wait, start,
// stop, kill, remove, list and inspect as HTTP calls on the engine's socket, so a live
// container costs the host one open stream instead of an attached `docker run` client.
//
// Invariants, as DockerRuntime's: every container gets the hardened settings of
// `createBody` (the spec can tighten limits but cannot drop one); the engine keeps no log
// (the host reads the attached stream, so a flooding agent cannot fill the disk); what the
// engine bound is checked from the host through /proc/<pid>/root, never by asking the
// container; the attach and the wait are in place before the start, so no line and no exit
// is missed; the container is removed by the engine when it ends (AutoRemove), and `exited`
// resolves only once it is gone, so its name is free again.

import type { Duplex } from 'node:stream';
import type { Cancel, ContainerExit, ContainerSpec, RunningContainer, Runtime } from '../core/runtime.ts';
import { DockerRuntime, hardenedArgs, missingRuntime, mountMismatch, refuseBadSpec } from './docker.ts';
import { currentEndpoint, describeEndpoint, explainNoAnswer } from './engine.ts';
import { EngineApi, engineAddress, type EngineAddress } from './engine-api.ts';
import { cgroupProcsFile, killStrays } from './strays.ts';

const TAIL_LINES = 40;
/** Longer output without a line break is cut into pieces of this many characters. */
const MAX_LINE = 64 * 1024;
/** The exit code the docker CLI reports when the engine could not create or start the container. */
const COULD_NOT_START = 125;
const KILLED = 137;

const UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `512m`, `1g`, `1.5g` → bytes, as the docker CLI reads them. */
export function sizeBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg])$/i.exec(size);
  if (!m) throw new Error(`"${size}" is not a size like 512m or 2g`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

/** The create request for `spec`: the same hardening as `docker run` with hardenedArgs. Pure. */
export function createBody(spec: ContainerSpec): Record<string, unknown> {
  refuseBadSpec(spec);
  const memory = sizeBytes(spec.limits.memory);
  return {
    Image: spec.image,
    User: spec.user,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...spec.labels },
    AttachStdin: false, AttachStdout: true, AttachStderr: true, OpenStdin: false, Tty: false,
    // With NetworkMode none the engine still builds a network sandbox for the container: two
    // re-executions of dockerd (netns creation, the setkey hook), ~0.4 core-seconds of a cold
    // start on the bench machine. Disabled, runc gives the container a new network namespace
    // of its own with only a loopback, which is all the agent's forwarder needs.
    NetworkDisabled: true,
    HostConfig: {
      AutoRemove: true,
      Init: true,
      // No engine log: the host reads the attached stream, and a log would grow unbounded.
      LogConfig: { Type: 'none', Config: {} },
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${spec.limits.tmpfs}` },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: spec.limits.pids,
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(Number(spec.limits.cpus) * 1e9),
      Mounts: spec.mounts.map((m) => ({ Type: 'bind', Source: m.host, Target: m.container, ReadOnly: m.readonly })),
      ...(spec.ociRuntime ? { Runtime: spec.ociRuntime } : {}),
    },
  };
}

const q = (s: string) => encodeURIComponent(s);

/** Splits the attached output into lines for `onLog`, keeping the last TAIL_LINES. */
function lineCollector(onLog: ((line: string) => void) | undefined): { push(data: Buffer): void; flush(): void; tail: string[] } {
  const tail: string[] = [];
  let partial = '';
  const emit = (line: string) => {
    if (!line) return;
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    onLog?.(line);
  };
  return {
    tail,
    push(data) {
      const lines = (partial + data.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) emit(l);
      // A line without end (an agent flooding its output) is passed on in pieces, never kept whole.
      if (partial.length > MAX_LINE) {
        emit(partial);
        partial = '';
      }
    },
    flush() {
      emit(partial);
      partial = '';
    },
  };
}

export class EngineRuntime implements Runtime {
  readonly name = 'docker';
  readonly #api: EngineApi;
  readonly #where: string;
  /** Per started container: its cgroup's process list, or null when its processes cannot be seen from here. */
  readonly #procs = new Map<string, string | null>();
  /** Per started container: the host pid of its first process once it runs, or null when it ended first. */
  readonly #started = new Map<string, Promise<number | null>>();

  constructor(address: EngineAddress, where: string) {
    this.#api = new EngineApi(address);
    this.#where = where;
  }

  async available(opts: Cancel = {}): Promise<string | null> {
    try {
      const r = await this.#api.request('GET', '/_ping', { signal: opts.signal, timeoutMs: 15_000 });
      if (r.status === 200) return null;
      return `the container engine at ${this.#where} answered HTTP ${r.status} to a ping: check that it is a Docker (or Podman) engine API`;
    } catch (err) {
      // Told the way `hako setup` and `hako doctor` tell it: the endpoint, where it came from, the fix.
      return explainNoAnswer((err as Error).message);
    }
  }

  /** Null when the engine has OCI runtime `name`, else how to get it. */
  async runtimeProblem(name: string): Promise<string | null> {
    let names: string[];
    try {
      const { body } = await this.#api.call<{ Runtimes?: Record<string, unknown> }>('GET', '/info', { timeoutMs: 15_000 });
      names = Object.keys(body.Runtimes ?? {});
    } catch {
      return `could not ask the engine for its runtimes (is it running?)`;
    }
    return missingRuntime(name, names);
  }

  /** The `docker run` equivalent of the create request, for the audit record and for review. */
  args(spec: ContainerSpec): readonly string[] {
    return hardenedArgs(spec);
  }

  run(spec: ContainerSpec, opts: Cancel & { readonly onLog?: (line: string) => void } = {}): RunningContainer {
    const lines = lineCollector(opts.onLog);
    // A sandbox runtime (gVisor) runs the processes inside its own kernel, out of the host's sight.
    if (spec.ociRuntime && spec.ociRuntime !== 'runc') this.#procs.set(spec.name, null);
    let markStarted!: (pid: number | null) => void;
    this.#started.set(spec.name, new Promise((resolve) => { markStarted = resolve; }));
    const exited = this.#lifecycle(spec, lines, opts.signal, markStarted).then((code) => {
      lines.flush();
      markStarted(null);
      this.#procs.delete(spec.name);
      this.#started.delete(spec.name);
      return { code, tail: lines.tail.join('\n') } satisfies ContainerExit;
    });
    return { name: spec.name, exited };
  }

  /** create → attach → wait → start, then the wait's answer; the exit code (or 125/137 with the reason in the tail). */
  async #lifecycle(spec: ContainerSpec, lines: ReturnType<typeof lineCollector>, signal: AbortSignal | undefined, markStarted: (pid: number | null) => void): Promise<number | null> {
    const say = (text: string) => lines.push(Buffer.from(`${text}\n`));
    if (signal?.aborted) return KILLED;
    let id: string;
    try {
      const body = createBody(spec);
      ({ body: { Id: id } } = await this.#api.call<{ Id: string }>('POST', `/containers/create?name=${q(spec.name)}`, { body, signal }));
    } catch (err) {
      say(`hako: could not create container ${spec.name}: ${(err as Error).message}`);
      return signal?.aborted ? KILLED : COULD_NOT_START;
    }
    let stream: Duplex | undefined;
    let waited: Promise<number | null> | undefined;
    const kill = () => void this.#api.request('DELETE', `/containers/${q(id)}?force=1`).catch(() => {});
    signal?.addEventListener('abort', kill, { once: true });
    try {
      stream = await this.#api.attach(id, (_s, data) => lines.push(data), signal);
      const output = new Promise<void>((resolve) => { stream!.once('close', resolve); stream!.once('end', resolve); });
      // Long: it answers when the container is gone, however long the turn.
      waited = this.#api.call<{ StatusCode?: number }>('POST', `/containers/${q(id)}/wait?condition=removed`, { timeoutMs: 2 ** 31 - 1 })
        .then((r) => r.body.StatusCode ?? null, () => null);
      await this.#api.call('POST', `/containers/${q(id)}/start`, { signal, ok: [304] });
      this.#inspectStarted(spec.name, id, markStarted);
      const code = await waited;
      // The rest of the output, which may arrive just after the engine reported the exit.
      await Promise.race([output, new Promise((r) => setTimeout(r, 1000))]);
      return signal?.aborted ? KILLED : code;
    } catch (err) {
      if (!signal?.aborted) say(`hako: could not start container ${spec.name}: ${(err as Error).message}`);
      await this.remove([spec.name]);
      await waited;
      return signal?.aborted ? KILLED : COULD_NOT_START;
    } finally {
      signal?.removeEventListener('abort', kill);
      stream?.destroy();
    }
  }

  /** Reads the started container's id and pid once (its mounts are in place then): for verifyMounts and killStrays. */
  #inspectStarted(name: string, id: string, markStarted: (pid: number | null) => void): void {
    this.#api.call<{ State?: { Pid?: number } }>('GET', `/containers/${q(id)}/json`).then(({ body }) => {
      const pid = body.State?.Pid ?? 0;
      if (!this.#procs.has(name)) this.#procs.set(name, pid > 0 ? cgroupProcsFile(pid, id) : null);
      markStarted(pid > 0 ? pid : null);
    }, () => markStarted(null));
  }

  async verifyMounts(spec: ContainerSpec, _container: RunningContainer, opts: Cancel = {}): Promise<string | null> {
    if (!spec.mounts.some((m) => m.identity)) return null;
    // gVisor keeps its mounts inside its own kernel, and other systems have no /proc: the
    // overlap rule of the mount policy is what protects them (docs/SECURITY.md, known limits).
    if (process.platform !== 'linux' || spec.ociRuntime === 'runsc') return null;
    const started = this.#started.get(spec.name);
    if (!started) return null;
    const aborted = new Promise<'aborted'>((resolve) => {
      if (opts.signal?.aborted) resolve('aborted');
      opts.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const pid = await Promise.race([started, aborted]);
    if (pid === 'aborted') return 'the mount check was aborted';
    if (pid === null) return null;
    return mountMismatch(`/proc/${pid}/root`, spec.mounts);
  }

  async stop(name: string, opts: Cancel & { readonly graceMs: number }): Promise<void> {
    const { graceMs, signal } = opts;
    try {
      await this.#api.call('POST', `/containers/${q(name)}/stop?t=${Math.ceil(graceMs / 1000)}`, { signal, timeoutMs: graceMs + 15_000, ok: [304, 404] });
    } catch {
      // The grace was aborted, or the engine failed: removal below settles it.
    }
    await this.remove([name]);
  }

  async list(labels: Readonly<Record<string, string>>, opts: Cancel = {}): Promise<string[]> {
    const filters = JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) });
    const { body } = await this.#api.call<{ Names?: string[] }[]>('GET', `/containers/json?all=1&filters=${q(filters)}`, { signal: opts.signal, timeoutMs: 15_000 });
    return body.map((c) => (c.Names?.[0] ?? '').replace(/^\//, '')).filter(Boolean);
  }

  async killStrays(name: string, opts: Cancel = {}): Promise<number | null> {
    if (!this.#procs.has(name)) {
      try {
        const { body } = await this.#api.call<{ Id?: string; State?: { Pid?: number } }>('GET', `/containers/${q(name)}/json`, { signal: opts.signal, timeoutMs: 15_000 });
        const pid = body.State?.Pid ?? 0;
        this.#procs.set(name, body.Id && pid > 0 ? cgroupProcsFile(pid, body.Id) : null);
      } catch {
        return null;
      }
    }
    const file = this.#procs.get(name);
    return file ? killStrays(file) : null;
  }

  async remove(names: readonly string[], opts: Cancel = {}): Promise<void> {
    await Promise.all(names.map(async (n) => {
      try {
        const r = await this.#api.request('DELETE', `/containers/${q(n)}?force=1`, { signal: opts.signal, timeoutMs: 30_000 });
        // 409: the engine is removing it already (AutoRemove): wait until it is gone.
        if (r.status === 409) await this.#api.request('POST', `/containers/${q(n)}/wait?condition=removed`, { signal: opts.signal, timeoutMs: 30_000 });
      } catch {
        // Containers that are already gone (or an engine that went away) are what we wanted.
      }
    }));
  }

  /** Ends the kept-alive connections to the engine. */
  close(): void {
    this.#api.close();
  }
}

/**
 * The runtime for the engine the docker CLI points at: the Engine API where the endpoint is
 * a Unix socket or plain TCP; the docker CLI for what only it can reach (TLS, ssh://), or
 * when HAKO_ENGINE=cli asks for it.
 */
export async function hostRuntime(env: NodeJS.ProcessEnv = process.env): Promise<EngineRuntime | DockerRuntime> {
  const how = env.HAKO_ENGINE || 'api';
  if (how !== 'api' && how !== 'cli') throw new Error(`HAKO_ENGINE=${JSON.stringify(env.HAKO_ENGINE)} is invalid: use api (the default: the Engine API on its socket) or cli (the docker command)`);
  if (how === 'cli') return new DockerRuntime();
  const endpoint = await currentEndpoint();
  const address = endpoint.host ? engineAddress(endpoint.host, env) : 'no endpoint';
  return typeof address === 'string' ? new DockerRuntime() : new EngineRuntime(address, describeEndpoint(endpoint));
}
