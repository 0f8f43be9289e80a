// The request tools: schedule_task, list_tasks, pause_task, resume_task, cancel_task and
// register_group (main only). Each sends
// one request through ctx.request and turns the host's response into text for the model.
// Invariants: argument shapes are checked here (so the model gets a clear error at once), but
// schedules and authority are the host's to judge; a refusal (`ok: false`) reaches the model
// verbatim; no tool waits longer than its deadline, even if the callback ignores the signal.

import { ID_PATTERN as TASK_ID, MAX_AT_CHARS, MAX_CRON_CHARS, MAX_PROMPT_CHARS, type ResponseFile, type TaskScheduleFile } from '../../protocol/ipc.ts';
import { groupNameProblem, parseChat, TRIGGER_PATTERN } from '../../protocol/names.ts';
import type { RegisteredGroup, RequestResults, TaskView } from '../../protocol/results.ts';
import { fail, ok, type HostRequest, type ToolArgs, type ToolContext, type ToolHandler, type ToolResult } from './types.ts';

export const TASK_REQUEST_TIMEOUT_MS = 30_000;
const PROMPT_EXCERPT_CHARS = 60;

type Obj = Record<string, unknown>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function duration(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

/** Rejects when `signal` fires; the listener goes away once `settled` is done. */
function whenAborted(signal: AbortSignal, settled: Promise<unknown>): Promise<never> {
  return new Promise((_, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) { onAbort(); return; }
    signal.addEventListener('abort', onAbort, { once: true });
    settled.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {});
  });
}

/** Sends one request and waits for its response, or for the deadline or the turn's end. */
async function ask(ctx: ToolContext, req: HostRequest, signal: AbortSignal, timeoutMs: number): Promise<ResponseFile | ToolResult> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const both = AbortSignal.any([signal, deadline]);
  const answer = ctx.request(req, both);
  try {
    return await Promise.race([answer, whenAborted(both, answer)]);
  } catch (err) {
    answer.catch(() => {}); // settles later (or never); nobody listens any more
    if (signal.aborted) return fail('stopped: the turn was aborted');
    if (deadline.aborted) {
      const hint = req.type === 'task.list' ? 'try again later' : 'it may still be applied, so check with list_tasks before trying again';
      return fail(`the host did not answer the ${req.type} request within ${duration(timeoutMs)}; ${hint}`);
    }
    return fail(`could not send the ${req.type} request: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The host's result, or a tool error: its refusal verbatim, or a note that it gave none. */
function outcome(r: ResponseFile | ToolResult): ToolResult | { result: unknown } {
  if (!('type' in r)) return r;
  if (!r.ok) return fail(r.error?.trim() || 'the host refused the request without saying why');
  return { result: r.result };
}

/** The host's result for a request type (protocol/results.ts), its fields not yet checked: a response is JSON. */
function resultOf<T extends keyof RequestResults>(_type: T, result: unknown): { readonly [K in keyof RequestResults[T]]?: unknown } {
  return isObj(result) ? result : {};
}

function field(o: Obj, k: keyof TaskView | keyof RegisteredGroup): string | null {
  const v = o[k];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** `task <id> (<schedule>), <state>, …, next run <iso|none>` from a task view; null when the shape is unknown. */
function describeTask(t: unknown, ownGroup: string): string | null {
  if (!isObj(t)) return null;
  const id = field(t, 'id');
  if (!id) return null;
  const parts = [`task ${id}`];
  const schedule = field(t, 'schedule');
  if (schedule) parts[0] += ` (${schedule})`;
  const state = field(t, 'state');
  if (state) parts.push(state);
  const context = field(t, 'context');
  if (context) parts.push(`context ${context}`);
  const group = field(t, 'group');
  if (group && group !== ownGroup) parts.push(`group ${group}`);
  parts.push(`next run ${field(t, 'nextRun') ?? 'none'}`);
  return parts.join(', ');
}

/** Unknown result shapes are shown raw rather than lost. */
function raw(verb: string, result: unknown): ToolResult {
  return ok(`${verb}; the host answered: ${JSON.stringify(result ?? null).slice(0, 2000)}`);
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > PROMPT_EXCERPT_CHARS ? `${flat.slice(0, PROMPT_EXCERPT_CHARS - 1)}…` : flat;
}

/** A compact table, one task per line; the group column only when another group appears. */
export function formatTaskTable(tasks: readonly unknown[], ownGroup: string): string {
  if (tasks.length === 0) return 'no scheduled tasks';
  const rows = tasks.filter(isObj);
  const showGroup = rows.some((t) => field(t, 'group') !== null && field(t, 'group') !== ownGroup);
  const cell = (s: string): string => s.replace(/\|/g, '/');
  const header = ['id', ...(showGroup ? ['group'] : []), 'state', 'schedule', 'next run', 'context', 'prompt'];
  const lines = rows.map((t) => [
    field(t, 'id') ?? '?',
    ...(showGroup ? [field(t, 'group') ?? '?'] : []),
    field(t, 'state') ?? '?',
    field(t, 'schedule') ?? '?',
    field(t, 'nextRun') ?? '-',
    field(t, 'context') ?? '?',
    excerpt(field(t, 'prompt') ?? ''),
  ].map(cell).join(' | '));
  return [`${rows.length} task${rows.length === 1 ? '' : 's'}:`, header.join(' | '), ...lines].join('\n');
}

function present(args: ToolArgs, k: string): boolean {
  return args[k] !== undefined && args[k] !== null;
}

/** The task.schedule request, or the first problem with the arguments. */
function scheduleRequest(args: ToolArgs, ctx: ToolContext): HostRequest | string {
  const prompt = args.prompt as string;
  if (prompt.trim() === '') return 'prompt is empty; write what the task should do when it runs';
  if (prompt.length > MAX_PROMPT_CHARS) return `prompt is ${prompt.length} characters; the limit is ${MAX_PROMPT_CHARS}`;
  const kinds = ['cron', 'every_seconds', 'at'].filter((k) => present(args, k));
  if (kinds.length !== 1) {
    return kinds.length === 0
      ? 'give one of cron, every_seconds or at to say when the task runs'
      : `give exactly one of cron, every_seconds or at (got ${kinds.join(' and ')})`;
  }
  const req: Mutable<Omit<TaskScheduleFile, 'v' | 'id'>> = { type: 'task.schedule', prompt };
  if (present(args, 'cron')) {
    const cron = (args.cron as string).trim();
    if (cron === '') return 'cron is empty; e.g. "0 9 * * 1-5" for weekdays at 9:00';
    if (cron.length > MAX_CRON_CHARS) return `cron is longer than ${MAX_CRON_CHARS} characters`;
    req.cron = cron;
  } else if (present(args, 'every_seconds')) {
    req.every_seconds = args.every_seconds as number;
  } else {
    const at = (args.at as string).trim();
    if (at === '') return 'at is empty; give an ISO-8601 time such as "2026-12-01T09:00:00+01:00"';
    if (at.length > MAX_AT_CHARS) return `at is longer than ${MAX_AT_CHARS} characters; give an ISO-8601 time`;
    req.at = at;
  }
  if (present(args, 'context')) {
    const context = args.context;
    if (context !== 'group' && context !== 'isolated') return `context must be "group" or "isolated" (got ${JSON.stringify(context)})`;
    req.context = context;
  }
  if (present(args, 'group') && args.group !== ctx.group) {
    const group = args.group as string;
    const problem = groupNameProblem(group);
    if (problem) return problem;
    if (!ctx.isMain) return 'only the main group may schedule tasks for other groups';
    req.group = group;
  }
  return req;
}

function taskId(args: ToolArgs): string | ToolResult {
  const id = (args.id as string).trim();
  if (id === '') return fail('id is empty; use list_tasks to see the task ids');
  if (!TASK_ID.test(id)) return fail(`"${id.slice(0, 120)}" is not a task id (letters, digits, "-" and "_"); use list_tasks to see the ids`);
  return id;
}

/** The five task handlers, waiting at most `timeoutMs` for each response. */
export function makeTaskTools(timeoutMs: number = TASK_REQUEST_TIMEOUT_MS): Readonly<Record<'schedule_task' | 'list_tasks' | 'pause_task' | 'resume_task' | 'cancel_task', ToolHandler>> {
  const action = (type: 'task.pause' | 'task.resume' | 'task.cancel', verb: string): ToolHandler => async (args, ctx, signal) => {
    const id = taskId(args);
    if (typeof id !== 'string') return id;
    const o = outcome(await ask(ctx, { type, task: id }, signal, timeoutMs));
    if (!('result' in o)) return o;
    const task = describeTask(resultOf(type, o.result).task, ctx.group);
    return task ? ok(`${verb} ${task}`) : raw(`${verb} task ${id}`, o.result);
  };
  return {
    schedule_task: async (args, ctx, signal) => {
      const req = scheduleRequest(args, ctx);
      if (typeof req === 'string') return fail(req);
      const o = outcome(await ask(ctx, req, signal, timeoutMs));
      if (!('result' in o)) return o;
      const task = describeTask(resultOf('task.schedule', o.result).task, ctx.group);
      return task ? ok(`scheduled ${task}`) : raw('scheduled', o.result);
    },
    list_tasks: async (_args, ctx, signal) => {
      const o = outcome(await ask(ctx, { type: 'task.list' }, signal, timeoutMs));
      if (!('result' in o)) return o;
      const tasks = resultOf('task.list', o.result).tasks;
      return Array.isArray(tasks) ? ok(formatTaskTable(tasks, ctx.group)) : raw('listed', o.result);
    },
    pause_task: action('task.pause', 'paused'),
    resume_task: action('task.resume', 'resumed'),
    cancel_task: action('task.cancel', 'cancelled'),
  };
}

export const TASK_TOOLS = makeTaskTools();

/** register_group: the host refuses it for every group but main; checked here first for a clear error. */
export const registerGroupTool: ToolHandler = async (args, ctx, signal) => {
  const name = String(args.name ?? '');
  const problem = groupNameProblem(name);
  if (problem) return fail(problem);
  if (!ctx.isMain) return fail('only the main group may register groups');
  const trigger = args.trigger === undefined || args.trigger === null ? undefined : String(args.trigger);
  if (trigger !== undefined && !TRIGGER_PATTERN.test(trigger)) return fail('trigger must be one word of at most 64 characters');
  const chat = args.chat === undefined || args.chat === null ? undefined : String(args.chat);
  if (chat !== undefined && !parseChat(chat)) return fail('chat must be a chat address like telegram:-1001234567890');
  const r = outcome(await ask(ctx, { type: 'group.register', name, ...(trigger ? { trigger } : {}), ...(chat ? { chat } : {}) }, signal, TASK_REQUEST_TIMEOUT_MS));
  if (!('result' in r)) return r;
  const group = resultOf('group.register', r.result).group;
  const g = isObj(group) ? group : undefined;
  return ok(`registered group "${g ? field(g, 'name') ?? name : name}"${g && field(g, 'trigger') ? `; its trigger is ${field(g, 'trigger')}` : ''}${chat ? `; chat ${chat} is bound to it` : ''}`);
};
