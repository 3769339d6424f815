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
  /** `conn` expires or drains: what it carries should move (make-before-break). */
  leaving(conn: Connection, why: "expired" | "resize" | "reload"): void;
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
  /** The close handshakes of connections that left, until they are done (what a shrinking resize waits for). */
  readonly #closes = new Map<Connection, Promise<void>>();
  /** Why each draining connection leaves: "expired", "resize", "reload". */
  readonly #leaving = new Map<Connection, "expired" | "resize" | "reload">();
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
    // A listener may have closed the pool between a decision to add and here: a socket opened now would be nobody's.
    if (this.#host.state() === "closed") throw new PoolClosedError("no socket is opened once the pool is closed");
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
      this.#host.leaving(conn, "expired");
    } else {
      this.startDrain(conn);
    }
  }

  /** `conn` stops taking calls: its queue moves, its calls in flight finish, then it retires (closes with 1000, saying `why`). */
  startDrain(conn: Connection, why?: "resize" | "reload"): void {
    const queued = conn.beginDraining();
    if (queued === undefined) return;
    const reason = why ?? this.#leaving.get(conn) ?? "expired";
    this.#leaving.set(conn, reason);
    this.#host.moveQueued(conn, queued);
    this.#host.leaving(conn, reason);
    if (conn.inFlight === 0 && conn.queued === 0) this.retire(conn);
  }

  /** A drained connection closes with 1000 and leaves the pool (not while it carries subscriptions: they move first, or it drains out). */
  retire(conn: Connection): void {
    if (conn.state === "closed" || conn.subscriptions > 0) return;
    this.remove(conn);
    const snapshot = conn.snapshot(this.#connectionHost.now());
    const reason = this.#leaving.get(conn) ?? "expired";
    this.#leaving.delete(conn);
    const closed = conn.close(1000, reason, 2_000);
    this.#closes.set(conn, closed);
    void closed.then(() => {
      this.#closes.delete(conn);
      this.#host.emit(new ConnectionEvent("close", { ...snapshot, state: "closed" }, { code: 1000, reason }));
    });
    this.checkEmpty();
  }

  /** Takes a connection out of the pool for good (its socket is already gone or closing); see {@link checkEmpty}. */
  remove(conn: Connection): void {
    conn.remove();
    const i = this.#list.indexOf(conn);
    if (i >= 0) this.#list.splice(i, 1);
    this.#router.forget(conn);
    this.#waiters.wake(); // a resize may wait for it
  }

  /** After removals: with no connection left, whatever waits can never be sent, and fails. */
  checkEmpty(): void {
    if (this.#list.length > 0) return;
    this.#host.noneLeft(this.noneLeftError("waiting for a socket"));
    this.#waiters.rejectAll(this.noneLeftError("waiting for a socket"));
  }

  /** A new strategy (`pool.update({ strategy })`); sticky keys are kept. */
  setStrategy(strategy: StrategyFunction): void {
    this.#router.setStrategy(strategy);
  }

  /** The connections that stay: not draining, not expired, not closed. Their number is the pool's size. */
  #members(): Connection[] {
    return this.#list.filter((c) => c.state !== "draining" && c.state !== "closed" && !c.expired);
  }

  /**
   * Grows by opening connections on the lowest free slot indices, resolving
   * once they are open; shrinks by draining the connections it removes
   * (those not open first, then the least busy), resolving once they have
   * closed. Rejects with `TimeoutError` (its `cause` the last `ConnectError`)
   * when new sockets do not open within `connectTimeout`.
   */
  async resize(size: number): Promise<void> {
    const members = this.#members();
    const o = this.#connectionHost.options;
    o.size = size;
    if (members.length < size) {
      const used = new Set(members.map((c) => c.index));
      const added: Connection[] = [];
      for (let index = 0; added.length < size - members.length; index++) if (!used.has(index)) added.push(this.add(index));
      for (const c of added) c.start();
      return await this.#until(`resize to ${size}`, () => added.every((c) => c.state === "open"), o.connectTimeout);
    }
    const busy = (c: Connection): number => (c.state === "open" ? 1e9 : 0) + c.inFlight + c.queued;
    const leaving = members.sort((a, b) => busy(a) - busy(b) || b.index - a.index).slice(0, members.length - size);
    for (const c of leaving) {
      if (c.state === "open") this.startDrain(c, "resize");
      else {
        this.#host.moveQueued(c, c.takeQueued());
        this.remove(c);
        this.#closes.set(c, c.close(1000, "resize", 0));
      }
    }
    await this.#until(`resize to ${size}`, () => leaving.every((c) => c.state === "closed"), o.drainTimeout + 2_000);
    await Promise.all(leaving.map((c) => this.#closes.get(c))); // resolves once their sockets have closed
  }

  /**
   * Replaces every open connection, one at a time and make-before-break:
   * each replacement opens before the connection it replaces drains, so
   * capacity never dips. Resolves with the number replaced.
   */
  async reload(): Promise<number> {
    let replaced = 0;
    const stopped = (): PoolClosedError =>
      new PoolClosedError(`reload stopped after ${replaced} sockets: the pool is ${this.#host.state()}`);
    if (this.#host.state() !== "open") throw stopped(); // a reload listener may have closed it
    for (const conn of this.#members()) {
      if (this.#host.state() !== "open") throw stopped();
      if (conn.state !== "open") continue; // one that is not open has no socket to replace
      const fresh = this.add(conn.index);
      this.#leaving.set(conn, "reload");
      conn.awaitReplacement(fresh);
      fresh.connect();
      await this.#until("reload", () => fresh.state === "open", this.#connectionHost.options.connectTimeout);
      replaced++;
    }
    return replaced;
  }

  /** Resolves when `done()` holds (asked whenever a connection opens or leaves), rejects after `ms` or when the pool closes. */
  #until(what: string, done: () => boolean, ms: number): Promise<void> {
    return this.#waiters.wait(
      () => {
        if (this.#host.state() === "closed") throw new PoolClosedError(`${what}: the pool closed`);
        return done() ? true : undefined;
      },
      ms,
      () => new TimeoutError(`${what}: not done within ${ms} ms; last: ${this.lastLoss || "no attempt has failed"}`, this.#cause()),
    ).then(() => {});
  }

  /** Keeps what the last loss says, for the messages and causes of later errors. */
  recordLoss(conn: Connection, loss: LostSocket, plan: { readonly attempt: number; readonly stopped: string | undefined }): void {
    const why = plan.stopped ?? loss.reason;
    this.lastLoss = `socket ${conn.id} (${conn.url}), ${plan.attempt} failed attempt${plan.attempt === 1 ? "" : "s"}: ${why}`;
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
