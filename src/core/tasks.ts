// Task actions — schedule, list, pause, resume, cancel, run now, approve, reject — in one
// place, with their rules. Used by IPC requests, the HTTP API and the CLI alike.
//
// Invariants:
// - Authority: a group may manage only its own tasks; the main group and the owner (CLI,
//   API) may manage any.
// - Bounds: a group holds at most its `maxTasks` live (pending, active or paused) tasks,
//   whoever schedules them; a prompt is at most MAX_PROMPT_CHARS.
// - Approval: a task a non-main group's agent schedules is stored 'pending' with no next
//   run; only the owner turns it active (approve) or cancelled (reject). Until then nobody
//   runs, resumes or cancels it from a non-main group, so the owner's main chat hears of at
//   most `maxTasks` waiting tasks per group until the owner acts.

import { safeLine } from './safe-text.ts';
import { deserializeSchedule, describeSchedule, nextRun, parseSchedule, serializeSchedule, type Schedule } from './schedule.ts';
import type { GroupStore, Task, TaskStore, Transactional } from './store-contract.ts';
import { MAX_PROMPT_CHARS, type TaskContext } from '../../protocol/ipc.ts';
import type { TaskView } from '../../protocol/results.ts';

/** What agents, the API and the CLI see of a task: the protocol's shape (the agent reads it too). */
export type { TaskView };

/** Who asks: an agent of a group (identity from its IPC folder), or the owner. */
export type Actor = { readonly kind: 'group'; readonly group: string; readonly isMain: boolean } | { readonly kind: 'owner' };

export class TaskError extends Error {
  override name = 'TaskError';
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

// ---- the pure rules --------------------------------------------------------------------

/** A task scheduled by a non-main group's agent waits for the owner; main's and the owner's run at once. */
export function needsApproval(actor: Actor): boolean {
  return actor.kind === 'group' && !actor.isMain;
}

/**
 * Why `group` may not get one more task, or null when it may. The hint names what the asker
 * can use: the agent's tools, or for the owner (`opts.owner`) the CLI commands.
 */
export function taskCapProblem(group: string, live: number, limit: number, opts: { owner?: boolean } = {}): string | null {
  if (live < limit) return null;
  const fix = opts.owner
    ? `cancel one it no longer needs (hako tasks list --group ${group}, then hako tasks cancel <id>), or raise the limit (hako groups set ${group} --max-tasks N)`
    : `cancel one it no longer needs (cancel_task), or ask the owner to raise the limit (hako groups set ${group} --max-tasks N)`;
  return `group "${group}" has ${live} scheduled tasks (pending, active or paused), the limit is ${limit}: ${fix}`;
}

/**
 * The first run of a task approved at `now`: its next run after now, so runs it missed
 * while waiting are skipped; an `at` whose time passed while it waited runs at once.
 */
export function firstRunOnApproval(s: Schedule, now: number, tz: string): number {
  return nextRun(s, now - 1, tz) ?? now;
}

/** Characters of the prompt quoted in the approval notice; the whole of it is in `hako tasks log`. */
export const NOTICE_PROMPT_CHARS = 500;

/** The one notice the owner gets in main about a task that waits for approval. */
export function approvalNotice(t: TaskView): string {
  const flat = t.prompt.replace(/\s+/g, ' ').trim();
  const quoted = safeLine(JSON.stringify(flat.length > NOTICE_PROMPT_CHARS ? `${flat.slice(0, NOTICE_PROMPT_CHARS - 1)}…` : flat));
  return [
    `Group "${t.group}" asks to schedule task ${t.id} (${t.schedule}, context ${t.context}). It will not run until you approve it.`,
    `Prompt (${t.prompt.length} characters, written by that group's agent: treat it as untrusted): ${quoted}`,
    `Approve: hako tasks approve ${t.id} · Reject: hako tasks reject ${t.id} · Whole prompt: hako tasks log ${t.id}`,
  ].join('\n');
}

// ---- the service -----------------------------------------------------------------------

export interface TaskServiceOptions {
  /** Task changes that must stay together (the cap check and the insert) run in one `transaction`. */
  readonly store: TaskStore & Pick<GroupStore, 'getGroup'> & Transactional;
  readonly tz: string;
  readonly now: () => number;
  /** The host's limit of live tasks per group (HAKO_MAX_TASKS); a group's own limit overrides it. */
  readonly maxTasks: number;
  /** Called after any change that may move the next due time (re-arms the scheduler). */
  readonly changed?: () => void;
  /** Called when a run was queued by hand (so the group's queue is served). */
  readonly queued?: (group: string) => void;
}

function actorName(a: Actor): string {
  return a.kind === 'owner' ? 'owner' : `group:${a.group}`;
}

function awaitsApproval(id: string): TaskError {
  return new TaskError(`task "${id}" awaits the owner's approval; only the owner can approve or reject it (hako tasks approve|reject ${id})`);
}

export function createTaskService(opts: TaskServiceOptions) {
  const { store, tz } = opts;

  function mayManage(actor: Actor, group: string): boolean {
    return actor.kind === 'owner' || actor.isMain || actor.group === group;
  }

  /** The task, if it exists and the actor may see it; otherwise the same error either way. */
  function find(actor: Actor, id: string): Task {
    const t = store.getTask(id);
    if (!t || !mayManage(actor, t.group) || t.state === 'cancelled') {
      // The owner reads this in a terminal, where the agent's tools do not exist.
      throw new TaskError(`no task "${id}" (${actor.kind === 'owner' ? 'see hako tasks list' : 'use list_tasks to see the ids you can manage'})`);
    }
    return t;
  }

  /** A pending task, for the owner only. */
  function findPending(actor: Actor, id: string, verb: string): Task {
    if (actor.kind !== 'owner') throw new TaskError(`only the owner may ${verb} a task (hako tasks ${verb} ${id})`);
    const t = find(actor, id);
    if (t.state !== 'pending') throw new TaskError(`task "${id}" is ${t.state}, not waiting for approval`);
    return t;
  }

  return {
    schedule(actor: Actor, req: { prompt: string; cron?: unknown; every_seconds?: unknown; at?: unknown; context?: TaskContext; group?: string }): TaskView {
      const group = req.group ?? (actor.kind === 'group' ? actor.group : undefined);
      if (!group) throw new TaskError('name the group the task is for');
      if (!mayManage(actor, group)) throw new TaskError(`this group may only schedule tasks for itself (only the main group may schedule for "${group}")`);
      const g = store.getGroup(group);
      if (!g) throw new TaskError(`no group "${group}"${actor.kind === 'owner' ? ' (see hako groups list)' : ''}`);
      if (!req.prompt.trim()) throw new TaskError('the task prompt is empty');
      if (req.prompt.length > MAX_PROMPT_CHARS) throw new TaskError(`the task prompt is ${req.prompt.length} characters; the limit is ${MAX_PROMPT_CHARS}`);
      const now = opts.now();
      const parsed = parseSchedule({ cron: req.cron, every_seconds: req.every_seconds, at: req.at }, { now, tz });
      if (!parsed.ok) throw new TaskError(parsed.reason);
      const task = store.transaction(() => {
        const cap = taskCapProblem(group, store.liveTaskCount(group), g.limits.maxTasks ?? opts.maxTasks, { owner: actor.kind === 'owner' });
        if (cap) throw new TaskError(cap);
        return store.addTask({
          group, prompt: req.prompt, schedule: serializeSchedule(parsed.schedule), context: req.context ?? 'group',
          nextRun: nextRun(parsed.schedule, now - 1, tz), createdBy: actorName(actor), state: needsApproval(actor) ? 'pending' : 'active',
        });
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
      if (t.state === 'pending') throw awaitsApproval(id);
      if (t.state !== 'active') throw new TaskError(`task "${id}" is ${t.state}, not active`);
      const view = viewTask(store.setTaskState(id, 'paused', null), tz);
      opts.changed?.();
      return view;
    },

    /** Resumes from now: runs missed while paused are skipped, not caught up. */
    resume(actor: Actor, id: string): TaskView {
      const t = find(actor, id);
      if (t.state === 'pending') throw awaitsApproval(id);
      if (t.state !== 'paused') throw new TaskError(`task "${id}" is ${t.state}, not paused`);
      const next = nextRun(deserializeSchedule(t.schedule), opts.now(), tz);
      const view = viewTask(store.setTaskState(id, next === null ? 'completed' : 'active', next), tz);
      opts.changed?.();
      return view;
    },

    /** A pending task is withdrawn only by the owner (reject) or main: a non-main agent cannot clear its queue of waiting tasks to ask again. */
    cancel(actor: Actor, id: string): TaskView {
      const t = find(actor, id);
      if (t.state === 'pending' && needsApproval(actor)) throw awaitsApproval(id);
      const view = viewTask(store.setTaskState(id, 'cancelled', null), tz);
      opts.changed?.();
      return view;
    },

    /** Queues one extra run now; the schedule is unchanged. */
    runNow(actor: Actor, id: string): { task: TaskView; run: string } {
      const t = find(actor, id);
      if (t.state === 'pending') throw new TaskError(`task "${id}" awaits approval: approve it first (hako tasks approve ${id})`);
      const run = store.queueManualRun(t.id, opts.now());
      opts.queued?.(t.group);
      return { task: viewTask(t, tz), run: run.id };
    },

    /** The owner lets a pending task run: from its next run after now. */
    approve(actor: Actor, id: string): TaskView {
      const view = store.transaction(() => {
        const t = findPending(actor, id, 'approve');
        let schedule: Schedule;
        try {
          schedule = deserializeSchedule(t.schedule);
        } catch (err) {
          throw new TaskError(`task "${id}" cannot be approved: ${(err as Error).message}; reject it (hako tasks reject ${id})`);
        }
        return viewTask(store.setTaskState(id, 'active', firstRunOnApproval(schedule, opts.now(), tz)), tz);
      });
      opts.changed?.();
      return view;
    },

    /** The owner refuses a pending task: it is cancelled and never runs. */
    reject(actor: Actor, id: string): TaskView {
      const view = store.transaction(() => {
        findPending(actor, id, 'reject');
        return viewTask(store.setTaskState(id, 'cancelled', null), tz);
      });
      opts.changed?.();
      return view;
    },
  };
}

export type TaskService = ReturnType<typeof createTaskService>;

/** What the owner may do to a task through the CLI and the HTTP API. */
export const OWNER_TASK_ACTIONS = ['pause', 'resume', 'cancel', 'run', 'approve', 'reject'] as const;
export type OwnerTaskAction = (typeof OWNER_TASK_ACTIONS)[number];

/** Applies one owner action; the answer the CLI and the API return. Throws TaskError when it does not fit. */
export function ownerTaskAction(service: TaskService, action: OwnerTaskAction, id: string): { task: TaskView; run?: string } {
  const owner: Actor = { kind: 'owner' };
  return action === 'run' ? service.runNow(owner, id) : { task: service[action](owner, id) };
}
