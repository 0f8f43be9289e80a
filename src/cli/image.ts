// `hako image`: build the agent image or show whether it matches the current sources.
import { ensureEngine } from '../runtime/engine.ts';
import { buildImage, imageStatus } from '../runtime/image.ts';
import { withInterrupt } from './abort.ts';
import { parse, runCommand, UsageError } from './args.ts';

export const help = `Usage: hako image <command> [options]

Build and inspect the agent container image (hako-agent:<version>).

Commands:
  build [--offline]  Build the image from the current sources. Uses container/Dockerfile
                     when an image registry answers, otherwise the offline build.
  status             Print the image tag, its state (missing, stale, current) and the
                     source hash.

Options:
  --offline          Build from Debian packages and this host's Node binary, without an
                     image registry (Linux; needs mmdebstrap). HAKO_IMAGE_OFFLINE=1 does
                     the same; HAKO_IMAGE_OFFLINE=0 forces the Dockerfile build.
  -h, --help         Show this help.`;

export function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { offline: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const [command, ...rest] = parsed.positionals;
    if (rest.length > 0) throw new UsageError(`image: unexpected argument '${rest[0]}'`);
    if (command === 'build') return build(parsed.values.offline);
    if (command === 'status') {
      if (parsed.values.offline !== undefined) throw new UsageError("image: '--offline' applies to 'image build' only");
      return status();
    }
    throw new UsageError(command === undefined ? 'image: missing command' : `image: unknown command '${command}'`);
  });
}

async function build(offline: boolean | undefined): Promise<number> {
  const log = (line: string) => console.log(line);
  await withInterrupt(async (signal) => {
    await ensureEngine({ install: false, log, signal });
    await buildImage({ ...(offline ? { offline } : {}), log, signal });
  });
  return 0;
}

async function status(): Promise<number> {
  const s = await imageStatus();
  console.log(`tag:          ${s.tag}`);
  console.log(`state:        ${s.state}`);
  console.log(`source hash:  ${s.sourceHash}`);
  if (s.state !== 'missing') {
    console.log(`image hash:   ${s.imageHash ?? '(none)'}`);
    console.log(`built with:   ${s.build ?? 'unknown'}`);
  }
  return 0;
}
