// The filesystem IPC contract between host and agent: one JSON object per file, written
// to a dot-prefixed temporary name and renamed into place. Pure: no I/O here.
//
// Invariants: validators accept `unknown` and never throw; anything that does not match
// a known type exactly is rejected with a reason. The group is never part of the payload
// that grants authority: it comes from the directory the file was found in.

export const IPC_VERSION = 1;
export const MAX_IPC_FILE_BYTES = 256 * 1024;
export const MAX_TEXT_CHARS = 64 * 1024;
const MAX_ID_CHARS = 100;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

// ---- host → agent (in/) --------------------------------------------------------------

export interface InboundMessage {
  readonly id: string;
  readonly sender: string;
  readonly text: string;
  /** ISO-8601 time the host received it. */
  readonly ts: string;
}

export interface BatchFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'batch';
  /** Messages to answer, oldest first. */
  readonly messages: readonly InboundMessage[];
}

export interface CloseFile {
  readonly v: 1;
  readonly id: string;
  readonly type: 'close';
}

export type HostToAgent = BatchFile | CloseFile;

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

export type AgentToHost = ReplyFile | SendMessageFile | DoneFile | ErrorFile;

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

const AGENT_TYPES = ['reply', 'send_message', 'done', 'error'] as const;

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
        checkKeys(o, ['v', 'id', 'type', 'batch', 'text', 'group']),
        checkId(o, 'batch', true),
        checkText(o, 'text'),
        o.group === undefined || (typeof o.group === 'string' && o.group.length <= 64) ? null : 'field "group" must be a group name',
      );
      break;
    case 'done':
      problem = firstProblem(checkKeys(o, ['v', 'id', 'type', 'batch']), checkId(o, 'batch'));
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
  const h = header(x, ['batch', 'close']);
  if (!h.ok) return h;
  const o = h.value;
  if (o.type === 'close') {
    const p = checkKeys(o, ['v', 'id', 'type']);
    return p ? { ok: false, reason: p } : { ok: true, value: o as unknown as CloseFile };
  }
  const p = checkKeys(o, ['v', 'id', 'type', 'messages']);
  if (p) return { ok: false, reason: p };
  if (!Array.isArray(o.messages) || o.messages.length === 0) return { ok: false, reason: 'batch: "messages" must be a non-empty array' };
  for (const m of o.messages) {
    if (!isObj(m)) return { ok: false, reason: 'batch: each message must be an object' };
    const mp = firstProblem(checkId(m, 'id'), checkText(m, 'sender', 200), checkText(m, 'text'), checkText(m, 'ts', 40));
    if (mp) return { ok: false, reason: `batch message: ${mp}` };
  }
  return { ok: true, value: o as unknown as BatchFile };
}
