/**
 * The pool: accepts calls, picks a socket for each, moves calls off sockets
 * that die or expire, decides what may be re-sent, counts everything, and
 * closes cleanly.
 *
 * @module
 */

import { type BatchRequest, CONN_QUEUE, IN_FLIGHT, NOWHERE, PendingCall, type Pin, POOL_QUEUE, SETTLED } from "./call.ts";
import type { Incoming, RequestId } from "./codec.ts";
import { CODE_ABANDONED, Connection, type ConnectionHost, type Counters } from "./connection.ts";
import {
  ConnectionLostError,
  InvalidConfigError,
  messageOf,
  MuxPoolError,
  NoConnectionError,
  PoolClosedError,
  PoolExhaustedError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "./errors.ts";
import { ConnectionEvent, NotificationEvent, PoolErrorEvent, PoolEvent, type PoolEventMap, RerouteEvent, TypedEventTarget } from "./events.ts";
import { backoffDelay } from "./backoff.ts";
import {
  type CallInfo,
  type CallOptions,
  checkCallOptions,
  checkNumber,
  fail,
  type Endpoint,
  MAX_DELAY,
  onlyKnown,
  type PoolOptions,
  type ResolvedOptions,
  resolveOptions,
  type UrlSource,
  validateUrl,
  type WebSocketConstructor,
} from "./options.ts";
import { DeadlineLane } from "./deadlines.ts";
import { CallQueue } from "./queue.ts";
import { type ConnectionSnapshot, LatencyWindow, type PoolStats } from "./stats.ts";
import { type ConnectionInfo, createStrategy } from "./strategies.ts";
import { defaultWebSocket, onWake } from "./websocket.ts";

/** One entry of a `batch` result, shaped like `Promise.allSettled`'s. */
export type BatchResult<T = unknown> = { status: "fulfilled"; value: T } | { status: "rejected"; reason: RemoteError };

/** One request of `callAll`. */
export interface CallRequest {
  method: string;
  params?: unknown;
  options?: CallOptions;
}

/** What `callAll` reports: every request once, by its index. */
export interface CallAllResult<T = unknown> {
  successful: { index: number; value: T }[];
  failed: { index: number; error: unknown }[];
}

/** A socket lent by `withConnection`: calls made through it go to that socket, in order. */
export interface PinnedConnection {
  /** The socket's id, as in `pool.connections()`. */
  readonly id: number;
  call<T = unknown>(method: string, params?: unknown, options?: Omit<CallOptions, "filter" | "key">): Promise<T>;
  notify(method: string, params?: unknown): void;
  batch(requests: readonly BatchRequest[], options?: Omit<CallOptions, "filter" | "key">): Promise<BatchResult[]>;
  /** The socket as `pool.connections()` shows it now. */
  snapshot(): ConnectionSnapshot;
}

interface PinState extends Pin {
  readonly conn: Connection;
}

/** 10 base-32 digits of randomness (50 bits) to prefix this pool's request ids. */
function randomPrefix(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => (b & 31).toString(32)).join("");
}

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
  readonly #host: ConnectionHost;
  readonly #counters: Counters = { inFlight: 0, queued: 0 };
  readonly #urlFor: (index: number) => string | Promise<string>;
  /** The endpoint of each slot index (modulo); none when `url` is a function. */
  readonly #plan: readonly Endpoint[] | undefined;
  readonly #strategy: (connections: readonly ConnectionInfo[], call: CallInfo) => ConnectionInfo;
  readonly #latency: LatencyWindow;
  /**
   * One deadline lane per timeout value in use (see deadlines.ts): calls with
   * the same timeout expire in the order they were made, so each lane needs
   * one timer. Past MAX_LANES distinct values, calls get timers of their own.
   */
  readonly #lanes = new Map<number, DeadlineLane<PendingCall>>();
  /** Calls no socket can take yet (every matching one is full or down). */
  readonly #poolQueue = new CallQueue<PendingCall>((c) => c.where === POOL_QUEUE);
  readonly #keys = new Map<string, Connection>();
  /** The calls waiting on each AbortSignal, and its one listener. */
  readonly #watched = new WeakMap<AbortSignal, { calls: Set<PendingCall>; listener: () => void }>();
  readonly #candidates: Connection[] = [];
  readonly #idPrefix = randomPrefix();
  #idCounter = 0;
  #seq = 0;
  #nextConnectionId = 1;
  #slots: Connection[] = [];
  #state: "open" | "closing" | "closed" = "open";
  /** What happened to the last socket lost, for NoConnectionError messages. */
  #lastLoss = "";
  #idleScheduled = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #idleWaiter: (() => void) | undefined;
  #slotWaiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  #closePromise: Promise<void> | undefined;
  #shutdownPromise: Promise<void> | undefined;
  #unwake: () => void = () => {};
  #succeeded = 0;
  /** Rejected calls by error code; `ABORTED`: by the caller's own signal. */
  readonly #failedBy: Record<string, number> = {};
  #timedOut = 0;
  #rerouted = 0;
  #retried = 0;
  #reconnects = 0;
  #expired = 0;
  #protocolErrors = 0;

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
    if (typeof source === "function") {
      this.#urlFor = source;
    } else {
      const plan = typeof source === "string" ? [{ url: source }] : spreadByWeight(source, o.size);
      this.#plan = plan;
      this.#urlFor = (i) => plan[i % plan.length]!.url;
    }
    this.#strategy = createStrategy(o.strategy);
    this.#latency = new LatencyWindow(o.latencyWindow);
    const now = typeof performance !== "undefined" ? () => performance.now() : () => Date.now();
    let nextId: () => RequestId;
    if (o.generateId === undefined) {
      // A counter behind a random per-pool prefix: unique for the pool's life,
      // across reconnects, and across pools. Costs one string concat per call.
      nextId = () => `${this.#idPrefix}.${(++this.#idCounter).toString(36)}`;
    } else {
      const generate = o.generateId;
      nextId = () => {
        const id = generate();
        if ((typeof id !== "string" && typeof id !== "number") || !id) {
          throw new InvalidConfigError("generateId", `Expected \`generateId\` to return a non-empty string or a non-zero number, got ${JSON.stringify(id)}`);
        }
        return id;
      };
    }
    this.#host = {
      options: o,
      counters: this.#counters,
      WebSocket: WebSocket as WebSocketConstructor,
      nextId,
      now,
      onOpen: (c) => this.#onOpen(c),
      onSettleReply: (c, call, message) => this.#onReply(c, call, message),
      onNotification: (c, method, params) => this.dispatchEvent(new NotificationEvent(method, params, c.id)),
      onError: (c, error) => {
        if (error instanceof ProtocolError) this.#protocolErrors++;
        this.dispatchEvent(new PoolErrorEvent(error, c.id));
      },
      onEncodeError: (c, call, error) => this.#onEncodeError(c, call, error),
      onWrittenNoReply: (call) => this.#settleQuietly(call),
      onLost: (c, code, reason, wasOpen) => this.#onLost(c, code, reason, wasOpen),
      onRoom: () => {
        if (this.#poolQueue.live > 0) this.#drainPoolQueue();
      },
      onDrained: (c) => this.#retire(c),
      onExpired: (call, c) => this.#onTimeout(call, `queued on socket ${c.id} until its deadline (${c.inFlight} in flight, ${c.queued} queued)`),
    };
    for (let i = 0; i < o.size; i++) this.#slots.push(this.#newSlot(i));
    if (o.heartbeat !== false) this.#unwake = onWake(() => this.#slots.forEach((c) => c.checkNow()));
    // Connect after the constructor returns, so listeners added right after
    // `new Pool()` see every event, including a connect that fails at once.
    queueMicrotask(() => {
      if (this.#state === "closed") return;
      for (const c of this.#slots) if (c.socket === undefined && c.state === "connecting" && !c.inBackoff) c.connect();
    });
  }

  #newSlot(index: number): Connection {
    const endpoint = this.#plan?.[index % this.#plan.length];
    return new Connection(this.#host, this.#nextConnectionId++, index, this.#urlFor, endpoint?.tags ?? {}, endpoint?.url ?? "");
  }

  // ---------------------------------------------------------------- calls

  /**
   * Calls `method` on the server and resolves with its result. Rejects with a
   * `MuxPoolError` subclass (see the README's error table) or `signal.reason`.
   */
  call<T = unknown>(method: string, params?: unknown, options?: CallOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#submit(method, params, options, resolve as (v: unknown) => void, reject, undefined, undefined, true);
    });
  }

  /** Sends a notification (no id, no reply). Throws `PoolClosedError` after close, `PoolExhaustedError` when it would have to wait and `maxQueue` calls wait already. */
  notify(method: string, params?: unknown): void {
    this.#notify(method, params, undefined);
  }

  #notify(method: string, params: unknown, pin: PinState | undefined): void {
    let failure: unknown;
    let entering = true;
    // No promise carries a notification's failure: refused on the way in
    // (closed, maxQueue, no socket), it throws; failing later (its deadline
    // passed in a queue, its socket died), it is an "error" event.
    const fail = (e: unknown): void => {
      if (entering) failure = e;
      else if (!(e instanceof PoolClosedError)) this.dispatchEvent(new PoolErrorEvent(e as Error));
    };
    this.#submit(method, params, undefined, () => {}, fail, undefined, pin, false);
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

  #batch(requests: readonly BatchRequest[], options: CallOptions | undefined, pin: PinState | undefined): Promise<BatchResult[]> {
    return new Promise<BatchResult[]>((resolve, reject) => {
      if (!Array.isArray(requests) || requests.length === 0 || !requests.every((r) => typeof r === "object" && r !== null && typeof r.method === "string")) {
        reject(new InvalidConfigError("requests", "Expected `requests` to be a non-empty list of `{ method, params? }`"));
        return;
      }
      if (typeof this.#options.codec.encodeBatch !== "function") {
        reject(new InvalidConfigError("codec", "`batch()` needs a codec with `encodeBatch`"));
        return;
      }
      this.#submit("batch", undefined, options, resolve as (v: unknown) => void, reject, requests, pin, true);
    });
  }

  /**
   * Runs many calls in parallel across the pool, at most `concurrency` at a
   * time (`1`: one after another). Never rejects: each request is reported
   * once, in `successful` or `failed`, with its index.
   */
  async callAll<T = unknown>(requests: readonly CallRequest[], options: { concurrency?: number } = {}): Promise<CallAllResult<T>> {
    onlyKnown(options, ["concurrency"]);
    const concurrency = options.concurrency ?? this.#options.size * this.#options.maxInFlight;
    checkNumber("concurrency", concurrency, 1, Infinity, "a number");
    const result: CallAllResult<T> = { successful: [], failed: [] };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < requests.length) {
        const index = next++;
        const r = requests[index]!;
        try {
          result.successful.push({ index, value: await this.call<T>(r.method, r.params, r.options) });
        } catch (error) {
          result.failed.push({ index, error });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
    result.successful.sort((a, b) => a.index - b.index);
    result.failed.sort((a, b) => a.index - b.index);
    return result;
  }

  /**
   * Lends one socket to `fn`: every call made through the handle goes to that
   * socket, in order. With `exclusive: true` no other call uses the socket
   * while `fn` runs. The socket returns to the pool when `fn` settles. If it
   * dies meanwhile, the session's calls reject with `ConnectionLostError`:
   * a pinned session is never moved to another socket.
   */
  async withConnection<T>(fn: (connection: PinnedConnection) => T | Promise<T>, options: { exclusive?: boolean; timeout?: number } = {}): Promise<T> {
    if (typeof fn !== "function") fail("fn", "a function", fn);
    onlyKnown(options, ["exclusive", "timeout"]);
    if (options.exclusive !== undefined && typeof options.exclusive !== "boolean") fail("exclusive", "a boolean", options.exclusive);
    if (options.timeout !== undefined) checkNumber("timeout", options.timeout, 1, MAX_DELAY, "a number of ms");
    const exclusive = options.exclusive === true;
    const conn = await this.#acquire(options.timeout ?? this.#options.timeout);
    const pin: PinState = { conn, generation: conn.generation, ended: false };
    if (exclusive) {
      conn.exclusive = true;
      // Calls already waiting on this socket go elsewhere: it is checked out.
      this.#moveQueued(conn, conn.takeQueued(), false);
    }
    const handle: PinnedConnection = {
      id: conn.id,
      call: <R>(method: string, params?: unknown, opts?: CallOptions) =>
        new Promise<R>((resolve, reject) => this.#submit(method, params, opts, resolve as (v: unknown) => void, reject, undefined, pin, true)),
      notify: (method, params) => this.#notify(method, params, pin),
      batch: (requests, opts) => this.#batch(requests, opts, pin),
      snapshot: () => conn.snapshot(this.#host.now()),
    };
    try {
      return await fn(handle);
    } finally {
      pin.ended = true;
      if (exclusive) {
        conn.exclusive = false;
        this.#wakeSlotWaiters();
        if (this.#poolQueue.live > 0 && conn.state === "open") this.#drainPoolQueue();
      }
    }
  }

  #acquire(timeoutMs: number): Promise<Connection> {
    const started = this.#host.now();
    return this.#waitForSocket("withConnection", timeoutMs, true, () => {
      const open = this.#slots.filter((c) => c.state === "open" && !c.exclusive && !c.expired);
      return open.length === 0 ? undefined : (this.#strategy(open, { method: "withConnection", key: undefined, idempotent: false }) as Connection);
    }, () => {
      const why = this.#slots.some((c) => c.state === "open") ? "all are checked out or expiring" : `none is open; last: ${this.#lastLoss || "no attempt has failed yet"}`;
      return new TimeoutError(`withConnection: no socket became free within ${Math.round(this.#host.now() - started)} ms (${why})`);
    });
  }

  /**
   * Resolves with what `pick` finds, asked now and whenever a socket opens or
   * is freed. Rejects when `ms` pass (`timeoutError()`), when the pool closes
   * (or starts closing, with `refuseWhileClosing`), or when it has no socket
   * left. Its timer is cleared however it settles.
   */
  #waitForSocket<T>(what: string, ms: number, refuseWhileClosing: boolean, pick: () => T | undefined, timeoutError: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (error: unknown, value?: T): void => {
        clearTimeout(timer);
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      const timer = setTimeout(() => {
        const i = this.#slotWaiters.findIndex((w) => w.resolve === check);
        if (i >= 0) this.#slotWaiters.splice(i, 1);
        reject(timeoutError());
      }, ms);
      const check = (): void => {
        if (this.#state === "closed" || (refuseWhileClosing && this.#state !== "open")) return settle(this.#closedError(what));
        if (this.#slots.length === 0) return settle(this.#noSocketLeft(what));
        const value = pick();
        if (value !== undefined) return settle(undefined, value);
        this.#slotWaiters.push({ resolve: check, reject: settle });
      };
      check();
    });
  }


  #closedError(what: string): PoolClosedError {
    return new PoolClosedError(`${what} refused: the pool is ${this.#state}`);
  }

  /** Every socket was dropped: nothing that waits can ever be sent. */
  #noSocketLeft(what: string): NoConnectionError {
    return new NoConnectionError(`${what}: no socket left (all dropped: reconnect attempts spent, or revive: false); last: ${this.#lastLoss}`);
  }

  #wakeSlotWaiters(): void {
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const w of waiters) w.resolve();
  }

  /**
   * Resolves when at least one socket is open. Rejects with `TimeoutError`
   * when none opened within `timeout` (default: the pool's call timeout),
   * saying why the last attempt failed, or sooner if the pool closes or
   * loses every socket.
   */
  ready(options: { timeout?: number } = {}): Promise<void> {
    try {
      onlyKnown(options, ["timeout"]);
      if (options.timeout !== undefined) checkNumber("timeout", options.timeout, 1, MAX_DELAY, "a number of ms");
    } catch (error) {
      return Promise.reject(error);
    }
    const ms = options.timeout ?? this.#options.timeout;
    // A wrong URL or a server that is down is an error, not a wait forever.
    return this.#waitForSocket("ready", ms, false, () => (this.#slots.some((c) => c.state === "open") ? true : undefined), () =>
      new TimeoutError(`ready: no socket opened within ${ms} ms; last: ${this.#lastLoss || "no attempt has failed yet"}`)
    ).then(() => {});
  }


  #submit(
    method: string,
    params: unknown,
    options: CallOptions | undefined,
    resolve: (value: unknown) => void,
    reject: (reason: unknown) => void,
    batch: readonly BatchRequest[] | undefined,
    pin: PinState | undefined,
    expectsReply: boolean,
  ): void {
    if (this.#state !== "open") {
      reject(this.#closedError(`call "${String(method)}"`));
      return;
    }
    try {
      if (typeof method !== "string" || method === "") fail("method", "a non-empty string", method);
      checkCallOptions(options);
    } catch (error) {
      reject(error);
      return;
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    if (pin?.ended) {
      reject(new NoConnectionError(`call "${method}" refused: its withConnection block (socket ${pin.conn.id}) has ended`));
      return;
    }
    const timeoutMs = options?.timeout ?? this.#options.timeout;
    const { retry } = this.#options;
    const idempotent = retry === "always" || (retry === "idempotent" && options?.idempotent === true);
    const call = new PendingCall(++this.#seq, method, params, batch, expectsReply, idempotent, options, timeoutMs, pin, resolve, reject);
    call.deadline = this.#host.now() + timeoutMs;
    const lane = this.#laneFor(timeoutMs);
    if (lane !== undefined) lane.add(call);
    else call.timer = setTimeout(() => this.#onTimeout(call), Math.min(timeoutMs, MAX_DELAY));
    if (signal !== undefined) this.#watch(call, signal);
    this.#place(call, undefined, false);
  }

  /** The lane for calls with this timeout, made on first use; `undefined` while MAX_LANES other values have calls pending. */
  #laneFor(timeoutMs: number): DeadlineLane<PendingCall> | undefined {
    let lane = this.#lanes.get(timeoutMs);
    if (lane !== undefined) return lane;
    if (this.#lanes.size >= MAX_LANES) {
      for (const [ms, idle] of this.#lanes) if (idle.size === 0) this.#lanes.delete(ms); // an empty lane holds no timer
    }
    if (this.#lanes.size < MAX_LANES) {
      lane = new DeadlineLane<PendingCall>(this.#host.now, (call) => this.#onTimeout(call));
      this.#lanes.set(timeoutMs, lane);
    }
    return lane;
  }

  /**
   * Puts a call where it goes next: written now (fast path), into a socket's
   * queue, into the pool's wait queue, or rejected. `from` is the socket it is
   * being moved off (excluded from routing); `moving` calls are already
   * accepted, so `maxQueue` does not refuse them.
   * Returns the socket that took it, `null` for the pool queue, or `undefined` if it settled.
   */
  #place(call: PendingCall, from: Connection | undefined, moving: boolean): Connection | null | undefined {
    let target: Connection | null | undefined;
    if (call.pin !== undefined) {
      const pin = call.pin as PinState;
      if (pin.conn.generation !== pin.generation || (pin.conn.state !== "open" && pin.conn.state !== "draining")) {
        this.#fail(call, pinnedLost(call, pin.conn));
        return undefined;
      }
      target = pin.conn;
    } else {
      try {
        target = this.#route(call, from);
      } catch (error) {
        this.#fail(call, strategyError(error));
        return undefined;
      }
    }
    return this.#deliver(call, target, moving);
  }

  /** The second half of {@link #place}: the call goes to `target` (`null`: the pool queue; `undefined`: no socket matches). */
  #deliver(call: PendingCall, target: Connection | null | undefined, moving: boolean): Connection | null | undefined {
    if (target === undefined) {
      this.#fail(
        call,
        this.#slots.length === 0 ? this.#noSocketLeft(label(call)) : new NoConnectionError(`${label(call)}: no socket matches its filter (${this.#slots.length} sockets)`),
      );
      return undefined;
    }
    if (
      target !== null && (target.state === "open" || target.state === "draining") && target.queued === 0 && target.inFlight < this.#options.maxInFlight &&
      target.writable()
    ) {
      target.write(call); // fast path: no queue
      return call.where === SETTLED ? undefined : target;
    }
    if (!moving && this.#counters.queued >= this.#options.maxQueue) {
      this.#fail(
        call,
        new PoolExhaustedError(
          `${label(call)} refused: ${this.#counters.queued} calls already wait (maxQueue ${this.#options.maxQueue}), ${this.#counters.inFlight} in flight on ${this.#slots.length} sockets`,
        ),
      );
      return undefined;
    }
    if (target === null) {
      call.where = POOL_QUEUE;
      call.conn = undefined;
      this.#poolQueue.push(call);
      this.#counters.queued++;
    } else target.enqueue(call);
    return target;
  }

  /**
   * Picks a socket: an open one if any can take the call, else one that is
   * connecting, else one waiting to reconnect. `null`: none can take it now,
   * but a matching socket exists (wait in the pool queue). `undefined`: no
   * socket matches at all.
   */
  #route(call: PendingCall, from: Connection | undefined): Connection | null | undefined {
    const filter = call.filter;
    const candidates = this.#candidates;
    candidates.length = 0;
    // Tiers, best first: 0 open and taking calls, 1 connecting or open with
    // its link backed up (over maxBuffered), 2 waiting to reconnect; 3 takes
    // none now (draining, checked out, expired).
    let best = 3;
    let anyMatch = false;
    for (const c of this.#slots) {
      if (c === from || (filter !== undefined && !filter(c))) continue;
      anyMatch = true;
      const tier =
        c.state === "open"
          ? c.exclusive || (c.expired && c.replacement === undefined) ? 3 : c.writable() ? 0 : 1 // 1: open, but its link is backed up
          : c.state === "connecting" ? (c.inBackoff ? 2 : 1) : 3;
      if (tier < best) {
        best = tier;
        candidates.length = 0;
      }
      if (tier === best && tier < 3) candidates.push(c);
    }
    if (candidates.length === 0) {
      // A match that takes no calls now: wait. `from` the only match: the caller decides (keep it there, or drop).
      return anyMatch || (from !== undefined && (filter === undefined || filter(from))) ? null : undefined;
    }
    if (candidates.length === 1) return candidates[0]!;
    const key = call.key;
    if (key !== undefined) {
      const sticky = this.#keys.get(key);
      if (sticky !== undefined && candidates.includes(sticky)) return sticky;
    }
    const picked = this.#strategy(candidates, call) as Connection;
    if (!candidates.includes(picked)) {
      throw new InvalidConfigError("strategy", `Expected the strategy to return one of the ${candidates.length} connections it was given, got ${picked === undefined ? "undefined" : `socket ${String((picked as ConnectionInfo).id)}`}`);
    }
    if (key !== undefined) {
      if (this.#keys.size >= 10_000) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(key, picked);
    }
    return picked;
  }

  // ---------------------------------------------------------------- settling

  #clearCall(call: PendingCall): void {
    if (call.inLane) this.#lanes.get(call.timeoutMs)!.forget(call);
    else if (call.timer !== undefined) {
      clearTimeout(call.timer);
      call.timer = undefined;
    }
    if (call.signal !== undefined) this.#unwatch(call, call.signal);
  }

  /**
   * One abort listener per signal, however many calls share it: a signal
   * passed to thousands of calls gets one listener, not thousands (Node warns
   * "possible EventTarget memory leak" past 10).
   */
  #watch(call: PendingCall, signal: AbortSignal): void {
    let watch = this.#watched.get(signal);
    if (watch === undefined) {
      const calls = new Set<PendingCall>();
      const listener = (): void => {
        this.#watched.delete(signal);
        for (const c of [...calls]) this.#fail(c, signal.reason, "ABORTED");
      };
      watch = { calls, listener };
      this.#watched.set(signal, watch);
      signal.addEventListener("abort", listener, { once: true });
    }
    watch.calls.add(call);
  }

  #unwatch(call: PendingCall, signal: AbortSignal): void {
    const watch = this.#watched.get(signal);
    if (watch === undefined || !watch.calls.delete(call) || watch.calls.size > 0) return;
    this.#watched.delete(signal);
    signal.removeEventListener("abort", watch.listener);
  }

  /** Takes a call out of whatever holds it. */
  #unlink(call: PendingCall): void {
    const conn = call.conn as Connection | undefined;
    switch (call.where) {
      case POOL_QUEUE:
        this.#poolQueue.forget();
        this.#counters.queued--;
        break;
      case CONN_QUEUE:
        conn!.forgetQueued();
        break;
      case IN_FLIGHT:
        conn!.forgetInFlight(call);
        break;
    }
    call.where = SETTLED;
    call.conn = undefined;
    if (conn !== undefined && !conn.removed) conn.pump();
  }

  #fail(call: PendingCall, error: unknown, kind = error instanceof MuxPoolError ? error.code : "OTHER"): void {
    if (call.where === SETTLED) return;
    this.#clearCall(call);
    this.#unlink(call);
    if (call.expectsReply) {
      this.#countFailure(kind);
      if (error instanceof TimeoutError) this.#timedOut++;
    }
    call.reject(error);
    this.#checkIdle();
  }

  /** Rejects a call already taken out of its queue or map (where still says where it was). */
  #failDetached(call: PendingCall, error: unknown): void {
    call.where = NOWHERE;
    call.conn = undefined;
    this.#fail(call, error);
  }

  #settleQuietly(call: PendingCall): void {
    this.#clearCall(call);
    call.where = SETTLED;
    call.conn = undefined;
    this.#checkIdle();
  }

  #onReply(conn: Connection, call: PendingCall, message: Incoming): void {
    this.#clearCall(call);
    call.where = SETTLED;
    call.conn = undefined;
    const latency = this.#host.now() - call.sentAt;
    this.#latency.record(latency);
    conn.latency.record(latency);
    if (call.batch !== undefined) {
      this.#succeeded++;
      call.resolve(
        (call.results as Incoming[]).map((m): BatchResult =>
          m.kind === "result" ? { status: "fulfilled", value: m.result } : { status: "rejected", reason: this.#remoteError(conn, call, m) },
        ),
      );
    } else if (message.kind === "result") {
      this.#succeeded++;
      call.resolve(message.result);
    } else {
      this.#countFailure("ERR_REMOTE");
      call.reject(this.#remoteError(conn, call, message));
    }
    if (this.#counters.inFlight === 0 && this.#counters.queued === 0) this.#checkIdle();
  }

  #countFailure(kind: string): void {
    this.#failedBy[kind] = (this.#failedBy[kind] ?? 0) + 1;
  }

  #remoteError(conn: Connection, call: PendingCall, message: Incoming): RemoteError {
    if (message.kind !== "error") return new RemoteError(`socket ${conn.id}: unexpected reply`, undefined, undefined);
    const e = message.error;
    return new RemoteError(`${e.message} (remote error${e.code === undefined ? "" : ` ${e.code}`}, ${label(call)} on socket ${conn.id})`, e.code, e.data);
  }

  #onEncodeError(conn: Connection, call: PendingCall, error: unknown): void {
    call.where = NOWHERE;
    call.conn = undefined;
    const err =
      error instanceof MuxPoolError
        ? error
        : new ProtocolError(`${label(call)} could not be encoded for socket ${conn.id}: ${messageOf(error)}`, { cause: error });
    this.#fail(call, err);
  }

  #where(call: PendingCall): string {
    const conn = call.conn as Connection | undefined;
    switch (call.where) {
      case POOL_QUEUE:
        return `waiting in the pool queue (${this.#slots.filter((c) => c.state === "open").length} of ${this.#slots.length} sockets open, ${this.#poolQueue.live} waiting)`;
      case CONN_QUEUE:
        return `queued on socket ${conn!.id} (${conn!.state}, ${conn!.inFlight} in flight, ${conn!.queued} queued)`;
      case IN_FLIGHT:
        return `sent on socket ${conn!.id} (${conn!.inFlight} in flight, ${conn!.queued} queued)`;
      default:
        return "not placed";
    }
  }

  #onTimeout(call: PendingCall, where = this.#where(call)): void {
    call.timer = undefined;
    this.#fail(call, new TimeoutError(`${label(call)} timed out after ${call.timeoutMs} ms, ${where}`));
  }

  #checkIdle(): void {
    if (this.#counters.inFlight !== 0 || this.#counters.queued !== 0) return;
    if (this.#idleWaiter !== undefined) {
      const w = this.#idleWaiter;
      this.#idleWaiter = undefined;
      w();
    }
    if (this.#idleScheduled || this.#state === "closed") return;
    this.#idleScheduled = true;
    // One event when the pool goes quiet, not one per call: wait a tick to see
    // whether the caller issues the next call at once.
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.#idleScheduled = false;
      if (this.#state !== "closed" && this.#counters.inFlight === 0 && this.#counters.queued === 0) this.dispatchEvent(new PoolEvent("idle"));
    }, 0);
  }

  // ---------------------------------------------------------------- sockets

  #onOpen(conn: Connection): void {
    const o = this.#options;
    if (o.ttl > 0) {
      // Up to 10% jitter, so sockets opened together do not expire together.
      conn.ttl = o.ttl * (1 - 0.1 * Math.random());
      conn.ttlTimer = setTimeout(() => this.#expire(conn), conn.ttl);
    }
    this.dispatchEvent(new ConnectionEvent("open", conn.snapshot(this.#host.now())));
    // An expired socket waiting for this replacement can now drain.
    for (const old of this.#slots) if (old.replacement === conn && old.state === "open") this.#startDrain(old);
    // Calls waiting on sockets that are backing off come here instead.
    for (const other of this.#slots) {
      if (other !== conn && other.inBackoff && other.queued > 0) this.#moveQueued(other, other.takeQueued(), false);
    }
    this.#wakeSlotWaiters();
    if (this.#poolQueue.live > 0) this.#drainPoolQueue();
  }

  /** Re-places calls from the pool queue now that a socket can take some. */
  #drainPoolQueue(): void {
    const waiting = this.#poolQueue.take();
    this.#counters.queued -= waiting.length;
    for (const call of waiting) {
      call.where = NOWHERE;
      this.#place(call, undefined, true);
    }
  }

  /**
   * Moves calls that waited in `from`'s queue to other sockets (pinned ones
   * reject: a session never changes socket). With nowhere else to go they
   * stay on `from` if it will reconnect (`keepOnFrom`), else wait in the pool queue.
   */
  #moveQueued(from: Connection, calls: PendingCall[], keepOnFrom: boolean, lost = false): void {
    if (calls.length === 0) return;
    const moved = new Map<Connection | null, number>();
    for (const call of calls) {
      call.where = NOWHERE;
      call.conn = undefined;
      if (call.pin !== undefined) {
        // A pinned call never changes socket: it stays, or fails with its socket.
        if (lost) this.#fail(call, pinnedLost(call, from));
        else from.enqueue(call);
        continue;
      }
      const placed = this.#moveOne(call, from, keepOnFrom);
      if (placed !== undefined) moved.set(placed, (moved.get(placed) ?? 0) + 1);
    }
    if (moved.size === 0) return;
    const now = this.#host.now();
    const fromSnapshot = from.snapshot(now);
    for (const [to, count] of moved) {
      this.#rerouted += count;
      this.dispatchEvent(new RerouteEvent(count, fromSnapshot, to === null ? null : to.snapshot(now)));
    }
  }

  /**
   * Moves one unpinned call off `from`; returns where it went (a socket,
   * `null` for the pool queue), or `undefined` if it stayed on `from` or settled.
   */
  #moveOne(call: PendingCall, from: Connection, keepOnFrom: boolean): Connection | null | undefined {
    let target: Connection | null | undefined;
    try {
      target = this.#route(call, from);
    } catch (error) {
      this.#fail(call, strategyError(error));
      return undefined;
    }
    // Only an open socket is worth the move: during an outage the others
    // are waiting to reconnect too, and bouncing calls between them helps nobody.
    if (keepOnFrom && (target === null || (target !== undefined && target.state !== "open"))) {
      from.enqueue(call);
      return undefined;
    }
    return this.#deliver(call, target, true); // routed once: the strategy is not asked twice
  }

  #onLost(conn: Connection, code: number, reason: string, wasOpen: boolean): void {
    if (conn.removed || this.#state === "closed") return;
    const o = this.#options;
    const now = this.#host.now();
    conn.clearTimers();
    let reconnect = false;
    if (!conn.expired && conn.state !== "draining") {
      if (wasOpen && conn.openedAt > 0 && o.reconnect !== false && now - conn.openedAt >= o.reconnect.resetAfter) conn.attempt = 0;
      conn.attempt++;
      reconnect = o.reconnect !== false && conn.attempt <= o.reconnect.maxAttempts && (!wasOpen || o.revive);
    }
    const inFlight = conn.takeInFlight();
    const queued = conn.takeQueued();
    if (reconnect) conn.backoff();
    else this.#remove(conn);
    this.#lastLoss = `socket ${conn.id} (${conn.url}), ${conn.attempt} failed attempts: ${reason}`;
    // Sent calls first: they are the oldest.
    const retry: PendingCall[] = [];
    for (const call of inFlight) {
      call.where = NOWHERE;
      call.conn = undefined;
      if (call.pin === undefined && call.idempotent) retry.push(call);
      else {
        const why = call.pin === undefined ? "not idempotent" : "pinned to that socket";
        this.#fail(call, new ConnectionLostError(`${label(call)} was sent but socket ${conn.id} closed (code ${code}: ${reason}) before the reply; not re-sent: it is ${why}`, true));
      }
    }
    for (const call of retry) {
      this.#retried++;
      this.#moveOne(call, conn, reconnect);
    }
    this.#moveQueued(conn, queued, reconnect, true);
    const snapshot = conn.snapshot(now);
    if (wasOpen || !reconnect) this.dispatchEvent(new ConnectionEvent("close", snapshot, { code, reason }));
    if (reconnect && o.reconnect !== false) {
      const delay = backoffDelay(conn.attempt, o.reconnect);
      this.#reconnects++;
      conn.backoffTimer = setTimeout(() => {
        conn.backoffTimer = undefined;
        if (!conn.removed && this.#state !== "closed") conn.connect();
      }, delay);
      this.dispatchEvent(new ConnectionEvent("reconnect", snapshot, { reason, attempt: conn.attempt, delay }));
    }
    this.#afterSlotsChanged();
    this.#checkIdle();
  }

  /** Takes a socket out of the pool for good (its socket is already gone or closing). */
  #remove(conn: Connection): void {
    conn.removed = true;
    conn.state = "closed";
    conn.clearTimers();
    const i = this.#slots.indexOf(conn);
    if (i >= 0) this.#slots.splice(i, 1);
    for (const [key, c] of this.#keys) if (c === conn) this.#keys.delete(key);
  }

  /** When the last socket is gone, nothing that waits can ever be sent. */
  #afterSlotsChanged(): void {
    if (this.#slots.length > 0) return;
    // Each #fail takes its call out of the count (the queue is drained first).
    for (const call of this.#poolQueue.drain()) if (call.where === POOL_QUEUE) this.#fail(call, this.#noSocketLeft(label(call)));
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const w of waiters) w.reject(this.#noSocketLeft("waiting for a socket"));
  }

  #expire(conn: Connection): void {
    conn.ttlTimer = undefined;
    if (conn.state !== "open" || conn.expired) return;
    conn.expired = true;
    this.#expired++;
    this.dispatchEvent(new ConnectionEvent("expire", conn.snapshot(this.#host.now())));
    if (this.#options.revive && this.#state === "open") {
      // Make before break: the replacement opens first; this socket keeps
      // serving until then (or until connectTimeout, if the server is slow).
      const replacement = this.#newSlot(conn.index);
      conn.replacement = replacement;
      this.#slots.push(replacement);
      replacement.connect();
      conn.drainTimer = setTimeout(() => this.#startDrain(conn), this.#options.connectTimeout);
    } else {
      this.#startDrain(conn);
    }
  }

  #startDrain(conn: Connection): void {
    clearTimeout(conn.drainTimer);
    conn.drainTimer = undefined;
    if (conn.state !== "open") return;
    conn.state = "draining";
    this.#moveQueued(conn, conn.takeQueued(), false);
    if (conn.inFlight === 0 && conn.queued === 0) {
      this.#retire(conn);
      return;
    }
    conn.drainTimer = setTimeout(() => {
      conn.drainTimer = undefined;
      conn.kill(`drain timeout: ${conn.inFlight} calls still in flight after ${this.#options.drainTimeout} ms`);
    }, this.#options.drainTimeout);
  }

  /** A drained socket closes with 1000 and leaves the pool. */
  #retire(conn: Connection): void {
    if (conn.removed) return;
    this.#remove(conn);
    const snapshot = conn.snapshot(this.#host.now());
    void conn.close(1000, "expired", 2_000).then(() => {
      this.dispatchEvent(new ConnectionEvent("close", { ...snapshot, state: "closed" }, { code: 1000, reason: "expired" }));
    });
    this.#afterSlotsChanged();
  }

  // ---------------------------------------------------------------- observing

  /** A fresh snapshot of the pool's numbers (see the README for each field). */
  stats(): PoolStats {
    let open = 0;
    let connecting = 0;
    let draining = 0;
    let available = 0;
    let inUse = 0;
    const max = this.#options.maxInFlight;
    for (const c of this.#slots) {
      if (c.state === "open") {
        open++;
        if (c.inFlight < max) available++;
        if (c.inFlight > 0) inUse++;
      } else if (c.state === "connecting") connecting++;
      else if (c.state === "draining") draining++;
    }
    return {
      connections: { total: this.#slots.length, open, connecting, draining },
      available,
      inUse,
      calls: {
        inFlight: this.#counters.inFlight,
        queued: this.#counters.queued,
        succeeded: this.#succeeded,
        failed: Object.values(this.#failedBy).reduce((sum, n) => sum + n, 0),
        failedBy: { ...this.#failedBy },
        timedOut: this.#timedOut,
        rerouted: this.#rerouted,
        retried: this.#retried,
      },
      reconnects: this.#reconnects,
      expired: this.#expired,
      protocolErrors: this.#protocolErrors,
      latency: this.#latency.snapshot(),
    };
  }

  /** One fresh snapshot per socket, in slot order. */
  connections(): ConnectionSnapshot[] {
    const now = this.#host.now();
    return this.#slots.map((c) => c.snapshot(now));
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
    try {
      onlyKnown(options, ["timeout"]);
      if (options.timeout !== undefined) checkNumber("timeout", options.timeout, 0, Infinity, "a number of ms");
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#state === "open") this.#state = "closing";
    const waitMs = Math.min(options.timeout ?? this.#options.timeout, MAX_DELAY);
    this.#closePromise = (async () => {
      if (this.#shutdownPromise === undefined && (this.#counters.inFlight > 0 || this.#counters.queued > 0)) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.#idleWaiter = undefined;
            resolve();
          }, waitMs);
          this.#idleWaiter = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await this.#shutdown(undefined, `closed after waiting ${waitMs} ms`);
    })();
    return this.#closePromise;
  }

  /** Immediate close: rejects every call with `PoolClosedError` (its `cause` is `reason`) and closes every socket with 1000. Idempotent. */
  destroy(reason?: unknown): Promise<void> {
    if (this.#idleWaiter !== undefined) {
      const w = this.#idleWaiter;
      this.#idleWaiter = undefined;
      // The close() in progress proceeds to shutdown; destroy's reason wins.
      void this.#shutdown(reason, "destroyed");
      w();
    }
    return this.#shutdown(reason, "destroyed");
  }

  /** `await using pool = new Pool(…)` closes it gracefully. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(cause: unknown, how: string): Promise<void> {
    if (this.#shutdownPromise !== undefined) return this.#shutdownPromise;
    this.#state = "closed";
    const error = (call: PendingCall): PoolClosedError =>
      new PoolClosedError(`${label(call)} rejected: the pool was ${how} while it was ${this.#where(call)}`, cause === undefined ? undefined : { cause });
    for (const call of this.#poolQueue.drain()) if (call.where === POOL_QUEUE) this.#fail(call, error(call));
    const slots = this.#slots;
    for (const conn of slots) {
      conn.removed = true; // no pumping, no reconnect from here on
      // Messages first, while the counts they quote are still true.
      const calls = [...conn.queue].filter((c) => c.where === CONN_QUEUE && c.conn === conn).concat([...new Set(conn.inflight.values())]);
      const errors = calls.map(error);
      conn.takeQueued();
      conn.takeInFlight();
      calls.forEach((call, i) => this.#failDetached(call, errors[i]));

    }
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const w of waiters) w.reject(new PoolClosedError(`the pool was ${how}`, cause === undefined ? undefined : { cause }));
    this.#unwake();
    clearTimeout(this.#idleTimer); // no "idle" after close, and no timer left behind
    for (const lane of this.#lanes.values()) lane.clear();
    const now = this.#host.now();
    this.#shutdownPromise = Promise.all(
      slots.map(async (conn) => {
        conn.clearTimers();
        const wasOpen = conn.state === "open" || conn.state === "draining";
        const snapshot = conn.snapshot(now);
        await conn.close(1000, "pool closed", 1_000);
        if (wasOpen) this.dispatchEvent(new ConnectionEvent("close", { ...snapshot, state: "closed" }, { code: 1000, reason: "pool closed" }));
      }),
    ).then(() => {
      this.#slots = [];
      this.#keys.clear();
      this.dispatchEvent(new PoolEvent("shutdown"));
    });
    return this.#shutdownPromise;
  }
}

/** How messages name a call: `call 12 ("add")`. */
/** What a call rejects with when the user's strategy or filter threw. */
function strategyError(error: unknown): MuxPoolError {
  return error instanceof MuxPoolError ? error : new InvalidConfigError("strategy", `the strategy or filter threw: ${messageOf(error)}`);
}

/** Distinct timeout values that get a shared timer each; more are rare (a timeout computed per call) and get timers of their own. */
const MAX_LANES = 16;

function label(call: PendingCall): string {
  return `call ${call.seq} ("${call.method}")`;
}

/** A pinned call cannot move: its socket is gone, and it was not sent. */
function pinnedLost(call: PendingCall, conn: Connection): ConnectionLostError {
  return new ConnectionLostError(`${label(call)} not sent: its pinned socket ${conn.id} was lost`, false);
}

/** Smooth weighted round-robin: which endpoint each of `size` slots uses. */
function spreadByWeight(endpoints: readonly Endpoint[], size: number): Endpoint[] {
  const weights = endpoints.map((e) => e.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const plan: Endpoint[] = [];
  for (let n = 0; n < Math.max(size, endpoints.length); n++) {
    let best = 0;
    for (let i = 0; i < endpoints.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    plan.push(endpoints[best]!);
  }
  return plan;
}

export { CODE_ABANDONED };
