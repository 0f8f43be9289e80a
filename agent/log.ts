// One JSON line per event on stderr: the host captures container logs, so this is the
// agent's whole audit trail from the inside. Never logs message or file contents.

export type Logger = (event: string, fields?: Readonly<Record<string, unknown>>) => void;

export const stderrLogger: Logger = (event, fields = {}) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), event, ...fields })}\n`);
};

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
