// File operations for directories an agent can write to. Nothing here follows a symlink:
// reads use lstat + O_NOFOLLOW and check the opened file is a regular file; moves rename
// the directory entry itself. NanoClaw-style escapes (host writes through an agent-planted
// link) need the host to resolve a link, which these functions never do.

import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';

export type ReadResult = { ok: true; text: string } | { ok: false; reason: string };

/** Reads `dir/name` if it is a regular file of at most `maxBytes`, without following links. */
export async function readRegularFile(dir: string, name: string, maxBytes: number): Promise<ReadResult> {
  const file = path.join(dir, name);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile()) return { ok: false, reason: 'not a regular file' };
    if (st.size > maxBytes) return { ok: false, reason: `file is ${st.size} bytes; the limit is ${maxBytes}` };
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await handle.read(buf, 0, st.size, 0);
    return { ok: true, text: buf.subarray(0, bytesRead).toString('utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { ok: false, reason: 'is a symbolic link' };
    if (code === 'ENOENT') return { ok: false, reason: 'vanished before it could be read' };
    return { ok: false, reason: `unreadable (${code ?? String(err)})` };
  } finally {
    await handle?.close();
  }
}

/** Writes `dir/name` atomically: a dot-prefixed temporary created exclusively, then renamed. */
export async function writeFileAtomic(dir: string, name: string, data: string, mode = 0o644): Promise<void> {
  const tmp = path.join(dir, `.tmp-${name}`);
  const handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, path.join(dir, name));
}

/** Moves the entry itself (file, link or folder) out of the agent's reach. */
export async function moveEntry(fromDir: string, name: string, toDir: string, toName = name): Promise<void> {
  await fs.rename(path.join(fromDir, name), path.join(toDir, toName));
}

/** Lists entry names sorted; a missing folder is empty. */
export async function listSorted(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
