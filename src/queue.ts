/**
 * An O(1) FIFO: an array read from a moving head index. `shift()` never moves
 * the remaining items; the consumed prefix is dropped in one `splice` once it
 * is both large and more than half the array, so the cost stays amortised O(1)
 * and memory follows the live length.
 *
 * @module
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Items between head and tail, including any the owner has marked stale. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The oldest item, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined; // let the GC have it now
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return item;
  }

  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Keeps only the items `keep` accepts, in order. O(n). */
  retain(keep: (item: T) => boolean): void {
    const out: T[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (keep(item)) out.push(item);
    }
    this.#items = out;
    this.#head = 0;
  }

  /** Removes and returns every item, oldest first. */
  removeAll(): T[] {
    const out = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return out;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }
}

/**
 * A {@link Fifo} of calls that may also leave from the middle (timeout,
 * abort) without a search: the owner marks such an item (`holds` turns false
 * for it) and calls `forget()`. Marked items are skipped when read and swept
 * once they outnumber the live ones, so a queue that never drains cannot
 * pile up dead calls.
 */
export class CallQueue<T> extends Fifo<T> {
  /** Items pushed and neither taken nor forgotten. */
  live = 0;
  #stale = 0;
  readonly #holds: (item: T) => boolean;

  constructor(holds: (item: T) => boolean) {
    super();
    this.#holds = holds;
  }

  override push(item: T): void {
    super.push(item);
    this.live++;
  }

  /** A live item left out of band; its entry is now stale. */
  forget(): void {
    this.live--;
    if (++this.#stale > 64 && this.#stale > this.live) {
      this.retain(this.#holds);
      this.#stale = 0;
    }
  }

  /** Removes and returns the oldest live item, or `undefined` when none is left. */
  next(): T | undefined {
    for (let item = this.shift(); item !== undefined; item = this.shift()) {
      if (this.#holds(item)) {
        this.live--;
        return item;
      }
      if (this.#stale > 0) this.#stale--;
    }
    return undefined;
  }

  /** The oldest live item, left in place (stale entries before it are dropped), or `undefined`. */
  first(): T | undefined {
    for (let item = this.peek(); item !== undefined; item = this.peek()) {
      if (this.#holds(item)) return item;
      this.shift();
      if (this.#stale > 0) this.#stale--;
    }
    return undefined;
  }

  /** Removes every live item, oldest first. */
  take(): T[] {
    const out = this.removeAll().filter(this.#holds);
    this.live = 0;
    this.#stale = 0;
    return out;
  }
}
