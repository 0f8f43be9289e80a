// Argument parsing shared by every subcommand: util.parseArgs in strict mode, `--help`
// handled uniformly, and usage errors reported the same way everywhere.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { safeText } from '../core/safe-text.ts';
import { NotRunningError } from './client.ts';

export class UsageError extends Error {
  override name = 'UsageError';
  /** False when the message already points at `--help`: the whole usage text would bury it. */
  readonly showHelp: boolean;

  constructor(message: string, opts: { showHelp?: boolean } = {}) {
    super(message);
    this.showHelp = opts.showHelp ?? true;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The command a help text is for ("hako groups"), from its first `hako …` words. */
function commandOf(help: string): string {
  return /hako [a-z][a-z-]*/.exec(help)?.[0] ?? 'hako';
}

/**
 * One line for a parseArgs error: Node's text is several sentences about positionals and
 * `--` that do not apply to hako. Its errors name the option only in the message text.
 */
export function usageMessage(err: unknown, help: string): string {
  const e = err as { code?: unknown; message?: unknown };
  const text = String(e.message ?? err);
  const option = /'(-{1,2}[^' ]+)/.exec(text)?.[1];
  const see = `(see: ${commandOf(help)} --help)`;
  if (!option) return `${text.split('\n')[0]} ${see}`;
  const name = JSON.stringify(option);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${name} ${see}`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(text)) return `option ${name} takes no value ${see}`;
    if (/ambiguous/.test(text)) return `option ${name} needs a value; for one starting with "-", write ${option}=-VALUE ${see}`;
    return `option ${name} needs a value ${see}`;
  }
  return `${text.split('\n')[0]} ${see}`;
}

/** Parses `args`; returns undefined after printing help when --help was given. */
export function parse<O extends Options>(args: string[], options: O, help: string) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(usageMessage(err, help), { showHelp: false });
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
      console.error(err.showHelp ? `hako: ${err.message}\n\n${help}` : `hako: ${err.message}`);
      return 2;
    }
    // Its message is a sentence that starts with "hako": a prefix would read "hako: hako …".
    if (err instanceof NotRunningError) {
      console.error(err.message);
      return 1;
    }
    // A reason may quote text from an agent or a chat (a task's error, a name): escaped.
    console.error(`hako: ${safeText(err instanceof Error ? err.message : String(err))}`);
    return 1;
  }
}
