/**
 * One call on its way through the pool. Until it settles it is in exactly
 * one place, recorded in `where`: the pool's wait queue, one connection's
 * queue, or one connection's in-flight map. Also the words messages use to
 * name a call and say where it was.
 *
 * @module
 */

import type { Codec, RequestId } from "./codec.ts";
import { InvalidConfigError } from "./errors.ts";
import { checkObject, fail, onlyKnown } from "./validate.ts";
import type { BatchRequest, CallOptions, RetryMode } from "./options.ts";
import type { ConnectionInfo, ConnectionState } from "./strategies.ts";

/** Where a call is; see the module doc. */
export const NOWHERE = 0;
export const POOL_QUEUE = 1;
export const CONN_QUEUE = 2;
export const IN_FLIGHT = 3;
export const SETTLED = 4;
/** Held by its connection for this tick's batch frame (`coalesce: "batch"`): not written yet, counted in flight. */
export const HELD = 5;
export type Where = typeof NOWHERE | typeof POOL_QUEUE | typeof CONN_QUEUE | typeof IN_FLIGHT | typeof SETTLED | typeof HELD;

/** How a call comes to be placed: new (`maxQueue` may refuse it) or moved (already accepted). */
export type Placement = "admit" | "move";

/** What a call is: a request (one reply), a notification (no reply) or a batch (one frame, one reply per request). */
export type CallKind = "request" | "notification" | "batch";

/**
 * The connection holding a call, as the call sees it (the pool knows it as
 * a `Connection`; naming that class here would make an import cycle).
 */
export interface Holder {
  readonly id: number;
  readonly state: ConnectionState;
  readonly inFlight: number;
  readonly queued: number;
  /** Bumped on every new socket. */
  readonly generation: number;
  /** Its socket is open and runs the pool's `setup`. */
  readonly settingUp: boolean;
}

/** A `withConnection` session: calls pinned to one connection, for one socket's life. */
export interface Pin {
  readonly conn: Holder;
  /** The connection's socket generation when the session began. */
  readonly generation: number;
  ended: boolean;
  /** The handle of the pool's `setup` step: its calls go on the socket before it takes any other. */
  readonly setup?: boolean;
  /**
   * A subscription's own call (subscribe, unsubscribe): taken while the pool is closing too, so an unsubscribe
   * still goes out before the sockets close; not counted in `stats().calls` (`stats().subscriptions` tells).
   */
  readonly own?: boolean;
}

const EXPECTS_REPLY = 1;
const IDEMPOTENT = 2;
const BATCHABLE = 4;

/** A `pool.batch` call's requests; the ids of its current send and the replies collected so far. */
export interface BatchState {
  readonly requests: readonly BatchRequest[];
  ids: RequestId[];
  results: unknown[];
  remaining: number;
}

export class PendingCall {
  readonly filter: ((connection: ConnectionInfo) => boolean) | undefined;
  readonly key: string | undefined;
  readonly signal: AbortSignal | undefined;
  /** A `pool.batch`: its requests, all in one frame, and their replies as they come in. */
  readonly batch: BatchState | undefined;
  /** {@link EXPECTS_REPLY}, {@link IDEMPOTENT}, {@link BATCHABLE}: one small integer for three booleans (16 bytes less per call). */
  readonly #flags: number;
  where: Where = NOWHERE;
  /** The connection whose queue or in-flight map holds it. */
  conn: Holder | undefined = undefined;
  /** Wire id of the current send (a batch's are in `batch.ids`); a resend gets new ones. */
  id: RequestId | undefined = undefined;
  sentAt = 0;
  /** Its own timer, when every deadline lane is taken by other timeout values (else a lane tracks it). */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /**
   * Deadline on the pool's clock, in whole ms (rounded up): a small integer, stored in the object rather than
   * boxed as a double (bench/profile.mjs memory: 16 bytes less per pending call). A queued call past it is never written.
   */
  deadline = 0;
  inLane = false;
  /** `undefined` for a request: see {@link fail}. */
  readonly reject: ((reason: unknown) => void) | undefined;

  constructor(
    /** Pool-local call number, used in messages. */
    readonly seq: number,
    kind: CallKind,
    readonly method: string,
    /**
     * The params; for a batch, its requests. Let go once written when the call can never be written again
     * (not idempotent): its caller's objects are not kept alive while it waits for the reply.
     */
    public params: unknown,
    /** `signal`, `filter`, `key` and `idempotent` are read here (the caller may reuse the object). */
    options: CallOptions | undefined,
    retry: RetryMode,
    readonly timeoutMs: number,
    /** The connection a `withConnection` session pinned it to. */
    readonly pin: Pin | undefined,
    readonly resolve: (value: unknown) => void,
    reject: (reason: unknown) => void,
  ) {
    this.reject = kind === "request" ? undefined : reject;
    this.batch = kind === "batch" ? { requests: params as readonly BatchRequest[], ids: [], results: [], remaining: 0 } : undefined;
    const idempotent = retry === "always" || (retry === "idempotent" && options?.idempotent === true);
    const batchable = kind === "request" && pin === undefined && options?.batchable !== false;
    this.#flags = (kind !== "notification" ? EXPECTS_REPLY : 0) | (idempotent ? IDEMPOTENT : 0) | (batchable ? BATCHABLE : 0);
    this.filter = options?.filter;
    this.key = options?.key;
    this.signal = options?.signal;
  }

  /** `false` for a notification: written, never answered. */
  get expectsReply(): boolean {
    return (this.#flags & EXPECTS_REPLY) !== 0;
  }
  /** May be re-sent after its socket died (its own flag and the pool's `retry`). */
  get idempotent(): boolean {
    return (this.#flags & IDEMPOTENT) !== 0;
  }
  /** May share a batch frame with other calls (`coalesce: "batch"`): a request, not pinned, not opted out. */
  get batchable(): boolean {
    return (this.#flags & BATCHABLE) !== 0;
  }

  /**
   * Rejects the call. A request's promise has no `reject` kept: it is rejected through `resolve` with a rejected
   * promise (two microtasks later), so the runtime can free the reject function while the call waits
   * (bench/profile.mjs memory: 555 -> 495 bytes per pending call).
   */
  fail(reason: unknown): void {
    if (this.reject !== undefined) this.reject(reason);
    else this.resolve(Promise.reject(reason));
  }
}

/** How messages name a call: `call 12 ("add")`. */
export function label(call: { readonly seq: number; readonly method: string }): string {
  return `call ${call.seq} ("${call.method}")`;
}

/** Throws `InvalidConfigError` if `pool.batch(requests)` cannot be sent, naming the bad entry. */
export function checkBatch(requests: readonly BatchRequest[], codec: Codec): void {
  if (!Array.isArray(requests) || requests.length === 0) fail("requests", "a non-empty list of `{ method, params? }`", requests);
  requests.forEach((r, i) => {
    checkObject(`requests[${i}]`, r);
    onlyKnown(r, ["method", "params"], `requests[${i}].`);
    if (typeof r.method !== "string" || r.method === "") fail(`requests[${i}].method`, "a non-empty string", r.method);
  });
  if (typeof codec.encodeBatch !== "function") throw new InvalidConfigError("codec", "`batch()` needs a codec with `encodeBatch`");
}

/** Where a call is, in words, for messages; `inPoolQueue` says it for the pool's wait queue. */
export function whereText(call: PendingCall, inPoolQueue: () => string): string {
  const c = call.conn;
  if (call.where === POOL_QUEUE) return inPoolQueue();
  if (call.where === HELD) return `held for a batch frame on socket ${c!.id}`;
  if (c === undefined || (call.where !== CONN_QUEUE && call.where !== IN_FLIGHT)) return "not placed";
  const counts = `${c.inFlight} in flight, ${c.queued} queued`;
  return call.where === CONN_QUEUE ? `queued on socket ${c.id} (${c.state}, ${counts})` : `sent on socket ${c.id} (${counts})`;
}
