// Shapes shared by every tool: what a tool receives (validated args + context) and returns.
// Invariant: a tool result is a bounded string; failures are results with isError, not throws.

import type { HostRequest as HostRequestFile, ResponseFile } from '../../protocol/ipc.ts';

export interface ToolResult {
  readonly text: string;
  readonly isError: boolean;
}

/** Arguments after `checkArgs` validated them against the tool's spec. */
export type ToolArgs = Readonly<Record<string, unknown>>;

export interface OutgoingMessage {
  readonly text: string;
  /** Another group (main only); omitted = this group's own chat. */
  readonly group?: string;
  /** A workspace file to send with it, relative to the workspace. */
  readonly file?: string;
}

/** Distributes over a union so each member keeps its own fields. */
type WithoutHeader<T> = T extends unknown ? Omit<T, 'v' | 'id'> : never;

/** A request to the host (task.*, group.register) without its file header: the id is chosen when it is written. */
export type HostRequest = WithoutHeader<HostRequestFile>;

export interface ToolContext {
  /** Absolute path of the group folder; relative paths resolve here and commands run here. */
  readonly workspace: string;
  /** This group's name (informational; the host decides identity from the IPC path). */
  readonly group: string;
  readonly isMain: boolean;
  /**
   * Contract: delivers one message to the host before the turn ends (main.ts writes it as a
   * `send_message` file in out/, tagged with the current batch). Resolves once the file is in
   * place; rejects when it could not be written — the tool then reports an error to the model.
   * It does not check authority: the host does that again from the IPC path.
   */
  readonly sendMessage: (msg: OutgoingMessage) => Promise<void>;
  /**
   * Contract: writes one request file to out/ (its id is the request id) and resolves with
   * the host's `response` to it, whatever its `ok`. Rejects when the file could not be
   * written or once `signal` fires (the tool sets its deadline through it); the request is
   * then forgotten, so a late response is dropped. Authority is the host's to check.
   */
  readonly request: (req: HostRequest, signal: AbortSignal) => Promise<ResponseFile>;
  /** The egress proxy as a URL (default: HTTP_PROXY, which the host sets). */
  readonly proxy?: string;
}

/**
 * Contract: may throw (the executor turns a throw into an error result); must honour
 * `signal` by stopping its work soon after it fires.
 */
export type ToolHandler = (args: ToolArgs, ctx: ToolContext, signal: AbortSignal) => Promise<ToolResult>;

export function ok(text: string): ToolResult {
  return { text, isError: false };
}

export function fail(text: string): ToolResult {
  return { text, isError: true };
}

/** Keeps the first `max` characters and says how many were cut. */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n[… ${text.length - max} more characters cut]`;
}
