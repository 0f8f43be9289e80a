// `hako` command line: dispatches to one module per subcommand (src/cli/). Each module
// exports `help` and `run(args) → exit code`, and is loaded only when used. The `hako`
// command itself is bin/hako.mjs, which prepares the process and then imports this file.

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(args: string[]): Promise<number>; help: string }> }> = {
  start: { summary: 'run the assistant (host, HTTP API, web chat)', load: () => import('./cli/start.ts') },
  chat: { summary: 'chat with a group in this terminal', load: () => import('./cli/chat.ts') },
  web: { summary: 'print a one-time sign-in link to the web chat', load: () => import('./cli/web.ts') },
  status: { summary: 'what the running host is doing', load: () => import('./cli/status.ts') },
  groups: { summary: 'add, change, list or remove groups', load: () => import('./cli/groups.ts') },
  tasks: { summary: 'list, approve, reject, pause, resume, cancel or run scheduled tasks', load: () => import('./cli/tasks.ts') },
  memory: { summary: 'show or edit a group\'s MEMORY.md, or the global one', load: () => import('./cli/memory.ts') },
  logs: { summary: 'print or follow the host\'s log (human view or JSON lines)', load: () => import('./cli/logs.ts') },
  audit: { summary: 'list audit records or verify the hash chain', load: () => import('./cli/audit.ts') },
  backup: { summary: 'write a consistent copy of hako\'s state to a file (the host may run)', load: () => import('./cli/backup.ts') },
  restore: { summary: 'restore a backup into an empty HAKO_HOME', load: () => import('./cli/restore.ts') },
  doctor: { summary: 'check the installation and say how to fix problems', load: () => import('./cli/doctor.ts') },
  skill: { summary: 'list, add or remove skills (chat channels such as Telegram, e-mail)', load: () => import('./cli/skill.ts') },
  image: { summary: 'build or inspect the agent container image', load: () => import('./cli/image.ts') },
  setup: { summary: 'install/start the container engine and build the image', load: () => import('./cli/setup.ts') },
  service: { summary: 'run hako as a systemd or launchd service (install, uninstall, status)', load: () => import('./cli/service.ts') },
};

export const USAGE = `hako — a personal AI assistant whose agents live in containers

Usage: hako <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

Run "hako <command> --help" for a command's options.
Configuration is read from the environment: see docs/CONFIGURATION.md.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  if (name === '--version') {
    const { readFileSync } = await import('node:fs');
    console.log(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`hako: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    console.error(`hako: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
