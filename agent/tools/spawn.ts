// The spawn_agents tool: runs a few sub-agents at once, inside this agent process, and hands
// their final answers back to the parent as one tool result.
// Invariants: a sub-agent starts from a fresh context (its own task + the group's memory via
// its system prompt, never the parent's history or the other tasks); it is offered only
// SUBAGENT_TOOLS (no spawn_agents, nothing that sends chat messages, schedules tasks or
// registers groups: only the parent speaks to the host), and its executor refuses anything
// else; at most `maxAgents` run per call (more is refused, nothing starts); each has a step
// limit and a deadline and shares the parent's abort signal; one sub-agent's failure is a
// section of the result, never a failed turn.

import type { ToolSpec } from '../../protocol/tools.ts';
import { archiveTurn } from '../archive.ts';
import { errorText, type Logger } from '../log.ts';
import { runToEnd, type LoopOptions, type LoopResult } from '../loop.ts';
import type { Provider } from '../providers/provider.ts';
import type { ToolExecutor } from './index.ts';
import { capText, fail, ok, type ToolContext, type ToolHandler, type ToolResult } from './types.ts';

/**
 * The tools a sub-agent may use: they act only inside the group's folder or through the
 * group's proxy. Left out: spawn_agents (no recursion), send_message (only the parent answers
 * the chat; it could also reach other groups from main), schedule_task / pause_task /
 * resume_task / cancel_task / register_group / list_tasks (requests to the host: they outlive
 * or reach beyond the turn, so the parent decides them), remember (durable memory is the
 * parent's to curate, and from main its global scope reaches every group). A tool added
 * later is left out until it is named here (fail closed).
 */
export const SUBAGENT_TOOLS: readonly string[] = ['bash', 'read_file', 'write_file', 'edit_file', 'glob', 'grep', 'web_fetch'];

/** Characters of the whole result, under the executor's cap so no section is cut blindly. */
const RESULT_CHARS = 200_000;
/** Words of a task's prompt shown in its title. */
const TITLE_WORDS = 8;

/** What the parent's turn lends its sub-agents (turn.ts builds it once per batch). */
export interface Swarm {
  readonly provider: Provider;
  /**
   * Contract: resolves with a sub-agent's system prompt (identity, rules, the group's and the
   * global memory; never the parent's history). May reject: the call then fails as a whole.
   */
  readonly systemPrompt: () => Promise<string>;
  /** Specs of every tool the parent has; a sub-agent is offered only SUBAGENT_TOOLS of them. */
  readonly tools: readonly ToolSpec[];
  /**
   * Contract: builds an executor over the default handlers (whose spawn_agents is `noSwarm`)
   * for the given context; never throws. turn.ts passes createToolExecutor.
   */
  readonly executorFor: (ctx: ToolContext) => ToolExecutor;
  readonly maxSteps: number;
  /** Sub-agents per call (HAKO_MAX_SUBAGENTS); 0 turns the tool off. */
  readonly maxAgents: number;
  /** When the parent's turn will be stopped (epoch ms): sub-agents stop at three quarters of the time left. */
  readonly deadline: number;
  /** The parent's batch id: archive titles and log lines name it. */
  readonly turn: string;
  readonly log: Logger;
  /** The parent's context budget (budget.ts), so no sub-agent request exceeds it either. */
  readonly fit?: LoopOptions['fit'];
  readonly capToolResult?: LoopOptions['capToolResult'];
}

interface Task {
  readonly prompt: string;
}

/** A sub-agent's tool context: the same folder, but no way to talk to the host or to spawn. */
function subAgentContext(ctx: ToolContext): ToolContext {
  const refuse = async (): Promise<never> => { throw new Error('a sub-agent cannot send messages or requests to the host; only the parent agent can'); };
  return { ...ctx, sendMessage: refuse, request: refuse };
}

function parseTasks(raw: unknown, max: number): { tasks: Task[] } | { problem: string } {
  if (!Array.isArray(raw) || raw.length === 0) return { problem: 'tasks must be a non-empty list of {"prompt": "…"} objects' };
  const tasks: Task[] = [];
  for (const [i, t] of raw.entries()) {
    const prompt = typeof t === 'object' && t !== null ? (t as Record<string, unknown>).prompt : undefined;
    if (typeof prompt !== 'string' || prompt.trim() === '') return { problem: `task ${i + 1} needs a non-empty "prompt" string` };
    tasks.push({ prompt });
  }
  if (tasks.length > max) {
    return { problem: `${tasks.length} tasks given; at most ${max} sub-agents run per call (HAKO_MAX_SUBAGENTS). Merge tasks, or call spawn_agents again with the rest after this one returns` };
  }
  return { tasks };
}

function parseTools(raw: unknown): { tools: readonly string[] } | { problem: string } {
  if (raw === undefined || raw === null) return { tools: SUBAGENT_TOOLS };
  if (!Array.isArray(raw) || raw.some((n) => typeof n !== 'string')) return { problem: 'tools must be a list of tool names' };
  const bad = raw.filter((n: string) => !SUBAGENT_TOOLS.includes(n));
  if (bad.length > 0) return { problem: `sub-agents cannot use ${bad.join(', ')}; they may use ${SUBAGENT_TOOLS.join(', ')}` };
  return { tools: raw as string[] };
}

/** "sub-agent 2 of 3 of turn <id>: <first words>" — the archive title and the section head. */
function title(i: number, n: number, turn: string, prompt: string): string {
  const words = prompt.trim().split(/\s+/);
  const head = words.slice(0, TITLE_WORDS).join(' ') + (words.length > TITLE_WORDS ? ' …' : '');
  return `sub-agent ${i + 1} of ${n} of turn ${turn}: ${head}`;
}

function status(r: LoopResult, maxSteps: number, timedOut: boolean): string {
  switch (r.stopReason) {
    case 'stop': return 'ok';
    case 'max_steps': return `cut off after ${maxSteps} steps`;
    case 'aborted': return timedOut ? 'failed: it reached its time limit' : 'failed: the turn was stopped';
    case 'error': return `failed: ${r.error ?? 'model error'}`;
  }
}

async function runOne(swarm: Swarm, o: { task: Task; index: number; count: number; tools: readonly string[]; system: string; execute: ToolExecutor; signal: AbortSignal; groupDir: string }): Promise<{ ok: boolean; text: string }> {
  const name = title(o.index, o.count, swarm.turn, o.task.prompt);
  const startedAt = new Date();
  const timeLimit = AbortSignal.timeout(Math.max(1000, Math.floor((swarm.deadline - Date.now()) * 0.75)));
  const signal = AbortSignal.any([o.signal, timeLimit]);
  const allowed = new Set(o.tools);
  const execute: ToolExecutor = (tool, args, s) => allowed.has(tool) ? o.execute(tool, args, s) : Promise.resolve(fail(`a sub-agent cannot use ${tool}`));
  swarm.log('subagent_start', { batch: swarm.turn, agent: o.index + 1, of: o.count, tools: o.tools });
  let steps = 0;
  const r = await runToEnd({
    provider: swarm.provider,
    system: o.system,
    history: [],
    input: o.task.prompt,
    tools: swarm.tools.filter((t) => allowed.has(t.name)),
    execute,
    maxSteps: swarm.maxSteps,
    signal,
    ...(swarm.fit ? { fit: swarm.fit } : {}),
    ...(swarm.capToolResult ? { capToolResult: swarm.capToolResult } : {}),
  }, (e) => {
    if (e.type === 'model_request') steps = e.step;
    if (e.type === 'tool_start') swarm.log('subagent_tool', { batch: swarm.turn, agent: o.index + 1, step: e.step, tool: e.call.name });
  });
  const state = status(r, swarm.maxSteps, timeLimit.aborted && !o.signal.aborted);
  swarm.log('subagent_end', { batch: swarm.turn, agent: o.index + 1, of: o.count, steps, stopReason: r.stopReason, textChars: r.text.length });
  await archiveTurn(o.groupDir, { at: startedAt, title: name, messages: r.messages }); // never throws
  const answer = r.stopReason === 'max_steps' ? r.text : r.text.trim() || '(no answer)';
  return { ok: r.stopReason !== 'error' && r.stopReason !== 'aborted', text: `## Sub-agent ${o.index + 1} of ${o.count}: ${state}\n\n${capText(answer, Math.floor(RESULT_CHARS / o.count))}` };
}

/** spawn_agents outside a parent's turn: what a sub-agent's own executor has (no recursion). */
export const noSwarm: ToolHandler = async () => fail('spawn_agents is not available here: a sub-agent cannot start sub-agents');

/** The spawn_agents handler of one parent turn. */
export function spawnAgentsTool(swarm: Swarm): ToolHandler {
  return async (args, ctx, signal): Promise<ToolResult> => {
    if (swarm.maxAgents === 0) return fail('sub-agents are turned off (HAKO_MAX_SUBAGENTS=0); do the tasks yourself');
    const tasks = parseTasks(args.tasks, swarm.maxAgents);
    if ('problem' in tasks) return fail(tasks.problem);
    const tools = parseTools(args.tools);
    if ('problem' in tools) return fail(tools.problem);
    const system = await swarm.systemPrompt();
    const execute = swarm.executorFor(subAgentContext(ctx));
    const n = tasks.tasks.length;
    const settled = await Promise.allSettled(tasks.tasks.map((task, index) =>
      runOne(swarm, { task, index, count: n, tools: tools.tools, system, execute, signal, groupDir: ctx.workspace })));
    // runOne does not throw by design; a rejection would be a bug, still reported per task.
    const sections = settled.map((r, i) => r.status === 'fulfilled' ? r.value : { ok: false, text: `## Sub-agent ${i + 1} of ${n}: failed: ${errorText(r.reason)}` });
    const text = sections.map((x) => x.text).join('\n\n');
    return sections.some((x) => x.ok) ? ok(text) : fail(text);
  };
}
