// One JSON line per event on stderr: the host reads the container's output and relays each
// line to its own log at the line's level, so this is the agent's whole trail from the inside.
// Never logs message or file contents.
//
// Every event has a level (EVENT_LEVELS). The per-turn progress events are `debug`, and the
// agent writes them only when the host runs at debug (HAKO_LOG_LEVEL=debug in the container's
// environment): at the default level the host would drop them, and each line costs a write,
// a wake-up of the engine's shim and daemon, and the host's reading (bench/README.md).

import type { LogLevel } from '../protocol/container.ts';

/** The level of each event the agent logs; a new event must be given one here. */
export const EVENT_LEVELS = {
  // A turn's progress: one or more lines per batch, model request, tool call and output.
  batch_start: 'debug', turn_start: 'debug', model_request: 'debug', model_response: 'debug',
  tool_start: 'debug', tool_end: 'debug', turn_end: 'debug', output: 'debug', response: 'debug',
  close: 'debug', subagent_start: 'debug', subagent_tool: 'debug', subagent_end: 'debug',
  // Once per container, or rare and worth knowing about.
  agent_start: 'info', agent_exit: 'info', signal: 'info', history_compacted: 'info',
  history_cut: 'info', history_recovered: 'info', system_prompt_cut: 'info',
  // Something did not work; the agent went on.
  history_save_failed: 'warn', archive_failed: 'warn', output_failed: 'warn', batch_failed: 'warn',
  input_rejected: 'warn', inbox_error: 'warn', forwarder_error: 'warn', mkdir_failed: 'warn',
  response_unknown: 'warn', request_abandoned: 'warn',
  // The agent cannot serve.
  config_error: 'error', fatal: 'error',
} as const satisfies Record<string, LogLevel>;

export type AgentEvent = keyof typeof EVENT_LEVELS;

export type Logger = (event: AgentEvent, fields?: Readonly<Record<string, unknown>>) => void;

/** Whether the agent writes `debug` events: only when the host asked for them. */
export function writesDebug(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.HAKO_LOG_LEVEL === 'debug';
}

/** A logger that writes each event at or above the minimum level as one line to `write`. */
export function lineLogger(write: (line: string) => void, debug: boolean): Logger {
  return (event, fields = {}) => {
    const level = EVENT_LEVELS[event];
    if (level === 'debug' && !debug) return;
    // `t`: the same instant in epoch milliseconds with sub-millisecond precision, so a turn's
    // hops can be lined up with the host's marks (src/core/trace.ts) on one clock.
    const t = performance.timeOrigin + performance.now();
    write(`${JSON.stringify({ ts: new Date(t).toISOString(), t: Math.round(t * 1000) / 1000, level, event, ...fields })}\n`);
  };
}

export const stderrLogger: Logger = lineLogger((line) => process.stderr.write(line), writesDebug(process.env));

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
