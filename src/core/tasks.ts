// Task actions — schedule, list, pause, resume, cancel, run now — in one place, with their
// authority rule: a group may manage only its own tasks; the main group and the owner
// (CLI, API) may manage any. Used by IPC requests, the HTTP API and the CLI alike.

import { deserializeSchedule, describeSchedule, nextRun, parseSchedule, serializeSchedule } from './schedule.ts';
import type { Store, Task } from './store.ts';
import type { TaskContext } from '../../protocol/ipc.ts';

/** Who asks: an agent of a group (identity from its IPC folder), or the owner. */
export type Actor = { readonly kind: 'group'; readonly group: string; readonly isMain: boolean } | { readonly kind: 'owner' };

export class TaskError extends Error {
  override name = 'TaskError';
}

export interface TaskView {
  readonly id: string;
  readonly group: string;
  readonly state: Task['state'];
  readonly schedule: string;
  readonly nextRun: string | null;
  readonly prompt: string;
  readonly context: TaskContext;
}

export function viewTask(t: Task, tz: string): TaskView {
  let schedule: string;
  try {
    schedule = describeSchedule(deserializeSchedule(t.schedule), tz);
  } catch {
    schedule = '(unreadable schedule)';
  }
  return { id: t.id, group: t.group, state: t.state, schedule, nextRun: t.nextRun === null ? null : new Date(t.nextRun).toISOString(), prompt: t.prompt, context: t.context };
}

export interface TaskServiceOptions {
  readonly store: Store;
  readonly tz: string;
  readonly now: () => number;
  /** Called after any change that may move the next due time (re-arms the scheduler). */
  readonly changed?: () => void;
  /** Called when a run was queued by hand (so the group's queue is served). */
  readonly queued?: (group: string) => void;
}

function actorName(a: Actor): string {
  return a.kind === 'owner' ? 'owner' : `group:${a.group}`;
}

export function createTaskService(opts: TaskServiceOptions) {
  const { store, tz } = opts;

  function mayManage(actor: Actor, group: string): boolean {
    return actor.kind === 'owner' || actor.isMain || actor.group === group;
  }

  /** The task, if it exists and the actor may see it; otherwise the same error either way. */
  function find(actor: Actor, id: string): Task {
    const t = store.getTask(id);
    if (!t || !mayManage(actor, t.group) || t.state === 'cancelled') throw new TaskError(`no task "${id}" (use list_tasks to see the ids you can manage)`);
    return t;
  }

  return {
    schedule(actor: Actor, req: { prompt: string; cron?: unknown; every_seconds?: unknown; at?: unknown; context?: TaskContext; group?: string }): TaskView {
      const group = req.group ?? (actor.kind === 'group' ? actor.group : undefined);
      if (!group) throw new TaskError('name the group the task is for');
      if (!mayManage(actor, group)) throw new TaskError(`this group may only schedule tasks for itself (only the main group may schedule for "${group}")`);
      if (!store.getGroup(group)) throw new TaskError(`no group "${group}"`);
      if (!req.prompt.trim()) throw new TaskError('the task prompt is empty');
      const now = opts.now();
      const parsed = parseSchedule({ cron: req.cron, every_seconds: req.every_seconds, at: req.at }, { now, tz });
      if (!parsed.ok) throw new TaskError(parsed.reason);
      const task = store.addTask({
        group, prompt: req.prompt, schedule: serializeSchedule(parsed.schedule), context: req.context ?? 'group',
        nextRun: nextRun(parsed.schedule, now - 1, tz), createdBy: actorName(actor),
      });
      opts.changed?.();
      return viewTask(task, tz);
    },

    list(actor: Actor): TaskView[] {
      const tasks = actor.kind === 'owner' || actor.isMain ? store.listTasks() : store.listTasks({ group: actor.group });
      return tasks.map((t) => viewTask(t, tz));
    },

    pause(actor: Actor, id: string): TaskView {
      const t = find(actor, id);
      if (t.state !== 'active') throw new TaskError(`task "${id}" is ${t.state}, not active`);
      const view = viewTask(store.setTaskState(id, 'paused', null), tz);
      opts.changed?.();
      return view;
    },

    /** Resumes from now: runs missed while paused are skipped, not caught up. */
    resume(actor: Actor, id: string): TaskView {
      const t = find(actor, id);
      if (t.state !== 'paused') throw new TaskError(`task "${id}" is ${t.state}, not paused`);
      const next = nextRun(deserializeSchedule(t.schedule), opts.now(), tz);
      const view = viewTask(store.setTaskState(id, next === null ? 'completed' : 'active', next), tz);
      opts.changed?.();
      return view;
    },

    cancel(actor: Actor, id: string): TaskView {
      find(actor, id);
      const view = viewTask(store.setTaskState(id, 'cancelled', null), tz);
      opts.changed?.();
      return view;
    },

    /** Queues one extra run now; the schedule is unchanged. */
    runNow(actor: Actor, id: string): { task: TaskView; run: string } {
      const t = find(actor, id);
      const run = store.queueManualRun(t.id, opts.now());
      opts.queued?.(t.group);
      return { task: viewTask(t, tz), run: run.id };
    },
  };
}

export type TaskService = ReturnType<typeof createTaskService>;
