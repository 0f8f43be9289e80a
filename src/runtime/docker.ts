// Docker (and Podman, same CLI) behind the core's Runtime interface. Every container gets
// the hardened flags; the spec can tighten limits but cannot drop a flag. The engine keeps
// no log of a container (the host reads the attached stream), so an agent flooding its
// stdout cannot fill the host's disk. What the engine bound is checked from the host
// through /proc/<pid>/root of the container's first process, never by asking the container.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Cancel, ContainerExit, ContainerSpec, Mount, RunningContainer, Runtime } from '../core/runtime.ts';
import { cgroupProcsFile, killStrays } from './strays.ts';
import { explainNoAnswer } from './engine.ts';

const exec = promisify(execFile);
const TAIL_LINES = 40;
/** How long a started container may take to be reported running before it is given up. */
const RUNNING_WITHIN_MS = 60_000;

/**
 * Null when each mount's target under `root` (a container's root seen from the host) is
 * the folder its identity names; else what is wrong. lstat: a link there is never followed.
 */
export function mountMismatch(root: string, mounts: readonly Mount[]): string | null {
  for (const m of mounts) {
    if (!m.identity) continue;
    let seen: string;
    try {
      const st = fs.lstatSync(`${root}${m.container}`, { bigint: true });
      seen = `${st.dev}:${st.ino}`;
    } catch (err) {
      return `could not look at ${m.container} in the started container (${(err as NodeJS.ErrnoException).code ?? String(err)}): hako checks what the engine mounted through /proc, which needs the engine on this machine's kernel (Docker Desktop runs it in a VM; remove the group's extra mounts there)`;
    }
    if (seen !== m.identity) return `the folder mounted at ${m.container} is not the folder that was checked (${m.host}): it was swapped between the check and the engine's bind mount`;
  }
  return null;
}

/** Passes each line `child` writes (stdout and stderr) to `onLog`; the returned array keeps the last TAIL_LINES. */
export function collectLines(child: ChildProcess, onLog?: (line: string) => void): string[] {
  const tail: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      onLog?.(line);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return tail;
}

/** Throws for a spec no runtime may start: one that runs as root, or a mount path with ",". */
export function refuseBadSpec(spec: ContainerSpec): void {
  if (/^0*:|^root:/.test(spec.user)) throw new Error(`container ${spec.name}: refusing to run as root (user ${spec.user})`);
  for (const m of spec.mounts) {
    if (m.host.includes(',') || m.container.includes(',')) throw new Error(`mount path must not contain ",": ${m.host}`);
  }
}

/** Null when the engine's runtimes (`names`) include `name`, else how to get it. */
export function missingRuntime(name: string, names: readonly string[]): string | null {
  if (names.includes(name)) return null;
  return name === 'runsc'
    ? `the engine has no "runsc" runtime (it has: ${names.join(', ')}). To enable gVisor: apt-get install runsc (or see gvisor.dev), add to /etc/docker/daemon.json {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=all"]}}}, then reload the engine (sudo systemctl reload docker, or kill -HUP $(pidof dockerd))`
    : `the engine has no "${name}" runtime (it has: ${names.join(', ')})`;
}

export function hardenedArgs(spec: ContainerSpec): string[] {
  refuseBadSpec(spec);
  const args = [
    'run', '--rm', '--init', '--interactive=false',
    '--name', spec.name,
    // No engine log: the host reads the attached stream, and a log would grow unbounded.
    '--log-driver', 'none',
    '--network', 'none',
    '--read-only',
    '--tmpfs', `/tmp:rw,nosuid,nodev,size=${spec.limits.tmpfs}`,
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges',
    '--pids-limit', String(spec.limits.pids),
    '--memory', spec.limits.memory,
    '--memory-swap', spec.limits.memory,
    '--cpus', spec.limits.cpus,
    '--user', spec.user,
  ];
  if (spec.ociRuntime) args.push('--runtime', spec.ociRuntime);
  for (const [k, v] of Object.entries(spec.labels)) args.push('--label', `${k}=${v}`);
  for (const m of spec.mounts) {
    args.push('--mount', `type=bind,source=${m.host},target=${m.container}${m.readonly ? ',readonly' : ''}`);
  }
  for (const [k, v] of Object.entries(spec.env)) args.push('--env', `${k}=${v}`);
  args.push(spec.image);
  return args;
}

export class DockerRuntime implements Runtime {
  readonly name: string;
  readonly #bin: string;
  /** Per running container: its cgroup's process list, or null when its processes cannot be seen from here. */
  readonly #procs = new Map<string, string | null>();

  constructor(opts: { bin?: string } = {}) {
    this.#bin = opts.bin ?? 'docker';
    this.name = this.#bin;
  }

  async available(opts: Cancel = {}): Promise<string | null> {
    try {
      await exec(this.#bin, ['info', '--format', '{{.ServerVersion}}'], { timeout: 15_000, signal: opts.signal });
      return null;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') return `${this.#bin} is not installed: install Docker (https://docs.docker.com/engine/install/) or run \`hako setup\` as root on Debian/Ubuntu`;
      // Names the endpoint the CLI tried (DOCKER_HOST, a context, the default socket) and the fix for it.
      if (this.#bin === 'docker') return explainNoAnswer((e.stderr ?? e.message).trim());
      return `the container engine is not running (${(e.stderr ?? e.message).trim().split('\n')[0]}): start it (e.g. \`sudo systemctl start docker\`, or open Docker Desktop) or run \`hako setup\``;
    }
  }

  /** Null when the engine has OCI runtime `name`, else how to get it. */
  async runtimeProblem(name: string): Promise<string | null> {
    let names: string[] = [];
    try {
      const { stdout } = await exec(this.#bin, ['info', '--format', '{{json .Runtimes}}'], { timeout: 15_000 });
      names = Object.keys(JSON.parse(stdout) as Record<string, unknown>);
    } catch {
      return `could not ask the engine for its runtimes (is it running?)`;
    }
    return missingRuntime(name, names);
  }

  args(spec: ContainerSpec): readonly string[] {
    return hardenedArgs(spec);
  }

  run(spec: ContainerSpec, opts: Cancel & { readonly onLog?: (line: string) => void } = {}): RunningContainer {
    const args = hardenedArgs(spec);
    const { signal, onLog } = opts;
    // A sandbox runtime (gVisor) runs the processes inside its own kernel, out of the host's sight.
    if (spec.ociRuntime && spec.ociRuntime !== 'runc') this.#procs.set(spec.name, null);
    const child = spawn(this.#bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail = collectLines(child, onLog);
    // Aborted: the client is killed first (so it cannot start a container it has yet to
    // create), then the container; `exited` waits for both.
    let removed: Promise<void> | undefined;
    const onAbort = () => {
      child.kill('SIGKILL');
      removed = this.remove([spec.name]);
    };
    const exited = new Promise<ContainerExit>((resolve) => {
      child.on('error', (err) => resolve({ code: -1, tail: `could not run ${this.#bin}: ${err.message}` }));
      child.on('close', (code) => {
        this.#procs.delete(spec.name);
        signal?.removeEventListener('abort', onAbort);
        const end = () => resolve({ code: code ?? (removed ? 137 : null), tail: tail.join('\n') });
        (removed ?? Promise.resolve()).then(end, end);
      });
    });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return { name: spec.name, exited };
  }

  async verifyMounts(spec: ContainerSpec, container: RunningContainer, opts: Cancel = {}): Promise<string | null> {
    if (!spec.mounts.some((m) => m.identity)) return null;
    // gVisor keeps its mounts inside its own kernel, and other systems have no /proc: the
    // overlap rule of the mount policy is what protects them (docs/SECURITY.md, known limits).
    if (process.platform !== 'linux' || spec.ociRuntime === 'runsc') return null;
    const pid = await this.#runningPid(spec.name, container.exited, opts.signal);
    if (pid === null) return null;
    if (typeof pid === 'string') return pid;
    return mountMismatch(`/proc/${pid}/root`, spec.mounts);
  }

  /**
   * The host pid of the container's first process once the engine reports it running
   * (its mounts are in place then); null when it ended first, or why there is none.
   */
  async #runningPid(name: string, exited: Promise<ContainerExit>, signal: AbortSignal | undefined): Promise<number | string | null> {
    let ended = false;
    exited.then(() => { ended = true; }, () => {});
    const deadline = Date.now() + RUNNING_WITHIN_MS;
    while (!ended) {
      if (signal?.aborted) return 'the mount check was aborted';
      try {
        const { stdout } = await exec(this.#bin, ['inspect', '--format', '{{.State.Pid}}', name], { timeout: 15_000, signal });
        const pid = Number(stdout.trim());
        if (Number.isInteger(pid) && pid > 0) return pid;
      } catch {
        // Not created yet.
      }
      if (Date.now() > deadline) return `the engine did not report the container running within ${RUNNING_WITHIN_MS / 1000} s, so its mounts could not be checked`;
      // The engine's CLI has no start notification short of a `docker events` stream.
      await new Promise((r) => setTimeout(r, 20));
    }
    return null;
  }

  async stop(name: string, opts: Cancel & { readonly graceMs: number }): Promise<void> {
    const { graceMs, signal } = opts;
    try {
      await exec(this.#bin, ['stop', '--time', String(Math.ceil(graceMs / 1000)), name], { timeout: graceMs + 15_000, signal });
    } catch {
      // Already gone, stopping, or the grace was aborted: removal below settles it.
      await this.remove([name]);
    }
  }

  async list(labels: Readonly<Record<string, string>>, opts: Cancel = {}): Promise<string[]> {
    const filters = Object.entries(labels).flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
    const { stdout } = await exec(this.#bin, ['ps', '--all', '--format', '{{.Names}}', ...filters], { timeout: 15_000, signal: opts.signal });
    return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  }

  async killStrays(name: string, opts: Cancel = {}): Promise<number | null> {
    if (!this.#procs.has(name)) {
      // Once per container (~50 ms); every later turn reads only the cgroup and /proc.
      try {
        const { stdout } = await exec(this.#bin, ['inspect', '--format', '{{.Id}} {{.State.Pid}}', name], { timeout: 15_000, signal: opts.signal });
        const [id, pid] = stdout.trim().split(' ');
        this.#procs.set(name, id && Number(pid) > 0 ? cgroupProcsFile(Number(pid), id) : null);
      } catch {
        return null;
      }
    }
    const file = this.#procs.get(name);
    return file ? killStrays(file) : null;
  }

  async remove(names: readonly string[], opts: Cancel = {}): Promise<void> {
    if (names.length === 0) return;
    try {
      await exec(this.#bin, ['rm', '--force', ...names], { timeout: 30_000, signal: opts.signal });
    } catch {
      // Containers that are already gone are what we wanted.
    }
  }
}
