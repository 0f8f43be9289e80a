// Writes agent outputs to ipc/out/ atomically through the transport the host uses too
// (protocol/transport.ts): `.tmp-<name>` first, then rename to the final name from
// ipcFileName, so the host never sees a half-written file. Every file is validated against
// the protocol before it is written (a failure is a programmer error).

import { crypto } from './builtins.ts';
import { ipcFileName, MAX_IPC_FILE_BYTES, parseAgentOutput, type AgentToHost } from '../protocol/ipc.ts';
import { writeFileAtomic } from '../protocol/transport.ts';

/** Characters per reply file: even at 6 bytes per character (JSON \u escapes) it stays under MAX_IPC_FILE_BYTES. */
export const REPLY_CHUNK_CHARS = 32_000;

export function newId(): string {
  return crypto.randomUUID();
}

/** An output without its header; distributes over the union so each type keeps its own fields. */
type WithoutHeader<T> = T extends unknown ? Omit<T, 'v' | 'id'> : never;
export type Output = WithoutHeader<AgentToHost>;

export class Outbox {
  #dir: string;
  constructor(dir: string) { this.#dir = dir; }

  /**
   * Writes one output; resolves with the final file name. `id` defaults to a fresh one; a
   * request passes its own so it can match the host's response (which names that id).
   */
  async write(output: Output, id: string = newId()): Promise<string> {
    const file = { v: 1, id, ...output };
    const check = parseAgentOutput(file);
    if (!check.ok) throw new Error(`refusing to write an invalid output: ${check.reason}`);
    const json = JSON.stringify(file);
    if (Buffer.byteLength(json) > MAX_IPC_FILE_BYTES) throw new Error(`output ${file.type} is larger than ${MAX_IPC_FILE_BYTES} bytes`);
    const name = ipcFileName(file.id);
    // Not fsynced: the rename alone survives a kill -9 of the agent or its container, and the
    // host applies an output (committing it to SQLite) within milliseconds of the rename. Only
    // a machine crash in that window can lose one, and then the turn dies with the machine
    // and a batch without a delivered reply is run again. An fsync would add ~0.6 ms to
    // every reply on the warm path (measured on the bench machine).
    await writeFileAtomic(this.#dir, name, json, { fsync: false });
    return name;
  }
}

/** Splits long text into chunks of at most `max` characters, preferring line breaks and never splitting a surrogate pair. */
export function splitText(text: string, max = REPLY_CHUNK_CHARS): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let at = rest.lastIndexOf('\n', max);
    if (at < max / 2) at = max;
    const code = rest.charCodeAt(at - 1);
    if (at === max && code >= 0xd800 && code <= 0xdbff) at--;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).replace(/^\n/, '');
  }
  if (rest.length > 0) out.push(rest);
  return out;
}
