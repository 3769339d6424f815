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
 * What the close code does is {@link CLOSE_CODES}: a close that says the
 * peer refused what it was sent is never answered by sending the same frames
 * again, and `reconnect.shouldRetry` lets an app stop on codes of its own.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import { label } from "./call.ts";
import { ConnectionLostError, InvalidConfigError, type MuxPoolError } from "./errors.ts";
import type { ResolvedReconnect } from "./options.ts";

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
  /** What failed, when a connect attempt did (the runtime's error, the `url` function's). */
  readonly cause?: unknown;
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
  readonly reconnect: ResolvedReconnect | false;
  readonly revive: boolean;
}

/**
 * What a close code (RFC 6455 §7.4.1 and the IANA registry) does to the
 * calls in flight and to reconnecting:
 *
 * - `refused`: the peer closed because of what it was sent. Calls in flight
 *   are not re-sent, idempotent or not: re-sending the same frames would
 *   only cost the next socket too. They reject with `ConnectionLostError`
 *   carrying the code. The connection reconnects (the next calls may be fine).
 * - `later`: the peer asks to come back later: the reconnect waits the full
 *   `maxDelay` instead of a short backoff.
 * - anything else (`lost`): the usual rules; idempotent calls are re-sent.
 *
 * | code | name | kind |
 * |---|---|---|
 * | 1000 | normal closure | lost |
 * | 1001 | going away (server shutting down, page leaving) | lost |
 * | 1002 | protocol error | refused |
 * | 1003 | unsupported data | refused |
 * | 1005 | no status received | lost |
 * | 1006 | abnormal closure (no close frame: cut, refused, timed out) | lost |
 * | 1007 | invalid frame payload data | refused |
 * | 1008 | policy violation | refused |
 * | 1009 | message too big | refused |
 * | 1010 | mandatory extension | lost |
 * | 1011 | internal error | lost |
 * | 1012 | service restart | lost |
 * | 1013 | try again later | later |
 * | 1014 | bad gateway | lost |
 * | 4000 | given up by muxpool (heartbeat, connect timeout, drain timeout) | lost |
 * | 4000–4999 | the application's own | lost, unless `shouldRetry` says stop |
 *
 * With `reconnect.shouldRetry(close)` returning `false`, the connection is
 * dropped whatever the code (its calls as for the kind above).
 */
export const CLOSE_CODES: Readonly<Record<number, "refused" | "later">> = {
  1002: "refused",
  1003: "refused",
  1007: "refused",
  1008: "refused",
  1009: "refused",
  1013: "later",
};

/** What to do with a lost socket and its calls. */
export interface RecoveryPlan<T> {
  /** Reconnect after `delay` ms (`false`: drop the connection from the pool). */
  readonly reconnect: boolean;
  readonly delay: number;
  /** Failed attempts in a row, this loss included (reset first if the socket had stayed up for `resetAfter`). */
  readonly attempt: number;
  /** Why the connection is dropped rather than reconnected, when `shouldRetry` said so. */
  readonly stopped: string | undefined;
  /** `shouldRetry` threw: reported as an `error` event; the plan is as if it were not set. */
  readonly hookError: InvalidConfigError | undefined;
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
  const kind = CLOSE_CODES[loss.code];
  let attempt = loss.attempt;
  let reconnect = false;
  let stopped: string | undefined;
  let hookError: InvalidConfigError | undefined;
  if (!loss.retiring) {
    // A socket that stayed up long enough starts a fresh series: a server
    // that accepts and closes at once keeps backing off instead.
    if (loss.wasOpen && loss.uptime !== undefined && r !== false && loss.uptime >= r.resetAfter) attempt = 0;
    attempt++;
    reconnect = r !== false && attempt <= r.maxAttempts && (!loss.wasOpen || options.revive);
    if (reconnect && r !== false && r.shouldRetry !== undefined) {
      let retry = true;
      try {
        retry = r.shouldRetry({ code: loss.code, reason: loss.reason }) === true;
      } catch (error) {
        // The app's hook failed: the pool must not (its calls were taken off the socket already). It decides alone.
        const why = `reconnect.shouldRetry threw on close ${loss.code}; the socket reconnects as without it`;
        hookError = new InvalidConfigError("reconnect.shouldRetry", why, { cause: error });
      }
      if (!retry) {
        reconnect = false;
        stopped = `reconnect.shouldRetry declined (code ${loss.code}: ${loss.reason})`;
      }
    }
  }
  const plan: RecoveryPlan<T> = {
    reconnect,
    delay: !reconnect || r === false ? 0 : kind === "later" ? r.maxDelay : backoffDelay(attempt, r, random),
    attempt,
    stopped,
    hookError,
    resend: [],
    move: [],
    fail: [],
    keepOnSocket: reconnect,
  };
  // Sent calls first: they are the oldest.
  for (const call of inFlight) {
    if (call.pin === undefined && call.idempotent && kind !== "refused") plan.resend.push(call);
    else {
      const why = call.pin !== undefined
        ? "it is pinned to that socket"
        : kind === "refused"
        ? "the peer refused what it was sent"
        : "it is not idempotent";
      plan.fail.push([call, lostAfterWrite(call, loss, why)]);
    }
  }
  for (const call of queued) {
    if (call.pin === undefined) plan.move.push(call);
    else plan.fail.push([call, pinnedLost(call, loss.id)]);
  }
  return plan;
}

/** A written call whose socket closed before the reply: it may have run. */
function lostAfterWrite(call: CallFacts, loss: LostSocket, why: string): ConnectionLostError {
  const { code, reason } = loss;
  const message = `${label(call)} was sent but socket ${loss.id} closed (code ${code}: ${reason}) before the reply; not re-sent: ${why}`;
  return new ConnectionLostError(message, { maybeExecuted: true, code, reason });
}

/** A pinned call cannot move: its socket is gone, and it was not sent. */
export function pinnedLost(call: CallFacts, connectionId: number): ConnectionLostError {
  return new ConnectionLostError(`${label(call)} not sent: its pinned socket ${connectionId} was lost`, { maybeExecuted: false });
}
