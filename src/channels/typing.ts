// A chat's "typing…" indicator as the platforms want it: shown now, then again every
// `everyMs` (each platform drops it after a few seconds), until its stop function is called,
// the channel stops them all, or `atMostMs` has passed (a turn nobody ended cannot leave a
// chat "typing" for ever). Shared by every chat channel that has such an indicator.

/** A turn left running cannot keep a chat "typing" longer than this. */
export const TYPING_AT_MOST_MS = 30 * 60 * 1000;

export class Typers {
  readonly #stops = new Set<() => void>();

  /**
   * Calls `tick` now and every `everyMs` until the returned function (idempotent) is called;
   * `tick` gets that function too, to end the indicator itself (the channel stopped). `tick`
   * must not throw.
   */
  start(tick: (stop: () => void) => void, everyMs: number, atMostMs = TYPING_AT_MOST_MS): () => void {
    const timer = setInterval(() => tick(stop), everyMs);
    const limit = setTimeout(() => stop(), atMostMs);
    const stop = () => {
      clearInterval(timer);
      clearTimeout(limit);
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    tick(stop);
    return stop;
  }

  /** Ends every indicator (the channel stops, or its credential was refused). */
  stopAll(): void {
    for (const stop of [...this.#stops]) stop();
  }

  /** How many indicators run now. */
  get size(): number {
    return this.#stops.size;
  }
}
