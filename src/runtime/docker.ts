// Docker (and Podman, same CLI) behind the core's Runtime interface. Every container gets
// the hardened flags; the spec can tighten limits but cannot drop a flag.

import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { ContainerExit, ContainerSpec, RunningContainer, Runtime } from '../core/runtime.ts';

const exec = promisify(execFile);
const TAIL_LINES = 40;

export function hardenedArgs(spec: ContainerSpec): string[] {
  if (/^0*:|^root:/.test(spec.user)) throw new Error(`container ${spec.name}: refusing to run as root (user ${spec.user})`);
  const args = [
    'run', '--rm', '--init', '--interactive=false',
    '--name', spec.name,
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
    if (m.host.includes(',') || m.container.includes(',')) throw new Error(`mount path must not contain ",": ${m.host}`);
    args.push('--mount', `type=bind,source=${m.host},target=${m.container}${m.readonly ? ',readonly' : ''}`);
  }
  for (const [k, v] of Object.entries(spec.env)) args.push('--env', `${k}=${v}`);
  args.push(spec.image);
  return args;
}

export class DockerRuntime implements Runtime {
  readonly name: string;
  readonly #bin: string;

  constructor(opts: { bin?: string } = {}) {
    this.#bin = opts.bin ?? 'docker';
    this.name = this.#bin;
  }

  async available(): Promise<string | null> {
    try {
      await exec(this.#bin, ['info', '--format', '{{.ServerVersion}}'], { timeout: 15_000 });
      return null;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') return `${this.#bin} is not installed: install Docker (https://docs.docker.com/engine/install/) or run \`hako setup\` as root on Debian/Ubuntu`;
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
    if (names.includes(name)) return null;
    return name === 'runsc'
      ? `the engine has no "runsc" runtime (it has: ${names.join(', ')}). To enable gVisor: apt-get install runsc (or see gvisor.dev), add to /etc/docker/daemon.json {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=all"]}}}, then reload the engine (sudo systemctl reload docker, or kill -HUP $(pidof dockerd))`
      : `the engine has no "${name}" runtime (it has: ${names.join(', ')})`;
  }

  args(spec: ContainerSpec): readonly string[] {
    return hardenedArgs(spec);
  }

  run(spec: ContainerSpec, onLog?: (line: string) => void): RunningContainer {
    const args = hardenedArgs(spec);
    const child = spawn(this.#bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        onLog?.(line);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const exited = new Promise<ContainerExit>((resolve) => {
      child.on('error', (err) => resolve({ code: -1, tail: `could not run ${this.#bin}: ${err.message}` }));
      child.on('close', (code) => resolve({ code, tail: tail.join('\n') }));
    });
    return { name: spec.name, exited };
  }

  async stop(name: string, graceMs: number): Promise<void> {
    try {
      await exec(this.#bin, ['stop', '--time', String(Math.ceil(graceMs / 1000)), name], { timeout: graceMs + 15_000 });
    } catch {
      // Already gone, or stopping: removal below settles it.
      await this.remove([name]);
    }
  }

  async list(labels: Readonly<Record<string, string>>): Promise<string[]> {
    const filters = Object.entries(labels).flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
    const { stdout } = await exec(this.#bin, ['ps', '--all', '--format', '{{.Names}}', ...filters], { timeout: 15_000 });
    return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  }

  async remove(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    try {
      await exec(this.#bin, ['rm', '--force', ...names], { timeout: 30_000 });
    } catch {
      // Containers that are already gone are what we wanted.
    }
  }
}
