/**
 * The pool, as coordinator: it admits calls, places each on a connection
 * (router.ts chooses), settles them, keeps the set of connections, applies
 * the recovery plan when a socket is lost (recovery.ts decides), and closes.
 * Connections own their lifecycles (connection.ts); deadlines, abort
 * signals, sessions and counters have modules of their own.
 *
 * @module
 */

import { AbortWatch } from "./aborts.ts";
import { callAll, type CallAllResult, type CallRequest } from "./callall.ts";
import { type CallKind, checkBatch, CONN_QUEUE, label, PendingCall, type Pin, POOL_QUEUE, SETTLED, whereText } from "./call.ts";
import type { Incoming } from "./codec.ts";
import type { Connection } from "./connection.ts";
import type { CallCounts } from "./host.ts";
import { type CallsHost, ConnectionSet } from "./connections.ts";
import { CallTimers } from "./deadlines.ts";
import { planEndpoints, type UrlSource, validateUrl } from "./endpoints.ts";
import { MuxPoolError, NoConnectionError, PoolClosedError, ProtocolError, TimeoutError } from "./errors.ts";
import {
  ConnectionEvent,
  NotificationEvent,
  PoolChangeEvent,
  PoolErrorEvent,
  PoolEvent,
  type PoolEventMap,
  TypedEventTarget,
} from "./events.ts";
import { IdleWatch } from "./idle.ts";
import { requestIds } from "./ids.ts";
import {
  type BatchRequest,
  type BatchResult,
  type CallOptions,
  checkCallOptions,
  type PinnedConnection,
  type PoolOptions,
  type PoolUpdate,
  type ResolvedOptions,
  resolveOptions,
  updateOptions,
} from "./options.ts";
import { Placer } from "./placement.ts";
import { type LostSocket, planRecovery } from "./recovery.ts";
import { outcomeOf } from "./replies.ts";
import { oversize } from "./wire.ts";
import { pinnedHandle, type SessionHost, type SessionOptions, withConnection } from "./session.ts";
import type { WebSocketConstructor } from "./socket.ts";
import { type ConnectionSnapshot, type PoolStats, StatsRecorder } from "./stats.ts";
import { createStrategy } from "./strategies.ts";
import { type SubscribeOptions, type Subscription, Subscriptions } from "./subscriptions.ts";
import { checkNumber, fail, MAX_DELAY, timeoutOption } from "./validate.ts";
import { defaultWebSocket, onWake } from "./websocket.ts";

/**
 * A pool of WebSocket connections that multiplexes request/response calls.
 *
 * @example
 * ```ts
 * const pool = new Pool("wss://api.example.com/rpc", { size: 4 });
 * const sum = await pool.call("add", [1, 2]);
 * await pool.close();
 * ```
 */
export class Pool extends TypedEventTarget<PoolEventMap> {
  readonly #options: ResolvedOptions;
  readonly #host: CallsHost;
  readonly #counts: CallCounts = { inFlight: 0, queued: 0 };
  readonly #connections: ConnectionSet;
  readonly #stats: StatsRecorder;
  readonly #timers: CallTimers<PendingCall>;
  readonly #aborts = new AbortWatch<PendingCall>((calls, reason) => {
    for (const call of calls) this.#fail(call, reason, "ABORTED");
  });
  readonly #session: SessionHost;
  readonly #placer: Placer;
  readonly #subs: Subscriptions;
  #seq = 0;
  #state: "open" | "closing" | "closed" = "open";
  readonly #idle = new IdleWatch(this.#counts, () => this.#emit(new PoolEvent("idle")));
  #closePromise: Promise<void> | undefined;
  #shutdownPromise: Promise<void> | undefined;
  #destroyed = false;
  #unwake: () => void = () => {};

  /**
   * @param url Where to connect: a `ws://`/`wss://` URL, a list of endpoints
   *   (`{ url, weight?, tags? }`), or a function `(index) => url` called on
   *   every (re)connect.
   * @param options See {@link PoolOptions}; every option is validated here and
   *   a bad one throws `InvalidConfigError` naming it.
   */
  constructor(url: UrlSource, options?: PoolOptions) {
    super();
    const source = validateUrl(url);
    const o = resolveOptions(options);
    this.#options = o;
    const WebSocket = o.WebSocket ?? defaultWebSocket();
    if (WebSocket === undefined) fail("WebSocket", "a WebSocket constructor (this runtime has none: pass one, e.g. from `ws`)", WebSocket);
    this.#stats = new StatsRecorder(o.latencyWindow);
    const now = typeof performance !== "undefined" ? () => performance.now() : () => Date.now();
    this.#timers = new CallTimers(now, (call) => this.#onTimeout(call));
    this.#host = {
      options: o,
      counts: this.#counts,
      WebSocket: WebSocket as WebSocketConstructor,
      nextId: requestIds(o.generateId),
      now,
      onReply: (c, call, message) => this.#onReply(c, call, message),
      onSetup: (c) => {
        const pin: Pin = { conn: c, generation: c.generation, ended: false, setup: true };
        const run = Promise.resolve().then(() => o.setup!(pinnedHandle(this.#session, c, pin)));
        return run.finally(() => void (pin.ended = true));
      },
      countProtocolError: () => this.#stats.protocolErrors++,
      onNotification: (c, method, params) =>
        this.#subs.notify(c, method, params) || this.#emit(new NotificationEvent(method, params, c.id)),
      onError: (c, error) => {
        if (error instanceof ProtocolError) this.#stats.protocolErrors++;
        this.#emit(new PoolErrorEvent(error, c.id));
      },
      onEncodeError: (call, error) => this.#fail(call, error),
      onWrittenNoReply: (call) => this.#settleQuietly(call),
      onNotWritten: (c, call, why) => {
        if (why === "aborted") this.#fail(call, call.signal!.reason, "ABORTED");
        else this.#placer.place(call, "move", c); // never written: it may go anywhere, deadline kept
      },
      onClosing: (c) => {
        this.#subs.moveFrom(c, "closing");
        this.#placer.moveQueued(c, c.takeQueued(), { waitForFrom: false });
      },
      onLost: (c, loss) => this.#onLost(c, loss),
      onRoom: () => this.#placer.placeWaiting(),
      onExpired: (call, c) =>
        this.#onTimeout(call, `queued on socket ${c.id} until its deadline (${c.inFlight} in flight, ${c.queued} queued)`),
    };
    this.#session = {
      defaultTimeout: o.timeout,
      acquire: (ms) => this.#connections.acquire(ms, now),
      call: (method, params, opts, pin) =>
        new Promise((resolve, reject) => this.#submit("request", method, params, opts, pin, resolve, reject)),
      notify: (method, params, pin) => this.#notify(method, params, pin),
      batch: (requests, opts, pin) => this.#batch(requests, opts, pin),
      checkOut: (conn) => this.#connections.checkOut(conn),
      checkIn: (conn) => this.#connections.checkIn(conn),
      now,
    };
    this.#connections = new ConnectionSet(
      {
        state: () => this.#state,
        moveQueued: (from, calls) => this.#placer.moveQueued(from, calls, { waitForFrom: false }),
        placeWaiting: () => {
          this.#placer.placeWaiting();
          this.#subs.wake();
        },
        leaving: (c, why) => this.#subs.moveFrom(c, why),
        noneLeft: (error) => this.#placer.failWaiting(() => error),
        expired: () => this.#stats.expired++,
        emit: (event) => this.#emit(event),
      },
      this.#host,
      planEndpoints(source, o.size),
      createStrategy(o.strategy),
    );
    this.#placer = new Placer({
      options: o,
      counts: this.#counts,
      stats: this.#stats,
      now,
      closed: () => this.#state === "closed",
      fail: (call, error) => this.#fail(call, error),
      emit: (event) => this.#emit(event),
    }, this.#connections);
    this.#subs = new Subscriptions({
      options: o,
      now,
      state: () => this.#state,
      list: () => this.#connections.list,
      call: (method, params, opts, c) =>
        this.#session.call(method, params, opts, { conn: c, generation: c.generation, ended: false, own: true }),
      retire: (c) => this.#connections.retire(c),
      emit: (event) => this.#emit(event),
    });
    for (let i = 0; i < o.size; i++) this.#connections.add(i);
    if (o.heartbeat !== false) this.#unwake = onWake(() => this.#connections.list.forEach((c) => c.checkNow()));
    // Connect after the constructor returns, so listeners added right after
    // `new Pool()` see every event, including a connect that fails at once.
    queueMicrotask(() => this.#state !== "closed" && this.#connections.list.forEach((c) => c.start()));
  }

  // ---------------------------------------------------------------- calls

  /**
   * Calls `method` on the server and resolves with its result. Rejects with a
   * `MuxPoolError` subclass (see the README's error table) or `signal.reason`.
   */
  call<T = unknown>(method: string, params?: unknown, options?: CallOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#submit("request", method, params, options, undefined, resolve as (v: unknown) => void, reject);
    });
  }

  /** Sends a notification (no id, no reply). Throws `PoolClosedError` after close, `PoolExhaustedError` when it would have to wait and `maxQueue` calls wait already. */
  notify(method: string, params?: unknown): void {
    this.#notify(method, params, undefined);
  }

  #notify(method: string, params: unknown, pin: Pin | undefined): void {
    let failure: unknown;
    let entering = true;
    // No promise carries a notification's failure: refused on the way in
    // (closed, maxQueue, no socket), it throws; failing later (its deadline
    // passed in a queue, its socket died), it is an "error" event.
    const reject = (e: unknown): void => {
      if (entering) failure = e;
      else if (!(e instanceof PoolClosedError)) this.#emit(new PoolErrorEvent(e as Error));
    };
    this.#submit("notification", method, params, undefined, pin, () => {}, reject);
    entering = false;
    if (failure !== undefined) throw failure;
  }

  /**
   * Sends several requests in one frame on one socket. Resolves with one entry
   * per request, in order, shaped like `Promise.allSettled`'s; rejects as a
   * whole when the frame could not be delivered (timeout, lost socket, …).
   */
  batch(requests: readonly BatchRequest[], options?: CallOptions): Promise<BatchResult[]> {
    return this.#batch(requests, options, undefined);
  }

  #batch(requests: readonly BatchRequest[], options: CallOptions | undefined, pin: Pin | undefined): Promise<BatchResult[]> {
    return new Promise<BatchResult[]>((resolve, reject) => {
      this.#submit("batch", "batch", requests, options, pin, resolve as (v: unknown) => void, reject);
    });
  }

  /**
   * Runs many calls in parallel across the pool, at most `concurrency` at a
   * time (`1`: one after another). Never rejects: each request is reported
   * once, in `successful` or `failed`, with its index.
   */
  callAll<T = unknown>(requests: readonly CallRequest[], options: { concurrency?: number } = {}): Promise<CallAllResult<T>> {
    return callAll((m, p, o) => this.call<T>(m, p, o), requests, options, this.#options.size * this.#options.maxInFlight);
  }

  /**
   * Subscribes on the server (`method`, e.g. `"eth_subscribe"`) and resolves,
   * once it confirmed, to a {@link Subscription}: an async iterable of its
   * events that moves to another socket when its own is lost, expires or
   * drains (`resubscribe` events). `params` may be a function of the last
   * event, called on every (re)subscribe. See {@link SubscribeOptions}.
   */
  subscribe<E = unknown>(method: string, params: unknown, options: SubscribeOptions<E>): Promise<Subscription<E>> {
    return this.#subs.subscribe(method, params, options);
  }

  /**
   * Lends one socket to `fn`: every call made through the handle goes to that
   * socket, in order. With `exclusive: true` no other call uses the socket
   * while `fn` runs. The socket returns to the pool when `fn` settles. If it
   * dies meanwhile, the session's calls reject with `ConnectionLostError`:
   * a pinned session is never moved to another socket.
   */
  withConnection<T>(fn: (connection: PinnedConnection) => T | Promise<T>, options: SessionOptions = {}): Promise<T> {
    return withConnection(this.#session, fn, options);
  }

  /**
   * Resolves when at least one socket is open. Rejects with `TimeoutError`
   * when none opened within `timeout` (default: the pool's call timeout),
   * saying why the last attempt failed, or sooner if the pool closes or
   * loses every socket.
   */
  ready(options: { timeout?: number } = {}): Promise<void> {
    try {
      // A wrong URL or a server that is down is an error, not a wait forever.
      return this.#connections.ready(timeoutOption(options, 1) ?? this.#options.timeout);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #submit(
    kind: CallKind,
    method: string,
    params: unknown,
    options: CallOptions | undefined,
    pin: Pin | undefined,
    resolve: (value: unknown) => void,
    reject: (reason: unknown) => void,
  ): void {
    if (this.#state !== "open" && (this.#state === "closed" || pin?.own !== true)) {
      return this.#refuse(kind, reject, new PoolClosedError(`call "${String(method)}" refused: the pool is ${this.#state}`));
    }
    try {
      if (typeof method !== "string" || method === "") fail("method", "a non-empty string", method);
      checkCallOptions(options);
      if (kind === "batch") checkBatch(params as readonly BatchRequest[], this.#options.codec);
    } catch (error) {
      return this.#refuse(kind, reject, error);
    }
    const signal = options?.signal;
    if (signal?.aborted) return this.#refuse(kind, reject, signal.reason, "ABORTED");
    if (pin?.ended) {
      return this.#refuse(
        kind,
        reject,
        new NoConnectionError(`call "${method}" refused: its withConnection block (socket ${pin.conn.id}) has ended`),
      );
    }
    const timeoutMs = options?.timeout ?? this.#options.timeout;
    const call = new PendingCall(++this.#seq, kind, method, params, options, this.#options.retry, timeoutMs, pin, resolve, reject);
    if (this.#options.maxRequestSize !== Infinity) {
      // Refused now rather than after waiting for a socket: encoded once more here (only with this option set).
      const refused = oversize(call, this.#options.codec, this.#host.nextId, this.#options.maxRequestSize);
      if (refused !== undefined) return this.#refuse(kind, reject, refused);
    }
    this.#timers.track(call);
    if (signal !== undefined) this.#aborts.watch(call, signal);
    this.#placer.place(call, "admit");
  }

  /** Rejects a call refused on the way in; it counts in `failed` like any other (`succeeded + failed` = calls settled). */
  #refuse(
    kind: CallKind,
    reject: (reason: unknown) => void,
    error: unknown,
    code = error instanceof MuxPoolError ? error.code : "OTHER",
  ): void {
    if (kind !== "notification") this.#stats.failed(code, error);
    reject(error);
  }

  // ---------------------------------------------------------------- settling

  /** Takes a call out of whatever holds it. */
  #unlink(call: PendingCall): void {
    const conn = call.conn as Connection | undefined;
    switch (call.where) {
      case POOL_QUEUE:
        this.#placer.waiting.forget();
        this.#counts.queued--;
        break;
      case CONN_QUEUE:
        conn!.forgetQueued();
        break;
      default: // IN_FLIGHT, or HELD for a batch frame (NOWHERE and SETTLED have no connection)
        conn?.forgetInFlight(call);
    }
    call.where = SETTLED;
    call.conn = undefined;
    if (conn !== undefined && conn.state !== "closed") conn.pump();
  }

  /** Forgets a call's deadline and abort signal: it is settling. */
  #release(call: PendingCall): void {
    this.#timers.forget(call);
    if (call.signal !== undefined) this.#aborts.unwatch(call, call.signal);
  }

  #fail(call: PendingCall, error: unknown, kind = error instanceof MuxPoolError ? error.code : "OTHER"): void {
    if (call.where === SETTLED) return;
    this.#release(call);
    this.#unlink(call);
    if (call.expectsReply && call.pin?.own !== true) this.#stats.failed(kind, error);
    call.fail(error);
    this.#idle.check();
  }

  #settleQuietly(call: PendingCall): void {
    this.#release(call);
    call.where = SETTLED;
    call.conn = undefined;
    this.#idle.check();
  }

  #onReply(conn: Connection, call: PendingCall, message: Incoming): void {
    this.#release(call);
    call.where = SETTLED;
    call.conn = undefined;
    const latency = this.#host.now() - call.sentAt;
    this.#stats.latency.record(latency);
    conn.latency.record(latency);
    const outcome = outcomeOf(call, message, conn.id);
    if (outcome.ok) {
      if (call.pin?.own !== true) this.#stats.succeeded++;
      call.resolve(outcome.value);
    } else {
      if (call.pin?.own !== true) this.#stats.failed(outcome.error.code, outcome.error);
      call.fail(outcome.error);
    }
    this.#idle.check();
  }

  #where(call: PendingCall): string {
    return whereText(call, () => {
      const all = this.#connections.list;
      const open = all.filter((c) => c.state === "open").length;
      return `waiting in the pool queue (${open} of ${all.length} sockets open, ${this.#placer.waiting.live} waiting)`;
    });
  }

  #onTimeout(call: PendingCall, where = this.#where(call)): void {
    const maybeExecuted = call.sentAt > 0; // written once: it may have run, even if it waits to be re-sent now
    this.#fail(call, new TimeoutError(`${label(call)} timed out after ${call.timeoutMs} ms, ${where}`, { maybeExecuted }));
  }

  // ---------------------------------------------------------------- connections

  /** A connection's socket is gone: apply the recovery plan to it and its calls. */
  #onLost(conn: Connection, loss: LostSocket): void {
    if (conn.state === "closed" || this.#state === "closed") return;
    const { code, reason, wasOpen } = loss;
    this.#subs.moveFrom(conn, "lost");
    const plan = planRecovery(loss, conn.takeInFlight(), conn.takeQueued(), this.#options);
    conn.recover(plan);
    this.#connections.recordLoss(conn, loss, plan);
    if (plan.hookError) this.#emit(new PoolErrorEvent(plan.hookError, conn.id));
    if (!plan.reconnect) this.#connections.remove(conn);
    for (const [call, error] of plan.fail) this.#fail(call, error);
    const how = { waitForFrom: plan.keepOnSocket };
    for (const call of plan.resend) {
      this.#stats.retried++;
      this.#placer.moveOne(call, conn, how);
    }
    this.#placer.moveQueued(conn, plan.move, how);
    const snapshot = conn.snapshot(this.#host.now());
    if (wasOpen || !plan.reconnect) this.#emit(new ConnectionEvent("close", snapshot, { code, reason }));
    if (plan.reconnect && this.state !== "closed") { // a listener may have closed the pool
      this.#stats.reconnects++;
      this.#emit(new ConnectionEvent("reconnect", snapshot, { reason, attempt: plan.attempt, delay: plan.delay }));
    }
    this.#connections.checkEmpty();
    this.#idle.check();
  }

  /** Dispatches `event` unless the pool is closed: after `close()`/`destroy()` the only event is `shutdown`. */
  #emit(event: Event): void {
    if (this.#state !== "closed") this.dispatchEvent(event);
  }

  // ---------------------------------------------------------------- changing a live pool

  /**
   * Grows or shrinks the pool to `size` sockets (an integer from 1 to 1024).
   * Growing opens sockets at once and resolves when they are open. Shrinking
   * drains the sockets it removes: they take no new calls, their queued
   * calls move to the others, their calls in flight finish within
   * `drainTimeout`, then they close with 1000; it resolves when they have
   * closed. Rejects with `InvalidConfigError` for a bad size, `PoolClosedError`
   * if the pool closes, `TimeoutError` if new sockets do not open within
   * `connectTimeout` (its `cause`: the last `ConnectError`). A `resize` event.
   */
  resize(size: number): Promise<void> {
    try {
      checkNumber("size", size, 1, 1024, "an integer");
      if (this.#state !== "open") throw new PoolClosedError(`resize refused: the pool is ${this.#state}`);
    } catch (error) {
      return Promise.reject(error);
    }
    if (size !== this.#options.size) this.#emit(new PoolChangeEvent("resize", { from: this.#options.size, size }));
    return this.#connections.resize(size); // refused if a listener closed the pool meanwhile
  }

  /**
   * Changes options of the live pool, validated as in the constructor
   * (`InvalidConfigError` naming the option; `size`, `codec`, `generateId`,
   * `WebSocket`, `protocols` and `latencyWindow` cannot change live and are
   * refused, saying what to do instead). A new `ttl` applies to open sockets
   * at once (from when each opened), a new `heartbeat` at the next check, a
   * larger `maxInFlight` or `maxQueue` lets waiting calls go at once; a new
   * `timeout` applies to calls made from now on. Throws `PoolClosedError`
   * once the pool is closing or closed. An `update` event lists the
   * values that changed (`changes`) and what they were (`previous`).
   */
  update(options: PoolUpdate): void {
    if (this.#state !== "open") throw new PoolClosedError(`update refused: the pool is ${this.#state}`);
    const { changes, previous } = updateOptions(this.#options, options);
    if (Object.keys(changes).length === 0) return;
    if (changes.strategy !== undefined) this.#connections.setStrategy(createStrategy(changes.strategy));
    for (const conn of this.#connections.list) conn.applyOptions();
    this.#placer.placeWaiting();
    this.#emit(new PoolChangeEvent("update", { changes, previous }));
  }

  /**
   * Replaces every open socket, one at a time and make-before-break: each
   * new socket opens before the one it replaces drains, so capacity never
   * dips and calls keep flowing. `reload` and `reloaded` events (an `error`
   * event when it stops). Rejects
   * with `TimeoutError` if a new socket does not open within `connectTimeout`
   * (the old one then drains all the same), `PoolClosedError` if the pool closes.
   */
  async reload(): Promise<void> {
    if (this.#state !== "open") throw new PoolClosedError(`reload refused: the pool is ${this.#state}`);
    const started = this.#host.now();
    this.#emit(new PoolChangeEvent("reload", { count: this.#connections.list.filter((c) => c.state === "open").length }));
    try {
      const count = await this.#connections.reload();
      this.#emit(new PoolChangeEvent("reloaded", { count, duration: Math.round(this.#host.now() - started) }));
    } catch (error) {
      this.#emit(new PoolErrorEvent(error as Error)); // the log shows why a reload stopped, not only its caller
      throw error;
    }
  }

  // ---------------------------------------------------------------- observing

  /** A fresh snapshot of the pool's numbers (see the README for each field). */
  stats(): PoolStats {
    return this.#stats.snapshot(this.#connections.list, this.#counts, this.#options.maxInFlight, this.#subs.stats());
  }

  /** One fresh snapshot per connection, in slot order. */
  connections(): ConnectionSnapshot[] {
    return this.#connections.snapshots(this.#host.now());
  }

  /** The options in force, after defaults. */
  get options(): Readonly<ResolvedOptions> {
    return this.#options;
  }

  /** `"open"`, `"closing"` (close() waits for calls) or `"closed"`. */
  get state(): "open" | "closing" | "closed" {
    return this.#state;
  }

  // ---------------------------------------------------------------- closing

  /**
   * Graceful close: refuses new calls with `PoolClosedError`, lets calls in
   * flight and queued finish for up to `timeout` ms (default: the pool's call
   * timeout), rejects what is left with `PoolClosedError`, and closes every
   * socket with code 1000. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    let waitMs: number;
    try {
      waitMs = Math.min(timeoutOption(options, 0) ?? this.#options.timeout, MAX_DELAY);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#subs.close(); // unsubscribes while calls are still accepted; close waits for those calls
    if (this.#state === "open") this.#state = "closing";
    this.#closePromise = (async () => {
      if (this.#shutdownPromise === undefined && !this.#idle.quiet) await this.#idle.wait(waitMs);
      await this.#shutdown(undefined, `closed after waiting ${waitMs} ms`);
    })();
    return this.#closePromise;
  }

  /** Immediate close: rejects every call with `PoolClosedError` (its `cause` is `reason`) and closes every socket with 1000. Idempotent. */
  destroy(reason?: unknown): Promise<void> {
    this.#destroyed = true;
    const done = this.#shutdown(reason, "destroyed");
    this.#idle.release(); // the close() in progress proceeds to the same shutdown; destroy's reason wins
    return done;
  }

  /** `await using pool = new Pool(…)` closes it gracefully. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(cause: unknown, how: string): Promise<void> {
    if (this.#shutdownPromise !== undefined) return this.#shutdownPromise;
    this.#state = "closed";
    this.#subs.close();
    const error = (call: PendingCall): PoolClosedError =>
      new PoolClosedError(`${label(call)} rejected: the pool was ${how} while it was ${this.#where(call)}`, {
        maybeExecuted: call.sentAt > 0, // written (a held call of a batch frame is not): it may have run
        cause,
      });
    this.#placer.failWaiting(error);
    for (const conn of this.#connections.list) {
      // Messages first, while the counts they quote are still true.
      const calls = conn.pendingCalls();
      const errors = calls.map(error);
      conn.takeQueued();
      conn.takeInFlight();
      calls.forEach((call, i) => this.#fail(call, errors[i]));
    }
    this.#connections.rejectWaiters(new PoolClosedError(`the pool was ${how}`, { cause }));
    this.#unwake();
    this.#idle.stop(); // no "idle" after close, and no timer left behind
    this.#timers.clear();
    // A graceful close() reports each socket it closes; after destroy() the only event is "shutdown".
    // A listener may still destroy() the pool while it closes: from then on, no event but "shutdown".
    const announce = how === "destroyed" ? undefined : (e: Event) => this.#destroyed || this.dispatchEvent(e);
    this.#shutdownPromise = this.#connections.closeAll(announce).then(() => {
      this.dispatchEvent(new PoolEvent("shutdown"));
    });
    return this.#shutdownPromise;
  }
}
