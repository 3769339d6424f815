/**
 * Deadlines of the calls that use the pool's default timeout, kept with one
 * timer instead of one per call. Those calls share one timeout and the clock
 * is monotonic, so they expire in the order they were made: a FIFO holds
 * them and the timer is armed for the oldest one still pending. A call that
 * settles first is only marked; it leaves when it reaches the head, or in a
 * sweep once marked entries outnumber live ones, so memory follows the live
 * count. With nothing pending there is no timer at all.
 *
 * Per call this is an array push instead of a setTimeout/clearTimeout pair
 * and its closure: about 0.6 µs and 150 bytes less (bench/throughput.mjs,
 * bench/memory.mjs).
 *
 * @module
 */

import { Fifo } from "./queue.ts";

/** What the lane needs of an item. */
export interface Timed {
  /** When it expires (the lane's clock). */
  deadline: number;
  /** Still tracked here: not expired, not settled. */
  inLane: boolean;
}

export class DeadlineLane<T extends Timed> {
  readonly #queue = new Fifo<T>();
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #expire: (item: T) => void;
  #live = 0;
  #stale = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(timeoutMs: number, now: () => number, expire: (item: T) => void) {
    this.#timeoutMs = timeoutMs;
    this.#now = now;
    this.#expire = expire;
  }

  /** Whether a timer is pending (at most one ever is). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** Entries held, settled ones not yet swept included (bounded by about twice the live count, plus 1,024). */
  get backlog(): number {
    return this.#queue.length;
  }

  /** Items tracked and not settled. */
  get size(): number {
    return this.#live;
  }

  /** Starts the item's deadline: `timeoutMs` from now. */
  add(item: T): void {
    item.deadline = this.#now() + this.#timeoutMs;
    item.inLane = true;
    this.#queue.push(item);
    this.#live++;
    if (this.#timer === undefined) this.#arm(item.deadline);
  }

  /** The item settled before its deadline. */
  forget(item: T): void {
    item.inLane = false;
    if (--this.#live === 0) {
      this.clear();
      return;
    }
    if (++this.#stale > 1024 && this.#stale > this.#live) {
      this.#queue.retain((i) => i.inLane);
      this.#stale = 0;
    }
  }

  /** Drops every item and the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const item of this.#queue.drain()) item.inLane = false;
    this.#live = 0;
    this.#stale = 0;
  }

  #arm(deadline: number): void {
    clearTimeout(this.#timer); // one timer at most, even if an expiry added items meanwhile
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, deadline - this.#now()));
  }

  #fire(): void {
    this.#timer = undefined;
    const now = this.#now();
    for (;;) {
      const head = this.#queue.peek();
      if (head === undefined) return;
      if (!head.inLane) {
        this.#queue.shift();
        if (this.#stale > 0) this.#stale--;
        continue;
      }
      if (head.deadline > now) {
        this.#arm(head.deadline);
        return;
      }
      this.#queue.shift();
      head.inLane = false;
      this.#live--;
      // May dispatch events whose listeners call back into the pool (even
      // destroy it, which clears this lane): the loop re-reads the head.
      this.#expire(head);
    }
  }
}
