// `hako tasks list|log|pause|resume|cancel|run|approve|reject`: the owner's view of scheduled
// tasks. Changes go through the running host (so its scheduler and queue see them at once);
// when no host is running they are made in the database directly, and audited alike.

import { loadConfig, type Config } from '../core/config.ts';
import { AuditLog } from '../core/audit.ts';
import { homePaths } from '../core/paths.ts';
import { safeLine, safeText } from '../core/safe-text.ts';
import { createTaskService, OWNER_TASK_ACTIONS, ownerTaskAction, TaskError, viewTask, type OwnerTaskAction, type TaskView } from '../core/tasks.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { hostClient, NotRunningError } from './client.ts';
import { openStore } from './store.ts';

export const help = `Usage:
  hako tasks list [--group NAME] [--all]   scheduled tasks (--all includes cancelled ones)
  hako tasks log <id>                      the task's recent runs: start, end, outcome, output
  hako tasks pause <id>                    stop running it until resumed
  hako tasks resume <id>                   resume; the next run is computed from now
  hako tasks cancel <id>                   cancel it for good
  hako tasks run <id>                      run it once now (the schedule is unchanged)
  hako tasks approve <id>                  let a pending task run (from its next run after now)
  hako tasks reject <id>                   refuse a pending task: it is cancelled, never run

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

async function act(config: Config, action: Action, id: string): Promise<unknown> {
  try {
    return await hostClient(config).call(`/api/tasks/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
  }
  const store = openStore(config.home);
  const audit = new AuditLog(homePaths(config.home).db);
  try {
    const service = createTaskService({ store, tz: config.tz, now: () => Date.now(), maxTasks: config.limits.maxTasks });
    const record = { by: 'owner', action: `task.${action}`, task: id };
    const group = store.getTask(id)?.group ?? null;
    try {
      const result = ownerTaskAction(service, action, id);
      audit.append('policy.change', group, { ...record, ok: true, state: result.task.state });
      return result;
    } catch (err) {
      if (err instanceof TaskError) audit.append('policy.change', group, { ...record, ok: false, error: err.message });
      throw err;
    }
  } finally {
    audit.close();
    store.close();
  }
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { group: { type: 'string' }, all: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const [sub, id, extra] = parsed.positionals;
    if (extra) throw new UsageError(`unexpected argument "${extra}"`);
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
