/**
 * Pool options: their types (with defaults documented), the defaults
 * themselves, and the validation the constructor runs. Pure: no sockets, no
 * timers.
 *
 * @module
 */

import { type Codec, jsonRpc, type RequestId } from "./codec.ts";
import { InvalidConfigError } from "./errors.ts";
import type { ConnectionInfo } from "./strategies.ts";

/** A WebSocket constructor as in the WHATWG spec (browsers, Deno, `ws`). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

/**
 * The part of the WebSocket interface muxpool uses. Handler parameters are
 * `any` on purpose: the DOM's, Deno's and `ws`'s WebSocket classes each type
 * their events differently, and all of them must be accepted as they are.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  readonly bufferedAmount: number;
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  // deno-lint-ignore no-explicit-any
  onopen: ((event: any) => void) | null;
  // deno-lint-ignore no-explicit-any
  onclose: ((event: any) => void) | null;
  // deno-lint-ignore no-explicit-any
  onerror: ((event: any) => void) | null;
  // deno-lint-ignore no-explicit-any
  onmessage: ((event: any) => void) | null;
}

/** One endpoint of a pool spread over several servers. */
export interface Endpoint {
  url: string;
  /** Share of the pool's sockets that go to this endpoint. @default 1 */
  weight?: number;
  /** Free-form labels a call's `filter` can select on, e.g. `{ region: "eu" }`. */
  tags?: Readonly<Record<string, string>>;
}

/**
 * Where the sockets connect: one URL, a weighted list of endpoints, or a
 * function called on every (re)connect with the socket's slot index, which may
 * return a promise (e.g. to fetch a fresh token).
 */
export type UrlSource = string | readonly Endpoint[] | ((index: number) => string | Promise<string>);

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

/** A call as strategies and filters see it. */
export interface CallInfo {
  readonly method: string;
  readonly key: string | undefined;
  readonly idempotent: boolean;
}

/** Picks the socket for a call among the candidates (never empty). */
export type StrategyFunction = (connections: readonly ConnectionInfo[], call: CallInfo) => ConnectionInfo;

/** Built-in strategy names. */
export type StrategyName = "round-robin" | "least-pending" | "random";

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
  retry?: "idempotent" | "always" | "never";
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
   * Bytes a socket may hold unsent (its `bufferedAmount`) and still take new
   * writes; past it, calls and notifications wait in its queue (bounded by
   * `maxQueue`) and other sockets are preferred, until the link drains.
   * @default 1048576 (1 MiB)
   */
  maxBuffered?: number;
  /** Latency samples kept for percentiles. @default 1024 */
  latencyWindow?: number;
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
}

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
  reconnect: Required<ReconnectOptions> | false;
  heartbeat: { interval: number; timeout: number; method: string; params: unknown } | false;
  retry: "idempotent" | "always" | "never";
  codec: Codec;
  generateId: (() => RequestId) | undefined;
  WebSocket: WebSocketConstructor | undefined;
  protocols: string | string[] | undefined;
  maxMessageSize: number;
  maxBuffered: number;
  latencyWindow: number;
}

/** The largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
export const MAX_DELAY = 2_147_483_647;

/** `value` the way a message shows it: `` `0` (number) ``, `` `"4"` (string) ``, "an object"… */
function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "object") return value === null ? "`null`" : Array.isArray(value) ? "an array" : "an object";
  return `\`${typeof value === "string" ? JSON.stringify(value) : String(value)}\` (${typeof value})`;
}

/** Throws the one shape of message every bad argument gets: "Expected `size` to be …, got `0` (number)". */
export function fail(option: string, expected: string, value: unknown): never {
  throw new InvalidConfigError(option, `Expected \`${option}\` to be ${expected}, got ${describe(value)}`);
}

/**
 * Returns `value` if it is a number from `min` to `max`; `kind` says what
 * else it must be and how the message names it ("an integer" is checked
 * for being whole; "a number of ms" and "a number" need not be).
 */
export function checkNumber(option: string, value: unknown, min: number, max: number, kind: "an integer" | "a number of ms" | "a number"): number {
  if (typeof value !== "number" || !(value >= min && value <= max) || (kind === "an integer" && !Number.isInteger(value))) {
    fail(option, `${kind} from ${min}${max === Infinity ? " and up" : ` to ${max}`}`, value);
  }
  return value;
}

/** `[default, min, max]` of a numeric option; no `max`: no upper bound (counts) or MAX_DELAY (durations). */
type Range = readonly [fallback: number, min: number, max?: number];
type Table = Readonly<Record<string, Range>>;

/** Counts: integers. */
const COUNTS: Table = { size: [4, 1, 1024], maxInFlight: [256, 1], maxQueue: [10_000, 0], maxMessageSize: [16 * 1024 * 1024, 1], maxBuffered: [1024 * 1024, 1], latencyWindow: [1024, 1, 1_000_000] };
/** Durations in ms, at most MAX_DELAY (what `setTimeout` honours). */
const DURATIONS: Table = { timeout: [30_000, 1], ttl: [0, 0], drainTimeout: [30_000, 0], connectTimeout: [10_000, 1] };
const RECONNECT_DURATIONS: Table = { initialDelay: [100, 0], maxDelay: [10_000, 0], resetAfter: [5_000, 0] };
const HEARTBEAT_DURATIONS: Table = { interval: [15_000, 1], timeout: [5_000, 1] };

/** Checks the options of `table` in `input` (prefixed `prefix` in messages) and writes them, or their defaults, to `out`. */
function readNumbers(out: Record<string, unknown>, input: Record<string, unknown>, table: Table, counts: boolean, prefix = ""): void {
  for (const [name, [fallback, min, max = counts ? Infinity : MAX_DELAY]] of Object.entries(table)) {
    const value = input[name];
    out[name] = value === undefined ? fallback : checkNumber(prefix + name, value, min, max, counts ? "an integer" : "a number of ms");
  }
}

function boolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") fail(option, "a boolean", value);
  return value;
}

function object(option: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(option, option === "options" || option.startsWith("url[") ? "an object" : "an object, `true` or `false`", value);
  return value as Record<string, unknown>;
}

/** `true` or `undefined`: `{}` (every default); `false`: `false` (off); else the object, checked. */
function section(option: string, value: unknown): Record<string, unknown> | false {
  return value === false ? false : value === undefined || value === true ? {} : object(option, value);
}

const KNOWN = [
  ...Object.keys(COUNTS), ...Object.keys(DURATIONS),
  "strategy", "revive", "reconnect", "heartbeat", "retry", "codec", "generateId", "WebSocket", "protocols",
];
const CALL_KEYS = ["timeout", "signal", "idempotent", "filter", "key"];

/** Levenshtein distance: the fewest one-letter edits from `a` to `b`. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * Throws `InvalidConfigError` for a key of `value` that is not in `known`: a
 * misspelt option (`maxAttempt`, `idempotant`) would otherwise be ignored
 * without a word, and the default used instead.
 */
export function onlyKnown(value: object, known: readonly string[], prefix = ""): void {
  for (const key in value) {
    if (known.includes(key)) continue;
    // The closest known name, if only a slip away (`timeOut`, `maxAttempt`, `exclusve`, `weigth`).
    let near: string | undefined;
    let best = key.length < 5 ? 2 : 3;
    for (const k of known) {
      const d = distance(key.toLowerCase(), k.toLowerCase());
      if (d < best) [near, best] = [k, d];
    }
    throw new InvalidConfigError(prefix + key, `Unknown option \`${prefix}${key}\`${near ? ` (did you mean \`${prefix}${near}\`?)` : ""}; known: ${known.join(", ")}`);
  }
}

/** Checks the \`url\` argument of the constructor (string, endpoints or function). */
export function validateUrl(url: unknown): UrlSource {
  if (typeof url === "function") return url as UrlSource;
  if (typeof url === "string") {
    checkUrlString("url", url);
    return url;
  }
  if (Array.isArray(url) && url.length > 0) {
    url.forEach((endpoint: unknown, i) => {
      const name = `url[${i}]`;
      const e = object(name, endpoint);
      onlyKnown(e, ["url", "weight", "tags"], `${name}.`);
      if (typeof e.url !== "string") fail(`${name}.url`, "an absolute ws:// or wss:// URL", e.url);
      checkUrlString(`${name}.url`, e.url);
      if (e.weight !== undefined && (typeof e.weight !== "number" || !(e.weight > 0) || !Number.isFinite(e.weight))) {
        fail(`${name}.weight`, "a positive number", e.weight);
      }
      if (e.tags !== undefined) object(`${name}.tags`, e.tags);
    });
    return url as readonly Endpoint[];
  }
  return fail("url", "a ws:// or wss:// URL, a non-empty list of endpoints or a function", url);
}

/** Throws unless `value` is an absolute ws:, wss:, http: or https: URL. */
function checkUrlString(option: string, value: string): void {
  let protocol = "";
  try {
    protocol = new URL(value).protocol;
  } catch {
    // stays "": reported below
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(protocol)) {
    fail(option, /^[\w.-]+(:\d+)?(\/|$)/.test(value) ? `a ws:// or wss:// URL (did you mean "ws://${value}"?)` : "an absolute ws:// or wss:// URL", value);
  }
}

/** Applies defaults and validates every option; throws `InvalidConfigError` naming the first bad one. */
export function resolveOptions(input: unknown): ResolvedOptions {
  const o = object("options", input === undefined ? {} : input);
  onlyKnown(o, KNOWN);
  const out: Record<string, unknown> = {
    strategy: o.strategy ?? "least-pending",
    revive: boolean("revive", o.revive, true),
    retry: o.retry ?? "idempotent",
    codec: o.codec ?? jsonRpc(),
    generateId: o.generateId,
    WebSocket: o.WebSocket,
    protocols: o.protocols,
    reconnect: false,
    heartbeat: false,
  };
  if (typeof out.strategy !== "function" && !["round-robin", "least-pending", "random"].includes(out.strategy as string)) {
    fail("strategy", '"round-robin", "least-pending", "random" or a function', out.strategy);
  }
  if (!["idempotent", "always", "never"].includes(out.retry as string)) fail("retry", '"idempotent", "always" or "never"', out.retry);
  readNumbers(out, o, COUNTS, true);
  readNumbers(out, o, DURATIONS, false);

  const r = section("reconnect", o.reconnect);
  if (r) {
    onlyKnown(r, ["factor", "jitter", "maxAttempts", ...Object.keys(RECONNECT_DURATIONS)], "reconnect.");
    const reconnect: Record<string, unknown> = {
      factor: r.factor ?? 2,
      jitter: boolean("reconnect.jitter", r.jitter, true),
      maxAttempts: r.maxAttempts ?? Number.POSITIVE_INFINITY,
    };
    readNumbers(reconnect, r, RECONNECT_DURATIONS, false, "reconnect.");
    if ((reconnect.maxDelay as number) < (reconnect.initialDelay as number)) {
      fail("reconnect.maxDelay", `a number of ms not below reconnect.initialDelay (${reconnect.initialDelay})`, reconnect.maxDelay);
    }
    const { factor, maxAttempts } = reconnect;
    if (typeof factor !== "number" || !(factor >= 1) || !Number.isFinite(factor)) fail("reconnect.factor", "a finite number from 1 and up", factor);
    if (typeof maxAttempts !== "number" || !(maxAttempts >= 0) || (!Number.isInteger(maxAttempts) && maxAttempts !== Number.POSITIVE_INFINITY)) {
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
  if (typeof c !== "object" || c === null || typeof c.encodeRequest !== "function" || typeof c.encodeNotification !== "function" || typeof c.decode !== "function") {
    fail("codec", "an object with encodeRequest, encodeNotification and decode functions", c);
  }
  if (o.generateId !== undefined && typeof o.generateId !== "function") fail("generateId", "a function returning a string or number", o.generateId);
  if (o.WebSocket !== undefined && typeof o.WebSocket !== "function") fail("WebSocket", "a WebSocket constructor", o.WebSocket);
  if (o.protocols !== undefined && typeof o.protocols !== "string" && !(Array.isArray(o.protocols) && o.protocols.every((p) => typeof p === "string"))) {
    fail("protocols", "a string or a list of strings", o.protocols);
  }
  return out as unknown as ResolvedOptions;
}

/** Validates the per-call options; same error style as the constructor. */
export function checkCallOptions(options: CallOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null) fail("options", "an object", options);
  onlyKnown(options, CALL_KEYS);
  if (options.timeout !== undefined) checkNumber("timeout", options.timeout, 1, MAX_DELAY, "a number of ms");
  if (options.signal !== undefined && (typeof options.signal !== "object" || options.signal === null || typeof options.signal.addEventListener !== "function")) {
    fail("signal", "an AbortSignal", options.signal);
  }
  if (options.idempotent !== undefined) boolean("idempotent", options.idempotent, false);
  if (options.filter !== undefined && typeof options.filter !== "function") fail("filter", "a function", options.filter);
  if (options.key !== undefined && typeof options.key !== "string") fail("key", "a string", options.key);
}
