// `hako web`: prints a fresh web chat link. The link holds a one-time sign-in code from
// the running host (single use, 10 minutes), never the API token, which would stay in
// the browser's history files.

import { loadConfig } from '../core/config.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { hostClient } from './client.ts';

export const help = `Usage: hako web [--base URL]

Prints a link that opens the web chat of the running hako and signs the browser in.
The link works once, within 10 minutes; run "hako web" again for another.

  --base URL   the address another device reaches hako at, behind a TLS proxy
               (e.g. --base https://hako.example.com; see "Reach it from your phone"
               in the README): the link is printed with it instead of 127.0.0.1`;

/** The sign-in link moved to the address the owner's phone uses; only its origin changes. */
export function rebase(link: string, base: string): string {
  if (!URL.canParse(base)) throw new UsageError(`--base "${base}" is not a URL: give the address the phone opens, e.g. https://hako.example.com`);
  const b = new URL(base);
  if (b.protocol !== 'https:' && b.protocol !== 'http:') throw new UsageError(`--base must be an https:// address, not ${b.protocol}`);
  if (b.pathname !== '/' || b.search || b.hash || b.username || b.password) throw new UsageError(`--base takes only scheme, host and port (e.g. https://hako.example.com), not "${base}"`);
  const u = new URL(link);
  return `${b.origin}${u.pathname}${u.search}${u.hash}`;
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { base: { type: 'string' } }, help);
    if (!parsed) return 0;
    if (parsed.positionals.length) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
    const { base } = parsed.values;
    if (base !== undefined) rebase('http://127.0.0.1/', base);
    const { url } = await hostClient(loadConfig()).call('/api/session-codes', { method: 'POST' });
    const link = base === undefined ? String(url) : rebase(String(url), base);
    const plain = link.startsWith('http://') && base !== undefined ? '\n(plain http: the code crosses the network readable; use an https address)' : '';
    console.log(`${link}\n(works once, within 10 minutes)${plain}`);
    return 0;
  });
}
