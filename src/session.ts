/**
 * `withConnection`: a session pinned to one connection. Every call made
 * through its handle goes to that connection, in order; with `exclusive` no
 * other call uses it while the session runs (a checkout). A pinned session is
 * never moved: if its socket dies, its calls reject with
 * `ConnectionLostError`. Also the waiting room for callers that need a
 * socket (`withConnection`, `ready()`).
 *
 * @module
 */

import type { Pin } from "./call.ts";
import type { Connection } from "./connection.ts";
import type { BatchRequest, BatchResult, CallOptions, PinnedCallOptions, PinnedConnection } from "./options.ts";
import { checkBoolean, checkNumber, fail, MAX_DELAY, onlyKnown } from "./validate.ts";

/** Options of `withConnection`. */
export interface SessionOptions {
  /** Keep every other call off the connection while the session runs. @default false */
  exclusive?: boolean;
  /** Ms to wait for a connection to lend. @default the pool's `timeout` */
  timeout?: number;
}

/** What a session needs of the pool. */
export interface SessionHost {
  readonly defaultTimeout: number;
  /** A connection to lend: open, not checked out, not expiring. */
  acquire(timeoutMs: number): Promise<Connection>;
  call(method: string, params: unknown, options: CallOptions | undefined, pin: Pin): Promise<unknown>;
  notify(method: string, params: unknown, pin: Pin): void;
  batch(requests: readonly BatchRequest[], options: CallOptions | undefined, pin: Pin): Promise<BatchResult[]>;
  /** An exclusive session starts: calls waiting on `conn` go elsewhere. */
  checkOut(conn: Connection): void;
  /** An exclusive session ended: `conn` takes calls again. */
  checkIn(conn: Connection): void;
  now(): number;
}

/** Runs `fn` with a connection lent to it (see the module doc); the connection goes back however `fn` settles. */
export async function withConnection<T>(
  host: SessionHost,
  fn: (connection: PinnedConnection) => T | Promise<T>,
  options: SessionOptions,
): Promise<T> {
  if (typeof fn !== "function") fail("fn", "a function", fn);
  onlyKnown(options, ["exclusive", "timeout"]);
  const exclusive = checkBoolean("exclusive", options.exclusive, false);
  if (options.timeout !== undefined) checkNumber("timeout", options.timeout, 1, MAX_DELAY, "a number of ms");
  const conn = await host.acquire(options.timeout ?? host.defaultTimeout);
  const pin: Pin = { conn, generation: conn.generation, ended: false };
  if (exclusive) host.checkOut(conn);
  const handle = pinnedHandle(host, conn, pin);
  try {
    return await fn(handle);
  } finally {
    pin.ended = true;
    if (exclusive) host.checkIn(conn);
  }
}

/** The handle through which calls go to `conn` only, for the session (or the `setup` step) of `pin`. */
export function pinnedHandle(host: SessionHost, conn: Connection, pin: Pin): PinnedConnection {
  return {
    id: conn.id,
    call: <R>(method: string, params?: unknown, opts?: PinnedCallOptions) => host.call(method, params, opts, pin) as Promise<R>,
    notify: (method, params) => host.notify(method, params, pin),
    batch: (requests, opts) => host.batch(requests, opts, pin),
    snapshot: () => conn.snapshot(host.now()),
  };
}

/**
 * Callers waiting until the pool can give them something (a connection to
 * lend, an open socket). Each wait has a deadline, and its timer is cleared
 * however it settles.
 */
export class Waiters {
  #waiting: { check: () => void; reject: (error: unknown) => void }[] = [];

  /**
   * Resolves with what `probe` returns, asked now and on every {@link wake};
   * `undefined` means "not yet". Rejects with what `probe` throws, with
   * `timeoutError()` after `ms`, or on {@link rejectAll}.
   */
  wait<T>(probe: () => T | undefined, ms: number, timeoutError: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (error: unknown, value?: T): void => {
        clearTimeout(timer);
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((w) => w.check !== check);
        reject(timeoutError());
      }, ms);
      const check = (): void => {
        let value: T | undefined;
        try {
          value = probe();
        } catch (error) {
          return settle(error);
        }
        if (value !== undefined) return settle(undefined, value);
        this.#waiting.push({ check, reject: settle });
      };
      check();
    });
  }

  /** Something changed (a socket opened or was freed): every waiter probes again. */
  wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.check();
  }

  /** Rejects every waiter with `error`. */
  rejectAll(error: unknown): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.reject(error);
  }
}
