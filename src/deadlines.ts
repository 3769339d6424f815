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
 * {@link CallTimers} is the one owner of every call's deadline: it keeps the
 * lanes, gives a call a timer of its own when too many distinct timeouts are
 * in use, and clears them all on shutdown.
 *
 * @module
 */

import { MAX_DELAY } from "./validate.ts";
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
    this.#queue.removeAll(); // settled entries too
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

/** What {@link CallTimers} needs of a call. */
export interface TimedCall extends Timed {
  /** The call's timeout in ms: its lane. */
  readonly timeoutMs: number;
  /** Its own timer, when no lane could take it. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Distinct timeout values that get a shared timer each; more are rare (a timeout computed per call) and get timers of their own. */
const MAX_LANES = 16;

/** Every call's deadline: one lane per timeout value in use, up to {@link MAX_LANES}; a timer of its own past that. */
export class CallTimers<T extends TimedCall> {
  readonly #lanes = new Map<number, DeadlineLane<T>>();
  readonly #now: () => number;
  readonly #expire: (call: T) => void;

  /** `expire(call)` runs when a call's deadline passes; the call is no longer tracked by then. */
  constructor(now: () => number, expire: (call: T) => void) {
    this.#now = now;
    this.#expire = expire;
  }

  /** Sets `call.deadline` to now + its timeout and tracks it until then. */
  track(call: T): void {
    call.deadline = Math.ceil(this.#now() + call.timeoutMs);
    const lane = this.#laneFor(call.timeoutMs);
    if (lane !== undefined) lane.add(call);
    else {
      call.timer = setTimeout(() => {
        call.timer = undefined;
        this.#expire(call);
      }, Math.min(call.timeoutMs, MAX_DELAY));
    }
  }

  /** The call settled before its deadline. */
  forget(call: T): void {
    if (call.inLane) this.#lanes.get(call.timeoutMs)!.forget(call);
    else if (call.timer !== undefined) {
      clearTimeout(call.timer);
      call.timer = undefined;
    }
  }

  /** Drops every deadline and timer (shutdown); calls still pending are the caller's to settle. */
  clear(): void {
    for (const lane of this.#lanes.values()) lane.clear();
  }

  /** The lane for calls with this timeout, made on first use; `undefined` while MAX_LANES other values have calls pending. */
  #laneFor(timeoutMs: number): DeadlineLane<T> | undefined {
    let lane = this.#lanes.get(timeoutMs);
    if (lane !== undefined) return lane;
    if (this.#lanes.size >= MAX_LANES) {
      for (const [ms, idle] of this.#lanes) if (idle.size === 0) this.#lanes.delete(ms); // an empty lane holds no timer
    }
    if (this.#lanes.size < MAX_LANES) {
      lane = new DeadlineLane<T>(this.#now, this.#expire);
      this.#lanes.set(timeoutMs, lane);
    }
    return lane;
  }
}
