// The tool registry: an explicit map from every name in protocol TOOL_SPECS to its handler,
// and the executor the loop calls. The executor never throws: a throwing handler is an error result.

import { TOOL_SPECS, type ToolSpec } from '../../protocol/tools.ts';
import { bash } from './bash.ts';
import { editFileTool, readFileTool, writeFileTool } from './files.ts';
import { remember } from './memory.ts';
import { globTool, grepTool } from './search.ts';
import { sendMessageTool } from './send.ts';
import { noSwarm } from './spawn.ts';
import { registerGroupTool, TASK_TOOLS } from './tasks.ts';
import { webFetchTool } from './web.ts';
import { capText, fail, type ToolArgs, type ToolContext, type ToolHandler, type ToolResult } from './types.ts';

export type { ToolContext, ToolResult } from './types.ts';

export const TOOL_HANDLERS: Readonly<Record<string, ToolHandler>> = {
  bash,
  read_file: readFileTool,
  write_file: writeFileTool,
  edit_file: editFileTool,
  remember,
  glob: globTool,
  grep: grepTool,
  send_message: sendMessageTool,
  web_fetch: webFetchTool,
  schedule_task: TASK_TOOLS.schedule_task,
  list_tasks: TASK_TOOLS.list_tasks,
  pause_task: TASK_TOOLS.pause_task,
  resume_task: TASK_TOOLS.resume_task,
  cancel_task: TASK_TOOLS.cancel_task,
  register_group: registerGroupTool,
  // turn.ts gives each parent turn its own (spawnAgentsTool); this refusal is what sub-agents get.
  spawn_agents: noSwarm,
};

/** Hard cap on any one result, above every tool's own cap (read_file's 200 000 is the largest). */
export const MAX_TOOL_RESULT_CHARS = 210_000;

/**
 * Contract: called only with a known tool name and arguments that passed `argsProblem`;
 * never rejects; honours `signal`.
 */
export type ToolExecutor = (name: string, args: ToolArgs, signal: AbortSignal) => Promise<ToolResult>;

export function createToolExecutor(ctx: ToolContext, handlers: Readonly<Record<string, ToolHandler>> = TOOL_HANDLERS): ToolExecutor {
  return async (name, args, signal) => {
    const handler = handlers[name];
    if (!handler) return fail(`unknown tool "${name}"`);
    try {
      const r = await handler(args, ctx, signal);
      return { text: capText(r.text, MAX_TOOL_RESULT_CHARS), isError: r.isError };
    } catch (err) {
      return fail(`${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}

/** The specs the model is offered: exactly those with a handler here. */
export const AGENT_TOOLS: readonly ToolSpec[] = TOOL_SPECS.filter((s) => s.name in TOOL_HANDLERS);
