/**
 * What a reply means for its call: the value to resolve with, or the error to
 * reject with. JSON-RPC 2.0 §5: a response carries `result` or an `error`
 * object (`code`, `message`, `data`); a batch gets one response per request,
 * each settled on its own inside the batch's result.
 *
 * @module
 */

import { label, type PendingCall } from "./call.ts";
import type { Incoming } from "./codec.ts";
import { RemoteError } from "./errors.ts";
import type { BatchResult } from "./session.ts";

/** A call's outcome: `{ ok: true, value }` or `{ ok: false, error }`. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: Error };

/** The outcome of `call` now that `message` (for a batch: its last reply) came in on connection `connectionId`. */
export function outcomeOf(call: PendingCall, message: Incoming, connectionId: number): Outcome {
  if (call.batch !== undefined) {
    const results = (call.results as Incoming[]).map((m): BatchResult =>
      m.kind === "result" ? { status: "fulfilled", value: m.result } : { status: "rejected", reason: remoteError(m, call, connectionId) }
    );
    return { ok: true, value: results };
  }
  return message.kind === "result" ? { ok: true, value: message.result } : { ok: false, error: remoteError(message, call, connectionId) };
}

/** The server's error reply as a `RemoteError` carrying its `code` and `data`. */
export function remoteError(message: Incoming, call: PendingCall, connectionId: number): RemoteError {
  if (message.kind !== "error") return new RemoteError(`socket ${connectionId}: unexpected reply`, undefined, undefined);
  const e = message.error;
  const code = e.code === undefined ? "" : ` ${e.code}`;
  return new RemoteError(`${e.message} (remote error${code}, ${label(call)} on socket ${connectionId})`, e.code, e.data);
}
