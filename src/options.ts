/**
 * Pool options: their types (with defaults documented), the defaults
 * themselves, and the validation the constructor runs. Pure: no sockets, no
 * timers.
 *
 * @module
 */

import { type Codec, jsonRpc, type RequestId } from "./codec.ts";
import type { WebSocketConstructor } from "./socket.ts";
import type { ConnectionInfo, StrategyFunction, StrategyName } from "./strategies.ts";
import { InvalidConfigError, type ProtocolError, type RemoteError } from "./errors.ts";
import type { ConnectionSnapshot } from "./stats.ts";
import { checkBoolean, checkNumber, checkObject, fail, MAX_DELAY, onlyKnown } from "./validate.ts";

/** How a socket that died or failed to connect is brought back. */
export interface ReconnectOptions {
  /** Delay cap of the first retry, in ms. @default 100 */
  initialDelay?: number;
  /** Upper bound of any delay, in ms. @default 10000 */
  maxDelay?: number;
  /** Growth of the delay cap per failed attempt. @default 2 */
  factor?: number;
  /** Full jitter: each delay is uniform in [0, cap). @default true */
  jitter?: boolean;
  /** Failed attempts in a row after which the socket is dropped. @default Infinity */
  maxAttempts?: number;
  /**
   * How long a socket must stay open before its failed-attempt count resets
   * to zero, in ms. A server that accepts and closes at once keeps backing
   * off instead of causing a reconnect storm. @default 5000
   */
  resetAfter?: number;
  /**
   * Asked on every lost socket with its close code (RFC 6455 §7.4; 1006 when
   * no close frame came) and reason; anything but `true` drops the
   * connection instead of reconnecting it, e.g. on an application code that
   * means "credentials expired" (4000–4999). Calls waiting for it move to
   * other sockets; with none left they reject with `NoConnectionError`
   * saying why. One that throws counts as not set, and its error is an
   * `error` event (`InvalidConfigError`, option `reconnect.shouldRetry`).
   * @default undefined: always reconnect (within `maxAttempts`)
   */
  shouldRetry?: (close: { readonly code: number; readonly reason: string }) => boolean;
}

/** Half-open socket detection by an application-level ping. */
export interface HeartbeatOptions {
  /** Ms without inbound data after which a ping is sent. @default 15000 */
  interval?: number;
  /** Ms to wait for any inbound data after the ping before the socket is declared dead. @default 5000 */
  timeout?: number;
  /** Method of the ping request; a "method not found" reply counts as life too. @default "ping" */
  method?: string;
  /** Params of the ping request. @default undefined */
  params?: unknown;
}

/** What happens to calls already sent when their socket dies (see `PoolOptions.retry`). */
export type RetryMode = "idempotent" | "always" | "never";

/** One request of a `pool.batch`. */
export interface BatchRequest {
  method: string;
  params?: unknown;
}

/**
 * One entry of a `batch` result, shaped like `Promise.allSettled`'s: the
 * server's error for that request is a `RemoteError`, a reply that could
 * not be read a `ProtocolError`.
 */
export type BatchResult<T = unknown> = { status: "fulfilled"; value: T } | { status: "rejected"; reason: RemoteError | ProtocolError };

/** Options of a call made through a pinned handle: no routing. */
export type PinnedCallOptions = Omit<CallOptions, "filter" | "key">;

/** A socket lent by `withConnection`: calls made through it go to that socket, in order. */
export interface PinnedConnection {
  /** The connection's id, as in `pool.connections()`. */
  readonly id: number;
  call<T = unknown>(method: string, params?: unknown, options?: PinnedCallOptions): Promise<T>;
  notify(method: string, params?: unknown): void;
  batch(requests: readonly BatchRequest[], options?: PinnedCallOptions): Promise<BatchResult[]>;
  /** The connection as `pool.connections()` shows it now. */
  snapshot(): ConnectionSnapshot;
}

/** Options of `new Pool(url, options)`. */
export interface PoolOptions {
  /** Sockets kept open. @default 4 */
  size?: number;
  /** Calls in flight per socket; more wait in that socket's queue. @default 256 */
  maxInFlight?: number;
  /** Calls waiting pool-wide (all queues); one more is refused with `PoolExhaustedError`. @default 10000 */
  maxQueue?: number;
  /** How a socket is chosen for each call. @default "least-pending" */
  strategy?: StrategyName | StrategyFunction;
  /** Per-call deadline in ms from `call()` to settle, queue time included. @default 30000 */
  timeout?: number;
  /** Maximum socket age in ms; 0 = none. A little jitter (up to 10%) is subtracted per socket. @default 0 */
  ttl?: number;
  /**
   * `true`: replace expired sockets (make-before-break) and reconnect dead
   * ones. `false`: drop them; the pool shrinks. @default true
   */
  revive?: boolean;
  /** Ms an expired socket waits for its calls in flight before they count as lost. @default 30000 */
  drainTimeout?: number;
  /** Ms a socket may take to open before the attempt counts as failed. @default 10000 */
  connectTimeout?: number;
  /** Reconnect backoff; `true` = the defaults; `false` never reconnects (a dead socket is dropped). */
  reconnect?: ReconnectOptions | boolean;
  /** Half-open detection; `true` = the defaults; `false` turns it off. */
  heartbeat?: HeartbeatOptions | boolean;
  /**
   * What happens to calls already sent when their socket dies: `"idempotent"`
   * re-sends only calls marked `idempotent: true`; `"always"` re-sends every
   * call; `"never"` re-sends none. The others reject with
   * `ConnectionLostError` (`maybeExecuted: true`). @default "idempotent"
   */
  retry?: RetryMode;
  /** Wire protocol. @default jsonRpc() */
  codec?: Codec;
  /** Request id generator; ids must be unique for the pool's life and never falsy. @default a random pool prefix + a counter */
  generateId?: () => RequestId;
  /** WebSocket constructor. @default the runtime's own; `ws` on Node without one */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols passed to every socket. */
  protocols?: string | string[];
  /** Inbound frames larger than this (bytes or UTF-16 units) are dropped and reported. @default 16777216 (16 MiB) */
  maxMessageSize?: number;
  /**
   * Outbound frames larger than this many bytes (UTF-8) are never written:
   * the call rejects at once with `ProtocolError` giving the frame's size and
   * the limit. Set it to the server's limit (e.g. `ws`'s `maxPayload`): a
   * server closes with 1009 on an oversized frame, which costs the socket
   * and every call in flight on it. @default Infinity (no limit)
   */
  maxRequestSize?: number;
  /**
   * Bytes a socket may hold unsent (its `bufferedAmount`) and still take new
   * writes; past it, calls and notifications wait in its queue (bounded by
   * `maxQueue`) and other sockets are preferred, until the link drains.
   * @default 1048576 (1 MiB)
   */
  maxBuffered?: number;
  /** Latency samples kept for percentiles. @default 1024 */
  latencyWindow?: number;
  /**
   * A step every new socket runs before it takes calls: on the first
   * connect, every reconnect and every replacement (TTL, `reload`, `resize`),
   * e.g. `async (connection) => { await connection.call("login", [token]) }`.
   * Its calls (through `connection`, a handle pinned to that socket) are the
   * only ones written there until it resolves; the others wait, as for a
   * socket still connecting, and the socket's `open` event comes after it.
   * A setup that throws, rejects or outlasts `connectTimeout` is a failed
   * connect attempt: a `ConnectError` event with its cause, then backoff.
   * @default undefined (none)
   */
  setup?: (connection: PinnedConnection) => void | Promise<void>;
  /** Subscriptions (`pool.subscribe`) one socket carries at most; more go to other sockets, or wait. @default 1000 */
  maxSubscriptionsPerSocket?: number;
  /**
   * Protocol-level coalescing. `"batch"` (or `{ mode: "batch", maxCalls,
   * maxBytes }`): the calls routed to one socket in one tick (made in the
   * same synchronous run and the microtasks after it) go as one batch frame
   * through the codec's `encodeBatch`, at most `maxCalls` calls (default
   * 100) and `maxBytes` bytes of UTF-8 (default 1048576, and never over
   * `maxRequestSize`) per frame; more make more frames. One call alone goes
   * as a plain request. Each call still settles alone, with its own
   * deadline, abort and re-send rules: a batch frame lost with its socket
   * is judged call by call, as written. Left out: calls with
   * `batchable: false`, notifications, `pool.batch()` and pinned calls
   * (`withConnection`, `setup`), which keep their order. The server must
   * accept batches (JSON-RPC 2.0 §6); its replies may come as one array or
   * as separate frames. Needs a codec with `encodeBatch` (else
   * `InvalidConfigError`). Transport-level coalescing (one TCP write per
   * tick on Node's `ws`) is always on and changes nothing on the wire.
   * @default false
   */
  coalesce?: false | "batch" | CoalesceOptions;
}

/** The object form of `PoolOptions.coalesce`. */
export interface CoalesceOptions {
  mode: "batch";
  /** Calls per batch frame at most, from 2. @default 100 */
  maxCalls?: number;
  /** Bytes (UTF-8) per batch frame at most; never more than `maxRequestSize`. @default 1048576 */
  maxBytes?: number;
}

/** Options of one call. */
export interface CallOptions {
  /** Deadline in ms from now; overrides the pool's `timeout`. */
  timeout?: number;
  /** Aborting rejects the call with `signal.reason` and removes it from any queue. */
  signal?: AbortSignal;
  /** Safe to run twice: re-sent if its socket dies after sending. @default false */
  idempotent?: boolean;
  /** Only sockets this accepts may carry the call; none → `NoConnectionError`. */
  filter?: (connection: ConnectionInfo) => boolean;
  /** Calls with the same key stay on the same socket while it lives. */
  key?: string;
  /**
   * With the pool's `coalesce: "batch"`, `false` sends this call in a frame
   * of its own, e.g. a slow method that would hold a batch reply back. @default true
   */
  batchable?: boolean;
}

/** `reconnect` after defaults. */
export type ResolvedReconnect = Required<Omit<ReconnectOptions, "shouldRetry">> & Pick<ReconnectOptions, "shouldRetry">;

/** Options after defaults and validation. */
export interface ResolvedOptions {
  size: number;
  maxInFlight: number;
  maxQueue: number;
  strategy: StrategyName | StrategyFunction;
  timeout: number;
  ttl: number;
  revive: boolean;
  drainTimeout: number;
  connectTimeout: number;
  reconnect: ResolvedReconnect | false;
  heartbeat: { interval: number; timeout: number; method: string; params: unknown } | false;
  retry: RetryMode;
  codec: Codec;
  generateId: (() => RequestId) | undefined;
  WebSocket: WebSocketConstructor | undefined;
  protocols: string | string[] | undefined;
  maxMessageSize: number;
  maxRequestSize: number;
  maxBuffered: number;
  latencyWindow: number;
  maxSubscriptionsPerSocket: number;
  setup: ((connection: PinnedConnection) => void | Promise<void>) | undefined;
  coalesce: { readonly maxCalls: number; readonly maxBytes: number } | false;
}

/** `[default, min, max]` of a numeric option; no `max`: no upper bound (counts) or MAX_DELAY (durations). */
type Range = readonly [fallback: number, min: number, max?: number];
type Table = Readonly<Record<string, Range>>;

/** Counts: integers. */
const COUNTS: Table = {
  size: [4, 1, 1024],
  maxInFlight: [256, 1],
  maxQueue: [10_000, 0],
  maxMessageSize: [16 * 1024 * 1024, 1],
  maxBuffered: [1024 * 1024, 1],
  latencyWindow: [1024, 1, 1_000_000],
  maxSubscriptionsPerSocket: [1000, 1],
};
/** Durations in ms, at most MAX_DELAY (what `setTimeout` honours). */
const DURATIONS: Table = { timeout: [30_000, 1], ttl: [0, 0], drainTimeout: [30_000, 0], connectTimeout: [10_000, 1] };
const RECONNECT_DURATIONS: Table = { initialDelay: [100, 0], maxDelay: [10_000, 0], resetAfter: [5_000, 0] };
const HEARTBEAT_DURATIONS: Table = { interval: [15_000, 1], timeout: [5_000, 1] };
const COALESCE_COUNTS: Table = { maxCalls: [100, 2], maxBytes: [1024 * 1024, 1] };

/** Checks the options of `table` in `input` (prefixed `prefix` in messages) and writes them, or their defaults, to `out`. */
function readNumbers(out: Record<string, unknown>, input: Record<string, unknown>, table: Table, counts: boolean, prefix = ""): void {
  for (const [name, [fallback, min, max = counts ? Infinity : MAX_DELAY]] of Object.entries(table)) {
    const value = input[name];
    out[name] = value === undefined ? fallback : checkNumber(prefix + name, value, min, max, counts ? "an integer" : "a number of ms");
  }
}

/** `true` or `undefined`: `{}` (every default); `false`: `false` (off); else the object, checked. */
function section(option: string, value: unknown): Record<string, unknown> | false {
  return value === false ? false : value === undefined || value === true ? {} : checkObject(option, value, "an object, `true` or `false`");
}

const KNOWN = [
  ...Object.keys(COUNTS),
  ...Object.keys(DURATIONS),
  "strategy",
  "revive",
  "reconnect",
  "heartbeat",
  "retry",
  "codec",
  "generateId",
  "WebSocket",
  "protocols",
  "maxRequestSize",
  "setup",
  "coalesce",
];
const CALL_KEYS = ["timeout", "signal", "idempotent", "filter", "key", "batchable"];

/** Applies defaults and validates every option; throws `InvalidConfigError` naming the first bad one. */
export function resolveOptions(input: unknown): ResolvedOptions {
  const o = checkObject("options", input === undefined ? {} : input);
  onlyKnown(o, KNOWN);
  const out: Record<string, unknown> = {
    strategy: o.strategy ?? "least-pending",
    revive: checkBoolean("revive", o.revive, true),
    retry: o.retry ?? "idempotent",
    codec: o.codec ?? jsonRpc(),
    generateId: o.generateId,
    WebSocket: o.WebSocket,
    protocols: o.protocols,
    setup: o.setup,
    reconnect: false,
    heartbeat: false,
  };
  if (typeof out.strategy !== "function" && !["round-robin", "least-pending", "random"].includes(out.strategy as string)) {
    fail("strategy", '"round-robin", "least-pending", "random" or a function', out.strategy);
  }
  if (!["idempotent", "always", "never"].includes(out.retry as string)) fail("retry", '"idempotent", "always" or "never"', out.retry);
  readNumbers(out, o, COUNTS, true);
  out.maxRequestSize = o.maxRequestSize === undefined || o.maxRequestSize === Infinity
    ? Infinity
    : checkNumber("maxRequestSize", o.maxRequestSize, 1, Infinity, "an integer");
  readNumbers(out, o, DURATIONS, false);

  const r = section("reconnect", o.reconnect);
  if (r) {
    onlyKnown(r, ["factor", "jitter", "maxAttempts", ...Object.keys(RECONNECT_DURATIONS), "shouldRetry"], "reconnect.");
    if (r.shouldRetry !== undefined && typeof r.shouldRetry !== "function") {
      fail("reconnect.shouldRetry", "a function of the close ({ code, reason })", r.shouldRetry);
    }
    const reconnect: Record<string, unknown> = {
      factor: r.factor ?? 2,
      jitter: checkBoolean("reconnect.jitter", r.jitter, true),
      maxAttempts: r.maxAttempts ?? Number.POSITIVE_INFINITY,
      shouldRetry: r.shouldRetry,
    };
    readNumbers(reconnect, r, RECONNECT_DURATIONS, false, "reconnect.");
    if ((reconnect.maxDelay as number) < (reconnect.initialDelay as number)) {
      fail("reconnect.maxDelay", `a number of ms not below reconnect.initialDelay (${reconnect.initialDelay})`, reconnect.maxDelay);
    }
    const { factor, maxAttempts } = reconnect;
    if (typeof factor !== "number" || !(factor >= 1) || !Number.isFinite(factor)) {
      fail("reconnect.factor", "a finite number from 1 and up", factor);
    }
    if (
      typeof maxAttempts !== "number" || !(maxAttempts >= 0) || (!Number.isInteger(maxAttempts) && maxAttempts !== Number.POSITIVE_INFINITY)
    ) {
      fail("reconnect.maxAttempts", "an integer from 0 and up, or Infinity", maxAttempts);
    }
    out.reconnect = reconnect;
  }

  const h = section("heartbeat", o.heartbeat);
  if (h) {
    onlyKnown(h, ["method", "params", ...Object.keys(HEARTBEAT_DURATIONS)], "heartbeat.");
    const heartbeat: Record<string, unknown> = { method: h.method ?? "ping", params: h.params };
    if (typeof heartbeat.method !== "string" || heartbeat.method === "") fail("heartbeat.method", "a non-empty string", heartbeat.method);
    readNumbers(heartbeat, h, HEARTBEAT_DURATIONS, false, "heartbeat.");
    out.heartbeat = heartbeat;
  }

  const c = out.codec as Partial<Codec> | null;
  if (
    typeof c !== "object" || c === null || typeof c.encodeRequest !== "function" || typeof c.encodeNotification !== "function" ||
    typeof c.decode !== "function"
  ) {
    fail("codec", "an object with encodeRequest, encodeNotification and decode functions", c);
  }
  out.coalesce = coalesceOption(o.coalesce, c!);
  if (o.generateId !== undefined && typeof o.generateId !== "function") {
    fail("generateId", "a function returning a string or number", o.generateId);
  }
  if (o.WebSocket !== undefined && typeof o.WebSocket !== "function") fail("WebSocket", "a WebSocket constructor", o.WebSocket);
  if (o.setup !== undefined && typeof o.setup !== "function") fail("setup", "a function of the new socket's pinned handle", o.setup);
  if (
    o.protocols !== undefined && typeof o.protocols !== "string" &&
    !(Array.isArray(o.protocols) && o.protocols.every((p) => typeof p === "string"))
  ) {
    fail("protocols", "a string or a list of strings", o.protocols);
  }
  return out as unknown as ResolvedOptions;
}

/** `coalesce` after defaults: `false`, or the caps of `"batch"`. */
function coalesceOption(value: unknown, codec: Partial<Codec>): ResolvedOptions["coalesce"] {
  if (value === undefined || value === false) return false;
  const o = value === "batch" ? { mode: value } : checkObject("coalesce", value, 'false, "batch" or { mode: "batch", … }');
  onlyKnown(o, ["mode", ...Object.keys(COALESCE_COUNTS)], "coalesce.");
  if (o.mode !== "batch") fail("coalesce.mode", '"batch"', o.mode);
  if (typeof codec.encodeBatch !== "function") fail("coalesce", "off with a codec that has no encodeBatch", value);
  const out: Record<string, unknown> = {};
  readNumbers(out, o, COALESCE_COUNTS, true, "coalesce.");
  return out as ResolvedOptions["coalesce"];
}

/** Validates the per-call options; same error style as the constructor. */
export function checkCallOptions(options: CallOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null) fail("options", "an object", options);
  onlyKnown(options, CALL_KEYS);
  if (options.timeout !== undefined) checkNumber("timeout", options.timeout, 1, MAX_DELAY, "a number of ms");
  if (
    options.signal !== undefined &&
    (typeof options.signal !== "object" || options.signal === null || typeof options.signal.addEventListener !== "function")
  ) {
    fail("signal", "an AbortSignal", options.signal);
  }
  if (options.idempotent !== undefined) checkBoolean("idempotent", options.idempotent, false);
  if (options.filter !== undefined && typeof options.filter !== "function") fail("filter", "a function", options.filter);
  if (options.key !== undefined && typeof options.key !== "string") fail("key", "a string", options.key);
  if (options.batchable !== undefined) checkBoolean("batchable", options.batchable, true);
}

/** Options `pool.update()` can change on a live pool. */
export type PoolUpdate = Pick<
  PoolOptions,
  | "ttl"
  | "revive"
  | "strategy"
  | "maxInFlight"
  | "maxQueue"
  | "timeout"
  | "heartbeat"
  | "reconnect"
  | "retry"
  | "drainTimeout"
  | "connectTimeout"
  | "maxBuffered"
  | "maxMessageSize"
  | "maxRequestSize"
  | "setup"
  | "maxSubscriptionsPerSocket"
  | "coalesce"
>;

/** Options fixed for a pool's life, and what to do instead. */
const FIXED: Readonly<Record<string, string>> = {
  size: "use `pool.resize(size)`",
  codec: "make a new pool",
  generateId: "make a new pool",
  WebSocket: "make a new pool",
  protocols: "make a new pool",
  latencyWindow: "make a new pool",
};

/** Options `pool.update()` can change: all but the fixed ones. */
const LIVE = KNOWN.filter((key) => !(key in FIXED));

/**
 * Validates `input` exactly as the constructor would, on top of `current`
 * (nested `reconnect` and `heartbeat` objects merge with the current ones),
 * writes the changes into `current` and returns them. Throws
 * `InvalidConfigError` naming the option, also for one that cannot change live.
 * Only values that differ from the current ones count as changes.
 */
export function updateOptions(
  current: ResolvedOptions,
  input: unknown,
): { changes: Partial<ResolvedOptions>; previous: Partial<ResolvedOptions> } {
  const o = checkObject("options", input);
  for (const key in o) {
    if (key in FIXED) throw new InvalidConfigError(key, `\`${key}\` cannot change on a live pool: ${FIXED[key]}`);
  }
  onlyKnown(o, LIVE);
  const merged: Record<string, unknown> = { ...current, ...o };
  for (const key of ["reconnect", "heartbeat"] as const) {
    const [now, next] = [current[key], o[key]];
    if (typeof now === "object" && typeof next === "object" && next !== null) merged[key] = { ...now, ...next };
  }
  const resolved = resolveOptions(merged);
  const changes: Record<string, unknown> = {};
  const previous: Record<string, unknown> = {};
  for (const key of Object.keys(o) as (keyof PoolUpdate)[]) {
    const [was, now] = [current[key], resolved[key]];
    if (was === now || (typeof now === "object" && JSON.stringify(was) === JSON.stringify(now))) continue; // unchanged
    previous[key] = was;
    changes[key] = now;
  }
  Object.assign(current, changes);
  return { changes, previous };
}
