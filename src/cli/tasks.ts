// `hako tasks list|log|pause|resume|cancel|run`: the owner's view of scheduled tasks.
// Changes go through the running host (so its scheduler and queue see them at once);
// when no host is running they are made in the database directly.

import { loadConfig, type Config } from '../core/config.ts';
import { createTaskService, TaskError, viewTask, type TaskView } from '../core/tasks.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { hostClient, NotRunningError } from './client.ts';
import { openStore } from './groups.ts';

export const help = `Usage:
  hako tasks list [--group NAME] [--all]   scheduled tasks (--all includes cancelled ones)
  hako tasks log <id>                      the task's recent runs: start, end, outcome, output
  hako tasks pause <id>                    stop running it until resumed
  hako tasks resume <id>                   resume; the next run is computed from now
  hako tasks cancel <id>                   cancel it for good
  hako tasks run <id>                      run it once now (the schedule is unchanged)

Agents create tasks with their schedule_task tool; times use HAKO_TZ.`;

const ACTIONS = ['pause', 'resume', 'cancel', 'run'] as const;
type Action = (typeof ACTIONS)[number];

function printTasks(tasks: readonly TaskView[]): void {
  if (tasks.length === 0) {
    console.log('no tasks');
    return;
  }
  for (const t of tasks) {
    console.log(`${t.id.padEnd(14)} ${t.group.padEnd(16)} ${t.state.padEnd(9)} ${t.schedule.padEnd(34)} next ${t.nextRun ?? '-'}\n${' '.repeat(15)}${t.context === 'isolated' ? '[isolated] ' : ''}${t.prompt.replace(/\s+/g, ' ').slice(0, 100)}`);
  }
}

async function act(config: Config, action: Action, id: string): Promise<unknown> {
  try {
    return await hostClient(config).call(`/api/tasks/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
  }
  const store = openStore(config.home);
  try {
    const service = createTaskService({ store, tz: config.tz, now: () => Date.now() });
    const owner = { kind: 'owner' } as const;
    if (action === 'run') return service.runNow(owner, id);
    return { task: service[action](owner, id) };
  } finally {
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
        if (!store.getTask(id)) throw new Error(`no task "${id}" (see: hako tasks list --all)`);
        const runs = store.listRuns(id, 20);
        if (runs.length === 0) console.log('no runs yet');
        for (const r of runs) {
          console.log(`${new Date(r.scheduledFor).toISOString()} ${r.state.padEnd(7)} ${r.manual ? 'manual ' : ''}start ${r.startedAt ?? '-'} end ${r.endedAt ?? '-'}${r.attempts ? ` attempts ${r.attempts}` : ''}`);
          if (r.summary) console.log(`  output: ${r.summary.replace(/\s+/g, ' ')}`);
          if (r.error) console.log(`  error: ${r.error}`);
        }
      } finally {
        store.close();
      }
      return 0;
    }
    if (!ACTIONS.includes(sub as Action)) throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'missing subcommand');
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
