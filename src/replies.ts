/**
 * What a reply means for its call: the value to resolve with, or the error to
 * reject with. JSON-RPC 2.0 §5: a response carries `result` or an `error`
 * object (`code`, `message`, `data`); a batch gets one response per request,
 * each settled on its own inside the batch's result, except a single error
 * response with a null id, which says the batch as a whole was refused.
 *
 * @module
 */

import { label, type PendingCall } from "./call.ts";
import type { Incoming, RequestId } from "./codec.ts";
import { ProtocolError, RemoteError } from "./errors.ts";
import type { BatchResult } from "./options.ts";

/** A call's outcome: `{ ok: true, value }` or `{ ok: false, error }`. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: RemoteError | ProtocolError };

/**
 * The outcome of `call` now that `message` came in on connection
 * `connectionId`: its reply, a batch's last reply, or an error with a null
 * id that can only mean this call (the one call in flight on that socket).
 */
export function outcomeOf(call: PendingCall, message: Incoming, connectionId: number): Outcome {
  if (call.batch !== undefined && !(message.kind === "error" && message.id === null)) {
    const results = (call.batch.results as Incoming[]).map((m): BatchResult => {
      const o = single(m, call, connectionId);
      return o.ok ? { status: "fulfilled", value: o.value } : { status: "rejected", reason: o.error };
    });
    return { ok: true, value: results };
  }
  return single(message, call, connectionId);
}

/** The outcome of one reply. */
function single(message: Incoming, call: PendingCall, connectionId: number): Outcome {
  if (message.kind === "result") return { ok: true, value: message.result };
  if (message.kind === "error") return { ok: false, error: remoteError(message.error, call, connectionId) };
  const why = message.kind === "invalid" ? message.reason : "a notification where a reply was expected";
  return { ok: false, error: new ProtocolError(`${label(call)} got an unreadable reply on socket ${connectionId}: ${why}`) };
}

/** The server's error object as a `RemoteError` carrying its `code` and `data`. */
function remoteError(e: { code?: number | string; message: string; data?: unknown }, call: PendingCall, connectionId: number): RemoteError {
  const code = e.code === undefined ? "" : ` ${e.code}`;
  return new RemoteError(`${e.message} (remote error${code}, ${label(call)} on socket ${connectionId})`, e.code, e.data);
}

/** Why a reply or error matched no call (`inFlight` calls were in flight on its socket), for a `ProtocolError` event. */
export function unmatched(message: Incoming & { id: RequestId | null }, inFlight: number): string {
  const why = message.kind === "invalid" ? `: ${message.reason}` : message.kind === "error" ? `: ${message.error.message}` : "";
  return message.id === null
    ? `no call to match (${inFlight} in flight) for a message without id${why}`
    : `reply for unknown or already settled id ${JSON.stringify(message.id)}${why}`;
}
