// The one path-safety helper. Every path built from a group name or an agent-supplied
// name goes through here, so containment is checked in exactly one place.
//
// Invariant: a returned path is lexically inside its parent; callers that open files in
// agent-writable directories must still refuse symlinks (see protocol/transport.ts).

import path from 'node:path';
import { groupNameProblem } from '../../protocol/names.ts';

export class PathError extends Error {
  override name = 'PathError';
}

/** Joins `name` onto `parent` and proves the result stays inside `parent`. */
export function childPath(parent: string, name: string): string {
  if (name === '' || name.includes('\0')) throw new PathError(`invalid path segment ${JSON.stringify(name)} under ${parent}`);
  const base = path.resolve(parent);
  const full = path.resolve(base, name);
  if (full === base || !full.startsWith(base + path.sep)) {
    throw new PathError(`path ${JSON.stringify(name)} escapes ${base}`);
  }
  return full;
}

export function assertGroupName(name: string): void {
  const problem = groupNameProblem(name);
  if (problem) throw new PathError(problem);
}

export interface GroupPaths {
  readonly folder: string;
  readonly memory: string;
  readonly ipc: string;
  readonly ipcIn: string;
  readonly ipcOut: string;
  readonly ipcRejected: string;
  readonly run: string;
  readonly proxySocket: string;
}

export function groupPaths(home: string, group: string): GroupPaths {
  assertGroupName(group);
  const folder = childPath(path.join(home, 'groups'), group);
  const ipc = childPath(path.join(home, 'ipc'), group);
  const run = childPath(path.join(home, 'run'), group);
  return {
    folder,
    memory: path.join(folder, 'MEMORY.md'),
    ipc,
    ipcIn: path.join(ipc, 'in'),
    ipcOut: path.join(ipc, 'out'),
    ipcRejected: path.join(ipc, 'rejected'),
    run,
    proxySocket: path.join(run, 'proxy.sock'),
  };
}

export function homePaths(home: string) {
  return {
    db: path.join(home, 'hako.db'),
    global: path.join(home, 'global'),
    globalMemory: path.join(home, 'global', 'MEMORY.md'),
    logs: path.join(home, 'logs'),
    httpToken: path.join(home, 'http-token'),
    /** Copies of the files agents send to chats, host-only (never mounted). */
    files: path.join(home, 'files'),
  } as const;
}
