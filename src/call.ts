/**
 * One call on its way through the pool. Until it settles it is in exactly
 * one place, recorded in `where`: the pool's wait queue, one socket's queue,
 * or one socket's in-flight map.
 *
 * @module
 */

import type { RequestId } from "./codec.ts";
import type { CallOptions } from "./options.ts";
import type { ConnectionInfo } from "./strategies.ts";

/** Where a call is; see the module doc. */
export const NOWHERE = 0;
export const POOL_QUEUE = 1;
export const CONN_QUEUE = 2;
export const IN_FLIGHT = 3;
export const SETTLED = 4;
export type Where = typeof NOWHERE | typeof POOL_QUEUE | typeof CONN_QUEUE | typeof IN_FLIGHT | typeof SETTLED;

/** One request of a `pool.batch`. */
export interface BatchRequest {
  method: string;
  params?: unknown;
}

/** A `withConnection` session: calls pinned to one socket, one socket life. */
export interface Pin {
  /** The socket's connection generation when the session began. */
  readonly generation: number;
  ended: boolean;
}

export class PendingCall {
  readonly filter: ((connection: ConnectionInfo) => boolean) | undefined;
  readonly key: string | undefined;
  readonly signal: AbortSignal | undefined;
  where: Where = NOWHERE;
  /** The socket whose queue or in-flight map holds it. */
  conn: ConnectionLike | undefined = undefined;
  /** Wire id(s) of the current send; a resend gets new ones. */
  id: RequestId | undefined = undefined;
  ids: RequestId[] | undefined = undefined;
  /** Batch replies collected so far. */
  results: unknown[] | undefined = undefined;
  remaining = 0;
  sentAt = 0;
  /** Its own timer, when every deadline lane is taken by other timeout values (else a lane tracks it). */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Deadline on the pool's clock; a queued call past it is never written. */
  deadline = Number.POSITIVE_INFINITY;
  inLane = false;

  constructor(
    /** Pool-local call number, used in messages. */
    readonly seq: number,
    readonly method: string,
    readonly params: unknown,
    /** A `batch`: its requests, all in one frame. */
    readonly batch: readonly BatchRequest[] | undefined,
    /** `false` for `notify`: written, never answered. */
    readonly expectsReply: boolean,
    /** May be re-sent after its socket died (its own flag and the pool's `retry`). */
    readonly idempotent: boolean,
    /** `signal`, `filter` and `key` are copied from here (the caller may reuse the object). */
    options: CallOptions | undefined,
    readonly timeoutMs: number,
    /** The socket a `withConnection` session pinned it to. */
    readonly pin: Pin | undefined,
    readonly resolve: (value: unknown) => void,
    readonly reject: (reason: unknown) => void,
  ) {
    this.filter = options?.filter;
    this.key = options?.key;
    this.signal = options?.signal;
  }
}

/** The part of a connection a call needs to name (avoids an import cycle). */
export interface ConnectionLike {
  readonly id: number;
}
