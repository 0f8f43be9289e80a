// A first-in first-out queue whose next() waits for an item. After close() it hands out
// nothing more: a waiting next() and every later one resolve null. With `order`, items
// are kept sorted (the inbox hands out file names in name order).

export class AsyncQueue<T> {
  #items: T[] = [];
  #waiters: (() => void)[] = [];
  #closed = false;
  readonly #order: ((a: T, b: T) => number) | undefined;

  constructor(opts: { order?: (a: T, b: T) => number } = {}) {
    this.#order = opts.order;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(...items: T[]): void {
    if (this.#closed || items.length === 0) return;
    this.#items.push(...items);
    if (this.#order) this.#items.sort(this.#order);
    this.#wake();
  }

  async next(): Promise<T | null> {
    for (;;) {
      if (this.#closed) return null;
      const item = this.#items.shift();
      if (item !== undefined) return item;
      await new Promise<void>((resolve) => { this.#waiters.push(resolve); });
    }
  }

  close(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}
