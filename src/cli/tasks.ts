// `hako tasks add|list|log|pause|resume|cancel|run|approve|reject`: the owner's view of
// scheduled tasks. Changes go through the running host (so its scheduler and queue see them
// at once); when no host is running they are made in the database directly, and audited
// alike. `add` is the schedule_task tool for the owner: the same task service, rules and
// reasons, and the task is active at once.

import { loadConfig, type Config } from '../core/config.ts';
import { AuditLog } from '../core/audit.ts';
import { homePaths } from '../core/paths.ts';
import { safeLine, safeText } from '../core/safe-text.ts';
import type { OwnerTaskRequest } from '../core/channel.ts';
import { createTaskService, OWNER_TASK_ACTIONS, ownerTaskAction, TaskError, viewTask, type OwnerTaskAction, type TaskService, type TaskView } from '../core/tasks.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { hostClient, NotRunningError } from './client.ts';
import { openStore } from './store.ts';

export const help = `Usage:
  hako tasks add <group> (--cron EXPR | --every DURATION | --at TIME) [--isolated] <prompt>
                                           schedule a task; it is active at once
  hako tasks list [--group NAME] [--all]   scheduled tasks (--all includes cancelled ones)
  hako tasks log <id>                      the task's recent runs: start, end, outcome, output
  hako tasks pause <id>                    stop running it until resumed
  hako tasks resume <id>                   resume; the next run is computed from now
  hako tasks cancel <id>                   cancel it for good
  hako tasks run <id>                      run it once now (the schedule is unchanged)
  hako tasks approve <id>                  let a pending task run (from its next run after now)
  hako tasks reject <id>                   refuse a pending task: it is cancelled, never run

add: --cron "0 9 * * 1-5" (5 fields, or 6 with seconds first; in HAKO_TZ), --every 30m
(90s, 30m, 2h, 1d, 1h30m or plain seconds; at least 10 s), --at 2026-12-01T09:00 (ISO-8601;
without an offset it is HAKO_TZ wall-clock time). --isolated: each run starts a fresh
conversation instead of the group's. Quote the prompt: it is one argument.
  e.g. hako tasks add main --cron "0 9 * * 1-5" "summarise my inbox"

Agents create tasks with their schedule_task tool; times use HAKO_TZ. A task that a
non-main group's agent creates is pending until you approve it (you are told in main);
each group holds at most HAKO_MAX_TASKS tasks (hako groups set <name> --max-tasks N).`;

type Action = OwnerTaskAction;

function printTasks(tasks: readonly TaskView[]): void {
  if (tasks.length === 0) {
    console.log('no tasks');
    return;
  }
  for (const t of tasks) {
    // The prompt (and so the schedule's text) comes from an agent: printed escaped.
    console.log(safeLine(`${t.id.padEnd(14)} ${t.group.padEnd(16)} ${t.state.padEnd(9)} ${t.schedule.padEnd(34)} next ${t.nextRun ?? '-'}`));
    console.log(safeLine(`${' '.repeat(15)}${t.context === 'isolated' ? '[isolated] ' : ''}${t.prompt.replace(/\s+/g, ' ').slice(0, 100)}`));
  }
  const pending = tasks.filter((t) => t.state === 'pending').length;
  if (pending > 0) console.log(`${pending} ${pending === 1 ? 'task awaits' : 'tasks await'} your approval: hako tasks log <id> shows the whole prompt; hako tasks approve|reject <id>`);
}

/** Runs `fn` with a task service on the database itself, as the host builds it, for when no host runs. */
function offline<T>(config: Config, fn: (ctx: { store: ReturnType<typeof openStore>; audit: AuditLog; service: TaskService }) => T): T {
  const store = openStore(config.home);
  const audit = new AuditLog(homePaths(config.home).db);
  try {
    return fn({ store, audit, service: createTaskService({ store, tz: config.tz, now: () => Date.now(), maxTasks: config.limits.maxTasks }) });
  } finally {
    audit.close();
    store.close();
  }
}

async function act(config: Config, action: Action, id: string): Promise<unknown> {
  try {
    return await hostClient(config).call(`/api/tasks/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
  }
  return offline(config, ({ store, audit, service }) => {
    const record = { by: 'owner', action: `task.${action}`, task: id };
    const group = store.getTask(id)?.group ?? null;
    try {
      const result = ownerTaskAction(service, action, id);
      audit.append('policy.change', group, { ...record, ok: true, state: result.task.state });
      return result;
    } catch (err) {
      if (err instanceof TaskError) audit.append('policy.refused', group, { ...record, ok: false, error: err.message });
      throw err;
    }
  });
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90s", "30m", "2h", "1d", "1h30m" or plain seconds ("600") as whole seconds; undefined when it is none of these. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^(\d+[smhd])+$/.test(t)) return undefined;
  let seconds = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smhd])/g)) seconds += Number(n) * UNIT_SECONDS[unit!]!;
  return seconds;
}

/** The schedule_task request for `hako tasks add`; usage errors for the flags, the rest is the service's to judge. */
function addRequest(values: { cron?: string; every?: string; at?: string; isolated?: boolean }, group: string | undefined, prompt: string | undefined): OwnerTaskRequest {
  if (!group) throw new UsageError('missing group: hako tasks add <group> (--cron EXPR | --every DURATION | --at TIME) <prompt>');
  if (prompt === undefined) throw new UsageError('missing prompt: give the task\'s prompt as one quoted argument after the group');
  const given = (['cron', 'every', 'at'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(given.length === 0
      ? 'no schedule given: set exactly one of --cron (e.g. "0 9 * * 1-5"), --every (e.g. 30m) or --at (e.g. 2026-12-01T09:00)'
      : `got ${given.map((k) => `--${k}`).join(' and ')}: set exactly one of --cron, --every or --at`);
  }
  let every: number | undefined;
  if (values.every !== undefined) {
    every = parseDuration(values.every);
    if (every === undefined) throw new UsageError(`--every ${JSON.stringify(values.every)} is not a duration: use a whole number with s, m, h or d (90s, 30m, 2h, 1d, 1h30m) or plain seconds`);
  }
  return {
    group, prompt, context: values.isolated ? 'isolated' : 'group',
    ...(values.cron !== undefined ? { cron: values.cron } : {}),
    ...(every !== undefined ? { every_seconds: every } : {}),
    ...(values.at !== undefined ? { at: values.at } : {}),
  };
}

/** Schedules through the running host (its scheduler re-arms at once), else in the database. */
async function add(config: Config, req: OwnerTaskRequest): Promise<{ task: TaskView; offline: boolean }> {
  try {
    const body = await hostClient(config).call('/api/tasks', { method: 'POST', body: req });
    return { task: body.task as TaskView, offline: false };
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw new Error(`cannot schedule the task: ${(err as Error).message}`);
  }
  return offline(config, ({ store, audit, service }) => {
    const record = { by: 'owner', action: 'task.schedule', group: req.group };
    try {
      const task = service.schedule({ kind: 'owner' }, req);
      audit.append('policy.change', req.group, { ...record, ok: true, task: task.id, state: task.state, schedule: task.schedule, context: task.context });
      return { task, offline: true };
    } catch (err) {
      if (!(err instanceof TaskError)) throw err;
      audit.append('policy.refused', store.getGroup(req.group) ? req.group : null, { ...record, ok: false, error: err.message });
      throw new Error(`cannot schedule the task: ${err.message}`);
    }
  });
}

function printAdded(t: TaskView, offline: boolean): void {
  console.log(safeLine(`added ${t.id} to group ${t.group}: ${t.schedule}, next run ${t.nextRun ?? '-'}${t.context === 'isolated' ? ', isolated' : ''}`));
  if (offline) console.log('hako is not running: the task runs once it starts (npm start)');
  console.log(`see it: hako tasks list --group ${t.group} · pause: hako tasks pause ${t.id} · cancel: hako tasks cancel ${t.id}`);
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, {
      group: { type: 'string' }, all: { type: 'boolean' },
      cron: { type: 'string' }, every: { type: 'string' }, at: { type: 'string' }, isolated: { type: 'boolean' },
    }, help);
    if (!parsed) return 0;
    const [sub, id, extra, more] = parsed.positionals;
    if (sub === 'add') {
      if (more !== undefined) throw new UsageError(`unexpected argument "${more}": quote the prompt so that it is one argument`);
      const req = addRequest(parsed.values, id, extra);
      const { task, offline } = await add(loadConfig(), req);
      printAdded(task, offline);
      return 0;
    }
    if (extra) throw new UsageError(`unexpected argument "${extra}"`);
    const addOnly = (['cron', 'every', 'at', 'isolated'] as const).find((k) => parsed.values[k] !== undefined);
    if (addOnly) throw new UsageError(`--${addOnly} belongs to "hako tasks add", not "hako tasks ${sub ?? ''}"`);
    const config = loadConfig();
    if (sub === 'list') {
      const store = openStore(config.home);
      try {
        const tasks = store.listTasks({ includeCancelled: !!parsed.values.all, ...(parsed.values.group ? { group: parsed.values.group } : {}) });
        printTasks(tasks.map((t) => viewTask(t, config.tz)));
      } finally {
        store.close();
      }
      return 0;
    }
    if (sub === 'log') {
      if (!id) throw new UsageError('missing task id');
      const store = openStore(config.home);
      try {
        const task = store.getTask(id);
        if (!task) throw new Error(`no task "${id}" (see: hako tasks list --all)`);
        const v = viewTask(task, config.tz);
        console.log(safeLine(`${v.id} of group ${v.group}, ${v.state}, ${v.schedule}, context ${v.context}, created by ${task.createdBy} at ${task.createdAt}`));
        console.log(`prompt (${v.prompt.length} characters):\n${safeText(v.prompt).replace(/^/gm, '  ')}`);
        const runs = store.listRuns(id, 20);
        if (runs.length === 0) console.log('no runs yet');
        for (const r of runs) {
          console.log(`${new Date(r.scheduledFor).toISOString()} ${r.state.padEnd(7)} ${r.manual ? 'manual ' : ''}start ${r.startedAt ?? '-'} end ${r.endedAt ?? '-'}${r.attempts ? ` attempts ${r.attempts}` : ''}`);
          if (r.summary) console.log(safeLine(`  output: ${r.summary.replace(/\s+/g, ' ')}`));
          if (r.error) console.log(safeLine(`  error: ${r.error}`));
        }
      } finally {
        store.close();
      }
      return 0;
    }
    if (!OWNER_TASK_ACTIONS.includes(sub as Action)) throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'missing subcommand');
    if (!id) throw new UsageError('missing task id');
    try {
      const result = await act(config, sub as Action, id) as { task?: TaskView; run?: string };
      const t = result.task;
      console.log(sub === 'run' ? `queued run ${result.run} of ${id}` : `${id} is now ${t?.state}${t?.nextRun ? `; next run ${t.nextRun}` : ''}`);
      return 0;
    } catch (err) {
      if (err instanceof TaskError) throw new Error(err.message);
      throw err;
    }
  });
}
