// What an agent wrote, applied: each output file is checked against what its group may do
// (authority comes from the directory it arrived in, never from its fields), then its effect
// is committed together with the record that it was applied, so a replayed file changes
// nothing.
//
// Invariants: a message belongs to its group's running turn and counts toward that turn's
// limit; only main acts on other groups or registers groups; requests are taken only while
// the group's turn runs; a turn's done or error ends that turn and no other.

import { failpoint } from './failpoint.ts';
import fs from 'node:fs';
import path from 'node:path';
import { readBeneath } from './beneath.ts';
import { groupPaths, homePaths } from './paths.ts';
import { prepareGroupDirs, type Runner } from './runner.ts';
import type { Ipc } from './ipc.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import type { BatchStore, GroupStore, MessageStore, StoredMessage, Transactional } from './store-contract.ts';
import { approvalNotice, TaskError, type Actor, type TaskService, type TaskView } from './tasks.ts';
import type { Turns } from './turn.ts';
import { mark } from './trace.ts';
import type { AgentToHost, HostRequest } from '../../protocol/ipc.ts';
import { groupNameProblem } from '../../protocol/names.ts';

/** The largest file an agent may send to a chat (Telegram bots may send up to 50 MB). */
const MAX_SEND_FILE_BYTES = 50 * 1024 * 1024;

export interface OutputsOptions {
  readonly store: Pick<GroupStore, 'getGroup' | 'mainGroup' | 'addGroup' | 'updateGroup' | 'groupForChat'> & Pick<BatchStore, 'applyAssistantOutput' | 'markOutputApplied' | 'getBatch'> & Pick<MessageStore, 'addNotice'> & Transactional;
  readonly tasks: TaskService;
  readonly turns: Turns;
  readonly config: Pick<Config, 'home' | 'assistantName'>;
  readonly log: Logger;
  /** Contract: hands a stored message to subscribers and channels; never throws. */
  readonly publish: (m: StoredMessage) => void;
  /** Contract: appends an audit record; never throws. */
  readonly record: (kind: 'policy.change' | 'policy.refused', group: string, data: Record<string, unknown>) => void;
  readonly runner: Pick<Runner, 'stop'>;
  readonly ipc: Pick<Ipc, 'send' | 'newId'>;
}

/** Applies one output of `group`. Throws (the file goes to rejected/) when the group may not do it. */
export function createOutputs(opts: OutputsOptions): (group: string, o: AgentToHost) => Promise<void> {
  const { store, turns } = opts;

  function message(group: string, o: Extract<AgentToHost, { type: 'reply' | 'send_message' }>): void {
    if (o.type === 'send_message' && o.group !== undefined && o.group !== group) {
      // Acting on another group is main's privilege; the target must exist.
      if (!store.getGroup(group)?.isMain) throw new Error(`group "${group}" may not message group "${o.group}" (only the main group may)`);
      if (!store.getGroup(o.group)) throw new Error(`no group "${o.group}"`);
    }
    // A turn that was stopped, timed out or settled, a process that outlived its turn and a
    // forged file speak no more.
    if (o.batch === undefined) throw new Error(`group "${group}": a ${o.type} without a batch is refused: every message must belong to the group's running turn`);
    const { verdict, maxOutput } = turns.charge(group, o.batch, o.text.length);
    if (verdict === 'closed') throw new Error(`group "${group}": batch ${o.batch} is not this group's running turn (it has ended, or is another group's)`);
    if (verdict === 'over') {
      // A runaway turn (a chat flood) is stopped at its output limit; other groups go on.
      turns.end(group, { kind: 'stopped', message: `it wrote more than ${maxOutput} characters of messages` });
      opts.runner.stop(group);
      throw new Error(`over the output limit of ${maxOutput} characters for one turn`);
    }
    const target = o.type === 'send_message' && o.group ? o.group : group;
    const sent = o.type === 'send_message' && o.file ? sendFile(group, o.id, o.file) : { text: '' };
    const stored = store.applyAssistantOutput({
      outputId: o.id, group: target, batchId: target === group ? o.batch : null, turnBatch: o.batch, type: o.type, text: o.text + sent.text, sender: opts.config.assistantName,
      ...(sent.file ? { file: sent.file } : {}),
    });
    failpoint('output-applied');
    mark(opts.log, 'committed', { group, type: o.type, id: o.id });
    if (stored) opts.publish(stored);
    mark(opts.log, 'published', { group, type: o.type, id: o.id });
  }

  /**
   * Copies a workspace file the agent sends into HAKO_HOME/files/<group>/ (host-only), so
   * what is sent later is what the agent named now and no link is ever followed. A file
   * that cannot be sent does not stop the message: its text says why.
   */
  function sendFile(group: string, outputId: string, rel: string): { file?: string; text: string } {
    try {
      const data = readBeneath(groupPaths(opts.config.home, group).folder, rel, MAX_SEND_FILE_BYTES);
      const dir = path.join(homePaths(opts.config.home).files, group, outputId.replace(/[^A-Za-z0-9-]/g, '_'));
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, path.basename(rel));
      fs.writeFileSync(file, data, { mode: 0o600 });
      return { file, text: '' };
    } catch (err) {
      opts.log.warn('a file the agent sent could not be attached', { group, file: rel, error: (err as Error).message });
      return { text: `\n\n(The file ${rel} could not be attached: ${(err as Error).message.replace(/^.*?: /, '')}.)` };
    }
  }

  function ending(group: string, o: Extract<AgentToHost, { type: 'done' | 'error' }>): void {
    failpoint('before-done');
    const batch = store.getBatch(o.batch);
    if (!batch || batch.group !== group) throw new Error(`batch ${o.batch} does not belong to group "${group}"`);
    if (!store.markOutputApplied({ outputId: o.id, group, batchId: o.batch, type: o.type })) return;
    turns.end(group, o.type === 'done' ? { kind: 'done' } : { kind: 'error', message: o.message, retryable: o.retryable }, o.batch);
  }

  /** Applies a request (tasks, group registration) and answers it in the group's in/. */
  async function request(group: string, o: HostRequest): Promise<void> {
    const self = store.getGroup(group);
    if (!self) throw new Error(`unknown group "${group}"`);
    // Requests carry no batch; they are taken only while the group's turn runs.
    if (!turns.running(group)) throw new Error(`group "${group}" has no running turn: its ${o.type} request is refused (requests are taken only during a turn)`);
    const actor: Actor = { kind: 'group', group, isMain: self.isMain };
    // The effect and the "applied" record commit together: a replayed file changes nothing.
    const outcome = store.transaction(() => {
      if (!store.markOutputApplied({ outputId: o.id, group, batchId: null, type: o.type })) return undefined;
      try {
        const result = act(actor, o) as { task?: TaskView } | undefined;
        // The owner hears of a task that waits for approval once: the notice commits with the task.
        return { result, error: undefined, notice: result?.task?.state === 'pending' && o.type === 'task.schedule' ? askApproval(result.task) : undefined };
      } catch (err) {
        if (!(err instanceof TaskError)) throw err;
        return { result: undefined, error: err.message, notice: undefined };
      }
    });
    if (!outcome) return;
    const { result, error, notice } = outcome;
    if (notice) opts.publish(notice);
    const task = result?.task ? { task: result.task.id, state: result.task.state } : {};
    opts.log.info('task request', { group, type: o.type, ok: error === undefined, ...task, ...(error ? { error } : {}) });
    // A refused request changed nothing: audited apart from the changes (`hako audit --kind policy` shows both).
    opts.record(error === undefined ? 'policy.change' : 'policy.refused', group, { request: o.type, id: o.id, ok: error === undefined, ...task, ...(error ? { error } : {}) });
    await opts.ipc.send(group, { v: 1, id: opts.ipc.newId(), type: 'response', request: o.id, ok: error === undefined, ...(error === undefined ? { result } : { error }) });
  }

  /** Stores the notice in main that a task waits for the owner's approval. */
  function askApproval(task: TaskView): StoredMessage | undefined {
    const main = store.mainGroup();
    if (main) return store.addNotice(main.name, approvalNotice(task), null);
    opts.log.warn('a task waits for approval but there is no main group to tell (see: hako tasks list)', { group: task.group, task: task.id });
    return undefined;
  }

  function act(actor: Extract<Actor, { kind: 'group' }>, o: HostRequest): unknown {
    const { tasks } = opts;
    switch (o.type) {
      case 'group.register': {
        // Registering groups is the owner's power: only the main group holds it.
        if (!actor.isMain) throw new TaskError('only the main group may register groups');
        const problem = groupNameProblem(o.name);
        if (problem) throw new TaskError(problem);
        const owner = o.chat && store.groupForChat(o.chat);
        if (owner && owner !== o.name) throw new TaskError(`chat ${o.chat} is already bound to group "${owner}"`);
        const chats = o.chat ? [o.chat] : [];
        // An existing group may be given a chat; it is not registered twice.
        if (store.getGroup(o.name) && !o.chat) throw new TaskError(`group "${o.name}" already exists`);
        const g = store.getGroup(o.name) ? store.updateGroup(o.name, { bind: chats }) : store.addGroup({ name: o.name, isMain: false, trigger: o.trigger ?? null, model: null, chats });
        prepareGroupDirs(opts.config.home, g.name);
        return { group: { name: g.name, trigger: g.trigger ?? `@${opts.config.assistantName}`, chats: g.chats } };
      }
      case 'task.schedule':
        return { task: tasks.schedule(actor, { prompt: o.prompt, cron: o.cron, every_seconds: o.every_seconds, at: o.at, ...(o.context ? { context: o.context } : {}), ...(o.group ? { group: o.group } : {}) }) };
      case 'task.list':
        return { tasks: tasks.list(actor) };
      case 'task.pause':
        return { task: tasks.pause(actor, o.task) };
      case 'task.resume':
        return { task: tasks.resume(actor, o.task) };
      case 'task.cancel':
        return { task: tasks.cancel(actor, o.task) };
    }
  }

  return async (group, o) => {
    switch (o.type) {
      case 'reply':
      case 'send_message':
        return message(group, o);
      case 'done':
      case 'error':
        return ending(group, o);
      default:
        return request(group, o);
    }
  };
}
