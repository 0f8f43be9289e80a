// Makes sure a container engine answers `docker info` at the endpoint the docker CLI uses
// (DOCKER_HOST, else DOCKER_CONTEXT or the current context, else the default socket). On a
// root Debian host `hako setup` may install docker.io and start the daemon; everywhere else
// it says exactly what to do. The decision is a pure function of host facts (planEngine),
// tested without Docker. Invariants: hako starts a daemon only for the default local socket
// and only when no dockerd runs; every failure names the endpoint and where it came from.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { findExecutable, runCommand, streamCommand } from './exec.ts';

/** Where a dockerd started by hako writes its output. */
export const DOCKERD_LOG = '/var/log/hako-dockerd.log';
const START_TIMEOUT_MS = 60_000;
const INFO_TIMEOUT_MS = 20_000;

/** The socket dockerd serves when started without -H, and the docker CLI's default. */
export const DEFAULT_ENDPOINT = 'unix:///var/run/docker.sock';

/** Which engine the docker CLI (and so every hako command) talks to. */
export type EngineEndpoint = {
  /** The address the CLI connects to; '' when it is not known (the context could not be read). */
  readonly host: string;
  /**
   * Where it came from, by the CLI's own precedence: the DOCKER_HOST variable, the
   * DOCKER_CONTEXT variable, the current context chosen with `docker context use` (kept in
   * ~/.docker/config.json), or none of them.
   */
  readonly source: 'DOCKER_HOST' | 'DOCKER_CONTEXT' | 'context' | 'default';
  /** The context's name; '' when the current one could not be read. */
  readonly context: string;
  /** Why the docker CLI could not read the context, else ''. */
  readonly error: string;
};

/** What `docker context inspect` said about the current context; null when there is no docker CLI to ask. */
export type InspectedContext = { readonly name: string; readonly host: string } | { readonly error: string } | null;

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
  readonly endpoint: EngineEndpoint;
  /** Why a plain connect to the endpoint's unix socket failed ("no such file"); '' when it connected or is not a unix socket. */
  readonly connectError: string;
  /** Process ids of the dockerd processes running on this machine (seen in /proc). */
  readonly dockerdPids: readonly number[];
};

export type EnginePlan =
  | { readonly kind: 'install' }
  | { readonly kind: 'start'; readonly via: 'systemctl' | 'dockerd' }
  | { readonly kind: 'fail'; readonly message: string };

/** The endpoint the docker CLI uses: DOCKER_HOST wins over any context, as in the CLI. Pure. */
export function resolveEndpoint(
  env: { readonly DOCKER_HOST?: string | undefined; readonly DOCKER_CONTEXT?: string | undefined },
  inspected: InspectedContext,
): EngineEndpoint {
  if (env.DOCKER_HOST) return { host: env.DOCKER_HOST, source: 'DOCKER_HOST', context: '', error: '' };
  const named = env.DOCKER_CONTEXT;
  const source = named ? 'DOCKER_CONTEXT' : 'context';
  if (inspected && 'error' in inspected) return { host: '', source, context: named ?? '', error: inspected.error };
  if (named) return { host: inspected?.host ?? '', source, context: named, error: '' };
  if (inspected && inspected.name !== 'default') return { host: inspected.host, source, context: inspected.name, error: '' };
  return { host: inspected?.host || DEFAULT_ENDPOINT, source: 'default', context: 'default', error: '' };
}

/** The endpoint as a user would set it: "DOCKER_HOST=unix:///x.sock", "docker context \"colima\" (unix:///…)". */
export function describeEndpoint(e: EngineEndpoint): string {
  const at = e.host ? ` (${e.host})` : '';
  if (e.source === 'DOCKER_HOST') return `DOCKER_HOST=${e.host}`;
  if (e.source === 'DOCKER_CONTEXT') return `DOCKER_CONTEXT=${e.context}${at}`;
  if (e.source === 'context') return e.context ? `docker context "${e.context}"${at}` : 'the current docker context';
  return `the default socket ${e.host}`;
}

/** What to do when `docker info` fails. Pure. */
export function planEngine(facts: EngineFacts, opts: { install: boolean }): EnginePlan {
  const fail = (advice: string): EnginePlan => ({ kind: 'fail', message: `${unanswered(facts)} ${advice}` });
  const { endpoint } = facts;
  if (endpoint.error) return fail(contextFix(endpoint));
  // Any other endpoint belongs to an engine hako did not set up: starting the local daemon
  // would not make that one answer, and would run a second engine behind the user's back.
  if (endpoint.host !== DEFAULT_ENDPOINT) return fail(elsewhereFix(facts, opts));
  if (facts.platform === 'darwin') {
    return fail(facts.dockerCli
      ? 'Start Docker Desktop or OrbStack, or run `colima start`; then run `hako setup` again.'
      : 'No container engine found. Install and start one of: Docker Desktop (https://www.docker.com/products/docker-desktop/), OrbStack (`brew install orbstack`), or colima (`brew install colima docker && colima start`); then run `hako setup` again.');
  }
  if (facts.platform === 'win32') {
    return fail('Install Docker Desktop with the WSL 2 backend and start it (https://www.docker.com/products/docker-desktop/), or run hako inside WSL 2; then run `hako setup` again.');
  }
  if (facts.platform !== 'linux') {
    return fail('Install Docker or Podman (with the docker CLI) and start it; then run `hako setup` again.');
  }
  const wsl = facts.wsl
    ? ' On WSL 2 you can instead turn on this distribution under Docker Desktop → Settings → Resources → WSL integration.'
    : '';
  if (!facts.root && /permission denied/i.test(`${facts.infoError} ${facts.connectError}`)) {
    return fail(`You may not use the Docker daemon. Ask an administrator to add you to the docker group (\`sudo usermod -aG docker $USER\`), then log out and in again (or run \`newgrp docker\`).${wsl}`);
  }
  if (facts.dockerdPids.length > 0) return fail(alreadyRunning(facts.dockerdPids));
  if (facts.root && facts.debian) {
    if (!opts.install) return fail('Run `hako setup`: as root on Debian/Ubuntu it installs docker.io and starts the daemon.');
    if (!facts.dockerd || !facts.dockerCli) return { kind: 'install' };
    return { kind: 'start', via: facts.systemd ? 'systemctl' : 'dockerd' };
  }
  if (facts.root) {
    return fail(facts.dockerd
      ? 'Docker is installed but not running. Start it: `systemctl start docker` (or run `dockerd` in the background); then run `hako setup` again.'
      : 'Docker is not installed. Install Docker Engine with your distribution\'s package manager (https://docs.docker.com/engine/install/) and start it (`systemctl start docker`); then run `hako setup` again.');
  }
  if (!facts.dockerCli) {
    return fail(`Docker is not installed. Ask an administrator to install it (Debian/Ubuntu: \`sudo apt-get install docker.io\`; others: https://docs.docker.com/engine/install/), start it (\`sudo systemctl start docker\`) and add you to the docker group (\`sudo usermod -aG docker $USER\`, then log out and in); then run \`hako setup\` again.${wsl}`);
  }
  return fail(`The Docker daemon is not running. Start it with \`sudo systemctl start docker\` (or ask an administrator), and make sure you are in the docker group (\`sudo usermod -aG docker $USER\`); then run \`hako setup\` again.${wsl}`);
}

/** "DOCKER_HOST=unix:///nope.sock: no engine answers there (connect: no such file)." */
function unanswered(facts: EngineFacts): string {
  const where = describeEndpoint(facts.endpoint);
  if (facts.endpoint.error) return `${where}: the docker CLI cannot read this context (${firstLine(facts.endpoint.error)}).`;
  const why = facts.connectError ? `connect: ${facts.connectError}` : facts.infoError ? `docker info: ${firstLine(facts.infoError)}` : 'no answer';
  return `${where}: no engine answers there (${why}).`;
}

function contextFix(e: EngineEndpoint): string {
  const choose = e.source === 'DOCKER_CONTEXT' ? 'set DOCKER_CONTEXT to one of them or unset it' : '`docker context use default` returns to the default socket';
  return `\`docker context ls\` lists the contexts the CLI knows; ${choose}. hako starts no engine for a context it cannot read.`;
}

function elsewhereFix(facts: EngineFacts, opts: { install: boolean }): string {
  const { endpoint } = facts;
  const podman = /podman/i.test(endpoint.host) ? ' (Podman: `systemctl --user start podman.socket`, or as root `systemctl start podman.socket`)' : '';
  const start = `Start the engine that serves it${podman}`;
  const other =
    endpoint.source === 'DOCKER_HOST' ? `correct DOCKER_HOST, or unset it (\`unset DOCKER_HOST\`) to use ${DEFAULT_ENDPOINT}`
    : endpoint.source === 'DOCKER_CONTEXT' ? 'choose another context (`docker context ls`), or unset DOCKER_CONTEXT'
    : `switch contexts (\`docker context ls\`; \`docker context use default\` for ${DEFAULT_ENDPOINT})`;
  const why = opts.install && facts.platform === 'linux' ? ` hako starts an engine only for the default socket ${DEFAULT_ENDPOINT}, so it started none.` : '';
  return `${start}, or ${other}; then run the command again.${why}`;
}

function alreadyRunning(pids: readonly number[]): string {
  const list = pids.join(', ');
  const one = pids[0];
  return `A dockerd is already running (pid ${list}), so hako will not start another: two daemons on one /var/lib/docker damage it. `
    + `It may still be starting (run the command again in a minute). If it stays silent, it listens elsewhere (\`ps -o args= -p ${one}\` shows its -H/--host; point DOCKER_HOST at that socket) `
    + `or it is stuck (see \`journalctl -u docker\` or ${DOCKERD_LOG}, and restart it the way it was started, e.g. \`systemctl restart docker\`).`;
}

/**
 * Returns once `docker info` answers. With `install`, a root Debian host gets docker.io
 * installed and the daemon started (systemd or a detached dockerd) — only for the default
 * socket and only when no dockerd runs (see planEngine).
 * Contract: throws an Error whose message names the endpoint tried and says what to install
 * or start; `log` receives progress lines and must not throw.
 */
export async function ensureEngine(opts: {
  install: boolean;
  log: (line: string) => void;
  /** Stops apt-get and the wait for the daemon; ensureEngine then rejects with the reason. */
  signal?: AbortSignal;
}): Promise<void> {
  const first = await dockerInfo();
  if (first.ok) {
    opts.log(`engine: server ${first.version} answers at ${describeEndpoint(await currentEndpoint())}`);
    return;
  }
  const facts = await gatherFacts(first.error);
  const plan = planEngine(facts, opts);
  if (plan.kind === 'fail') throw new Error(plan.message);
  if (plan.kind === 'install') {
    opts.log('engine: Docker is not installed; installing docker.io with apt-get');
    await aptInstall(['docker.io'], opts.log, opts.signal);
    // On systemd hosts (and some init scripts) the package starts the daemon itself: wait for
    // that one rather than start a second.
    if ((await dockerInfo()).ok) return;
    if (runningDockerd().length > 0) {
      await waitForEngine({ log: opts.log, signal: opts.signal, exited: () => null, logFrom: null });
      return;
    }
  }
  await startEngine(facts.systemd ? 'systemctl' : 'dockerd', opts.log, opts.signal);
}

/** For `hako doctor`: null when the engine answers, else what is wrong and how to fix it. */
export async function engineProblem(): Promise<string | null> {
  const info = await dockerInfo();
  if (info.ok) return null;
  return explainNoAnswer(info.error);
}

/**
 * Why no engine answered, given what `docker info` said: names the endpoint tried and where
 * it came from, and how to fix it without `hako setup` starting anything.
 * Contract: never rejects.
 */
export async function explainNoAnswer(infoError: string): Promise<string> {
  const plan = planEngine(await gatherFacts(infoError), { install: false });
  return plan.kind === 'fail' ? plan.message : `Docker does not answer: ${firstLine(infoError)}`;
}

/** The endpoint the docker CLI uses right now (asks the CLI for the current context). */
export async function currentEndpoint(): Promise<EngineEndpoint> {
  return resolveEndpoint(process.env, process.env.DOCKER_HOST ? null : await inspectContext());
}

/** Process ids of running dockerd processes, from /proc (empty where there is no /proc). */
export function runningDockerd(proc = '/proc'): number[] {
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    // comm, not cmdline: a `grep dockerd` or an editor on dockerd.go is not a daemon. A zombie is gone.
    if (readText(`${proc}/${entry}/comm`).trim() !== 'dockerd') continue;
    if (/^\d+ \(.*\) Z/.test(readText(`${proc}/${entry}/stat`))) continue;
    pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

/**
 * A dockerd log tail fit to show a user: dockerd's own hint to delete its pid file is
 * replaced by what it means. Deleting the file while another daemon runs lets a second one
 * start on the same /var/lib/docker, which damages it. Pure.
 */
export function explainDaemonLog(lines: readonly string[]): string[] {
  return lines.map((line) =>
    /docker\.pid|pid file/i.test(line)
      ? '(hako: dockerd refused to start because its pid file names a live process: another Docker daemon already runs, perhaps outside this machine\'s view. Do not delete the pid file; use the engine that runs — check DOCKER_HOST and `docker context ls`.)'
      : line,
  );
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

async function dockerInfo(): Promise<{ ok: true; version: string } | { ok: false; error: string }> {
  const result = await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], {
    timeoutMs: INFO_TIMEOUT_MS,
  });
  const version = result.stdout.trim();
  if (result.code === 0 && version !== '') return { ok: true, version };
  return { ok: false, error: result.error?.message ?? (result.stderr.trim() || version) };
}

/** The current context as the docker CLI resolves it (DOCKER_CONTEXT, else ~/.docker/config.json). */
async function inspectContext(): Promise<InspectedContext> {
  const result = await runCommand('docker', ['context', 'inspect', '--format', '{{.Name}}\t{{.Endpoints.docker.Host}}'], {
    timeoutMs: INFO_TIMEOUT_MS,
  });
  if (result.error && result.code === null && /ENOENT/.test(result.error.message)) return null;
  if (result.code !== 0) return { error: firstLine(result.stderr || result.error?.message || `exit code ${result.code}`) };
  const [name = '', host = ''] = result.stdout.trim().split('\t');
  return { name, host };
}

/** Why a connect to a unix:// endpoint fails, in a few words; '' when it connects or is not a unix socket. */
async function connectProblem(host: string): Promise<string> {
  if (!host.startsWith('unix://')) return '';
  const socketPath = host.slice('unix://'.length);
  return new Promise((resolve) => {
    const socket = net.connect({ path: socketPath });
    const done = (problem: string) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(2_000, () => done('no answer within 2 s'));
    socket.once('connect', () => done(''));
    socket.once('error', (error: NodeJS.ErrnoException) => done(CONNECT_ERRORS[error.code ?? ''] ?? error.message));
  });
}

const CONNECT_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  ECONNREFUSED: 'connection refused, nothing listens on it',
  EACCES: 'permission denied',
  ENOTSOCK: 'not a socket',
};

async function gatherFacts(infoError: string): Promise<EngineFacts> {
  const [dockerCli, dockerd, endpoint] = await Promise.all([findExecutable('docker'), findExecutable('dockerd'), currentEndpoint()]);
  return {
    platform: process.platform,
    root: process.getuid?.() === 0,
    debian: existsSync('/etc/debian_version'),
    wsl: readText('/proc/version').toLowerCase().includes('microsoft'),
    systemd: readText('/proc/1/comm').trim() === 'systemd',
    dockerCli: dockerCli !== null,
    dockerd: dockerd !== null,
    infoError,
    endpoint,
    connectError: await connectProblem(endpoint.host),
    dockerdPids: runningDockerd(),
  };
}

async function startEngine(
  via: 'systemctl' | 'dockerd',
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  // Checked again right before starting: a daemon may have appeared since the facts were read.
  const running = runningDockerd();
  if (running.length > 0) throw new Error(`${DEFAULT_ENDPOINT}: no engine answers there. ${alreadyRunning(running)}`);
  let exited: string | null = null;
  let logFrom: number | null = null;
  if (via === 'systemctl') {
    log('engine: systemctl start docker');
    const result = await runCommand('systemctl', ['start', 'docker'], { timeoutMs: START_TIMEOUT_MS });
    if (result.code !== 0) {
      throw new Error(`\`systemctl start docker\` failed: ${firstLine(result.error?.message ?? result.stderr)}. See \`journalctl -u docker\`.`);
    }
  } else {
    const dockerd = (await findExecutable('dockerd')) ?? 'dockerd';
    log(`engine: starting ${dockerd} in the background for ${DEFAULT_ENDPOINT} (log: ${DOCKERD_LOG})`);
    // Only this start's lines are shown on failure: the log keeps earlier runs too.
    logFrom = fileSize(DOCKERD_LOG);
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
  await waitForEngine({ log, signal, exited: () => exited, logFrom });
}

/** Polls `docker info` until it answers, the started daemon exits, or START_TIMEOUT_MS pass. */
async function waitForEngine(opts: {
  log: (line: string) => void;
  signal: AbortSignal | undefined;
  exited: () => string | null;
  /** Where this start's lines begin in DOCKERD_LOG; null when hako did not start dockerd. */
  logFrom: number | null;
}): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const info = await dockerInfo();
    if (info.ok) {
      opts.log(`engine: Docker is running at ${DEFAULT_ENDPOINT}`);
      return;
    }
    last = info.error;
    if (opts.exited() !== null) break;
    await sleep(1000, undefined, opts.signal ? { signal: opts.signal } : {});
  }
  const tail = opts.logFrom === null ? [] : readFrom(DOCKERD_LOG, opts.logFrom).split('\n').filter(Boolean).slice(-15);
  const logTail = tail.length ? `\nLast lines of ${DOCKERD_LOG}:\n${explainDaemonLog(tail).join('\n')}` : '';
  throw new Error(
    `Docker did not come up at ${DEFAULT_ENDPOINT}: ${opts.exited() ?? `no answer within ${START_TIMEOUT_MS / 1000} s`} (docker info: ${firstLine(last)}).${logTail}`,
  );
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  try {
    return readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
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
