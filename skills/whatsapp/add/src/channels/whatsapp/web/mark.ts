// The high-water mark of WhatsApp Web messages taken: the newest message time (WhatsApp's
// seconds) handed to the store, kept in HAKO_HOME/channels/whatsapp/web-state.json (0600,
// replaced atomically). History that WhatsApp syncs or appends is taken only from the mark
// on, so a reconnect delivers what came while away and never replays old chats into the
// agent. On the first start the mark is the moment of pairing: nothing older is taken.

import fs from 'node:fs';

export class HighWater {
  #path: string;
  #mark: number;

  constructor(path: string, now: () => number = () => Math.floor(Date.now() / 1000)) {
    this.#path = path;
    const stored = read(path);
    this.#mark = stored ?? now();
    if (stored === undefined) this.#save();
  }

  get mark(): number {
    return this.#mark;
  }

  /** Whether a synced or appended message of this time is new enough to take (the store drops repeats of the same second). */
  takes(ts: number): boolean {
    return ts > 0 && ts >= this.#mark;
  }

  advance(ts: number): void {
    if (ts <= this.#mark) return;
    this.#mark = ts;
    this.#save();
  }

  #save(): void {
    const tmp = `${this.#path}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ version: 1, mark: this.#mark }) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.#path);
  }
}

function read(path: string): number | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let mark: unknown;
  try {
    mark = (JSON.parse(raw) as { mark?: unknown } | null)?.mark;
  } catch {
    mark = undefined;
  }
  if (typeof mark !== 'number' || !Number.isFinite(mark) || mark < 0) {
    throw new Error(`whatsapp: ${path} is damaged (no "mark"): remove it; hako then takes only messages from now on`);
  }
  return mark;
}
