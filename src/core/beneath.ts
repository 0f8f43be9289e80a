// File access inside a folder an agent can write (its group folder), never following a
// link: each folder on the way is opened O_NOFOLLOW through the descriptor of the one
// before it (/proc/self/fd/N/<name>), so swapping a folder for a link between checks and
// use gets ELOOP/ENOTDIR, never a file elsewhere. Linux only (as the host is).

import fs from 'node:fs';

const DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

/** The parts of a relative path, or undefined when it is absolute, empty or climbs out (`..`). */
export function relativeParts(rel: string): string[] | undefined {
  if (rel === '' || rel.startsWith('/') || rel.includes('\0') || rel.length > 1024) return undefined;
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length === 0 || parts.includes('..') ? undefined : parts;
}

/** Runs `fn` with a descriptor of `root/dirs…` (each created when `create`), closing every descriptor after. */
function withDir<T>(root: string, dirs: readonly string[], create: boolean, fn: (fd: number) => T): T {
  const fds = [fs.openSync(root, DIR)];
  try {
    for (const d of dirs) {
      const at = `/proc/self/fd/${fds.at(-1)}/${d}`;
      if (create) {
        try {
          fs.mkdirSync(at, { mode: 0o755 });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      fds.push(fs.openSync(at, DIR));
    }
    return fn(fds.at(-1)!);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

/** Creates `root/dirs…/name` as a new file (O_EXCL) holding `data`; the folders are made when missing. */
export function writeNewBeneath(root: string, dirs: readonly string[], name: string, data: Uint8Array, mode = 0o644): void {
  withDir(root, dirs, true, (dir) => {
    const fd = fs.openSync(`/proc/self/fd/${dir}/${name}`, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
    try {
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Reads the regular file at `root/rel`; throws when it is missing, a link, not a regular file or over `maxBytes`. */
export function readBeneath(root: string, rel: string, maxBytes: number): Buffer {
  const parts = relativeParts(rel);
  if (!parts) throw new Error(`"${rel}" is not a path inside the workspace`);
  return withDir(root, parts.slice(0, -1), false, (dir) => {
    const fd = fs.openSync(`/proc/self/fd/${dir}/${parts.at(-1)}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new Error(`"${rel}" is not a regular file`);
      if (st.size > maxBytes) throw new Error(`"${rel}" is ${st.size} bytes; the limit is ${maxBytes}`);
      const data = Buffer.alloc(st.size);
      let off = 0;
      while (off < st.size) {
        const n = fs.readSync(fd, data, off, st.size - off, off);
        if (n === 0) break;
        off += n;
      }
      return data.subarray(0, off);
    } finally {
      fs.closeSync(fd);
    }
  });
}
