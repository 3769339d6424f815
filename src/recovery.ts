/**
 * What happens when a socket is lost: the recovery policy, as data and pure
 * functions. Given the lost socket (its close code and reason, whether it had
 * opened, whether it was on its way out anyway, its failed attempts), its
 * calls in flight and queued, and the pool's options, {@link planRecovery}
 * returns the plan: which calls move, which are re-sent, which fail and with
 * which error, and whether the connection reconnects (after which delay) or
 * is dropped. The pool only applies the plan.
 *
 * The rules for calls are the library's promise (SPEC §3):
 * - a call that was never written moves to another socket, keeping its deadline;
 * - a call that was written may have run: it is re-sent only when idempotent,
 *   otherwise it fails with `ConnectionLostError` (`maybeExecuted: true`);
 * - a call pinned by `withConnection` never changes socket: it fails with its
 *   socket, `maybeExecuted` saying whether it had been written.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import { label } from "./call.ts";
import { ConnectionLostError, type MuxPoolError } from "./errors.ts";
import type { ReconnectOptions } from "./options.ts";

/** A socket that is gone: closed by either side, failed to open, or declared dead. */
export interface LostSocket {
  /** Id of the connection, for messages. */
  readonly id: number;
  /** The close code (RFC 6455 §7.4; 1006 when no close frame came). */
  readonly code: number;
  readonly reason: string;
  /** It had opened (a lost connection), rather than failed to connect. */
  readonly wasOpen: boolean;
  /** It was on its way out anyway (past its TTL, or draining): it is not brought back. */
  readonly retiring: boolean;
  /** Failed attempts in a row before this loss. */
  readonly attempt: number;
  /** Ms the socket stayed open; `undefined` if it never opened. */
  readonly uptime: number | undefined;
}

/** What the policy reads of a call. */
export interface CallFacts {
  readonly seq: number;
  readonly method: string;
  readonly idempotent: boolean;
  /** Pinned to this connection by a `withConnection` session. */
  readonly pin: unknown;
}

/** The options the policy depends on. */
export interface RecoveryOptions {
  readonly reconnect: Required<ReconnectOptions> | false;
  readonly revive: boolean;
}

/** What to do with a lost socket and its calls. */
export interface RecoveryPlan<T> {
  /** Reconnect after `delay` ms (`false`: drop the connection from the pool). */
  readonly reconnect: boolean;
  readonly delay: number;
  /** Failed attempts in a row, this loss included (reset first if the socket had stayed up for `resetAfter`). */
  readonly attempt: number;
  /** Written, idempotent: sent again elsewhere (or here, once reconnected), oldest first. */
  readonly resend: T[];
  /** Never written: placed again, deadline kept. */
  readonly move: T[];
  /** Settled now, with the error each rejects with. */
  readonly fail: [T, MuxPoolError][];
  /**
   * While this connection will reconnect, calls that have no open socket to
   * go to wait for it rather than bounce between sockets that are all down.
   */
  readonly keepOnSocket: boolean;
}

/** The plan for `loss` and its calls (see the module doc). `random` is for tests. */
export function planRecovery<T extends CallFacts>(
  loss: LostSocket,
  inFlight: readonly T[],
  queued: readonly T[],
  options: RecoveryOptions,
  random: () => number = Math.random,
): RecoveryPlan<T> {
  const r = options.reconnect;
  let attempt = loss.attempt;
  let reconnect = false;
  if (!loss.retiring) {
    // A socket that stayed up long enough starts a fresh series: a server
    // that accepts and closes at once keeps backing off instead.
    if (loss.wasOpen && loss.uptime !== undefined && r !== false && loss.uptime >= r.resetAfter) attempt = 0;
    attempt++;
    reconnect = r !== false && attempt <= r.maxAttempts && (!loss.wasOpen || options.revive);
  }
  const plan: RecoveryPlan<T> = {
    reconnect,
    delay: reconnect && r !== false ? backoffDelay(attempt, r, random) : 0,
    attempt,
    resend: [],
    move: [],
    fail: [],
    keepOnSocket: reconnect,
  };
  // Sent calls first: they are the oldest.
  for (const call of inFlight) {
    if (call.pin === undefined && call.idempotent) plan.resend.push(call);
    else plan.fail.push([call, lostAfterWrite(call, loss, call.pin === undefined ? "not idempotent" : "pinned to that socket")]);
  }
  for (const call of queued) {
    if (call.pin === undefined) plan.move.push(call);
    else plan.fail.push([call, pinnedLost(call, loss.id)]);
  }
  return plan;
}

/** A written call whose socket closed before the reply: it may have run. */
function lostAfterWrite(call: CallFacts, loss: LostSocket, why: string): ConnectionLostError {
  return new ConnectionLostError(
    `${label(call)} was sent but socket ${loss.id} closed (code ${loss.code}: ${loss.reason}) before the reply; not re-sent: it is ${why}`,
    true,
  );
}

/** A pinned call cannot move: its socket is gone, and it was not sent. */
export function pinnedLost(call: CallFacts, connectionId: number): ConnectionLostError {
  return new ConnectionLostError(`${label(call)} not sent: its pinned socket ${connectionId} was lost`, false);
}
