// What the Discord channel remembers across restarts, so that messages written while hako
// was stopped (or while no gateway session could be resumed) are fetched at the next new
// session: per bound Discord channel, the id of the newest message already taken in. It is
// the channel's own small file, HAKO_HOME/channels/discord/state.json (mode 0600, its folder
// 0700, never mounted into a container), not part of hako.db's schema. Written atomically
// (temporary file, fsync, rename): a crash leaves the old state or the new, never half of
// one. A symbolic link at the folder or the file is refused: whoever could plant one could
// make hako read or replace a file it was never meant to touch.
// Invariant: a kept id only ever grows (Discord ids are snowflakes, compared as BigInt).

import fs from 'node:fs';
import path from 'node:path';

interface StateFile {
  readonly v: 1;
  /** Discord channel id → the newest message id taken in (or seen first, as the starting point). */
  readonly channels: Readonly<Record<string, string>>;
}

const SNOWFLAKE = /^\d{1,21}$/;

export class DiscordState {
  readonly file: string;
  #channels: Map<string, string>;

  private constructor(file: string, channels: Map<string, string>) {
    this.file = file;
    this.#channels = channels;
  }

  static path(home: string): string {
    return path.join(home, 'channels', 'discord', 'state.json');
  }

  /**
   * Loads the kept ids. A missing file starts afresh (nothing old is replayed); an unreadable
   * one is moved aside with a warning rather than stopping Discord; a link throws.
   */
  static load(opts: { home: string; warn: (msg: string) => void }): DiscordState {
    const file = DiscordState.path(opts.home);
    const dir = path.dirname(file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    refuseLink(dir);
    let text: string;
    try {
      text = readNoFollow(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return new DiscordState(file, new Map());
      if (code === 'ELOOP') throw linkError(file);
      throw new Error(`discord: cannot read ${file}: ${(err as Error).message} (check its owner and mode 0600)`, { cause: err });
    }
    const data = parseState(text);
    if (!data) {
      const aside = `${file}.unreadable-${Date.now()}`;
      fs.renameSync(file, aside);
      opts.warn(`discord: ${file} was unreadable and is kept as ${aside}; messages written while hako was stopped are not fetched this time`);
      return new DiscordState(file, new Map());
    }
    return new DiscordState(file, new Map(Object.entries(data.channels)));
  }

  /** The newest message id kept for a Discord channel, if any. */
  last(channelId: string): string | undefined {
    return this.#channels.get(channelId);
  }

  /** Every channel with a kept id and that id. */
  entries(): [string, string][] {
    return [...this.#channels.entries()];
  }

  /** Keeps `messageId` when it is newer than the kept one; true when it changed (call `save` to make it durable). */
  advance(channelId: string, messageId: string): boolean {
    if (!SNOWFLAKE.test(channelId) || !SNOWFLAKE.test(messageId)) throw new Error(`discord: ${JSON.stringify(channelId)}/${JSON.stringify(messageId)} is not a channel and message id (snowflakes)`);
    const kept = this.#channels.get(channelId);
    if (kept !== undefined && BigInt(messageId) <= BigInt(kept)) return false;
    this.#channels.set(channelId, messageId);
    return true;
  }

  /** Writes the state atomically: after `save` returns, a crash keeps it. */
  save(): void {
    refuseLink(path.dirname(this.file));
    const data: StateFile = { v: 1, channels: Object.fromEntries(this.#channels) };
    const tmp = `${this.file}.tmp-${process.pid}`;
    let fd: number;
    try {
      fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw linkError(tmp);
      throw err;
    }
    try {
      fs.writeSync(fd, JSON.stringify(data));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // rename replaces a link at `file` itself, never what it points to.
    fs.renameSync(tmp, this.file);
  }
}

function readNoFollow(file: string): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function refuseLink(dir: string): void {
  if (fs.lstatSync(dir).isSymbolicLink()) throw linkError(dir);
}

function linkError(p: string): Error {
  return new Error(`discord: ${p} is a symbolic link, which hako refuses for its state: remove the link (hako makes the real file itself) and start hako again`);
}

function parseState(text: string): StateFile | undefined {
  let o: unknown;
  try { o = JSON.parse(text); } catch { return undefined; }
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  if (r.v !== 1 || !r.channels || typeof r.channels !== 'object' || Array.isArray(r.channels)) return undefined;
  const entries = Object.entries(r.channels as Record<string, unknown>);
  if (!entries.every(([k, v]) => SNOWFLAKE.test(k) && typeof v === 'string' && SNOWFLAKE.test(v))) return undefined;
  return { v: 1, channels: Object.fromEntries(entries as [string, string][]) };
}
