/**
 * When the pool goes quiet (nothing in flight, nothing queued): one `idle`
 * event, not one per call, and the wait of a graceful `close()`.
 *
 * @module
 */

import type { CallCounts } from "./host.ts";

export class IdleWatch {
  readonly #counts: CallCounts;
  readonly #onIdle: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waiter: (() => void) | undefined;
  #stopped = false;

  /** `onIdle` runs a tick after the pool went quiet, if it still is. */
  constructor(counts: CallCounts, onIdle: () => void) {
    this.#counts = counts;
    this.#onIdle = onIdle;
  }

  get quiet(): boolean {
    return this.#counts.inFlight === 0 && this.#counts.queued === 0;
  }

  /** A call settled or moved: if the pool is quiet now, the waiting `close()` goes on and an `idle` event is due. */
  check(): void {
    if (!this.quiet) return;
    this.release();
    if (this.#timer !== undefined || this.#stopped) return;
    // Wait a tick to see whether the caller issues the next call at once.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stopped && this.quiet) this.#onIdle();
    }, 0);
  }

  /**
   * Resolves when the pool is quiet, or after `ms`. One waiter at a time
   * (`close()`). Quiet means quiet once the settled calls' own callbacks ran:
   * a call one of them makes at once (the unsubscribe of a subscription the
   * server confirmed during `close()`) is waited for too.
   */
  wait(ms: number): Promise<void> {
    if (this.quiet) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve();
      }, ms);
      // Queued after the callbacks of the call that just settled (they were queued when it settled).
      const waiter = (): void =>
        queueMicrotask(() => {
          if (!this.quiet && !this.#stopped) return void (this.#waiter = waiter);
          clearTimeout(timer);
          resolve();
        });
      this.#waiter = waiter;
    });
  }

  /** Ends the wait now (`destroy()` during a `close()`). */
  release(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** No `idle` event from now on, and no timer left. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
