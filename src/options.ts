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
  latencyWindow: number;
}

/** The largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
export const MAX_DELAY = 2_147_483_647;

function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "string") return `\`${JSON.stringify(value)}\` (string)`;
  if (typeof value === "object") return value === null ? "`null`" : Array.isArray(value) ? "an array" : "an object";
  return `\`${String(value)}\` (${typeof value})`;
}

function fail(option: string, expected: string, value: unknown): never {
  throw new InvalidConfigError(option, `Expected \`${option}\` to be ${expected}, got ${describe(value)}`);
}

function integer(option: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    fail(option, max === Number.MAX_SAFE_INTEGER ? `an integer from ${min} and up` : `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function duration(option: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < min || value > MAX_DELAY) {
    fail(option, `a number of ms from ${min} to ${MAX_DELAY}`, value);
  }
  return value;
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

const KNOWN = new Set([
  "size", "maxInFlight", "maxQueue", "strategy", "timeout", "ttl", "revive", "drainTimeout", "connectTimeout",
  "reconnect", "heartbeat", "retry", "codec", "generateId", "WebSocket", "protocols", "maxMessageSize", "latencyWindow",
]);

/** Checks the `url` argument of the constructor (string, endpoints or function). */
export function validateUrl(url: unknown): UrlSource {
  if (typeof url === "function") return url as UrlSource;
  if (typeof url === "string") {
    checkUrlString("url", url);
    return url;
  }
  if (Array.isArray(url)) {
    if (url.length === 0) fail("url", "a URL, a non-empty list of endpoints or a function", url);
    url.forEach((endpoint: unknown, i) => {
      const e = object(`url[${i}]`, endpoint);
      if (typeof e.url !== "string") fail(`url[${i}].url`, "a ws:// or wss:// URL string", e.url);
      checkUrlString(`url[${i}].url`, e.url);
      if (e.weight !== undefined && (typeof e.weight !== "number" || !(e.weight > 0) || !Number.isFinite(e.weight))) {
        fail(`url[${i}].weight`, "a positive number", e.weight);
      }
      if (e.tags !== undefined) object(`url[${i}].tags`, e.tags);
    });
    return url as readonly Endpoint[];
  }
  return fail("url", "a ws:// or wss:// URL, a list of endpoints or a function", url);
}

/** Throws unless `value` is an absolute ws:, wss:, http: or https: URL. */
export function checkUrlString(option: string, value: string): void {
  let protocol = "";
  try {
    protocol = new URL(value).protocol;
  } catch {
    fail(option, "an absolute ws:// or wss:// URL", value);
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(protocol)) {
    fail(option, /^[\w.-]+(:\d+)?(\/|$)/.test(value) ? `a ws:// or wss:// URL (did you mean "ws://${value}"?)` : "a ws:// or wss:// URL", value);
  }
}

/** Applies defaults and validates every option; throws `InvalidConfigError` naming the first bad one. */
export function resolveOptions(input: unknown): ResolvedOptions {
  if (input === undefined) input = {};
  const o = object("options", input);
  for (const name of Object.keys(o)) {
    if (!KNOWN.has(name)) {
      throw new InvalidConfigError(name, `Unknown option \`${name}\`; known options: ${[...KNOWN].join(", ")}`);
    }
  }
  const strategy = o.strategy ?? "least-pending";
  if (typeof strategy !== "function" && !["round-robin", "least-pending", "random"].includes(strategy as string)) {
    fail("strategy", '"round-robin", "least-pending", "random" or a function', strategy);
  }
  const retry = o.retry ?? "idempotent";
  if (!["idempotent", "always", "never"].includes(retry as string)) fail("retry", '"idempotent", "always" or "never"', retry);

  let reconnect: ResolvedOptions["reconnect"] = false;
  if (o.reconnect !== false) {
    const r = o.reconnect === undefined || o.reconnect === true ? {} : object("reconnect", o.reconnect);
    const initialDelay = duration("reconnect.initialDelay", r.initialDelay, 100, 0);
    const maxDelay = duration("reconnect.maxDelay", r.maxDelay, 10_000, 0);
    if (maxDelay < initialDelay) fail("reconnect.maxDelay", `a number of ms not below reconnect.initialDelay (${initialDelay})`, maxDelay);
    const factor = r.factor ?? 2;
    if (typeof factor !== "number" || !(factor >= 1) || !Number.isFinite(factor)) fail("reconnect.factor", "a finite number from 1 and up", factor);
    const maxAttempts = r.maxAttempts ?? Number.POSITIVE_INFINITY;
    if (typeof maxAttempts !== "number" || !(maxAttempts >= 0) || (!Number.isInteger(maxAttempts) && maxAttempts !== Number.POSITIVE_INFINITY)) {
      fail("reconnect.maxAttempts", "an integer from 0 and up, or Infinity", maxAttempts);
    }
    reconnect = {
      initialDelay,
      maxDelay,
      factor,
      jitter: boolean("reconnect.jitter", r.jitter, true),
      maxAttempts,
      resetAfter: duration("reconnect.resetAfter", r.resetAfter, 5_000, 0),
    };
  }

  let heartbeat: ResolvedOptions["heartbeat"] = false;
  if (o.heartbeat !== false) {
    const h = o.heartbeat === undefined || o.heartbeat === true ? {} : object("heartbeat", o.heartbeat);
    const method = h.method ?? "ping";
    if (typeof method !== "string" || method === "") fail("heartbeat.method", "a non-empty string", method);
    heartbeat = {
      interval: duration("heartbeat.interval", h.interval, 15_000, 1),
      timeout: duration("heartbeat.timeout", h.timeout, 5_000, 1),
      method,
      params: h.params,
    };
  }

  const codec = o.codec ?? jsonRpc();
  const c = codec as Partial<Codec> | null;
  if (typeof c !== "object" || c === null || typeof c.encodeRequest !== "function" || typeof c.encodeNotification !== "function" || typeof c.decode !== "function") {
    fail("codec", "an object with encodeRequest, encodeNotification and decode functions", codec);
  }
  if (o.generateId !== undefined && typeof o.generateId !== "function") fail("generateId", "a function returning a string or number", o.generateId);
  if (o.WebSocket !== undefined && typeof o.WebSocket !== "function") fail("WebSocket", "a WebSocket constructor", o.WebSocket);
  if (o.protocols !== undefined && typeof o.protocols !== "string" && !(Array.isArray(o.protocols) && o.protocols.every((p) => typeof p === "string"))) {
    fail("protocols", "a string or a list of strings", o.protocols);
  }
  const ttl = duration("ttl", o.ttl, 0, 0);
  return {
    size: integer("size", o.size, 4, 1, 1024),
    maxInFlight: integer("maxInFlight", o.maxInFlight, 256, 1),
    maxQueue: integer("maxQueue", o.maxQueue, 10_000, 0),
    strategy: strategy as ResolvedOptions["strategy"],
    timeout: duration("timeout", o.timeout, 30_000, 1),
    ttl,
    revive: boolean("revive", o.revive, true),
    drainTimeout: duration("drainTimeout", o.drainTimeout, 30_000, 0),
    connectTimeout: duration("connectTimeout", o.connectTimeout, 10_000, 1),
    reconnect,
    heartbeat,
    retry: retry as ResolvedOptions["retry"],
    codec: codec as Codec,
    generateId: o.generateId as ResolvedOptions["generateId"],
    WebSocket: o.WebSocket as WebSocketConstructor | undefined,
    protocols: o.protocols as string | string[] | undefined,
    maxMessageSize: integer("maxMessageSize", o.maxMessageSize, 16 * 1024 * 1024, 1),
    latencyWindow: integer("latencyWindow", o.latencyWindow, 1024, 1, 1_000_000),
  };
}

/** Validates the per-call options; same error style as the constructor. */
export function checkCallOptions(options: CallOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null) fail("options", "an object", options);
  if (options.timeout !== undefined) duration("timeout", options.timeout, 0, 1);
  if (options.signal !== undefined && (typeof options.signal !== "object" || options.signal === null || typeof options.signal.addEventListener !== "function")) {
    fail("signal", "an AbortSignal", options.signal);
  }
  if (options.idempotent !== undefined) boolean("idempotent", options.idempotent, false);
  if (options.filter !== undefined && typeof options.filter !== "function") fail("filter", "a function", options.filter);
  if (options.key !== undefined && typeof options.key !== "string") fail("key", "a string", options.key);
}
