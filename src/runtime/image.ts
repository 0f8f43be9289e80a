// The agent image: its tag, the hash of the sources it is built from, its state, and
// building it — container/Dockerfile when an image registry answers, otherwise the offline
// build (container/build-offline.sh). The image carries the source hash as a label; a
// different hash means the image is stale and gets rebuilt.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { aptInstall, canInstallPackages } from './engine.ts';
import { findExecutable, runCommand, streamCommand } from './exec.ts';

export const IMAGE_REPO = 'hako-agent';
export const SOURCE_HASH_LABEL = 'hako.source-hash';
/** How the image was built: `docker` (Dockerfile) or `offline`. */
export const BUILD_LABEL = 'hako.build';
/** The repository root: this file lives in <root>/src/runtime/. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
/**
 * What the image is made of; a change to any of these means a rebuild. The agent uses no
 * npm package (its /app/package.json is container/app-package.json), so package.json and
 * the lockfile are not among them: adding a chat skill never makes the image stale.
 */
export const HASHED_PATHS = ['agent', 'protocol', 'container'] as const;

const REGISTRY_PROBE_URL = 'https://registry-1.docker.io/v2/';
const REGISTRY_PROBE_TIMEOUT_MS = 4000;

export type ImageState = 'missing' | 'stale' | 'current';

export type ImageStatus = {
  readonly tag: string;
  readonly state: ImageState;
  readonly sourceHash: string;
  /** The hash label of the existing image; null when the image is missing or unlabelled. */
  readonly imageHash: string | null;
  /** `docker`, `offline`, or null when unknown. */
  readonly build: string | null;
};

export type BuildOptions = {
  /** true: offline build; false: Dockerfile build; undefined: decide (see chooseOffline). */
  offline?: boolean;
  /** Progress lines. Contract: must not throw. */
  log: (line: string) => void;
  /** Aborting stops the build (the whole process group) and rejects with the reason. */
  signal?: AbortSignal;
  /** May install missing build tools (mmdebstrap) with apt-get on a root Debian host. */
  install?: boolean;
};

let cachedTag: string | undefined;

/** `hako-agent:<package.json version>`. */
export function imageTag(): string {
  if (cachedTag === undefined) {
    const pkg: unknown = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const version = typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined;
    if (typeof version !== 'string' || !/^[\w.-]+$/.test(version)) {
      throw new Error(`package.json in ${REPO_ROOT} has no usable "version" (found ${JSON.stringify(version)})`);
    }
    cachedTag = `${IMAGE_REPO}:${version}`;
  }
  return cachedTag;
}

/**
 * sha256 (first 16 hex digits) over HASHED_PATHS under `root`: every regular file's path
 * and contents and every symlink's target, in sorted path order, so the same tree always
 * gives the same hash. node_modules directories are skipped (the image build ignores them).
 */
export async function sourceHash(root: string = REPO_ROOT): Promise<string> {
  const entries: string[] = [];
  for (const top of HASHED_PATHS) await collect(root, top, entries);
  entries.sort();
  const hash = createHash('sha256');
  for (const rel of entries) {
    const full = path.join(root, rel);
    const stat = await lstat(full);
    if (stat.isSymbolicLink()) {
      hash.update(`link\0${rel}\0${await readlink(full)}\0`);
    } else {
      const content = await readFile(full);
      hash.update(`file\0${rel}\0${content.length}\0`);
      hash.update(content);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

async function collect(root: string, rel: string, out: string[]): Promise<void> {
  let stat;
  try {
    stat = await lstat(path.join(root, rel));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (stat.isDirectory()) {
    for (const name of await readdir(path.join(root, rel))) {
      if (name === 'node_modules' || name === '.DS_Store') continue;
      await collect(root, `${rel}/${name}`, out);
    }
  } else if (stat.isFile() || stat.isSymbolicLink()) {
    out.push(rel);
  }
}

/** Tag, state and hashes of the agent image. Contract: throws when Docker does not answer. */
export async function imageStatus(): Promise<ImageStatus> {
  const tag = imageTag();
  const [hash, inspected] = await Promise.all([
    sourceHash(),
    runCommand('docker', ['image', 'inspect', '--format', '{{json .Config.Labels}}', tag], {
      timeoutMs: 30_000,
    }),
  ]);
  if (inspected.code !== 0) {
    if (/no such (image|object)/i.test(inspected.stderr)) {
      return { tag, state: 'missing', sourceHash: hash, imageHash: null, build: null };
    }
    throw new Error(
      `docker image inspect ${tag} failed: ${inspected.error?.message ?? inspected.stderr.trim()}`,
    );
  }
  const labels: unknown = JSON.parse(inspected.stdout.trim() || 'null');
  const label = (name: string): string | null => {
    if (typeof labels !== 'object' || labels === null) return null;
    const value: unknown = (labels as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : null;
  };
  const imageHash = label(SOURCE_HASH_LABEL);
  return {
    tag,
    state: imageHash === hash ? 'current' : 'stale',
    sourceHash: hash,
    imageHash,
    build: label(BUILD_LABEL),
  };
}

/** 'current' when the image exists and was built from the sources as they are now. */
export async function imageState(): Promise<ImageState> {
  return (await imageStatus()).state;
}

/**
 * True when the build should be offline: forced by `HAKO_IMAGE_OFFLINE=1`, or when the
 * image registry does not answer within 4 s (any HTTP answer, even 401, counts).
 * `HAKO_IMAGE_OFFLINE=0` forces the Dockerfile build.
 */
export async function chooseOffline(): Promise<boolean> {
  const forced = process.env.HAKO_IMAGE_OFFLINE;
  if (forced === '1') return true;
  if (forced === '0') return false;
  try {
    const response = await fetch(REGISTRY_PROBE_URL, {
      signal: AbortSignal.timeout(REGISTRY_PROBE_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return false;
  } catch {
    return true;
  }
}

/**
 * Builds `imageTag()` labelled with the current source hash; afterwards removes the image it
 * replaced if nothing else uses it.
 * Contract: rejects with an Error that says what failed (the output's last lines are in the
 * message and were passed to `log`); rejects with the signal's reason when aborted.
 */
export async function buildImage(opts: BuildOptions): Promise<void> {
  const started = Date.now();
  const tag = imageTag();
  const hash = await sourceHash();
  const offline = opts.offline ?? (await chooseOffline());
  const previousId = await imageId(tag);
  opts.log(`image: building ${tag} (${offline ? 'offline, from Debian packages' : 'container/Dockerfile'}; source ${hash})`);

  let command: string;
  let args: string[];
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (offline) {
    await ensureOfflineTools(opts);
    command = 'bash';
    args = [path.join(REPO_ROOT, 'container', 'build-offline.sh'), tag, hash, process.execPath, REPO_ROOT];
  } else {
    command = 'docker';
    // --force-rm: the classic builder otherwise keeps the container of a failed step.
    args = ['build', '--force-rm', '-f', 'container/Dockerfile', '--label', `${SOURCE_HASH_LABEL}=${hash}`,
      '--label', `${BUILD_LABEL}=docker`, '-t', tag, '.'];
    env.BUILDKIT_PROGRESS = 'plain';
  }
  opts.log(`image: $ ${[command, ...args].join(' ')}`);
  const progress = stepPrefixer();
  const result = await streamCommand(command, args, {
    cwd: REPO_ROOT,
    env,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onLine: (line) => opts.log(progress(line)),
  });
  if (opts.signal?.aborted) throw opts.signal.reason;
  if (result.code !== 0) {
    const hint = offline
      ? ''
      : '\nIf the image registry is unreachable from Docker, try `hako image build --offline`.';
    throw new Error(
      `Building ${tag} failed (${result.error?.message ?? `exit code ${result.code}`}). Last output:\n${result.tail.slice(-10).map(stripAnsi).join('\n')}${hint}`,
    );
  }
  const newId = await imageId(tag);
  if (previousId !== null && newId !== previousId) {
    // The old image is now untagged; drop it unless a container still uses it.
    await runCommand('docker', ['image', 'rm', previousId], { timeoutMs: 60_000 });
  }
  opts.log(`image: built ${tag} in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** Builds the image unless it is current. Same contract as buildImage. */
export async function ensureImage(opts: BuildOptions): Promise<void> {
  const status = await imageStatus();
  if (status.state === 'current') {
    opts.log(`image: ${status.tag} is current (source ${status.sourceHash})`);
    return;
  }
  opts.log(
    status.state === 'missing'
      ? `image: ${status.tag} is missing`
      : `image: ${status.tag} is stale (built from ${status.imageHash ?? 'unknown'}, sources are ${status.sourceHash})`,
  );
  await buildImage(opts);
}

/**
 * Prefixes output lines with the build step they belong to. Step headers (`[2/5] …` from
 * the offline script, `Step 2/9 : …` from the classic builder, `#7 [3/6] …` from BuildKit)
 * pass unchanged; the lines after them get `[k/n] `.
 */
export function stepPrefixer(): (line: string) => string {
  let step = 'image';
  return (raw) => {
    const line = stripAnsi(raw);
    const header =
      /^\[(\d+\/\d+)\] /.exec(line) ?? /^Step (\d+\/\d+) :/.exec(line) ?? /^#\d+ \[[^\]]*?(\d+\/\d+)\]/.exec(line);
    if (header?.[1] !== undefined) {
      step = header[1];
      return line;
    }
    return `[${step}]   ${line}`;
  };
}

/** Drops terminal colour codes (the classic builder colours stderr). */
function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

async function imageId(tag: string): Promise<string | null> {
  const result = await runCommand('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], {
    timeoutMs: 30_000,
  });
  return result.code === 0 ? result.stdout.trim() || null : null;
}

async function ensureOfflineTools(opts: BuildOptions): Promise<void> {
  if (process.platform !== 'linux') {
    throw new Error(
      `The offline image build needs Linux (it uses mmdebstrap and this host's Node binary); on ${process.platform} build with the Dockerfile: \`hako image build\` with the image registry reachable.`,
    );
  }
  if ((await findExecutable('mmdebstrap')) !== null) return;
  if (opts.install && canInstallPackages()) {
    opts.log('image: mmdebstrap is missing; installing it with apt-get');
    await aptInstall(['mmdebstrap'], opts.log, opts.signal);
    return;
  }
  throw new Error(
    'The offline image build needs mmdebstrap. Install it (Debian/Ubuntu: `sudo apt-get install mmdebstrap`) or make the image registry reachable; then try again.',
  );
}
