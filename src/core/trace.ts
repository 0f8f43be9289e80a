// Hop marks of a turn, for profiling where a warm turn's time goes (bench/profile/warm-trace.ts):
// one debug log line per mark with a sub-millisecond wall-clock time, the clock the agent's log
// lines (their `t`) and the bench use too. At the default log level a mark is a level check.

import type { Fields, Logger } from './log.ts';

/** Milliseconds since the epoch with sub-millisecond precision (one clock for every process on the machine). */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/** Logs hop `hop` of a turn at debug level, stamped with wallNow(). */
export function mark(log: Logger, hop: string, fields: Fields): void {
  log.debug('hop', { hop, at: wallNow(), ...fields });
}
