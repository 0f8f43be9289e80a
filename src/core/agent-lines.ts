// An agent's output lines, on their way into the host's log. The container is not trusted:
// a line is logged only as a string field of the host's own `agent` line, at the level the
// agent's JSON line names (agent/log.ts) or else at debug, and at most AGENT_LINES_PER_MINUTE
// a minute above debug, so a flooding agent cannot rotate the host's own lines out of hako.log.

import { LEVELS, type Level, type Logger } from './log.ts';
import { perMinute } from './per-minute.ts';

/** Longest part of a line that is logged. */
const MAX_LOGGED_CHARS = 2000;

/**
 * The level an agent's output line is relayed at: the level its JSON line names (agent/log.ts),
 * else debug. Raw output (a tool's stray write, a crash's stack) stays at debug: an exit that
 * matters is logged with the last lines of the output anyway.
 */
export function agentLineLevel(line: string): Level {
  if (!line.startsWith('{')) return 'debug';
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level === 'string' && Object.hasOwn(LEVELS, level) ? level as Level : 'debug';
  } catch {
    return 'debug';
  }
}

/** An agent's lines logged above debug per container per minute; the rest of the minute's go at debug. */
export const AGENT_LINES_PER_MINUTE = 20;

/**
 * Relays one container's output lines: each at its own level (agentLineLevel) while the
 * minute's budget lasts, then at debug, so an agent that floods its log cannot rotate the
 * host's own lines out of hako.log. `over` is true for the first line past the budget in a
 * minute, so the owner is told once a minute.
 */
export function agentLineRelay(now: () => number = Date.now): (line: string) => { level: Level; over: boolean } {
  const budget = perMinute(AGENT_LINES_PER_MINUTE, now);
  return (line) => {
    const level = agentLineLevel(line);
    if (level === 'debug') return { level, over: false };
    const { within, over } = budget();
    return within ? { level, over: false } : { level: 'debug', over };
  };
}

/** Logs one container's output lines into the host's log (see the module comment). */
export function relayAgentLines(log: Logger, where: { readonly group: string; readonly container: string }, now: () => number = Date.now): (line: string) => void {
  const relay = agentLineRelay(now);
  return (line) => {
    const { level, over } = relay(line);
    if (over) log.warn('agent log lines over budget', { ...where, perMinute: AGENT_LINES_PER_MINUTE, hint: 'the agent wrote more lines than that at info or above in a minute; the rest of the minute\'s are logged at debug' });
    log[level]('agent', { ...where, line: line.slice(0, MAX_LOGGED_CHARS) });
  };
}
