// One JSON line per event on stderr: the host captures container logs, so this is the
// agent's whole audit trail from the inside. Never logs message or file contents.

export type Logger = (event: string, fields?: Readonly<Record<string, unknown>>) => void;

export const stderrLogger: Logger = (event, fields = {}) => {
  // `t`: the same instant in epoch milliseconds with sub-millisecond precision, so a turn's
  // hops can be lined up with the host's marks (src/core/trace.ts) on one clock.
  const t = performance.timeOrigin + performance.now();
  process.stderr.write(`${JSON.stringify({ ts: new Date(t).toISOString(), t: Math.round(t * 1000) / 1000, event, ...fields })}\n`);
};

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
