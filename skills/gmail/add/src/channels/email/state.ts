// What the e-mail channel remembers across restarts, so a message already stored is never
// processed twice: the mailbox's UIDVALIDITY and the highest UID handled (the IMAP cursor),
// and the keys (Message-IDs) of the messages most recently stored — the dedup that holds
// when the cursor cannot (a crash between storing and flagging \Seen, a new UIDVALIDITY).
// It is the channel's own small file, HAKO_HOME/channels/email/state.json (mode 0600, its
// folder 0700, never mounted into a container), not part of hako.db's schema, so the
// core's database knows nothing of e-mail. Written atomically (temporary file, fsync,
// rename): a crash leaves the old state or the new, never half of one.

import fs from 'node:fs';
import path from 'node:path';

/** Keys kept for dedup; far more than a mailbox receives between two restarts. */
const MAX_KEYS = 5000;

interface StateFile {
  readonly v: 1;
  /** Which mailbox this is (user, server, folder): another one starts afresh. */
  readonly mailbox: string;
  readonly uidValidity: string | null;
  readonly lastUid: number;
  /** Keys of stored messages, oldest first. */
  readonly keys: readonly string[];
}

export class MailState {
  readonly file: string;
  readonly #mailbox: string;
  #uidValidity: string | null;
  #lastUid: number;
  #keys: string[];
  #keySet: Set<string>;

  private constructor(file: string, data: StateFile) {
    this.file = file;
    this.#mailbox = data.mailbox;
    this.#uidValidity = data.uidValidity;
    this.#lastUid = data.lastUid;
    this.#keys = [...data.keys];
    this.#keySet = new Set(this.#keys);
  }

  static path(home: string): string {
    return path.join(home, 'channels', 'email', 'state.json');
  }

  /**
   * Loads the state of `mailbox`. A missing file, or one of another mailbox, starts afresh
   * (the first sweep then takes only unread mail); an unreadable one is moved aside with a
   * warning rather than stopping e-mail.
   */
  static load(opts: { home: string; mailbox: string; warn: (msg: string) => void }): MailState {
    const file = MailState.path(opts.home);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const fresh: StateFile = { v: 1, mailbox: opts.mailbox, uidValidity: null, lastUid: 0, keys: [] };
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new MailState(file, fresh);
      throw new Error(`email: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    const data = parseState(text);
    if (!data) {
      const aside = `${file}.unreadable-${Date.now()}`;
      fs.renameSync(file, aside);
      opts.warn(`email: ${file} was unreadable and is kept as ${aside}; only unread mail is taken, and a message stored but not yet marked read may be stored again`);
      return new MailState(file, fresh);
    }
    if (data.mailbox !== opts.mailbox) return new MailState(file, { ...fresh, keys: data.keys });
    return new MailState(file, data);
  }

  get uidValidity(): string | null { return this.#uidValidity; }
  get lastUid(): number { return this.#lastUid; }

  has(key: string): boolean {
    return this.#keySet.has(key);
  }

  /** Records a stored message's key (call `save` to make it durable). */
  addKey(key: string): void {
    if (this.#keySet.has(key)) return;
    this.#keys.push(key);
    this.#keySet.add(key);
    while (this.#keys.length > MAX_KEYS) this.#keySet.delete(this.#keys.shift()!);
  }

  setCursor(uidValidity: string, lastUid: number): void {
    this.#uidValidity = uidValidity;
    this.#lastUid = lastUid;
  }

  /** Writes the state atomically: after `save` returns, a crash keeps it. */
  save(): void {
    const data: StateFile = { v: 1, mailbox: this.#mailbox, uidValidity: this.#uidValidity, lastUid: this.#lastUid, keys: this.#keys };
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(data));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }
}

function parseState(text: string): StateFile | undefined {
  let o: unknown;
  try { o = JSON.parse(text); } catch { return undefined; }
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  if (r.v !== 1 || typeof r.mailbox !== 'string' || !(r.uidValidity === null || typeof r.uidValidity === 'string')
    || typeof r.lastUid !== 'number' || !Number.isInteger(r.lastUid) || r.lastUid < 0
    || !Array.isArray(r.keys) || !r.keys.every((k) => typeof k === 'string')) return undefined;
  return { v: 1, mailbox: r.mailbox, uidValidity: r.uidValidity, lastUid: r.lastUid, keys: r.keys as string[] };
}
