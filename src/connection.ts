/**
 * One socket slot of the pool: its WebSocket (replaced on every reconnect),
 * its lifecycle state, its queue and in-flight map, its heartbeat. Routing,
 * retries and re-routing are the pool's decisions; a connection reports what
 * happens on its socket through {@link ConnectionHost}.
 *
 * @module
 */

import { CONN_QUEUE, IN_FLIGHT, NOWHERE, type PendingCall } from "./call.ts";
import type { FrameData, Incoming, OutgoingRequest, RequestId } from "./codec.ts";
import { messageOf, ProtocolError } from "./errors.ts";
import type { ResolvedOptions, WebSocketConstructor, WebSocketLike } from "./options.ts";
import { CallQueue } from "./queue.ts";
import { type ConnectionSnapshot, LatencyWindow } from "./stats.ts";
import type { ConnectionInfo, ConnectionState } from "./strategies.ts";
import { redactUrl } from "./url.ts";

/** Pool-wide counters a connection keeps up to date. */
export interface Counters {
  inFlight: number;
  queued: number;
}

/** What a connection tells the pool, and asks of it. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly counters: Counters;
  readonly WebSocket: WebSocketConstructor;
  nextId(): RequestId;
  now(): number;
  onOpen(conn: Connection): void;
  onSettleReply(conn: Connection, call: PendingCall, message: Incoming): void;
  onNotification(conn: Connection, method: string, params: unknown): void;
  /**
   * Something went wrong on the socket that no call owns: a `ProtocolError`
   * (bad frame, unknown id), or a plain `Error` when a connect attempt could
   * not even start (url function failed, constructor threw).
   */
  onError(conn: Connection, error: Error): void;
  /** Encoding failed: the call cannot be sent anywhere. */
  onEncodeError(conn: Connection, call: PendingCall, error: unknown): void;
  /** A notification (no reply expected) was written. */
  onWrittenNoReply(call: PendingCall): void;
  /** The socket is gone: closed, errored, failed to open, or declared dead. */
  onLost(conn: Connection, code: number, reason: string, wasOpen: boolean): void;
  /** The window has room and the queue is empty: the pool may hand over waiting calls. */
  onRoom(conn: Connection): void;
  /** A draining socket has nothing left in flight. */
  onDrained(conn: Connection): void;
  /** A queued call's deadline passed before it could be written; it is out of the queue already. */
  onExpired(call: PendingCall, conn: Connection): void;
}

/** Close code used when the client gives up on a socket (heartbeat, connect timeout). */
export const CODE_ABANDONED = 4000;

export class Connection implements ConnectionInfo {
  readonly id: number;
  /** Slot index: what `url(index)` receives; a replacement keeps it. */
  readonly index: number;
  readonly tags: Readonly<Record<string, string>>;
  url: string;
  state: ConnectionState = "connecting";
  /** Bumped on every new socket; a `withConnection` session is bound to one. */
  generation = 0;
  socket: WebSocketLike | undefined = undefined;
  /** Calls waiting for this socket; entries whose call left (timeout, abort, moved) point elsewhere. */
  readonly queue: CallQueue<PendingCall> = new CallQueue((c) => c.where === CONN_QUEUE && c.conn === this);
  /** Calls (frames) in flight; a batch counts once. */
  inFlight = 0;
  readonly inflight = new Map<RequestId, PendingCall>();
  sent = 0;
  received = 0;
  openedAt = 0;
  /** Failed connect attempts in a row. */
  attempt = 0;
  /** Waiting out a backoff delay before the next connect attempt. */
  inBackoff = false;
  exclusive = false;
  /** TTL of this socket after jitter; 0 = none. */
  ttl = 0;
  /** Set when the TTL passed: the socket is on its way out. */
  expired = false;
  /** Set when the pool dropped it for good. */
  removed = false;
  replacement: Connection | undefined = undefined;
  /** Timers the pool sets on this socket: TTL, drain, reconnect backoff. */
  ttlTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  drainTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  backoffTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  readonly latency: LatencyWindow;

  readonly #host: ConnectionHost;
  readonly #resolveUrl: (index: number) => string | Promise<string>;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #lastInbound = 0;
  #pingId: RequestId | undefined;
  /** Earlier pings still unanswered: a slow reply to one of them is not an unknown id. */
  #oldPings: RequestId[] = [];
  #pingSentAt = 0;
  /** Re-pumps the queue while the socket holds more than `maxBuffered` unsent bytes (no runtime has a "drain" event). */
  #drainPoll: ReturnType<typeof setTimeout> | undefined;
  /** What the runtime said in the socket's last error event, if anything. */
  #socketError = "";

  constructor(
    host: ConnectionHost,
    id: number,
    index: number,
    resolveUrl: (index: number) => string | Promise<string>,
    tags: Readonly<Record<string, string>>,
    initialUrl: string,
  ) {
    this.#host = host;
    this.id = id;
    this.index = index;
    this.#resolveUrl = resolveUrl;
    this.tags = tags;
    this.url = redactUrl(initialUrl);
    this.latency = new LatencyWindow(Math.min(256, host.options.latencyWindow));
  }

  /** Opens a new socket. Failures are reported through `onLost(…, wasOpen = false)`. */
  connect(): void {
    this.state = "connecting";
    this.inBackoff = false;
    const generation = ++this.generation;
    const { connectTimeout } = this.#host.options;
    this.#connectTimer = setTimeout(() => this.#giveUp(CODE_ABANDONED, `no open within connectTimeout (${connectTimeout} ms)`, false), connectTimeout);
    let url: string | Promise<string>;
    try {
      url = this.#resolveUrl(this.index);
    } catch (error) {
      this.#urlFailed(error);
      return;
    }
    if (typeof url === "string") this.#open(url);
    else {
      url.then(
        (u) => {
          // Also stale once this attempt gave up (connectTimeout): the slot is backing off.
          if (this.generation === generation && this.state === "connecting" && !this.inBackoff && this.socket === undefined) this.#open(u);
        },
        (error: unknown) => {
          if (this.generation === generation && this.state === "connecting" && !this.inBackoff) this.#urlFailed(error);
        },
      );
    }
  }

  #urlFailed(error: unknown): void {
    this.#report("the url function failed", error, Error);
    this.#giveUp(CODE_ABANDONED, "url function failed", false);
  }

  /** Reports `socket 3: <text>[: <cause's message>]` as a `Kind` error to the pool. */
  #report(text: string, cause?: unknown, Kind: new (message: string, options?: { cause?: unknown }) => Error = ProtocolError): void {
    const message = `socket ${this.id}: ${text}${cause === undefined ? "" : `: ${messageOf(cause)}`}`;
    this.#host.onError(this, new Kind(message, cause === undefined ? undefined : { cause }));
  }

  #open(url: string): void {
    this.url = redactUrl(url);
    let socket: WebSocketLike;
    try {
      socket = new this.#host.WebSocket(url, this.#host.options.protocols);
    } catch (error) {
      this.#report(`cannot open ${this.url}`, error, Error);
      this.#giveUp(CODE_ABANDONED, "WebSocket constructor threw", false);
      return;
    }
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => this.#onOpen();
    socket.onmessage = (event: { data: unknown }) => this.#onMessage(event.data as FrameData);
    socket.onclose = (event: { code: number; reason: string }) => this.#onClose(event.code, event.reason);
    // An error is always followed by a close event; the close decides.
    this.#socketError = "";
    // Node's ws and Deno say why a socket failed ("Unexpected server response:
    // 401", "connect ECONNREFUSED …"); browsers do not. Kept for the close reason.
    socket.onerror = (event: { message?: unknown } | null) => {
      if (typeof event?.message === "string" && event.message !== "") this.#socketError = event.message;
    };
  }

  #onOpen(): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.state = "open";
    this.openedAt = this.#host.now();
    this.#lastInbound = this.openedAt;
    this.#checkLife(); // nothing heard yet: arms the first heartbeat check
    this.#host.onOpen(this);
    this.pump();
  }

  #onClose(code: number, reason: string): void {
    const wasOpen = this.state === "open" || this.state === "draining";
    this.#detach();
    const detail = this.#socketError === "" ? "" : `: ${this.#socketError}`;
    this.#host.onLost(this, code, reason || (wasOpen ? "closed by peer" : "could not connect") + detail, wasOpen);
  }

  /** Declares the socket dead now, without waiting for a close handshake. */
  #giveUp(code: number, reason: string, wasOpen: boolean): void {
    const socket = this.#detach();
    if (socket !== undefined) abandon(socket, code, reason);
    this.#host.onLost(this, code, reason, wasOpen);
  }

  /** Stops listening to the current socket; returns it. */
  #detach(): WebSocketLike | undefined {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#drainPoll);
    this.#connectTimer = undefined;
    this.#heartbeatTimer = undefined;
    this.#drainPoll = undefined;
    this.#pingId = undefined;
    this.#oldPings = [];
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      // Keep a no-op error handler: `ws` throws an unhandled 'error' otherwise.
      socket.onerror = () => {};
    }
    return socket;
  }

  /** Drops the socket as dead (heartbeat, drain timeout, pool decision). */
  kill(reason: string): void {
    if (this.socket === undefined && this.state !== "connecting") return;
    this.#giveUp(CODE_ABANDONED, reason, this.state === "open" || this.state === "draining");
  }

  /**
   * Closes the socket with `code` and stops all timers. Resolves when the
   * close handshake finished, or after `graceMs` (then the socket is dropped).
   * Reports nothing to the pool: the caller owns the outcome.
   */
  close(code: number, reason: string, graceMs: number): Promise<void> {
    this.state = "closed";
    const socket = this.#detach();
    if (socket === undefined) return Promise.resolve();
    if (socket.readyState !== 1) {
      abandon(socket, code, reason);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        abandon(socket, code, reason);
        resolve();
      }, graceMs);
      socket.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
      try {
        socket.close(code, reason);
      } catch {
        clearTimeout(timer);
        abandon(socket, code, reason);
        resolve();
      }
    });
  }

  /** Puts a call at the end of this socket's queue. */
  enqueue(call: PendingCall): void {
    call.where = CONN_QUEUE;
    call.conn = this;
    this.queue.push(call);
    this.#host.counters.queued++;
    if (!this.writable()) this.#pollDrain();
  }

  /** The socket holds less than `maxBuffered` unsent bytes: a write now will not pile up in memory. */
  writable(): boolean {
    return (this.socket?.bufferedAmount ?? 0) < this.#host.options.maxBuffered;
  }

  #pollDrain(): void {
    if (this.#drainPoll !== undefined || this.socket === undefined) return;
    this.#drainPoll = setTimeout(() => {
      this.#drainPoll = undefined;
      this.pump();
    }, 10);
  }

  /** Live calls in the queue. */
  get queued(): number {
    return this.queue.live;
  }

  /** A queued call left by timeout or abort: its queue entry is now stale. */
  forgetQueued(): void {
    this.queue.forget();
    this.#host.counters.queued--;
  }

  /** Removes every live queued call, oldest first. */
  takeQueued(): PendingCall[] {
    const out = this.queue.take();
    this.#host.counters.queued -= out.length;
    return out;
  }

  /** Removes every call in flight (each once, also batches). */
  takeInFlight(): PendingCall[] {
    const out = new Set<PendingCall>();
    for (const call of this.inflight.values()) out.add(call);
    this.inflight.clear();
    this.#host.counters.inFlight -= out.size;
    this.inFlight = 0;
    return [...out];
  }

  /** Sends queued calls while the window has room. */
  pump(): void {
    const max = this.#host.options.maxInFlight;
    let now = 0;
    while ((this.state === "open" || this.state === "draining") && this.inFlight < max && this.queued > 0) {
      if (!this.writable()) {
        this.#pollDrain(); // back-pressure: the queue waits until the link drains
        return;
      }
      const call = this.queue.next()!; // there is a live one: queued > 0
      this.#host.counters.queued--;
      // A call whose deadline passed while it waited is never written: the
      // server must not run what the caller is told timed out. (Its own
      // timer may not have fired yet, e.g. when the window opened in the
      // same tick.)
      // Less than 1 ms left counts as expired: timers fire in whole ms, and
      // calls made together (microseconds apart) must not split so that the
      // window opened by the first one's timeout sends the next one.
      if (now === 0) now = this.#host.now();
      if (call.deadline < now + 1) {
        call.where = NOWHERE;
        call.conn = undefined;
        this.#host.onExpired(call, this);
        continue;
      }
      this.write(call);
    }
    if (this.state === "open" && this.queued === 0 && this.inFlight < max) this.#host.onRoom(this);
  }

  /** Writes a call to the socket now. The caller checked state and window. */
  write(call: PendingCall): void {
    const host = this.#host;
    const codec = host.options.codec;
    let frame: FrameData;
    try {
      if (call.batch !== undefined) {
        const requests: OutgoingRequest[] = call.batch.map((r) => ({ id: host.nextId(), method: r.method, params: r.params }));
        frame = codec.encodeBatch!(requests);
        call.ids = requests.map((r) => r.id);
        call.results = new Array(requests.length);
        call.remaining = requests.length;
      } else if (call.expectsReply) {
        const id = host.nextId();
        frame = codec.encodeRequest({ id, method: call.method, params: call.params });
        call.id = id;
      } else {
        frame = codec.encodeNotification(call.method, call.params);
      }
    } catch (error) {
      host.onEncodeError(this, call, error);
      return;
    }
    if (call.expectsReply) {
      // A single call (the hot path) allocates nothing here; a batch checks all its ids first.
      const taken = call.ids === undefined ? (this.inflight.has(call.id!) ? call.id : undefined) : call.ids.find((id) => this.inflight.has(id));
      if (taken !== undefined) return host.onEncodeError(this, call, new Error(`request id ${String(taken)} is already in flight`));
      if (call.ids === undefined) this.inflight.set(call.id!, call);
      else for (const id of call.ids) this.inflight.set(id, call);
      call.where = IN_FLIGHT;
      call.conn = this;
      this.inFlight++;
      host.counters.inFlight++;
    }
    call.sentAt = host.now();
    this.sent++;
    // A socket that died unnoticed still "accepts" the frame (browsers and ws
    // drop it silently); its close event then handles the call as lost.
    try {
      this.socket!.send(frame);
    } catch {
      // A send that throws means the socket is going away; the close event follows.
    }
    if (!call.expectsReply) host.onWrittenNoReply(call);
  }

  /** Forgets a call in flight that settled elsewhere (timeout, abort). */
  forgetInFlight(call: PendingCall): void {
    if (call.ids !== undefined) for (const id of call.ids) this.inflight.delete(id);
    else this.inflight.delete(call.id!);
    this.inFlight--;
    this.#host.counters.inFlight--;
    if (this.state === "draining" && this.inFlight === 0 && this.queued === 0) this.#host.onDrained(this);
  }

  #onMessage(data: FrameData): void {
    const host = this.#host;
    this.#lastInbound = host.now();
    this.received++;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > host.options.maxMessageSize) {
      this.#report(`dropped a ${size}-byte frame, over maxMessageSize (${host.options.maxMessageSize})`);
      return;
    }
    let decoded: Incoming | readonly Incoming[];
    try {
      decoded = host.options.codec.decode(data);
    } catch (error) {
      this.#report("could not decode a frame", error);
      return;
    }
    if (Array.isArray(decoded)) for (const message of decoded) this.#dispatch(message);
    else this.#dispatch(decoded as Incoming);
    this.pump();
  }

  #dispatch(message: Incoming): void {
    if (message === null || typeof message !== "object") {
      this.#report(`the codec returned ${String(message)}`);
      return;
    }
    if (message.kind === "notification") {
      this.#host.onNotification(this, message.method, message.params);
      return;
    }
    const id = message.id;
    if (id === null) {
      this.#report(`error reply without id: ${message.kind === "error" ? message.error.message : ""}`);
      return;
    }
    const call = this.inflight.get(id);
    if (call === undefined) {
      // Pings are not in the map (they are no calls): look for them only here, off the hot path.
      if (id === this.#pingId) {
        this.#pingId = undefined; // any answer, even "method not found", proves life
        return;
      }
      const old = this.#oldPings.indexOf(id);
      if (old >= 0) {
        this.#oldPings.splice(old, 1);
        return;
      }
      this.#report(`reply for unknown or already settled id ${JSON.stringify(id)}`);
      return;
    }
    this.inflight.delete(id);
    if (call.ids !== undefined) {
      call.results![call.ids.indexOf(id)] = message;
      if (--call.remaining > 0) return; // a batch settles when its last reply is in
    }
    this.inFlight--;
    this.#host.counters.inFlight--;
    this.#host.onSettleReply(this, call, message);
    if (this.state === "draining" && this.inFlight === 0 && this.queued === 0) this.#host.onDrained(this);
  }

  /** Sends a ping now unless one is pending (browsers: back online, tab visible). */
  checkNow(): void {
    if (this.state !== "open" && this.state !== "draining") return;
    if (this.#pingId !== undefined) return;
    this.#ping();
  }

  #checkLife(): void {
    const hb = this.#host.options.heartbeat;
    if (hb === false || this.socket === undefined) return;
    const idle = this.#host.now() - this.#lastInbound;
    if (idle < hb.interval) {
      this.#heartbeatTimer = setTimeout(() => this.#checkLife(), hb.interval - idle);
      return;
    }
    this.#ping();
  }

  #ping(): void {
    const hb = this.#host.options.heartbeat;
    if (hb === false || this.socket === undefined) return;
    clearTimeout(this.#heartbeatTimer);
    let id: RequestId;
    try {
      id = this.#host.nextId();
    } catch {
      return; // a throwing generateId is reported when calls use it
    }
    if (this.#pingId !== undefined) {
      this.#oldPings.push(this.#pingId);
      if (this.#oldPings.length > 4) this.#oldPings.shift(); // at most 4 entries: shift is fine here
    }
    this.#pingId = id;
    this.#pingSentAt = this.#host.now();
    try {
      this.socket.send(this.#host.options.codec.encodeRequest({ id, method: hb.method, params: hb.params }));
      this.sent++;
    } catch {
      // The close event follows.
    }
    this.#heartbeatTimer = setTimeout(() => {
      if (this.#lastInbound >= this.#pingSentAt) this.#checkLife();
      // If the event loop was blocked past the deadline, the reply may be
      // waiting unread in the socket (timers run before I/O): let pending
      // I/O run once before the verdict, so a busy process is not a dead link.
      else {
        this.#heartbeatTimer = setTimeout(() => {
          if (this.#lastInbound >= this.#pingSentAt) this.#checkLife();
          else this.#giveUp(CODE_ABANDONED, `heartbeat: no data for ${hb.timeout} ms after a ping`, true);
        }, 0);
      }
    }, hb.timeout);
  }

  /** Stops the timers the pool set on this socket. */
  clearTimers(): void {
    clearTimeout(this.ttlTimer);
    clearTimeout(this.drainTimer);
    clearTimeout(this.backoffTimer);
    this.ttlTimer = this.drainTimer = this.backoffTimer = undefined;
  }

  /** Marks a failed attempt's wait; cleared by `connect()`. */
  backoff(): void {
    this.state = "connecting";
    this.inBackoff = true;
  }

  snapshot(now: number): ConnectionSnapshot {
    return {
      id: this.id,
      url: this.url,
      state: this.state,
      age: this.openedAt > 0 && this.state !== "connecting" && this.state !== "closed" ? Math.round(now - this.openedAt) : 0,
      ttl: Math.round(this.ttl),
      inFlight: this.inFlight,
      queued: this.queued,
      buffered: this.socket?.bufferedAmount ?? 0,
      sent: this.sent,
      received: this.received,
      attempt: this.attempt,
      exclusive: this.exclusive,
      tags: this.tags,
      latency: this.latency.snapshot(),
    };
  }
}

/**
 * Drops a socket at once, without waiting for a close handshake that a dead
 * link would never finish: `terminate()` where the implementation has it
 * (`ws`), else `close()`.
 */
function abandon(socket: WebSocketLike, code: number, reason: string): void {
  const s = socket as WebSocketLike & { terminate?: () => void };
  try {
    if (typeof s.terminate === "function") s.terminate();
    else s.close(code, reason);
  } catch {
    // close() on a socket still connecting throws in some runtimes; it is gone for us either way.
  }
}
