// Turns Ctrl-C / SIGTERM into an AbortSignal for long CLI commands. Builds run in their own
// process group (see runtime/exec.ts), so the terminal's SIGINT does not reach them; aborting
// is what stops them.

/**
 * Runs `work` with a signal that aborts on SIGINT or SIGTERM; the handlers are removed
 * afterwards. Contract: rejects like `work` does (with the abort reason when interrupted).
 */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => controller.abort(new Error(`interrupted (${name})`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
