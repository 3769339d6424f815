/**
 * The contract between a connection and the pool: what a connection reports
 * (a reply, a lost socket, room in its window, …) and what it asks (options,
 * request ids, the clock). The pool implements it (pool.ts for calls,
 * connections.ts for a connection's lifecycle); connection.ts only calls it.
 *
 * @module
 */

import type { PendingCall } from "./call.ts";
import type { Incoming, RequestId } from "./codec.ts";
import type { ResolvedOptions } from "./options.ts";
import type { MuxPoolError } from "./errors.ts";
import type { LostSocket } from "./recovery.ts";
import type { WebSocketConstructor } from "./socket.ts";

/** Pool-wide counts of calls that every connection keeps up to date. */
export interface CallCounts {
  inFlight: number;
  queued: number;
}

/** What a connection (`C`) tells the pool, and asks of it. */
export interface ConnectionHost<C> {
  readonly options: ResolvedOptions;
  readonly counts: CallCounts;
  readonly WebSocket: WebSocketConstructor;
  nextId(): RequestId;
  now(): number;
  onOpen(conn: C): void;
  /** The socket opened and the pool has a `setup`: run it; the connection opens when it resolves, fails to when it rejects. */
  onSetup(conn: C): Promise<void>;
  onReply(conn: C, call: PendingCall, message: Incoming): void;
  /** A reply to a call could not be read (the call carries the `ProtocolError`; counted, no event). */
  countProtocolError(): void;
  onNotification(conn: C, method: string, params: unknown): void;
  /**
   * Something went wrong on the socket that no call owns: a `ProtocolError`
   * (bad frame, unknown id), or a plain `Error` when a connect attempt could
   * not even start (url function failed, constructor threw).
   */
  onError(conn: C, error: Error): void;
  /**
   * The call cannot be sent anywhere: the codec could not encode it, its
   * frame is over `maxRequestSize`, or its request id is in flight already.
   * It is out of every queue already.
   */
  onEncodeError(call: PendingCall, error: MuxPoolError): void;
  /**
   * The call reached the socket but was not written: its signal was aborted
   * (it fails with the signal's reason), or the socket's close has begun
   * (a runtime discards what is sent then: the pool places it again), or the
   * server refused the batch frame it was in and ran none of it (placed again).
   */
  onNotWritten(conn: C, call: PendingCall, why: "aborted" | "closing" | "refused"): void;
  /** The socket's close has begun (either side): it takes no writes; the calls waiting on it must move. */
  onClosing(conn: C): void;
  /** A notification (no reply expected) was written. */
  onWrittenNoReply(call: PendingCall): void;
  /** The socket is gone: closed by either side, failed to open, or declared dead. */
  onLost(conn: C, loss: LostSocket): void;
  /** The window has room and the queue is empty: the pool may hand over waiting calls. */
  onRoom(conn: C): void;
  /** The TTL passed: the connection takes no new calls; the pool replaces or drops it. */
  onExpire(conn: C): void;
  /** Time to start draining: an expired connection's replacement opened, or did not in time. */
  onDrainDue(conn: C): void;
  /** A draining connection has nothing left in flight or queued. */
  onDrained(conn: C): void;
  /** A queued call's deadline passed before it could be written; it is out of the queue already. */
  onExpired(call: PendingCall, conn: C): void;
}
