// `hako web`: prints a fresh web chat link. The link holds a one-time sign-in code from
// the running host (single use, 10 minutes), never the API token, which would stay in
// the browser's history files.

import { loadConfig } from '../core/config.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { hostClient } from './client.ts';

export const help = `Usage: hako web

Prints a link that opens the web chat of the running hako and signs the browser in.
The link works once, within 10 minutes; run "hako web" again for another.`;

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, {}, help);
    if (!parsed) return 0;
    if (parsed.positionals.length) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
    const { url } = await hostClient(loadConfig()).call('/api/session-codes', { method: 'POST' });
    console.log(`${String(url)}\n(works once, within 10 minutes)`);
    return 0;
  });
}
