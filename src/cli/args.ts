// Argument parsing shared by every subcommand: util.parseArgs in strict mode, `--help`
// handled uniformly, and usage errors reported the same way everywhere.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { safeText } from '../core/safe-text.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses `args`; returns undefined after printing help when --help was given. */
export function parse<O extends Options>(args: string[], options: O, help: string) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if ((parsed.values as Record<string, unknown>).help) {
    console.log(help);
    return undefined;
  }
  return parsed;
}

/** Runs a subcommand body, turning usage and other errors into messages and exit codes. */
export async function runCommand(help: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`hako: ${err.message}\n\n${help}`);
      return 2;
    }
    // A reason may quote text from an agent or a chat (a task's error, a name): escaped.
    console.error(`hako: ${safeText(err instanceof Error ? err.message : String(err))}`);
    return 1;
  }
}
