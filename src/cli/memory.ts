// `hako memory show|edit <group> | --global`: the owner reads and edits a group's MEMORY.md
// or the global one. Both files are agent-written (global by the main group's agent), so the
// text is printed escaped, links are never followed (reads and writes go through
// core/beneath.ts), and an edit is written back only when the file did not change while the
// editor was open — by a temporary file renamed into place, so it is never half written.
// (An agent write in the moment between that check and the rename would be replaced: the
// check is against an agent writing during an edit, which takes minutes, not a lock.)

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MEMORY_MAX_BYTES } from '../../protocol/tools.ts';
import { readBeneath, writeNewBeneath } from '../core/beneath.ts';
import { loadConfig } from '../core/config.ts';
import { groupPaths, homePaths } from '../core/paths.ts';
import { containerUser } from '../core/runner.ts';
import { safeText } from '../core/safe-text.ts';
import { parse, runCommand, UsageError } from './args.ts';
import { openStore } from './store.ts';

export const help = `Usage:
  hako memory show <group>     print the group's MEMORY.md
  hako memory show --global    print global/MEMORY.md (every group reads it; only main's agent may change it)
  hako memory edit <group>     edit the group's MEMORY.md in $VISUAL or $EDITOR (default vi)
  hako memory edit --global    edit global/MEMORY.md in $VISUAL or $EDITOR

MEMORY.md is what the agent reads before every turn; it keeps it up to date with its
remember tool, within ${MEMORY_MAX_BYTES} bytes. edit opens a copy; when you save and quit, the
copy replaces the file — unless the agent changed the file meanwhile: then nothing is
written, your copy is kept and its path printed, so you can merge and edit again.
Text written by agents is shown with control characters escaped.`;

/** Large enough for any MEMORY.md an owner would keep; the agent's own limit is MEMORY_MAX_BYTES. */
const READ_MAX_BYTES = 4 * 1024 * 1024;

interface Target {
  /** What the messages call it: `group "x"` or `global memory`. */
  readonly label: string;
  /** The folder MEMORY.md lies in; agent-writable, so nothing beneath it is followed. */
  readonly dir: string;
  readonly file: string;
}

function targetOf(positionals: readonly string[], global: boolean): Target {
  const [, group, ...rest] = positionals;
  if (rest.length) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (global === (group !== undefined)) throw new UsageError('name a group or give --global (one of them)');
  const config = loadConfig();
  if (global) {
    const h = homePaths(config.home);
    return { label: 'global memory', dir: h.global, file: h.globalMemory };
  }
  const store = openStore(config.home);
  try {
    if (!store.getGroup(group!)) throw new UsageError(`no group "${group}" (see: hako groups list)`, { showHelp: false });
  } finally {
    store.close();
  }
  const p = groupPaths(config.home, group!);
  return { label: `group "${group}"`, dir: p.folder, file: p.memory };
}

/** The file's bytes; empty when there is none yet. Throws with a hint for a link or a non-file. */
function readMemory(t: Target): Buffer {
  try {
    return readBeneath(t.dir, 'MEMORY.md', READ_MAX_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return Buffer.alloc(0);
    if (code === 'ELOOP') throw new Error(`the MEMORY.md of ${t.label} is a symbolic link (an agent may have planted it); hako never follows it. Look at it with "ls -l ${t.file}" and remove it with "rm ${t.file}"`);
    throw new Error(`cannot read the MEMORY.md of ${t.label} (${t.file}): ${err instanceof Error ? err.message : String(err)}`);
  }
}

function show(t: Target): number {
  const data = readMemory(t);
  if (data.length === 0) {
    console.error(`${t.label} has no MEMORY.md yet (it is created at the first turn; "hako memory edit" writes one)`);
    return 0;
  }
  process.stdout.write(safeText(data.toString('utf8')).replace(/\n?$/, '\n'));
  return 0;
}

/** Runs the owner's editor on `file`; EDITOR may hold arguments ("code --wait"), as shells allow. */
function runEditor(file: string): number | null {
  const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
  const r = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' });
  if (r.error) throw new Error(`could not start the editor "${editor}": ${r.error.message} (set EDITOR)`);
  return r.status;
}

/** Puts `data` in place of MEMORY.md: a new file beside it (never through a link), renamed over it. */
function replaceMemory(t: Target, data: Buffer): void {
  const tmp = `.MEMORY.md.edit-${randomBytes(6).toString('hex')}`;
  writeNewBeneath(t.dir, [], tmp, data, 0o644);
  const tmpPath = path.join(t.dir, tmp);
  try {
    // A root host's containers run as another user, who must keep being able to write it.
    if (process.getuid?.() === 0) fs.lchownSync(tmpPath, containerUser().uid, containerUser().gid);
    fs.renameSync(tmpPath, t.file);
  } catch (err) {
    fs.rmSync(tmpPath, { force: true });
    throw err;
  }
}

function edit(t: Target): number {
  const before = readMemory(t);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-memory-'));
  const copy = path.join(work, 'MEMORY.md');
  fs.writeFileSync(copy, before, { mode: 0o600 });
  let keep = false;
  try {
    const status = runEditor(copy);
    if (status !== 0) throw new Error(`the editor exited with ${status ?? 'a signal'}; the MEMORY.md of ${t.label} was not changed`);
    const edited = fs.readFileSync(copy);
    if (edited.equals(before)) {
      console.log(`no change: the MEMORY.md of ${t.label} was left as it was`);
      return 0;
    }
    if (!readMemory(t).equals(before)) {
      keep = true;
      throw new Error(`the MEMORY.md of ${t.label} changed while you edited it (the agent may have written it), so nothing was written. Your version is kept at ${copy}: run "hako memory edit" again and merge it in`);
    }
    replaceMemory(t, edited);
    console.log(`wrote the MEMORY.md of ${t.label} (${edited.length} bytes); the agent reads it at its next turn`);
    if (edited.length > MEMORY_MAX_BYTES) {
      console.log(`note: that is over the ${MEMORY_MAX_BYTES} bytes the agent may keep there; its remember tool will ask it to summarise before adding more`);
    }
    return 0;
  } finally {
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<number> {
  return runCommand(help, async () => {
    const parsed = parse(args, { global: { type: 'boolean' } }, help);
    if (!parsed) return 0;
    const [action] = parsed.positionals;
    if (action !== 'show' && action !== 'edit') throw new UsageError(action ? `unknown action "${action}"` : 'name an action: show or edit');
    const target = targetOf(parsed.positionals, parsed.values.global === true);
    return action === 'show' ? show(target) : edit(target);
  });
}
