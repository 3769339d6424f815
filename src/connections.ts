/**
 * The pool's set of connections and their turnover: it makes them (one per
 * slot, spread over the endpoints), routes among them (router.ts decides),
 * and runs what happens to a connection apart from its calls: make-before-
 * break replacement when its TTL passes, draining, retiring with 1000, and
 * removal. It also holds the callers waiting for a socket (`ready()`,
 * `withConnection`). What becomes of calls is the pool's business: the set
 * hands them over through {@link ConnectionSetHost}.
 *
 * @module
 */

import type { PendingCall } from "./call.ts";
import { Connection } from "./connection.ts";
import type { ConnectionHost } from "./host.ts";
import type { EndpointPlan } from "./endpoints.ts";
import { ConnectError, NoConnectionError, PoolClosedError, TimeoutError } from "./errors.ts";
import type { LostSocket } from "./recovery.ts";
import { ConnectionEvent } from "./events.ts";
import { type RoutedCall, Router } from "./router.ts";
import { Waiters } from "./session.ts";
import type { ConnectionSnapshot } from "./stats.ts";
import type { CallInfo, StrategyFunction } from "./strategies.ts";

/** What a connection reports to the pool about its calls; the set adds the callbacks about its lifecycle. */
export type CallsHost = Omit<ConnectionHost<Connection>, "onOpen" | "onExpire" | "onDrainDue" | "onDrained">;

/** What the set asks of the pool. */
export interface ConnectionSetHost {
  /** `"open"`, `"closing"` or `"closed"`. */
  state(): string;
  /** Calls taken from `from`'s queue must go elsewhere. */
  moveQueued(from: Connection, calls: readonly PendingCall[]): void;
  /** A connection can take calls: place the calls waiting in the pool queue. */
  placeWaiting(): void;
  /** The last connection is gone: whatever waits can never be sent (the error to fail it with). */
  noneLeft(error: NoConnectionError): void;
  /** A connection expired (counted in stats). */
  expired(): void;
  /** Dispatches a pool event (none once the pool is closed). */
  emit(event: Event): void;
}

export class ConnectionSet {
  /** In slot order; replacements are appended. */
  #list: Connection[] = [];
  readonly #host: ConnectionSetHost;
  readonly #connectionHost: ConnectionHost<Connection>;
  readonly #endpoints: EndpointPlan;
  readonly #router: Router<Connection>;
  readonly #waiters = new Waiters();
  #nextId = 1;
  /** What happened to the last socket lost, for messages. */
  lastLoss = "";
  /** Why the last connect attempt failed: the `cause` of `NoConnectionError` and of `ready()`'s `TimeoutError`. */
  lastError: ConnectError | undefined;

  /** `calls`: what each connection reports about its calls; the set handles the rest of their lifecycle. */
  constructor(host: ConnectionSetHost, calls: CallsHost, endpoints: EndpointPlan, strategy: StrategyFunction) {
    this.#host = host;
    this.#connectionHost = {
      ...calls,
      onOpen: (c) => {
        this.opened(c);
        host.placeWaiting();
      },
      onExpire: (c) => this.expire(c),
      onDrainDue: (c) => this.startDrain(c),
      onDrained: (c) => this.retire(c),
    };
    this.#endpoints = endpoints;
    this.#router = new Router(strategy);
  }

  /** The connections, in slot order (a live array: do not keep it). */
  get list(): readonly Connection[] {
    return this.#list;
  }

  /** Adds a connection for slot `index`; it connects when `start()`ed. */
  add(index: number): Connection {
    const conn = new Connection(this.#connectionHost, this.#nextId++, index, this.#endpoints.urlFor, this.#endpoints.endpointAt(index));
    this.#list.push(conn);
    return conn;
  }

  /** The connection for a call (see {@link Router.route}). */
  route(call: RoutedCall, from?: Connection): Connection | null | undefined {
    return this.#router.route(call, this.#list, from);
  }

  snapshots(now: number): ConnectionSnapshot[] {
    return this.#list.map((c) => c.snapshot(now));
  }

  /** A connection opened: it may take over from expired ones, and take calls waiting elsewhere. */
  opened(conn: Connection): void {
    this.#host.emit(new ConnectionEvent("open", conn.snapshot(this.#connectionHost.now())));
    // An expired connection waiting for this replacement can now drain.
    for (const old of this.#list) if (old.replacement === conn && old.state === "open") this.startDrain(old);
    // Calls waiting on connections that are backing off come here instead.
    for (const other of this.#list) {
      if (other !== conn && other.inBackoff && other.queued > 0) this.#host.moveQueued(other, other.takeQueued());
    }
    this.#waiters.wake();
  }

  /** An exclusive `withConnection` session takes `conn`: the calls waiting on it go elsewhere. */
  checkOut(conn: Connection): void {
    conn.setExclusive(true);
    this.#host.moveQueued(conn, conn.takeQueued());
  }

  /** The exclusive session ended: `conn` takes calls again. */
  checkIn(conn: Connection): void {
    conn.setExclusive(false);
    this.#waiters.wake();
    if (conn.state === "open") this.#host.placeWaiting();
  }

  /** The TTL of `conn` passed: make-before-break with `revive`, else it drains and goes. */
  expire(conn: Connection): void {
    this.#host.expired();
    this.#host.emit(new ConnectionEvent("expire", conn.snapshot(this.#connectionHost.now())));
    if (this.#connectionHost.options.revive && this.#host.state() === "open") {
      // The replacement opens first; this connection keeps serving until then
      // (or until connectTimeout, if the server is slow).
      const replacement = this.add(conn.index);
      conn.awaitReplacement(replacement);
      replacement.connect();
    } else {
      this.startDrain(conn);
    }
  }

  /** `conn` stops taking calls: its queue moves, its calls in flight finish, then it retires. */
  startDrain(conn: Connection): void {
    const queued = conn.beginDraining();
    if (queued === undefined) return;
    this.#host.moveQueued(conn, queued);
    if (conn.inFlight === 0 && conn.queued === 0) this.retire(conn);
  }

  /** A drained connection closes with 1000 and leaves the pool. */
  retire(conn: Connection): void {
    if (conn.state === "closed") return;
    this.remove(conn);
    const snapshot = conn.snapshot(this.#connectionHost.now());
    void conn.close(1000, "expired", 2_000).then(() => {
      this.#host.emit(new ConnectionEvent("close", { ...snapshot, state: "closed" }, { code: 1000, reason: "expired" }));
    });
    this.checkEmpty();
  }

  /** Takes a connection out of the pool for good (its socket is already gone or closing); see {@link checkEmpty}. */
  remove(conn: Connection): void {
    conn.remove();
    const i = this.#list.indexOf(conn);
    if (i >= 0) this.#list.splice(i, 1);
    this.#router.forget(conn);
  }

  /** After removals: with no connection left, whatever waits can never be sent, and fails. */
  checkEmpty(): void {
    if (this.#list.length > 0) return;
    this.#host.noneLeft(this.noneLeftError("waiting for a socket"));
    this.#waiters.rejectAll(this.noneLeftError("waiting for a socket"));
  }

  /** Keeps what the last loss says, for the messages and causes of later errors. */
  recordLoss(conn: Connection, loss: LostSocket, plan: { readonly attempt: number; readonly stopped: string | undefined }): void {
    const why = plan.stopped ?? loss.reason;
    this.lastLoss = `socket ${conn.id} (${conn.url}), ${plan.attempt} failed attempts: ${why}`;
    if (loss.wasOpen && plan.stopped === undefined) return;
    const message = `socket ${conn.id} could not connect to ${conn.url} (attempt ${plan.attempt}): ${why}`;
    this.lastError = new ConnectError(message, { url: conn.url, attempt: plan.attempt, cause: loss.cause });
  }

  /** Every connection was dropped. */
  noneLeftError(what: string): NoConnectionError {
    return new NoConnectionError(
      `${what}: no socket left (all dropped: reconnect attempts spent, shouldRetry, or revive: false); last: ${this.lastLoss}`,
      this.#cause(),
    );
  }

  /** Resolves when a socket is open; see `Pool.ready`. */
  ready(ms: number): Promise<void> {
    return this.#waiters.wait(
      () => {
        this.#refuse("ready", false);
        return this.#list.some((c) => c.state === "open") ? true : undefined;
      },
      ms,
      () =>
        new TimeoutError(`ready: no socket opened within ${ms} ms; last: ${this.lastLoss || "no attempt has failed yet"}`, this.#cause()),
    ).then(() => {});
  }

  /** A connection to lend to a `withConnection` session: open, not checked out, not expiring. */
  acquire(ms: number, now: () => number): Promise<Connection> {
    const started = now();
    const call: CallInfo = { method: "withConnection", key: undefined, idempotent: false };
    return this.#waiters.wait(
      () => {
        this.#refuse("withConnection", true);
        const open = this.#list.filter((c) => c.state === "open" && !c.exclusive && !c.expired);
        return open.length === 0 ? undefined : this.#router.pick(open, call);
      },
      ms,
      () => {
        const why = this.#list.some((c) => c.state === "open")
          ? "all are checked out or expiring"
          : `none is open; last: ${this.lastLoss || "no attempt has failed yet"}`;
        return new TimeoutError(`withConnection: no socket became free within ${Math.round(now() - started)} ms (${why})`);
      },
    );
  }

  #cause(): { cause: ConnectError } | undefined {
    return this.lastError === undefined ? undefined : { cause: this.lastError };
  }

  #refuse(what: string, whileClosing: boolean): void {
    const state = this.#host.state();
    if (state === "closed" || (whileClosing && state !== "open")) throw new PoolClosedError(`${what} refused: the pool is ${state}`);
    if (this.#list.length === 0) throw this.noneLeftError(what);
  }

  /** The pool closes: every waiter rejects with `error`. */
  rejectWaiters(error: unknown): void {
    this.#waiters.rejectAll(error);
  }

  /**
   * The pool shuts down: every connection leaves the pool and closes with
   * 1000 ("pool closed"). `announce`, if given (a graceful `close()`), gets a
   * `close` event for each socket that was open; `destroy()` gives none.
   * Resolves when all are closed (or terminated after a 1 s grace).
   */
  async closeAll(announce?: (event: ConnectionEvent) => void): Promise<void> {
    const now = this.#connectionHost.now();
    await Promise.all(this.#list.map(async (conn) => {
      const wasOpen = conn.state === "open" || conn.state === "draining";
      const snapshot = conn.snapshot(now);
      conn.remove(); // no pumping, no reconnect, no timer from here on
      await conn.close(1000, "pool closed", 1_000);
      if (wasOpen) announce?.(new ConnectionEvent("close", { ...snapshot, state: "closed" }, { code: 1000, reason: "pool closed" }));
    }));
    this.#list = [];
    this.#router.clear();
  }
}
