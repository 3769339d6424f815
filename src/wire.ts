/**
 * What a call becomes on the wire, and what a frame becomes on the way in:
 * the codec's encode and decode with the checks around them. Pure: no
 * sockets, no timers.
 *
 * @module
 */

import { label, type PendingCall } from "./call.ts";
import type { Codec, FrameData, Incoming, OutgoingRequest, RequestId } from "./codec.ts";
import { messageOf, MuxPoolError, ProtocolError } from "./errors.ts";

/**
 * The frame for `call`, with fresh request ids from `nextId` (a re-sent call
 * gets new ones, so a late reply to the old send matches nothing). A batch
 * gets one id per request. Throws what the codec or `nextId` throws.
 */
export function encodeCall(call: PendingCall, codec: Codec, nextId: () => RequestId): FrameData {
  const batch = call.batch;
  if (batch !== undefined) {
    const requests: OutgoingRequest[] = batch.requests.map((r) => ({ id: nextId(), method: r.method, params: r.params }));
    const frame = codec.encodeBatch!(requests);
    batch.ids = requests.map((r) => r.id);
    batch.results = new Array(requests.length);
    batch.remaining = requests.length;
    return frame;
  }
  if (!call.expectsReply) return codec.encodeNotification(call.method, call.params);
  const id = nextId();
  const frame = codec.encodeRequest({ id, method: call.method, params: call.params });
  call.id = id;
  return frame;
}

/**
 * The messages of an inbound frame. Throws `ProtocolError` when the frame is
 * larger than `maxMessageSize` (bytes, or UTF-16 units for text) or the codec
 * cannot decode it; the caller reports it and reads on.
 */
export function decodeFrame(data: FrameData, codec: Codec, maxMessageSize: number): Incoming | readonly Incoming[] {
  const size = typeof data === "string" ? data.length : data.byteLength;
  if (size > maxMessageSize) throw new ProtocolError(`dropped a ${size}-byte frame, over maxMessageSize (${maxMessageSize})`);
  try {
    return codec.decode(data);
  } catch (error) {
    throw new ProtocolError(`could not decode a frame: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}

/**
 * The size in bytes of `frame` if it is over `limit`, else 0. A string is
 * measured in UTF-8 only when its length could be over (a UTF-8 string has
 * at least one and at most three bytes per UTF-16 unit).
 */
export function sizeOver(frame: FrameData, limit: number): number {
  if (typeof frame !== "string") return frame.byteLength > limit ? frame.byteLength : 0;
  if (frame.length * 3 <= limit) return 0;
  const bytes = new TextEncoder().encode(frame).length;
  return bytes > limit ? bytes : 0;
}

/**
 * The frame for `call` (see {@link encodeCall}), or the error to fail it with:
 * what the codec or `nextId` threw (a `ProtocolError` naming `where` unless
 * it is a `MuxPoolError`), or a `ProtocolError` when the frame is over
 * `limit` bytes (`maxRequestSize`).
 */
export function frameFor(call: PendingCall, codec: Codec, nextId: () => RequestId, limit: number, where = ""): FrameData | MuxPoolError {
  try {
    const frame = encodeCall(call, codec, nextId);
    const size = limit === Infinity ? 0 : sizeOver(frame, limit);
    return size > 0 ? new ProtocolError(`${label(call)} not sent: its frame is ${size} bytes, over maxRequestSize (${limit})`) : frame;
  } catch (error) {
    return error instanceof MuxPoolError
      ? error
      : new ProtocolError(`${label(call)} could not be encoded${where}: ${messageOf(error)}`, { cause: error });
  }
}

/** The error to refuse `call` with if its frame is over `limit` bytes (`maxRequestSize`), else `undefined`. */
export function oversize(call: PendingCall, codec: Codec, nextId: () => RequestId, limit: number): MuxPoolError | undefined {
  const frame = frameFor(call, codec, nextId, limit);
  return frame instanceof MuxPoolError ? frame : undefined;
}
