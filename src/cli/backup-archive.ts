// The backup file format: a gzip-compressed tar (POSIX ustar, a pax `path`/`size` record
// before an entry whose name or size does not fit), so any `tar -tzf` can list it. Written
// and read here, without the system tar, so that what restore checks is exactly what it
// writes: no second parser can see a different archive.
//
// Invariants: the writer emits only regular files and folders; the reader yields only
// regular files and folders whose path is relative, without `..`, and says which entry
// broke a rule otherwise (links, devices, FIFOs, hard links, global headers: refused).

import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export type EntryType = 'file' | 'dir';

export interface EntryHeader {
  readonly path: string;
  readonly type: EntryType;
  readonly mode: number;
  readonly size: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

const BLOCK = 512;
const MAX_OCTAL_SIZE = 8 ** 11 - 1;
/** The longest path the reader takes: deeper trees are not something hako writes. */
const MAX_PATH = 4096;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  // The length counts its own digits: grow it until it is stable.
  let len = Buffer.byteLength(body);
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

function rawHeader(name: string, type: string, size: number, mode: number, mtime: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8'); // cut at 100 bytes; a pax `path` record then holds it whole
  b.write(octal(mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(0, 8), 108, 'ascii');
  b.write(octal(0, 8), 116, 'ascii');
  b.write(octal(Math.min(size, MAX_OCTAL_SIZE), 12), 124, 'ascii');
  b.write(octal(Math.max(0, Math.floor(mtime)), 12), 136, 'ascii');
  b.write('        ', 148, 'ascii');
  b.write(type, 156, 'ascii');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** The header block(s) of one entry: a pax record first when the name or size needs one. */
export function entryHeader(h: EntryHeader): Buffer {
  const name = h.type === 'dir' ? `${h.path}/` : h.path;
  const records: Buffer[] = [];
  if (Buffer.byteLength(name) > 100 || /[^\x20-\x7e]/.test(name)) records.push(paxRecord('path', name));
  if (h.size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(h.size)));
  const own = rawHeader(name, h.type === 'dir' ? '5' : '0', h.size, h.mode, h.mtime);
  if (records.length === 0) return own;
  const pax = Buffer.concat(records);
  return Buffer.concat([rawHeader('PaxHeader', 'x', pax.length, 0o644, h.mtime), pax, padding(pax.length), own]);
}

/** The bytes after an entry's data, up to the next block. */
export { padding as entryPadding };

/** Two zero blocks: the end of the archive. */
export const END = Buffer.alloc(BLOCK * 2);

/** Reads exactly n bytes at a time from a stream of chunks; null at the end. */
class ByteReader {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  offset = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer | null> {
    while (this.#buf.length < n) {
      const next = await this.#it.next();
      if (next.done) return null;
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, next.value]) : next.value;
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** Hands `n` bytes to `sink` chunk by chunk, never holding more than one chunk. */
  async pipe(n: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0) {
        const next = await this.#it.next();
        if (next.done) throw new ArchiveError('the archive ends in the middle of a file: it is truncated');
        this.#buf = next.value;
      }
      const take = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(take.length);
      left -= take.length;
      this.offset += take.length;
      await sink(take);
    }
  }
}

function field(b: Buffer, start: number, len: number): string {
  const raw = b.subarray(start, start + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul === -1 ? len : nul).toString('utf8');
}

function number(b: Buffer, start: number, len: number, what: string): number {
  const text = field(b, start, len).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new ArchiveError(`an entry's ${what} is not a number: the archive is damaged or not a hako backup`);
  return parseInt(text, 8);
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = Number(data.subarray(at, space).toString('ascii'));
    if (space === -1 || !Number.isInteger(len) || len <= 0 || at + len > data.length) throw new ArchiveError('a pax header record is malformed: the archive is damaged');
    const rec = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  '1': 'a hard link', '2': 'a symbolic link', '3': 'a character device', '4': 'a block device', '6': 'a FIFO',
  '7': 'a contiguous file', 'g': 'a global pax header', 'K': 'a long link name', 'S': 'a sparse file',
};

/** Why `p` may not be written below a folder, or null when it may. */
export function pathProblem(p: string): string | null {
  if (p === '' || p.length > MAX_PATH) return 'an empty or overlong path';
  if (p.includes('\0') || p.includes('\\')) return 'a path with a NUL or backslash';
  if (p.startsWith('/')) return 'an absolute path';
  const parts = p.split('/');
  if (parts.some((x) => x === '..')) return 'a path that climbs out with ".."';
  if (parts.some((x) => x === '' || x === '.')) return 'a path with an empty or "." part';
  return null;
}

export interface ReadEntry extends EntryHeader {
  /** Hands the entry's data to `sink`; when not called, the data is skipped. Call at most once. */
  readonly data: (sink: (chunk: Buffer) => void | Promise<void>) => Promise<void>;
}

/**
 * The entries of a gzip-compressed tar, in order. Throws ArchiveError at the first entry
 * that is not a regular file or folder, or whose path is unsafe (see `pathProblem`).
 */
export async function* readArchive(input: Readable): AsyncGenerator<ReadEntry> {
  const gunzip = createGunzip();
  input.on('error', (err) => gunzip.destroy(err));
  const r = new ByteReader(input.pipe(gunzip) as AsyncIterable<Buffer>);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  for (;;) {
    const block = await r.read(BLOCK);
    if (!block) throw new ArchiveError('the archive ends without its end marker: it is truncated');
    if (block.every((x) => x === 0)) return;
    if (field(block, 257, 5) !== 'ustar') throw new ArchiveError('an entry header is not a tar header: this is not a hako backup, or it is damaged');
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== number(block, 148, 8, 'checksum')) throw new ArchiveError(`an entry header fails its checksum (at byte ${r.offset - BLOCK}): the archive is damaged`);
    const type = field(block, 156, 1) || '0';
    let size = number(block, 124, 12, 'size');
    if (pax.has('size')) size = Number(pax.get('size'));
    if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveError('an entry has an impossible size: the archive is damaged');
    const prefix = field(block, 345, 155);
    const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100));
    pax = new Map();
    longName = undefined;
    if (type === 'x' || type === 'L') {
      if (size > 1024 * 1024) throw new ArchiveError('a pax or long-name header is over 1 MB: refused');
      const data = size ? await r.read(size) : Buffer.alloc(0);
      if (!data || !(await r.read(padding(size).length))) throw new ArchiveError('the archive is truncated inside a header');
      if (type === 'x') pax = parsePax(data);
      else longName = field(data, 0, data.length);
      continue;
    }
    const kind: EntryType | undefined = type === '0' || type === '5' ? (type === '5' ? 'dir' : 'file') : undefined;
    if (!kind) throw new ArchiveError(`the archive holds ${TYPE_NAMES[type] ?? `an entry of type "${type}"`} (${JSON.stringify(name)}): a hako backup holds only files and folders`);
    const path = kind === 'dir' ? name.replace(/\/+$/, '') : name;
    const problem = pathProblem(path);
    if (problem) throw new ArchiveError(`the archive holds ${problem}: ${JSON.stringify(name)}`);
    if (kind === 'dir' && size !== 0) throw new ArchiveError(`the folder entry ${JSON.stringify(name)} has data: the archive is damaged`);
    let consumed = false;
    const data = async (sink: (chunk: Buffer) => void | Promise<void>) => {
      if (consumed) throw new Error(`the data of ${path} was already read`);
      consumed = true;
      await r.pipe(size, sink);
      await r.pipe(padding(size).length, () => {});
    };
    yield { path, type: kind, mode: number(block, 100, 8, 'mode'), size, mtime: number(block, 136, 12, 'time'), data };
    if (!consumed) await data(() => {});
  }
}
