// What the host answers to each agent request: the `result` of a `response` file whose
// `ok` is true (protocol/ipc.ts). The host builds these (src/core/tasks.ts makes a
// TaskView); the agent's tools read them (agent/tools/tasks.ts). The agent still checks
// each field before it uses it: a response is JSON, and an odd one is shown raw.

import type { HostRequest, TaskContext } from './ipc.ts';

export type TaskState = 'pending' | 'active' | 'paused' | 'cancelled' | 'completed';

/** A task as the host shows it to agents, the API and the CLI. */
export interface TaskView {
  readonly id: string;
  readonly group: string;
  readonly state: TaskState;
  /** In words, e.g. "every 60 seconds", "at 09:00 on weekdays". */
  readonly schedule: string;
  /** ISO time of the next run; null when none is due (paused, pending, finished). */
  readonly nextRun: string | null;
  readonly prompt: string;
  readonly context: TaskContext;
}

/** A group as `group.register` answers it: its name and the trigger word it listens for. */
export interface RegisteredGroup {
  readonly name: string;
  readonly trigger: string;
}

/** The result of each request type. */
export interface RequestResults {
  readonly 'task.schedule': { readonly task: TaskView };
  readonly 'task.list': { readonly tasks: readonly TaskView[] };
  readonly 'task.pause': { readonly task: TaskView };
  readonly 'task.resume': { readonly task: TaskView };
  readonly 'task.cancel': { readonly task: TaskView };
  readonly 'group.register': { readonly group: RegisteredGroup };
}

export type RequestResult = RequestResults[HostRequest['type']];
