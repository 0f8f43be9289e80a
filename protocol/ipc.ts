// The filesystem IPC contract between host and agent: one JSON object per file, written
// to a dot-prefixed temporary name and renamed into place. Pure: no I/O here (the file
// operations both ends use are transport.ts; the results of requests are results.ts).
//
// Invariants: validators accept `unknown` and never throw; anything that does not match
// a known type exactly is rejected with a reason. The group is never part of the payload
// that grants authority: it comes from the directory the file was found in.

import { parseChat, TRIGGER_PATTERN } from './names.ts';

export const IPC_VERSION = 1;
export const MAX_IPC_FILE_BYTES = 256 * 1024;
export const MAX_TEXT_CHARS = 64 * 1024;

/** Why `file` is not a path relative to the group folder that stays inside it, or null. */
export function workspaceFileProblem(file: unknown): string | null {
  if (typeof file !== 'string' || file === '' || file.length > 1024 || file.includes('\0')) return 'must be a path of at most 1024 characters';
  if (file.startsWith('/')) return 'must be relative to the group folder';
  return file.split('/').includes('..') ? 'must stay inside the group folder (no "..")' : null;
}
const MAX_ID_CHARS = 100;
/** Ids of IPC files, batches, messages and tasks. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

// ---- host → agent (in/) --------------------------------------------------------------

export interface InboundMessage {
  readonly id: string;
  readonly sender: string;
  readonly text: string;
  /** ISO-8601 time the host received it. */
  readonly ts: string;
  /** Files that came with the message, already saved in the group folder (agent/media.ts reads them). */
  readonly attachments?: readonly MessageAttachment[];
}

/** One saved attachment: `path` relative to the group folder (e.g. inbox/2026-11-30/photo.jpg). */
export interface MessageAttachment {
  readonly path: string;
  readonly mime: string;
  readonly name: string;
}

export const MAX_ATTACHMENTS_PER_MESSAGE = 20;

/** Why `x` is not a valid `attachments` list, or null. */
export function attachmentsProblem(x: unknown): string | null {
  if (x === undefined) return null;
  if (!Array.isArray(x) || x.length > MAX_ATTACHMENTS_PER_MESSAGE) return `"attachments" must be a list of at most ${MAX_ATTACHMENTS_PER_MESSAGE}`;
  for (const a of x) {
    if (!isObj(a)) return 'each attachment must be an object';
    const p = firstProblem(checkKeys(a, ['path', 'mime', 'name']), checkText(a, 'mime', 100), checkText(a, 'name', 255));
    if (p) return `attachment: ${p}`;
    const fp = workspaceFileProblem(a.path);
    if (fp) return `attachment "path" ${fp}`;
  }
  return null;
}

/** Present when the batch is a scheduled task's run rather than chat messages. */
export interface BatchTask {
  readonly id: string;
  readonly run: string;
  /** `group` continues the group's conversation; `isolated` runs with a fresh one. */
  readonly context: TaskContext;
}

export interface BatchFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'batch';
  /** Messages to answer, oldest first. For a task run: one message holding the prompt. */
  readonly messages: readonly InboundMessage[];
  readonly task?: BatchTask;
}

/** The host's answer to an agent request (task.*): `request` is the request file's id. */
export interface ResponseFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'response';
  readonly request: string;
  readonly ok: boolean;
  /** JSON result on success (e.g. the task list), a sentence the model can act on on failure. */
  readonly result?: unknown;
  readonly error?: string;
}

export interface CloseFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'close';
}

export type HostToAgent = BatchFile | ResponseFile | CloseFile;

// ---- agent → host (out/) -------------------------------------------------------------

/** The agent's answer to a batch. A batch may have several replies (or none). */
export interface ReplyFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'reply';
  readonly batch: string;
  readonly text: string;
}

/** A message sent from inside a turn (the send_message tool). `group` omitted = own chat. */
export interface SendMessageFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'send_message';
  readonly batch?: string;
  readonly text: string;
  readonly group?: string;
  /** A file of the workspace to send with the message, relative to the group folder. */
  readonly file?: string;
}

/** The batch is finished: its messages count as answered. */
export interface DoneFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'done';
  readonly batch: string;
}

/** The turn failed; `retryable` says whether running it again might help. */
export interface ErrorFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'error';
  readonly batch: string;
  readonly message: string;
  readonly retryable: boolean;
}

export type TaskContext = 'group' | 'isolated';

/** Exactly one of cron / every_seconds / at. The host validates the schedule itself. */
export interface TaskScheduleFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'task.schedule';
  readonly prompt: string;
  readonly cron?: string;
  readonly every_seconds?: number;
  readonly at?: string;
  readonly context?: TaskContext;
  /** Another group (main only). */
  readonly group?: string;
}

export interface TaskListFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'task.list';
}

export interface TaskActionFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'task.pause' | 'task.resume' | 'task.cancel';
  readonly task: string;
}

/** Registers a new group (main only); answered with a `response`. */
export interface GroupRegisterFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'group.register';
  readonly name: string;
  readonly trigger?: string;
  /** A chat address to bind to the group (a new one, or an existing one). */
  readonly chat?: string;
}

export type TaskRequest = TaskScheduleFile | TaskListFile | TaskActionFile;
export type HostRequest = TaskRequest | GroupRegisterFile;
export type AgentToHost = ReplyFile | SendMessageFile | DoneFile | ErrorFile | HostRequest;
export const MAX_PROMPT_CHARS = 8000;
/** Length limits of the schedule fields of `task.schedule` (the host judges the schedule itself). */
export const MAX_CRON_CHARS = 200;
export const MAX_AT_CHARS = 64;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

// ---- file naming ---------------------------------------------------------------------

let lastStamp = 0;
let counter = 0;

/** A file name that sorts in creation order within one writer: `<ms>-<counter>-<id>.json`. */
export function ipcFileName(id: string, now = Date.now()): string {
  if (now === lastStamp) counter++;
  else { lastStamp = now; counter = 0; }
  return `${String(now).padStart(15, '0')}-${String(counter).padStart(6, '0')}-${id}.json`;
}

/** Only names the writers produce are read; temporaries start with a dot and are skipped. */
export function isIpcFileName(name: string): boolean {
  return /^\d{15}-\d{6}-[A-Za-z0-9_-]{1,100}\.json$/.test(name);
}

// ---- validation ----------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkKeys(o: Obj, allowed: readonly string[]): string | null {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) return `unexpected field "${k}"`;
  return null;
}

function checkId(o: Obj, field: string, optional = false): string | null {
  const v = o[field];
  if (v === undefined && optional) return null;
  if (typeof v !== 'string' || !ID_PATTERN.test(v)) {
    return `field "${field}" must be an id of 1-${MAX_ID_CHARS} characters [A-Za-z0-9_-]`;
  }
  return null;
}

function checkText(o: Obj, field: string, max = MAX_TEXT_CHARS): string | null {
  const v = o[field];
  if (typeof v !== 'string') return `field "${field}" must be a string`;
  if (v.length > max) return `field "${field}" is longer than ${max} characters`;
  return null;
}

function header(o: unknown, types: readonly string[]): Parsed<Obj> {
  if (!isObj(o)) return { ok: false, reason: 'not a JSON object' };
  if (o.v !== IPC_VERSION) return { ok: false, reason: `unsupported version ${JSON.stringify(o.v)} (expected ${IPC_VERSION})` };
  if (typeof o.type !== 'string' || !types.includes(o.type)) {
    return { ok: false, reason: `unknown type ${JSON.stringify(o.type)}` };
  }
  const idProblem = checkId(o, 'id');
  if (idProblem) return { ok: false, reason: idProblem };
  return { ok: true, value: o };
}

function firstProblem(...problems: (string | null)[]): string | null {
  for (const p of problems) if (p) return p;
  return null;
}

const AGENT_TYPES = ['reply', 'send_message', 'done', 'error', 'task.schedule', 'task.list', 'task.pause', 'task.resume', 'task.cancel', 'group.register'] as const;

/** Validates one parsed agent output. The caller has already enforced MAX_IPC_FILE_BYTES. */
export function parseAgentOutput(x: unknown): Parsed<AgentToHost> {
  const h = header(x, AGENT_TYPES);
  if (!h.ok) return h;
  const o = h.value;
  let problem: string | null;
  switch (o.type) {
    case 'reply':
      problem = firstProblem(checkKeys(o, ['v', 'id', 'type', 'batch', 'text']), checkId(o, 'batch'), checkText(o, 'text'));
      break;
    case 'send_message':
      problem = firstProblem(
        checkKeys(o, ['v', 'id', 'type', 'batch', 'text', 'group', 'file']),
        checkId(o, 'batch', true),
        checkText(o, 'text'),
        o.group === undefined || (typeof o.group === 'string' && o.group.length <= 64) ? null : 'field "group" must be a group name',
        o.file === undefined || workspaceFileProblem(o.file) === null ? null : `field "file": ${workspaceFileProblem(o.file)}`,
      );
      break;
    case 'done':
      problem = firstProblem(checkKeys(o, ['v', 'id', 'type', 'batch']), checkId(o, 'batch'));
      break;
    case 'task.schedule': {
      const kinds = ['cron', 'every_seconds', 'at'].filter((k) => o[k] !== undefined);
      problem = firstProblem(
        checkKeys(o, ['v', 'id', 'type', 'prompt', 'cron', 'every_seconds', 'at', 'context', 'group']),
        checkText(o, 'prompt', MAX_PROMPT_CHARS),
        kinds.length === 1 ? null : 'give exactly one of "cron", "every_seconds" or "at"',
        o.cron === undefined || (typeof o.cron === 'string' && o.cron.length <= MAX_CRON_CHARS) ? null : 'field "cron" must be a cron expression string',
        o.every_seconds === undefined || (typeof o.every_seconds === 'number' && Number.isFinite(o.every_seconds)) ? null : 'field "every_seconds" must be a number',
        o.at === undefined || (typeof o.at === 'string' && o.at.length <= MAX_AT_CHARS) ? null : 'field "at" must be an ISO-8601 time string',
        o.context === undefined || o.context === 'group' || o.context === 'isolated' ? null : 'field "context" must be "group" or "isolated"',
        o.group === undefined || (typeof o.group === 'string' && o.group.length <= 64) ? null : 'field "group" must be a group name',
      );
      break;
    }
    case 'task.list':
      problem = checkKeys(o, ['v', 'id', 'type']);
      break;
    case 'group.register':
      problem = firstProblem(
        checkKeys(o, ['v', 'id', 'type', 'name', 'trigger', 'chat']),
        typeof o.name === 'string' && o.name.length <= 64 ? null : 'field "name" must be a group name',
        o.trigger === undefined || (typeof o.trigger === 'string' && TRIGGER_PATTERN.test(o.trigger)) ? null : 'field "trigger" must be one word',
        o.chat === undefined || parseChat(o.chat) ? null : 'field "chat" must be a chat address like telegram:-1001234567890',
      );
      break;
    case 'task.pause':
    case 'task.resume':
    case 'task.cancel':
      problem = firstProblem(checkKeys(o, ['v', 'id', 'type', 'task']), checkId(o, 'task'));
      break;
    default: // 'error'
      problem = firstProblem(
        checkKeys(o, ['v', 'id', 'type', 'batch', 'message', 'retryable']),
        checkId(o, 'batch'),
        checkText(o, 'message', 4000),
        typeof o.retryable === 'boolean' ? null : 'field "retryable" must be a boolean',
      );
  }
  if (problem) return { ok: false, reason: `${String(o.type)}: ${problem}` };
  return { ok: true, value: o as unknown as AgentToHost };
}

/** Validates one host input as the agent reads it. */
export function parseHostInput(x: unknown): Parsed<HostToAgent> {
  const h = header(x, ['batch', 'response', 'close']);
  if (!h.ok) return h;
  const o = h.value;
  if (o.type === 'close') {
    const p = checkKeys(o, ['v', 'id', 'type']);
    return p ? { ok: false, reason: p } : { ok: true, value: o as unknown as CloseFile };
  }
  if (o.type === 'response') {
    const p = firstProblem(
      checkKeys(o, ['v', 'id', 'type', 'request', 'ok', 'result', 'error']),
      checkId(o, 'request'),
      typeof o.ok === 'boolean' ? null : 'field "ok" must be a boolean',
      o.error === undefined || typeof o.error === 'string' ? null : 'field "error" must be a string',
    );
    return p ? { ok: false, reason: `response: ${p}` } : { ok: true, value: o as unknown as ResponseFile };
  }
  const p = checkKeys(o, ['v', 'id', 'type', 'messages', 'task']);
  if (p) return { ok: false, reason: p };
  if (o.task !== undefined) {
    const t = o.task;
    if (!isObj(t)) return { ok: false, reason: 'batch: "task" must be an object' };
    const tp = firstProblem(checkKeys(t, ['id', 'run', 'context']), checkId(t, 'id'), checkId(t, 'run'),
      t.context === 'group' || t.context === 'isolated' ? null : 'task "context" must be "group" or "isolated"');
    if (tp) return { ok: false, reason: `batch task: ${tp}` };
  }
  if (!Array.isArray(o.messages) || o.messages.length === 0) return { ok: false, reason: 'batch: "messages" must be a non-empty array' };
  for (const m of o.messages) {
    if (!isObj(m)) return { ok: false, reason: 'batch: each message must be an object' };
    const mp = firstProblem(checkId(m, 'id'), checkText(m, 'sender', 200), checkText(m, 'text'), checkText(m, 'ts', 40), attachmentsProblem(m.attachments));
    if (mp) return { ok: false, reason: `batch message: ${mp}` };
  }
  return { ok: true, value: o as unknown as BatchFile };
}
