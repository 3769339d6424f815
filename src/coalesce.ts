/**
 * Protocol-level coalescing (`coalesce: "batch"`): the batchable calls one
 * connection is given in one tick are held, then written together as batch
 * frames through the codec's `encodeBatch`. Each call keeps its own request
 * id in the connection's in-flight map, so each settles, times out, is
 * aborted or is judged after a lost socket on its own, as if written alone.
 * A held call has not been written: it moves like a queued one when its
 * socket dies, and it is never written once it has settled.
 *
 * @module
 */

import { HELD, type Holder, IN_FLIGHT, NOWHERE, type PendingCall } from "./call.ts";
import type { FrameData, Incoming, OutgoingRequest } from "./codec.ts";
import { ProtocolError } from "./errors.ts";
import type { ConnectionHost } from "./host.ts";
import type { InFlight } from "./inflight.ts";
import { OPEN, type WebSocketLike } from "./socket.ts";
import { sizeOver } from "./wire.ts";
import { afterTick } from "./websocket.ts";

/** What the coalescer uses of its connection. */
export interface CoalesceIo {
  /** The socket, if it takes writes (`undefined` once its close has begun). */
  socket(): WebSocketLike | undefined;
  /** Writes one call alone, with every check of a single write. */
  writeNow(call: PendingCall): void;
  send(frame: FrameData): void;
}

/** Batch frames remembered per connection while they wait, for {@link Coalescer.refused}. */
const FRAMES = 64;

export class Coalescer<C extends Holder> {
  #held: PendingCall[] = [];
  /** Held calls that have not left (timeout, abort, moved). */
  live = 0;
  readonly #conn: C;
  readonly #host: ConnectionHost<C>;
  readonly #awaiting: InFlight;
  readonly #io: CoalesceIo;
  readonly #flush = (): void => this.flush();
  /** Batch frames written, newest last, while none of their replies came in (at most {@link FRAMES}). */
  #frames: PendingCall[][] = [];
  /** The server refused a batch frame: this connection writes every call alone from now on. */
  #off = false;

  constructor(conn: C, host: ConnectionHost<C>, awaiting: InFlight, io: CoalesceIo) {
    this.#conn = conn;
    this.#host = host;
    this.#awaiting = awaiting;
    this.#io = io;
  }

  /** Holds `call` for this tick's frames; it counts in flight from now on. */
  hold(call: PendingCall): void {
    if (this.#off) return this.#io.writeNow(call);
    call.where = HELD;
    call.conn = this.#conn;
    this.#host.counts.inFlight++;
    this.live++;
    if (this.#held.push(call) === 1) afterTick(this.#flush);
  }

  /** Removes and returns the live held calls, oldest first, out of the in-flight count and still marked held. */
  take(): PendingCall[] {
    const out = this.calls();
    this.#held = [];
    this.live = 0;
    this.#host.counts.inFlight -= out.length;
    return out;
  }

  /** The live held calls, left in place. */
  calls(): PendingCall[] {
    return this.#held.filter((c) => c.where === HELD && c.conn === this.#conn);
  }

  /** Writes the held calls as frames of up to `maxCalls`; one past its deadline meanwhile is never written. */
  flush(): void {
    const host = this.#host;
    const calls = this.take();
    const max = host.options.coalesce === false ? 1 : host.options.coalesce.maxCalls;
    const now = host.now();
    let group: PendingCall[] = [];
    for (const call of calls) {
      call.where = NOWHERE;
      call.conn = undefined;
      if (call.deadline < now + 1) host.onExpired(call, this.#conn); // as a queued one (Connection.pump)
      else if (group.push(call) === max) {
        this.#write(group);
        group = [];
      }
    }
    if (group.length > 0) this.#write(group);
  }

  /**
   * Writes `calls` as one batch frame. One call, a socket not open, an aborted
   * signal, or a codec or id generator that throws: each is written alone
   * (and fails alone). A frame over `maxBytes` or `maxRequestSize` is split.
   */
  #write(calls: PendingCall[]): void {
    const host = this.#host;
    const { codec, maxRequestSize, coalesce } = host.options;
    const alone = (): void => calls.forEach((c) => this.#io.writeNow(c));
    if (calls.length < 2 || this.#io.socket()?.readyState !== OPEN) return alone();
    const requests: OutgoingRequest[] = [];
    let size = -1;
    let frame: FrameData | undefined;
    try {
      for (const call of calls) {
        if (call.signal?.aborted) break;
        call.id = host.nextId();
        if (this.#awaiting.clash(call) !== undefined) break;
        this.#awaiting.add(call);
        requests.push({ id: call.id, method: call.method, params: call.params });
      }
      frame = requests.length === calls.length ? codec.encodeBatch!(requests) : undefined;
      if (frame !== undefined) size = sizeOver(frame, Math.min(coalesce === false ? Infinity : coalesce.maxBytes, maxRequestSize));
    } catch {
      // Written one by one below: each meets its own error.
    }
    if (size !== 0) {
      for (let i = 0; i < requests.length; i++) this.#awaiting.forget(calls[i]!);
      if (size < 0) return alone();
      const half = calls.length >> 1;
      this.#write(calls.slice(0, half));
      return this.#write(calls.slice(half));
    }
    const now = host.now();
    for (const call of calls) {
      call.where = IN_FLIGHT;
      call.conn = this.#conn;
      call.sentAt = now;
      if (!call.idempotent) call.params = undefined; // as in Connection.write: a refused frame re-sends only idempotent calls
    }
    host.counts.inFlight += calls.length;
    // Looked through only when a refusal comes (rare): here the list is just capped. A frame shifted out while it still
    // waits keeps its calls in flight, so refused() is never sure then (it also counts what is in flight).
    if (this.#frames.push(calls) > FRAMES) this.#frames.shift();
    this.#io.send(frame!);
  }

  /**
   * A frame of one error without id came in (JSON-RPC 2.0 §6: a server answers a batch it cannot take, e.g. one
   * that does not support batches, with one error, and runs none of it; an entry it cannot read gets its null-id
   * error inside the reply array instead, not here). If the one batch frame written here with no reply yet is
   * all this socket has in flight, it was that one: as for `pool.batch()`, each call in it rejects with that
   * `RemoteError`, except the idempotent ones, which are sent again alone; and this socket batches no more (a
   * `ProtocolError` event says so). Anything less sure (several frames waiting, other calls in flight, a server
   * that answers null ids for its own reasons) re-sends nothing, as a call must never run twice: batching
   * stops, and the calls wait for their replies or deadline. Returns `false` when no batch frame is waiting.
   */
  refused(message: Incoming & { kind: "error" }): boolean {
    const conn = this.#conn;
    // The frames that still wait as a whole: none of their calls was answered or left.
    const waiting = this.#frames.filter((f) => f.every((c) => c.where === IN_FLIGHT && c.conn === conn));
    if (waiting.length === 0) return false;
    this.#off = true;
    const calls = waiting.length === 1 && this.#awaiting.count === waiting[0]!.length ? waiting[0]! : [];
    this.#frames = [];
    for (const call of calls) this.#awaiting.forget(call);
    const host = this.#host;
    host.counts.inFlight -= calls.length;
    const what = calls.length > 0 ? `its ${calls.length} calls fail with it, idempotent ones are sent again` : "nothing is sent again";
    host.onError(
      conn,
      new ProtocolError(`the server refused a batch frame (${message.error.message}): ${what}; no more batches here`),
    );
    for (const call of calls) {
      if (!call.idempotent) host.onReply(conn, call, message);
      else {
        call.where = NOWHERE;
        call.conn = undefined;
        host.onNotWritten(conn, call, "refused");
      }
    }
    return true;
  }
}
