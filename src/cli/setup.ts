// `hako setup`: make this machine ready to run agents — a container engine that answers
// and an agent image built from the current sources. Run by `npm start` and `npm test`.
import { ensureEngine } from '../runtime/engine.ts';
import { ensureImage } from '../runtime/image.ts';
import { withInterrupt } from './abort.ts';
import { parse, runCommand, UsageError } from './args.ts';

export const help = `Usage: hako setup [--offline]

Prepare this machine to run hako agents:
  1. make sure a container engine answers \`docker info\` where the docker CLI points
     (DOCKER_HOST, else DOCKER_CONTEXT or the current \`docker context\`, else
     unix:///var/run/docker.sock); as root on Debian/Ubuntu this installs docker.io and
     starts the daemon, but only for that default socket and only when no dockerd is
     running; otherwise it names the endpoint it tried and says what to fix or start;
  2. build the agent image (hako-agent:<version>) unless it matches the current sources;
  3. load the host's modules once, so that \`hako start\` finds them in the compile cache
     (~/.cache/hako/compile-cache) and starts lean right after an install or an update.

Options:
  --offline   Build the image without an image registry (see \`hako image --help\`).
  -h, --help  Show this help.`;

export function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { offline: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    if (parsed.positionals.length > 0) throw new UsageError(`setup: unexpected argument '${parsed.positionals[0]}'`);
    const log = (line: string) => console.log(line);
    await withInterrupt(async (signal) => {
      log('setup: checking the container engine');
      await ensureEngine({ install: true, log, signal });
      log('setup: checking the agent image');
      await ensureImage({ ...(parsed.values.offline ? { offline: true } : {}), install: true, log, signal });
    });
    // Stripping TypeScript costs this short-lived process, not the long-running host: the
    // launcher (bin/hako.mjs) has the compile cache on, and Node writes it at exit.
    await import('./start.ts');
    log('setup: host modules loaded into the compile cache');
    log('setup: ready');
    return 0;
  });
}
