// The text of the files `hako service` writes — the systemd unit, the launchd agent and the
// settings file — as pure functions of plain data, so tests can check them with the real
// parsers (systemd-analyze, plistlib) without installing anything.
//
// Invariants: no setting value and no secret is ever written into a unit or plist: they
// hold only paths (Node, bin/hako.mjs, HAKO_HOME, HAKO_CONFIG, the settings file) and the
// PATH the installing shell had. A path that cannot be written safely in the target format
// (a newline or another control character) is refused, never mangled.

export const SERVICE_NAME = 'hako.service';
export const LAUNCHD_LABEL = 'dev.hako';

export interface ServicePaths {
  /** Absolute path of the Node binary (process.execPath at install time). */
  readonly node: string;
  /** Absolute path of bin/hako.mjs. */
  readonly entry: string;
  /** The checkout the entry belongs to: the service's working directory. */
  readonly workdir: string;
  readonly home: string;
  readonly configDir: string;
  /** HAKO_CONFIG/hako.env: the settings (model, keys, ports) the service reads at start. */
  readonly envFile: string;
  /** PATH of the installing shell: the service finds `docker` (and runsc) where the owner does. */
  readonly pathVar: string;
}

export class ServiceFileError extends Error {
  override name = 'ServiceFileError';
}

function refuseControl(value: string, what: string): string {
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new ServiceFileError(`${what} ${JSON.stringify(value)} contains a control character (a newline?) that a service file cannot hold: move hako or set ${what === 'PATH' ? 'PATH' : 'HAKO_HOME/HAKO_CONFIG'} to a plain path`);
  }
  return value;
}

/**
 * One word for ExecStart=: always double-quoted so spaces stay inside it; `\` and `"` are
 * C-escaped and `%` doubled (systemd specifiers). `$` is doubled in arguments, which
 * systemd expands, but not in the program path, which it takes literally.
 */
export function systemdWord(value: string, opts: { program: boolean }): string {
  refuseControl(value, 'path');
  if (opts.program && /["'\\]/.test(value)) {
    throw new ServiceFileError(`systemd refuses to run a program whose path has a quote or a backslash (${JSON.stringify(value)}): run hako service install with a Node installed under a plain path`);
  }
  const quoted = value.replace(/[\\"]/g, (c) => '\\' + c).replace(/%/g, '%%');
  return '"' + (opts.program ? quoted : quoted.replace(/\$/g, '$$$$')) + '"';
}

/** A value for a setting that takes the rest of the line as one path (WorkingDirectory=, EnvironmentFile=). */
function systemdPath(value: string): string {
  return refuseControl(value, 'path').replace(/%/g, '%%');
}

/** One `"NAME=value"` assignment for Environment=: no `$` expansion happens there, `%` does. */
function systemdEnv(name: string, value: string): string {
  refuseControl(value, name === 'PATH' ? 'PATH' : 'path');
  return '"' + `${name}=${value}`.replace(/[\\"]/g, (c) => '\\' + c).replace(/%/g, '%%') + '"';
}

export interface UnitOptions extends ServicePaths {
  /** A user unit (`systemctl --user`) rather than a system-wide one. */
  readonly user: boolean;
}

/** The systemd unit. Hardening stays modest on purpose: the host must reach the Docker socket. */
export function systemdUnit(o: UnitOptions): string {
  const journal = o.user ? 'journalctl --user -u hako' : 'journalctl -u hako';
  const ctl = o.user ? 'systemctl --user' : 'systemctl';
  return [
    '# Written by `hako service install`; `hako service uninstall` removes it.',
    `# Settings (model, keys, port): ${o.envFile} — then \`${ctl} restart hako\`.`,
    `# Logs: \`${journal}\` and ${o.home}/logs/hako.log.`,
    '[Unit]',
    'Description=hako personal assistant (agents in containers)',
    // Ordering only: hako honours DOCKER_HOST and needs no local engine unit.
    ...(o.user ? ['After=docker.service'] : ['After=network-online.target docker.service', 'Wants=network-online.target']),
    // At most 5 starts in 10 minutes: a broken setting stops the loop instead of spinning.
    'StartLimitIntervalSec=600',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${systemdWord(o.node, { program: true })} ${systemdWord(o.entry, { program: false })} start`,
    `WorkingDirectory=${systemdPath(o.workdir)}`,
    `Environment=${systemdEnv('HAKO_HOME', o.home)} ${systemdEnv('HAKO_CONFIG', o.configDir)}`,
    `Environment=${systemdEnv('PATH', o.pathVar)}`,
    // "-": a missing file is no error; hako then runs with its defaults and says what is missing.
    `EnvironmentFile=-${systemdPath(o.envFile)}`,
    'Restart=on-failure',
    'RestartSec=10',
    // SIGTERM to the host only: it stops its containers itself (docker commands it runs
    // while stopping must not be killed with it); the rest is killed after the timeout.
    'KillMode=mixed',
    'TimeoutStopSec=45',
    'NoNewPrivileges=yes',
    'StandardOutput=journal',
    'StandardError=journal',
    '',
    '[Install]',
    `WantedBy=${o.user ? 'default.target' : 'multi-user.target'}`,
    '',
  ].join('\n');
}

function xml(value: string): string {
  return refuseControl(value, 'path').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const str = (v: string) => `<string>${xml(v)}</string>`;

/** Where launchd sends the host's stdout and stderr (the host also writes logs/hako.log). */
export function launchdLogs(home: string): { out: string; err: string } {
  return { out: `${home}/logs/service.out.log`, err: `${home}/logs/service.err.log` };
}

/**
 * The launchd agent. launchd has no environment file, so Node reads the settings file
 * itself (`--env-file-if-exists`); variables set here (HAKO_HOME, HAKO_CONFIG) win over it.
 */
export function launchdPlist(o: ServicePaths): string {
  const logs = launchdLogs(o.home);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    `<!-- Written by \`hako service install\`; settings: ${xml(o.envFile).replace(/--/g, '- -')} -->`,
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key>${str(LAUNCHD_LABEL)}`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...[o.node, `--env-file-if-exists=${o.envFile}`, o.entry, 'start'].map((a) => `    ${str(a)}`),
    '  </array>',
    `  <key>WorkingDirectory</key>${str(o.workdir)}`,
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    `    <key>HAKO_HOME</key>${str(o.home)}`,
    `    <key>HAKO_CONFIG</key>${str(o.configDir)}`,
    `    <key>PATH</key>${str(o.pathVar)}`,
    '  </dict>',
    '  <key>RunAtLoad</key><true/>',
    // Restart after a crash or a failed start, not after a clean stop.
    '  <key>KeepAlive</key>',
    '  <dict><key>SuccessfulExit</key><false/></dict>',
    '  <key>ThrottleInterval</key><integer>10</integer>',
    `  <key>StandardOutPath</key>${str(logs.out)}`,
    `  <key>StandardErrorPath</key>${str(logs.err)}`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

/** The settings file created on first install (0600): commented examples only, no values. */
export function envFileTemplate(o: { restart: string }): string {
  return `# hako service settings, read at every start of the service. One NAME=value per line;
# every variable is described in docs/CONFIGURATION.md. This file is owner-only (0600)
# because it may hold API keys; chat channel tokens belong in secrets.env next to it.
# HAKO_HOME and HAKO_CONFIG are fixed in the service file: do not set them here.
# After a change: ${o.restart}
#
# Anthropic:
#HAKO_MODEL=anthropic/claude-sonnet-4-5
#ANTHROPIC_API_KEY=sk-ant-...
#
# Or a local model through Ollama (no key needed):
#HAKO_MODEL=openai/gpt-oss:20b
#OPENAI_BASE_URL=http://127.0.0.1:11434/v1
#
#HAKO_HTTP_PORT=7878
#HAKO_TZ=Europe/Berlin
`;
}
