// `hako service install|uninstall|status`: runs `hako start` as a systemd service (Linux,
// system-wide or --user) or a launchd agent (macOS). The file's text comes from
// service-files.ts; this module decides where it goes and talks to the service manager.
//
// Invariants: the service manager is driven only when it is really running here and the
// file is where it looks (HAKO_SERVICE_DIR, a test hook, means it is not); the settings
// file is created owner-only and never overwritten; uninstall is idempotent and keeps the
// settings and HAKO_HOME.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig } from '../core/config.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { envFileTemplate, launchdLogs, launchdPlist, LAUNCHD_LABEL, SERVICE_NAME, systemdUnit, type ServicePaths } from './service-files.ts';

const exec = promisify(execFile);

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const ENTRY = path.join(ROOT, 'bin', 'hako.mjs');
/** Exists only while systemd is PID 1 (see sd_booted(3)). */
const SYSTEMD_RUNTIME = '/run/systemd/system';
/** Exit code when nothing failed but the service does not run: not installed, inactive, or not enabled here. */
const NOT_RUNNING = 3;

const installHelp = `Usage: hako service install [--user | --system] [--print | --dry-run]

Writes the service file and, when the service manager runs here, enables and (re)starts it:
  Linux, as root:   /etc/systemd/system/${SERVICE_NAME}  (--system, the default for root)
  Linux, --user:    ~/.config/systemd/user/${SERVICE_NAME}  (the default for other users)
  macOS:            ~/Library/LaunchAgents/${LAUNCHD_LABEL}.plist
The service runs this Node and this checkout's bin/hako.mjs with \`start\`, restarts it after
a failure (at most 5 starts in 10 minutes), and has HAKO_HOME and HAKO_CONFIG fixed to their
values now. Its settings (model, keys, port) come from HAKO_CONFIG/hako.env, created
owner-only with commented examples if absent and never overwritten; nothing of your
shell's environment except PATH is copied. Logs: journald and HAKO_HOME/logs/hako.log
(launchd: HAKO_HOME/logs/service.out.log and service.err.log).

Options:
  --user        a systemd user service (systemctl --user)
  --system      a system-wide systemd service (needs root)
  --print       print the file it would write and change nothing (also --dry-run)
  -h, --help    show this help

Exit codes: 0 written and started; 3 written, but no service manager runs here to start
it (e.g. a container without systemd: run \`hako start\` under your own supervisor);
1 an error; 2 a usage error.`;

const uninstallHelp = `Usage: hako service uninstall [--user | --system]

Stops and disables the service and removes its file. Keeps HAKO_CONFIG/hako.env and
HAKO_HOME (your settings and data). Running it when nothing is installed is not an error.

Options:
  --user, --system   which systemd service (default: --system as root, --user otherwise)
  -h, --help         show this help`;

const statusHelp = `Usage: hako service status [--user | --system]

Says whether the service is installed, where its file, settings and logs are, and — when
the service manager runs here — whether it is active.
Exit codes: 0 installed and active (or installed and the manager cannot be asked here);
3 not installed or not active.

Options:
  --user, --system   which systemd service (default: --system as root, --user otherwise)
  -h, --help         show this help`;

export const help = `Usage: hako service install|uninstall|status [--user | --system]

Runs hako as a service that starts at boot (or login) and restarts after a failure:
systemd on Linux (system-wide as root, --user otherwise), launchd on macOS.

  install     write the service file and enable it (--print shows it and changes nothing)
  uninstall   stop and disable the service and remove its file
  status      whether it is installed, where, and whether it is running

Run "hako service <subcommand> --help" for details. HAKO_SERVICE_DIR puts the file in
another folder and never touches the service manager (for tests and packaging).`;

const SUBCOMMANDS: Record<string, { help: string; body: (t: Target, v: Flags) => Promise<number> }> = {
  install: { help: installHelp, body: install },
  uninstall: { help: uninstallHelp, body: uninstall },
  status: { help: statusHelp, body: status },
};

interface Flags { readonly user?: boolean; readonly system?: boolean; readonly print?: boolean; readonly 'dry-run'?: boolean }

interface Target {
  readonly manager: 'systemd' | 'launchd';
  readonly user: boolean;
  readonly file: string;
  /** Why the service manager cannot be driven here; undefined when it can. */
  readonly blocked: string | undefined;
  readonly paths: ServicePaths;
}

function ctlOf(t: Target): string {
  return t.user ? 'systemctl --user' : 'systemctl';
}

/** HAKO_HOME and HAKO_CONFIG as `hako start` resolves them, without judging the other settings. */
function statePaths(env: NodeJS.ProcessEnv): { home: string; configDir: string } {
  const { home, configDir } = loadConfig({ HAKO_HOME: env.HAKO_HOME, HAKO_CONFIG: env.HAKO_CONFIG });
  return { home, configDir };
}

function targetOf(v: Flags, env: NodeJS.ProcessEnv): Target {
  if (v.user && v.system) throw new UsageError('choose one of --user and --system');
  const { home, configDir } = statePaths(env);
  const paths: ServicePaths = {
    node: process.execPath, entry: ENTRY, workdir: ROOT, home, configDir,
    envFile: path.join(configDir, 'hako.env'),
    pathVar: env.PATH || '/usr/local/bin:/usr/bin:/bin',
  };
  const override = env.HAKO_SERVICE_DIR ? path.resolve(env.HAKO_SERVICE_DIR) : undefined;
  if (process.platform === 'darwin') {
    if (v.system) throw new UsageError('--system is for systemd; on macOS hako installs a launchd agent for your user');
    const dir = override ?? path.join(os.homedir(), 'Library', 'LaunchAgents');
    return { manager: 'launchd', user: true, file: path.join(dir, `${LAUNCHD_LABEL}.plist`), blocked: override && 'HAKO_SERVICE_DIR is set, so launchd is not asked', paths };
  }
  if (process.platform !== 'linux') {
    throw new Error(`hako service knows systemd (Linux) and launchd (macOS), not ${process.platform}: run \`hako start\` under your own supervisor`);
  }
  const user = v.user === true || (!v.system && process.getuid?.() !== 0);
  const xdg = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  const dir = override ?? (user ? path.join(xdg, 'systemd', 'user') : '/etc/systemd/system');
  return { manager: 'systemd', user, file: path.join(dir, SERVICE_NAME), blocked: systemdBlocked(override), paths };
}

function systemdBlocked(override: string | undefined): string | undefined {
  if (!fs.existsSync(SYSTEMD_RUNTIME)) return `systemd is not running on this machine (PID 1 is not systemd: no ${SYSTEMD_RUNTIME})`;
  if (override) return 'HAKO_SERVICE_DIR is set, so systemd is not asked';
  return undefined;
}

function fileText(t: Target): string {
  return t.manager === 'systemd' ? systemdUnit({ ...t.paths, user: t.user }) : launchdPlist(t.paths);
}

function restartCommand(t: Target): string {
  return t.manager === 'systemd' ? `${ctlOf(t)} restart hako` : `launchctl kickstart -k gui/${process.getuid?.()}/${LAUNCHD_LABEL}`;
}

/** Runs a service-manager command; a failure names the command, its output and what to try. */
async function manage(cmd: string, args: string[], opts: { tolerate?: boolean } = {}): Promise<{ ok: boolean; stdout: string }> {
  try {
    const { stdout } = await exec(cmd, args, { timeout: 60_000 });
    return { ok: true, stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    if (opts.tolerate) return { ok: false, stdout: e.stdout ?? '' };
    const said = (e.stderr || e.message).trim().split('\n').slice(-3).join(' / ');
    throw new Error(`\`${[cmd, ...args].join(' ')}\` failed: ${said} (see \`hako service status\`; the service's own log: ${cmd === 'systemctl' ? 'journalctl -u hako' : 'HAKO_HOME/logs'})`);
  }
}

/** Creates the settings file owner-only with examples; an existing one is kept, but not one others can read. */
function ensureEnvFile(t: Target): string {
  const file = t.paths.envFile;
  fs.mkdirSync(t.paths.configDir, { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, envFileTemplate({ restart: restartCommand(t) }), { mode: 0o600, flag: 'wx' });
    return `created ${file} (mode 0600): put HAKO_MODEL and its key there — your shell's settings are not copied`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}) and may hold API keys: run chmod 600 ${file}, then hako service install again`);
  }
  return `kept ${file} (your settings; not changed)`;
}

/** Writes the file through a temporary name, so the manager never reads half of it. */
function writeServiceFile(t: Target, text: string): void {
  fs.mkdirSync(path.dirname(t.file), { recursive: true });
  const tmp = `${t.file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, t.file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new Error(`cannot write ${t.file} (permission denied): run it as root (sudo) for a system-wide service, or use hako service install --user`);
    }
    throw err;
  }
}

async function install(t: Target, v: Flags): Promise<number> {
  const text = fileText(t);
  if (v.print || v['dry-run']) {
    process.stdout.write(text);
    return 0;
  }
  console.log(ensureEnvFile(t));
  fs.mkdirSync(path.join(t.paths.home, 'logs'), { recursive: true, mode: 0o700 });
  const existed = fs.existsSync(t.file);
  writeServiceFile(t, text);
  console.log(`${existed ? 'replaced' : 'wrote'} ${t.file}:\n${text}`);
  if (t.blocked) {
    const then = t.manager === 'systemd'
      ? `${ctlOf(t)} daemon-reload && ${ctlOf(t)} enable --now hako`
      : `launchctl bootstrap gui/$(id -u) ${t.file}`;
    console.error(`hako: ${t.blocked}: the file is written but cannot be enabled here. Run \`hako start\` under your own supervisor instead, or where ${t.manager} runs: ${then}`);
    return NOT_RUNNING;
  }
  return t.manager === 'systemd' ? enableSystemd(t) : enableLaunchd(t);
}

async function enableSystemd(t: Target): Promise<number> {
  const ctl = t.user ? ['--user'] : [];
  // restart, not start: a reinstall (a new Node, a moved checkout) takes effect now.
  for (const args of [['daemon-reload'], ['enable', SERVICE_NAME], ['restart', SERVICE_NAME]]) {
    console.log(`running: systemctl ${[...ctl, ...args].join(' ')}`);
    await manage('systemctl', [...ctl, ...args]);
  }
  console.log(`hako runs as a service now: hako service status; logs: journalctl ${t.user ? '--user ' : ''}-u hako -f`);
  if (t.user) console.log(`to keep it running while you are logged out: loginctl enable-linger ${os.userInfo().username}`);
  return 0;
}

async function enableLaunchd(t: Target): Promise<number> {
  const domain = `gui/${process.getuid?.()}`;
  // An agent loaded from an earlier install must go first, or bootstrap refuses.
  await manage('launchctl', ['bootout', `${domain}/${LAUNCHD_LABEL}`], { tolerate: true });
  console.log(`running: launchctl bootstrap ${domain} ${t.file}`);
  await manage('launchctl', ['bootstrap', domain, t.file]);
  const logs = launchdLogs(t.paths.home);
  console.log(`hako runs as a launchd agent now: hako service status; logs: ${logs.out}, ${logs.err}`);
  return 0;
}

async function uninstall(t: Target): Promise<number> {
  if (!fs.existsSync(t.file)) {
    console.log(`hako service: not installed (no ${t.file}); nothing to do`);
    return 0;
  }
  if (t.manager === 'systemd' && !t.blocked) {
    const ctl = t.user ? ['--user'] : [];
    console.log(`running: systemctl ${[...ctl, 'disable', '--now', SERVICE_NAME].join(' ')}`);
    await manage('systemctl', [...ctl, 'disable', '--now', SERVICE_NAME]);
  }
  if (t.manager === 'launchd' && !t.blocked) {
    console.log(`running: launchctl bootout gui/${process.getuid?.()}/${LAUNCHD_LABEL}`);
    await manage('launchctl', ['bootout', `gui/${process.getuid?.()}/${LAUNCHD_LABEL}`], { tolerate: true });
  }
  fs.rmSync(t.file, { force: true });
  if (t.manager === 'systemd' && !t.blocked) await manage('systemctl', [...(t.user ? ['--user'] : []), 'daemon-reload']);
  console.log(`removed ${t.file}${t.blocked ? ` (${t.blocked}: nothing to stop)` : ''}`);
  console.log(`kept ${t.paths.envFile} and ${t.paths.home} (your settings and data)`);
  return 0;
}

/** The manager's word for the service's state ("active", "inactive", "failed", "running", …). */
async function activeState(t: Target): Promise<string> {
  if (t.manager === 'systemd') {
    const r = await manage('systemctl', [...(t.user ? ['--user'] : []), 'is-active', SERVICE_NAME], { tolerate: true });
    return r.stdout.trim() || 'unknown';
  }
  const r = await manage('launchctl', ['print', `gui/${process.getuid?.()}/${LAUNCHD_LABEL}`], { tolerate: true });
  if (!r.ok) return 'not loaded';
  return /^\s*state = (\S+)/m.exec(r.stdout)?.[1] ?? 'loaded';
}

async function status(t: Target): Promise<number> {
  const kind = t.manager === 'launchd' ? 'launchd agent' : `systemd, ${t.user ? '--user' : 'system-wide'}`;
  if (!fs.existsSync(t.file)) {
    console.log(`hako service: not installed (${kind}: no ${t.file}); install it with: hako service install${t.manager === 'systemd' && t.user ? ' --user' : ''}`);
    return NOT_RUNNING;
  }
  const logs = t.manager === 'systemd'
    ? `journalctl ${t.user ? '--user ' : ''}-u hako, ${t.paths.home}/logs/hako.log`
    : `${launchdLogs(t.paths.home).out}, ${launchdLogs(t.paths.home).err}, ${t.paths.home}/logs/hako.log`;
  console.log(`hako service: installed (${kind}): ${t.file}`);
  console.log(`  settings: ${t.paths.envFile}${fs.existsSync(t.paths.envFile) ? '' : ' (missing: hako service install creates it)'}`);
  console.log(`  logs:     ${logs}`);
  if (t.blocked) {
    console.log(`  state:    unknown — ${t.blocked}`);
    return 0;
  }
  const state = await activeState(t);
  console.log(`  state:    ${state}`);
  return state === 'active' || state === 'running' ? 0 : NOT_RUNNING;
}

export function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const sub = name === undefined ? undefined : SUBCOMMANDS[name];
  if (!sub) {
    return runCommand(help, async () => {
      if (name === '--help' || name === '-h') { console.log(help); return 0; }
      throw new UsageError(name === undefined ? 'service: say install, uninstall or status' : `service: unknown subcommand ${JSON.stringify(name)}`);
    });
  }
  return runCommand(sub.help, async () => {
    const parsed = parse(rest, { user: { type: 'boolean' }, system: { type: 'boolean' }, print: { type: 'boolean' }, 'dry-run': { type: 'boolean' } }, sub.help);
    if (!parsed) return 0;
    if (parsed.positionals.length > 0) throw new UsageError(`service ${name}: unexpected argument '${parsed.positionals[0]}'`);
    if (name !== 'install' && (parsed.values.print || parsed.values['dry-run'])) {
      throw new UsageError(`service ${name}: --print and --dry-run are options of hako service install`, { showHelp: false });
    }
    return sub.body(targetOf(parsed.values as Flags, process.env), parsed.values as Flags);
  });
}
