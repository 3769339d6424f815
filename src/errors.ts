/**
 * Every error muxpool raises. Each has a stable string `code`; `instanceof`
 * also holds across two loaded copies of the library, because the check looks
 * for a brand registered with `Symbol.for` rather than at the prototype chain.
 *
 * @module
 */

const BRAND: unique symbol = Symbol.for("muxpool.error") as never;

/** Stable codes, one per error class. */
export type ErrorCode =
  | "ERR_INVALID_CONFIG"
  | "ERR_TIMEOUT"
  | "ERR_POOL_EXHAUSTED"
  | "ERR_POOL_CLOSED"
  | "ERR_NO_CONNECTION"
  | "ERR_CONNECTION_LOST"
  | "ERR_REMOTE"
  | "ERR_PROTOCOL"
  | "ERR_CONNECT";

/**
 * The class name of a code: `ERR_POOL_CLOSED` → `PoolClosedError`.
 * `new.target.name` is mangled in the minified CDN bundle (it would read
 * e.g. "C"), so muxpool's own classes name themselves from their code.
 */
function nameOf(code: ErrorCode): string {
  return code.slice(4).toLowerCase().replace(/(?:^|_)(\w)/g, (_, c: string) => c.toUpperCase()) + "Error";
}

function brandCheck(instance: unknown, code: ErrorCode | undefined): boolean {
  if (typeof instance !== "object" || instance === null) return false;
  const brand = (instance as Record<symbol, unknown>)[BRAND];
  if (typeof brand !== "string") return false;
  return code === undefined || brand === code;
}

/** The message of `error` if it has one, else `error` as a string. */
export function messageOf(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** Base class of every muxpool error. */
export class MuxPoolError extends Error {
  /** A stable machine-readable code, e.g. `ERR_TIMEOUT`. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    // A user's subclass (no own static CODE) keeps its own name.
    this.name = new.target === MuxPoolError ? "MuxPoolError" : Object.hasOwn(new.target, "CODE") ? nameOf(code) : new.target.name;
    Object.defineProperty(this, BRAND, { value: code, enumerable: false });
  }

  static override [Symbol.hasInstance](instance: unknown): boolean {
    // `this` is the class `instanceof` was asked about; the base class matches
    // every muxpool error, a subclass only errors with its own code.
    const code = this === MuxPoolError ? undefined : (this as unknown as { CODE: ErrorCode }).CODE;
    return brandCheck(instance, code);
  }
}

/** An option is missing or out of range (thrown by the constructor). */
export class InvalidConfigError extends MuxPoolError {
  static readonly CODE = "ERR_INVALID_CONFIG";
  /** The option at fault, e.g. `"reconnect.maxDelay"`. */
  readonly option: string;
  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(InvalidConfigError.CODE, message, options);
    this.option = option;
  }
}

/**
 * The call's deadline passed before it settled. `maybeExecuted`: it had been
 * written to a socket (the server may have run it); `false`: it never left
 * the client, so the server never ran it.
 */
export class TimeoutError extends MuxPoolError {
  static readonly CODE = "ERR_TIMEOUT";
  readonly maybeExecuted: boolean;
  constructor(message: string, options?: { maybeExecuted?: boolean; cause?: unknown }) {
    super(TimeoutError.CODE, message, options);
    this.maybeExecuted = options?.maybeExecuted === true;
  }
}

/** `maxQueue` calls already wait; the call was refused at once. */
export class PoolExhaustedError extends MuxPoolError {
  static readonly CODE = "ERR_POOL_EXHAUSTED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(PoolExhaustedError.CODE, message, options);
  }
}

/** The pool is closing or closed, or was destroyed. */
export class PoolClosedError extends MuxPoolError {
  static readonly CODE = "ERR_POOL_CLOSED";
  /** The call was written before the pool closed (`destroy()`, or `close()` past its timeout): it may have run. */
  readonly maybeExecuted: boolean;
  constructor(message: string, options?: { maybeExecuted?: boolean; cause?: unknown }) {
    super(PoolClosedError.CODE, message, options);
    this.maybeExecuted = options?.maybeExecuted === true;
  }
}

/** No live socket (all dropped), or none matches the call's `filter`. */
export class NoConnectionError extends MuxPoolError {
  static readonly CODE = "ERR_NO_CONNECTION";
  constructor(message: string, options?: { cause?: unknown }) {
    super(NoConnectionError.CODE, message, options);
  }
}

/**
 * The socket carrying the call died. `maybeExecuted` is `true` when the call
 * had been written to the socket (the server may have run it), `false` when it
 * had not left the client (only pinned calls of `withConnection` reject so).
 * `code` and `reason` are the socket's close code (RFC 6455 §7.4; 1006: no
 * close frame; 4000: given up by the client, e.g. the heartbeat) and reason.
 */
export class ConnectionLostError extends MuxPoolError {
  static readonly CODE = "ERR_CONNECTION_LOST";
  readonly maybeExecuted: boolean;
  readonly closeCode: number | undefined;
  readonly reason: string | undefined;
  constructor(message: string, options: { maybeExecuted: boolean; code?: number; reason?: string; cause?: unknown }) {
    super(ConnectionLostError.CODE, message, options);
    this.maybeExecuted = options.maybeExecuted;
    this.closeCode = options.code;
    this.reason = options.reason;
  }
}

/** The server answered the call with an error (JSON-RPC 2.0 §5.1 error object). */
export class RemoteError extends MuxPoolError {
  static readonly CODE = "ERR_REMOTE";
  /** The error code the server sent (JSON-RPC `error.code`). */
  readonly remoteCode: number | string | undefined;
  /** The server's `error.data`, if any. */
  readonly data: unknown;
  constructor(message: string, remoteCode: number | string | undefined, data: unknown, options?: { cause?: unknown }) {
    super(RemoteError.CODE, message, options);
    this.remoteCode = remoteCode;
    this.data = data;
  }
}

/**
 * A frame could not be decoded or matched to a call (reported as an `error`
 * event); a reply whose id matches a call but that cannot be read rejects
 * that call with it, and so does a call whose frame is over `maxRequestSize`.
 */
export class ProtocolError extends MuxPoolError {
  static readonly CODE = "ERR_PROTOCOL";
  constructor(message: string, options?: { cause?: unknown }) {
    super(ProtocolError.CODE, message, options);
  }
}

/**
 * A socket could not connect, or its connection was refused by
 * `reconnect.shouldRetry`. `cause` is what failed (the runtime's error, the
 * `url` function's own error); `url` is the URL with credentials redacted;
 * `attempt` counts the failed attempts in a row.
 */
export class ConnectError extends MuxPoolError {
  static readonly CODE = "ERR_CONNECT";
  readonly url: string;
  readonly attempt: number;
  constructor(message: string, options: { url: string; attempt: number; cause?: unknown }) {
    super(ConnectError.CODE, message, options);
    this.url = options.url;
    this.attempt = options.attempt;
  }
}
