/**
 * Abort signals of pending calls: one listener per `AbortSignal`, however
 * many calls share it. A signal passed to thousands of calls gets one
 * listener, not thousands (Node warns "possible EventTarget memory leak"
 * past 10), and it is removed with the signal's last call.
 *
 * @module
 */

export class AbortWatch<T> {
  readonly #watched = new WeakMap<AbortSignal, { calls: Set<T>; listener: () => void }>();
  readonly #abort: (calls: readonly T[], reason: unknown) => void;

  /** `abort(calls, reason)` runs when a watched signal aborts, with every call still watched on it. */
  constructor(abort: (calls: readonly T[], reason: unknown) => void) {
    this.#abort = abort;
  }

  watch(call: T, signal: AbortSignal): void {
    let watch = this.#watched.get(signal);
    if (watch === undefined) {
      const calls = new Set<T>();
      const listener = (): void => {
        this.#watched.delete(signal);
        this.#abort([...calls], signal.reason);
      };
      watch = { calls, listener };
      this.#watched.set(signal, watch);
      signal.addEventListener("abort", listener, { once: true });
    }
    watch.calls.add(call);
  }

  /** The call settled: it no longer needs its signal. */
  unwatch(call: T, signal: AbortSignal): void {
    const watch = this.#watched.get(signal);
    if (watch === undefined || !watch.calls.delete(call) || watch.calls.size > 0) return;
    this.#watched.delete(signal);
    signal.removeEventListener("abort", watch.listener);
  }
}
