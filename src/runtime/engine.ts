// Makes sure a container engine answers `docker info`. On a root Debian host `hako setup`
// may install docker.io and start the daemon; everywhere else it says exactly what to do.
// The decision is a pure function of host facts (planEngine), tested without Docker.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { findExecutable, runCommand, streamCommand } from './exec.ts';

/** Where a dockerd started by hako writes its output. */
export const DOCKERD_LOG = '/var/log/hako-dockerd.log';
const START_TIMEOUT_MS = 60_000;
const INFO_TIMEOUT_MS = 20_000;

export type EngineFacts = {
  readonly platform: NodeJS.Platform;
  readonly root: boolean;
  readonly debian: boolean;
  readonly wsl: boolean;
  /** PID 1 is systemd, so `systemctl start docker` works. */
  readonly systemd: boolean;
  readonly dockerCli: boolean;
  readonly dockerd: boolean;
  /** What `docker info` printed on failure (first line is enough). */
  readonly infoError: string;
};

export type EnginePlan =
  | { readonly kind: 'install' }
  | { readonly kind: 'start'; readonly via: 'systemctl' | 'dockerd' }
  | { readonly kind: 'fail'; readonly message: string };

/** What to do when `docker info` fails. Pure. */
export function planEngine(facts: EngineFacts, opts: { install: boolean }): EnginePlan {
  const detail = facts.infoError ? ` (docker info: ${firstLine(facts.infoError)})` : '';
  if (facts.platform === 'darwin') {
    return {
      kind: 'fail',
      message: facts.dockerCli
        ? `No container engine answers${detail}. Start Docker Desktop or OrbStack, or run \`colima start\`; then run \`hako setup\` again.`
        : 'No container engine found. Install and start one of: Docker Desktop (https://www.docker.com/products/docker-desktop/), OrbStack (`brew install orbstack`), or colima (`brew install colima docker && colima start`); then run `hako setup` again.',
    };
  }
  if (facts.platform === 'win32') {
    return {
      kind: 'fail',
      message: `No container engine answers${detail}. Install Docker Desktop with the WSL 2 backend and start it (https://www.docker.com/products/docker-desktop/), or run hako inside WSL 2; then run \`hako setup\` again.`,
    };
  }
  if (facts.platform !== 'linux') {
    return {
      kind: 'fail',
      message: `No container engine answers${detail}. Install Docker or Podman (with the docker CLI) and start it; then run \`hako setup\` again.`,
    };
  }
  if (facts.root && facts.debian) {
    if (!opts.install) {
      return {
        kind: 'fail',
        message: `Docker is not running${detail}. Run \`hako setup\`: as root on Debian/Ubuntu it installs docker.io and starts the daemon.`,
      };
    }
    if (!facts.dockerd || !facts.dockerCli) return { kind: 'install' };
    return { kind: 'start', via: facts.systemd ? 'systemctl' : 'dockerd' };
  }
  if (facts.root) {
    return {
      kind: 'fail',
      message: facts.dockerd
        ? `Docker is installed but not running${detail}. Start it: \`systemctl start docker\` (or run \`dockerd\` in the background); then run \`hako setup\` again.`
        : 'Docker is not installed. Install Docker Engine with your distribution\'s package manager (https://docs.docker.com/engine/install/) and start it (`systemctl start docker`); then run `hako setup` again.',
    };
  }
  const wsl = facts.wsl
    ? ' On WSL 2 you can instead turn on this distribution under Docker Desktop → Settings → Resources → WSL integration.'
    : '';
  if (/permission denied/i.test(facts.infoError)) {
    return {
      kind: 'fail',
      message: `You may not use the Docker daemon${detail}. Ask an administrator to add you to the docker group (\`sudo usermod -aG docker $USER\`), then log out and in again (or run \`newgrp docker\`).${wsl}`,
    };
  }
  if (!facts.dockerCli) {
    return {
      kind: 'fail',
      message: `Docker is not installed. Ask an administrator to install it (Debian/Ubuntu: \`sudo apt-get install docker.io\`; others: https://docs.docker.com/engine/install/), start it (\`sudo systemctl start docker\`) and add you to the docker group (\`sudo usermod -aG docker $USER\`, then log out and in); then run \`hako setup\` again.${wsl}`,
    };
  }
  return {
    kind: 'fail',
    message: `The Docker daemon is not running${detail}. Start it with \`sudo systemctl start docker\` (or ask an administrator), and make sure you are in the docker group (\`sudo usermod -aG docker $USER\`); then run \`hako setup\` again.${wsl}`,
  };
}

/**
 * Returns once `docker info` answers. With `install`, a root Debian host gets docker.io
 * installed and the daemon started (systemd or a detached dockerd).
 * Contract: throws an Error whose message says what to install or start; `log` receives
 * progress lines and must not throw.
 */
export async function ensureEngine(opts: {
  install: boolean;
  log: (line: string) => void;
  /** Stops apt-get and the wait for the daemon; ensureEngine then rejects with the reason. */
  signal?: AbortSignal;
}): Promise<void> {
  const first = await dockerInfo();
  if (first.ok) return;
  const facts = await gatherFacts(first.error);
  const plan = planEngine(facts, opts);
  if (plan.kind === 'fail') throw new Error(plan.message);
  if (plan.kind === 'install') {
    opts.log('engine: Docker is not installed; installing docker.io with apt-get');
    await aptInstall(['docker.io'], opts.log, opts.signal);
    // On systemd hosts the package starts the service itself.
    if ((await dockerInfo()).ok) return;
  }
  await startEngine(facts.systemd ? 'systemctl' : 'dockerd', opts.log, opts.signal);
}

/** For `hako doctor`: null when the engine answers, else what is wrong and how to fix it. */
export async function engineProblem(): Promise<string | null> {
  const info = await dockerInfo();
  if (info.ok) return null;
  const plan = planEngine(await gatherFacts(info.error), { install: false });
  return plan.kind === 'fail' ? plan.message : `Docker does not answer: ${firstLine(info.error)}`;
}

/** True when this host may install Debian packages itself (Linux, root, Debian/Ubuntu). */
export function canInstallPackages(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/etc/debian_version');
}

/**
 * `apt-get update` then `apt-get install -y --no-install-recommends <packages>`.
 * Contract: throws with the last output lines when apt-get fails.
 */
export async function aptInstall(
  packages: readonly string[],
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update'],
    ['install', '-y', '--no-install-recommends', ...packages],
  ]) {
    log(`engine: apt-get ${args.join(' ')}`);
    const result = await streamCommand('apt-get', args, {
      env,
      onLine: (line) => log(`  ${line}`),
      ...(signal ? { signal } : {}),
    });
    signal?.throwIfAborted();
    if (result.code !== 0) {
      throw new Error(
        `apt-get ${args[0]} failed (${result.error?.message ?? `exit code ${result.code}`}) while installing ${packages.join(', ')}:\n${result.tail.join('\n')}`,
      );
    }
  }
}

async function dockerInfo(): Promise<{ ok: true } | { ok: false; error: string }> {
  const result = await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], {
    timeoutMs: INFO_TIMEOUT_MS,
  });
  if (result.code === 0 && result.stdout.trim() !== '') return { ok: true };
  return { ok: false, error: result.error?.message ?? (result.stderr.trim() || result.stdout.trim()) };
}

async function gatherFacts(infoError: string): Promise<EngineFacts> {
  const [dockerCli, dockerd] = await Promise.all([findExecutable('docker'), findExecutable('dockerd')]);
  return {
    platform: process.platform,
    root: process.getuid?.() === 0,
    debian: existsSync('/etc/debian_version'),
    wsl: readText('/proc/version').toLowerCase().includes('microsoft'),
    systemd: readText('/proc/1/comm').trim() === 'systemd',
    dockerCli: dockerCli !== null,
    dockerd: dockerd !== null,
    infoError,
  };
}

async function startEngine(
  via: 'systemctl' | 'dockerd',
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  let exited: string | null = null;
  if (via === 'systemctl') {
    log('engine: systemctl start docker');
    const result = await runCommand('systemctl', ['start', 'docker'], { timeoutMs: START_TIMEOUT_MS });
    if (result.code !== 0) {
      throw new Error(`\`systemctl start docker\` failed: ${firstLine(result.error?.message ?? result.stderr)}. See \`journalctl -u docker\`.`);
    }
  } else {
    const dockerd = (await findExecutable('dockerd')) ?? 'dockerd';
    log(`engine: starting ${dockerd} in the background (log: ${DOCKERD_LOG})`);
    const out = openSync(DOCKERD_LOG, 'a');
    try {
      // Detached and unref'd: the daemon outlives hako, like a service would.
      const child = spawn(dockerd, [], { detached: true, stdio: ['ignore', out, out] });
      child.once('error', (error) => (exited = error.message));
      child.once('exit', (code, signal) => (exited = `dockerd exited (${signal ?? `code ${code}`})`));
      child.unref();
    } finally {
      closeSync(out);
    }
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const info = await dockerInfo();
    if (info.ok) {
      log('engine: Docker is running');
      return;
    }
    last = info.error;
    if (exited !== null) break;
    await sleep(1000, undefined, signal ? { signal } : {});
  }
  const logTail = via === 'dockerd' ? `\nLast lines of ${DOCKERD_LOG}:\n${readText(DOCKERD_LOG).split('\n').slice(-15).join('\n')}` : '';
  throw new Error(
    `Docker did not come up: ${exited ?? `no answer within ${START_TIMEOUT_MS / 1000} s`} (docker info: ${firstLine(last)}).${logTail}`,
  );
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
