/**
 * Deadlines of the calls that share one timeout value, kept with one timer
 * instead of one per call. The pool keeps a lane per value in use (its
 * default and up to 15 others). Calls with the same timeout on a monotonic
 * clock expire in the order they were made: a queue holds
 * them and the timer is armed for the oldest one still pending. A call that
 * settles first is only marked; the queue drops it when it reaches the head,
 * or sweeps it once marked entries outnumber live ones (see `CallQueue`), so
 * memory follows the live count. With nothing pending there is no timer.
 *
 * Per call this is an array push instead of a setTimeout/clearTimeout pair
 * and its closure: 848 -> 630 bytes per pending call (bench/memory.mjs).
 *
 * @module
 */

import { CallQueue } from "./queue.ts";

/** What the lane needs of an item. */
export interface Timed {
  /** When it expires, on the lane's clock; set by the owner, in add order. */
  deadline: number;
  /** Still tracked here: not expired, not settled. */
  inLane: boolean;
}

export class DeadlineLane<T extends Timed> {
  readonly #queue = new CallQueue<T>((item) => item.inLane);
  readonly #now: () => number;
  readonly #expire: (item: T) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(now: () => number, expire: (item: T) => void) {
    this.#now = now;
    this.#expire = expire;
  }

  /** Whether a timer is pending (at most one ever is). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** Entries held, settled ones not yet swept included. */
  get backlog(): number {
    return this.#queue.length;
  }

  /** Items tracked and not settled. */
  get size(): number {
    return this.#queue.live;
  }

  /** Tracks the item until its `deadline`, which must not be earlier than any added before. */
  add(item: T): void {
    item.inLane = true;
    this.#queue.push(item);
    if (this.#timer === undefined) this.#arm(item.deadline);
  }

  /** The item settled before its deadline. */
  forget(item: T): void {
    item.inLane = false;
    this.#queue.forget();
    if (this.#queue.live === 0) this.clear();
  }

  /** Drops every item and the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const item of this.#queue.take()) item.inLane = false;
    this.#queue.drain(); // settled entries too
  }

  #arm(deadline: number): void {
    clearTimeout(this.#timer); // one timer at most, even if an expiry added items meanwhile
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, deadline - this.#now()));
  }

  #fire(): void {
    this.#timer = undefined;
    const now = this.#now();
    for (let head = this.#queue.first(); head !== undefined; head = this.#queue.first()) {
      if (head.deadline > now) {
        this.#arm(head.deadline);
        return;
      }
      this.#queue.next();
      head.inLane = false;
      // May dispatch events whose listeners call back into the pool (even
      // destroy it, which clears this lane): the loop re-reads the head.
      this.#expire(head);
    }
  }
}
