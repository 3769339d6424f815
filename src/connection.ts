/**
 * One connection of the pool: a slot that outlives its sockets. It owns its
 * whole lifecycle — its state (`connecting → open → draining → closed`), the
 * current WebSocket (replaced on every reconnect), its TTL, drain, backoff
 * and connect timers, its heartbeat, its queue and its in-flight map — and
 * reports what happens through {@link ConnectionHost}. Which socket a call
 * goes to, what a lost socket's calls become and whether it reconnects are
 * the pool's decisions (router.ts, recovery.ts); the pool asks for them
 * through this class's methods and never assigns its fields.
 *
 * @module
 */

import { CONN_QUEUE, IN_FLIGHT, NOWHERE, type PendingCall } from "./call.ts";
import type { FrameData, Incoming, RequestId } from "./codec.ts";
import { redactUrl, resolveUrl } from "./endpoints.ts";
import { messageOf, ProtocolError } from "./errors.ts";
import { Heartbeat } from "./heartbeat.ts";
import { InFlight } from "./inflight.ts";
import type { ResolvedOptions } from "./options.ts";
import { CallQueue } from "./queue.ts";
import type { LostSocket } from "./recovery.ts";
import type { Routable } from "./router.ts";
import { closeSocket, terminateSocket, type WebSocketConstructor, type WebSocketLike } from "./socket.ts";
import { type ConnectionSnapshot, LatencyWindow } from "./stats.ts";
import { decodeFrame, encodeCall } from "./wire.ts";
import type { ConnectionState } from "./strategies.ts";

/** Pool-wide counts of calls that every connection keeps up to date. */
export interface CallCounts {
  inFlight: number;
  queued: number;
}

/** What a connection tells the pool, and asks of it. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly counts: CallCounts;
  readonly WebSocket: WebSocketConstructor;
  nextId(): RequestId;
  now(): number;
  onOpen(conn: Connection): void;
  onReply(conn: Connection, call: PendingCall, message: Incoming): void;
  onNotification(conn: Connection, method: string, params: unknown): void;
  /**
   * Something went wrong on the socket that no call owns: a `ProtocolError`
   * (bad frame, unknown id), or a plain `Error` when a connect attempt could
   * not even start (url function failed, constructor threw).
   */
  onError(conn: Connection, error: Error): void;
  /** Encoding failed: the call cannot be sent anywhere. It is out of every queue already. */
  onEncodeError(conn: Connection, call: PendingCall, error: unknown): void;
  /** A notification (no reply expected) was written. */
  onWrittenNoReply(call: PendingCall): void;
  /** The socket is gone: closed by either side, failed to open, or declared dead. */
  onLost(conn: Connection, loss: LostSocket): void;
  /** The window has room and the queue is empty: the pool may hand over waiting calls. */
  onRoom(conn: Connection): void;
  /** The TTL passed: the connection takes no new calls; the pool replaces or drops it. */
  onExpire(conn: Connection): void;
  /** Time to start draining: an expired connection's replacement opened, or did not in time. */
  onDrainDue(conn: Connection): void;
  /** A draining connection has nothing left in flight or queued. */
  onDrained(conn: Connection): void;
  /** A queued call's deadline passed before it could be written; it is out of the queue already. */
  onExpired(call: PendingCall, conn: Connection): void;
}

/** Close code used when the client gives up on a socket (heartbeat, connect timeout). */
export const CODE_ABANDONED = 4000;

/** Ms between checks of a backed-up socket's `bufferedAmount` (no runtime has a "drain" event). */
const BUFFER_POLL_MS = 10;

export class Connection implements Routable {
  readonly id: number;
  /** Slot index: what `url(index)` receives; a replacement keeps it. */
  readonly index: number;
  readonly tags: Readonly<Record<string, string>>;
  readonly latency: LatencyWindow;
  /** The URL in use, credentials redacted. */
  url: string;
  /** Frames sent and received, across reconnects. */
  sent = 0;
  received = 0;

  readonly #host: ConnectionHost;
  readonly #resolveUrl: (index: number) => string | Promise<string>;
  /** Calls waiting for this socket; entries whose call left (timeout, abort, moved) point elsewhere. */
  readonly #queue: CallQueue<PendingCall> = new CallQueue((c) => c.where === CONN_QUEUE && c.conn === this);
  readonly #awaiting = new InFlight();
  readonly #heartbeat: Heartbeat | undefined;
  #state: ConnectionState = "connecting";
  #socket: WebSocketLike | undefined;
  /** Bumped on every new socket; a `withConnection` session is bound to one. */
  #generation = 0;
  #openedAt = 0;
  #attempt = 0;
  #inBackoff = false;
  #exclusive = false;
  #ttl = 0;
  #expired = false;
  #removed = false;
  #replacement: Connection | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #ttlTimer: ReturnType<typeof setTimeout> | undefined;
  /** Waiting for a replacement, then the drain timeout. */
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #backoffTimer: ReturnType<typeof setTimeout> | undefined;
  /** Re-pumps the queue while the socket holds more than `maxBuffered` unsent bytes. */
  #bufferPoll: ReturnType<typeof setTimeout> | undefined;
  /** What the runtime said in the socket's last error event, if anything. */
  #socketError = "";

  constructor(
    host: ConnectionHost,
    id: number,
    index: number,
    resolveUrl: (index: number) => string | Promise<string>,
    endpoint: { readonly url: string; readonly tags?: Readonly<Record<string, string>> } | undefined,
  ) {
    this.#host = host;
    this.id = id;
    this.index = index;
    this.#resolveUrl = resolveUrl;
    this.tags = endpoint?.tags ?? {};
    this.url = redactUrl(endpoint?.url ?? "");
    this.latency = new LatencyWindow(Math.min(256, host.options.latencyWindow));
    const hb = host.options.heartbeat;
    if (hb !== false) {
      this.#heartbeat = new Heartbeat(
        {
          now: host.now,
          nextId: host.nextId,
          send: (frame) => this.#send(frame),
          dead: (reason) => this.#giveUp(reason),
        },
        hb,
        host.options.codec,
      );
    }
  }

  // ------------------------------------------------------------ what the pool reads

  /** Calls (frames) in flight; a batch counts once. */
  get inFlight(): number {
    return this.#awaiting.count;
  }
  get state(): ConnectionState {
    return this.#state;
  }
  get generation(): number {
    return this.#generation;
  }
  get inBackoff(): boolean {
    return this.#inBackoff;
  }
  get exclusive(): boolean {
    return this.#exclusive;
  }
  /** Past its TTL: on its way out. */
  get expired(): boolean {
    return this.#expired;
  }
  /** Past its TTL with no replacement opening: takes no new call. */
  get retiring(): boolean {
    return this.#expired && this.#replacement === undefined;
  }
  /** Dropped from the pool for good. */
  get removed(): boolean {
    return this.#removed;
  }
  /** The connection opened to take over from this expired one. */
  get replacement(): Connection | undefined {
    return this.#replacement;
  }
  /** Live calls in the queue. */
  get queued(): number {
    return this.#queue.live;
  }
  /** The socket holds less than `maxBuffered` unsent bytes: a write now will not pile up in memory. */
  writable(): boolean {
    return (this.#socket?.bufferedAmount ?? 0) < this.#host.options.maxBuffered;
  }

  // ------------------------------------------------------------ lifecycle

  /** Opens a socket unless one is open or opening (or the connection waits out a backoff, or was removed). */
  start(): void {
    if (
      this.#socket === undefined && this.#state === "connecting" && !this.#inBackoff && this.#connectTimer === undefined && !this.#removed
    ) {
      this.connect();
    }
  }

  /** Opens a new socket. Failures are reported through `onLost(…, wasOpen = false)`. */
  connect(): void {
    this.#state = "connecting";
    this.#inBackoff = false;
    const generation = ++this.#generation;
    const { connectTimeout } = this.#host.options;
    this.#connectTimer = setTimeout(
      () => this.#giveUp(`no open within connectTimeout (${connectTimeout} ms)`),
      connectTimeout,
    );
    // A late URL is stale once this attempt gave up (connectTimeout): the slot is backing off.
    const current = (): boolean => this.#generation === generation && this.#state === "connecting" && !this.#inBackoff;
    resolveUrl(this.#resolveUrl, this.index, current, (url) => this.#open(url), (error) => this.#urlFailed(error));
  }

  /**
   * Applies the recovery plan after a lost socket: `attempt` failed attempts
   * in a row so far; reconnect after `delay` ms, or leave the pool (`remove()`).
   */
  recover(plan: { readonly attempt: number; readonly reconnect: boolean; readonly delay: number }): void {
    this.#attempt = plan.attempt;
    this.#clearTimers();
    if (!plan.reconnect) return this.remove();
    this.#state = "connecting";
    this.#inBackoff = true;
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      if (!this.#removed) this.connect();
    }, plan.delay);
  }

  /** Takes the connection out of the pool for good; its socket is already gone or being closed. */
  remove(): void {
    this.#removed = true;
    this.#state = "closed";
    this.#clearTimers();
  }

  /** Checked out by an exclusive `withConnection` session (`true`), or back (`false`). */
  setExclusive(exclusive: boolean): void {
    this.#exclusive = exclusive;
  }

  /**
   * Make-before-break: `replacement` is opening to take over. This connection
   * keeps serving until it opens, or for `connectTimeout` ms at most; then the
   * pool is told to drain it (`onDrainDue`).
   */
  awaitReplacement(replacement: Connection): void {
    this.#replacement = replacement;
    this.#drainTimer = setTimeout(() => this.#host.onDrainDue(this), this.#host.options.connectTimeout);
  }

  /**
   * Enters `draining`: no new calls; its calls in flight have `drainTimeout`
   * ms to finish before the socket is terminated. Returns the calls that
   * waited in its queue, for the pool to move (`undefined`: it was not open).
   */
  beginDraining(): PendingCall[] | undefined {
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    if (this.#state !== "open") return undefined;
    this.#state = "draining";
    const { drainTimeout } = this.#host.options;
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      this.terminate(`drain timeout: ${this.inFlight} calls still in flight after ${drainTimeout} ms`);
    }, drainTimeout);
    return this.takeQueued();
  }

  /** Drops the socket now as dead (heartbeat, drain timeout), without a close handshake; reported through `onLost`. */
  terminate(reason: string): void {
    if (this.#socket === undefined && this.#state !== "connecting") return;
    this.#giveUp(reason);
  }

  /**
   * Graceful close: sends a close frame with `code` and stops every timer.
   * Resolves when the close handshake finished, or after `graceMs` (then the
   * socket is terminated). Reports nothing to the pool: the caller owns the outcome.
   */
  close(code: number, reason: string, graceMs: number): Promise<void> {
    this.#state = "closed";
    this.#clearTimers();
    const socket = this.#detach();
    return socket === undefined ? Promise.resolve() : closeSocket(socket, code, reason, graceMs);
  }

  #clearTimers(): void {
    clearTimeout(this.#ttlTimer);
    clearTimeout(this.#drainTimer);
    clearTimeout(this.#backoffTimer);
    this.#ttlTimer = this.#drainTimer = this.#backoffTimer = undefined;
  }

  #urlFailed(error: unknown): void {
    this.#report("the url function failed", error, Error);
    this.#giveUp("url function failed");
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
      this.#giveUp("WebSocket constructor threw");
      return;
    }
    this.#socket = socket;
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
    this.#state = "open";
    this.#openedAt = this.#host.now();
    const { ttl } = this.#host.options;
    if (ttl > 0) {
      // Up to 10% jitter, so sockets opened together do not expire together.
      this.#ttl = ttl * (1 - 0.1 * Math.random());
      this.#ttlTimer = setTimeout(() => this.#onTtl(), this.#ttl);
    }
    this.#heartbeat?.start();
    this.#host.onOpen(this);
    this.pump();
  }

  #onTtl(): void {
    this.#ttlTimer = undefined;
    if (this.#state !== "open" || this.#expired) return;
    this.#expired = true;
    this.#host.onExpire(this);
  }

  #onClose(code: number, reason: string): void {
    const detail = this.#socketError === "" ? "" : `: ${this.#socketError}`;
    this.#lost(code, reason || (this.#wasOpen() ? "closed by peer" : "could not connect") + detail);
  }

  /** Declares the socket dead now, without waiting for a close handshake: it is terminated and reported lost with {@link CODE_ABANDONED}. */
  #giveUp(reason: string): void {
    const socket = this.#detach();
    if (socket !== undefined) terminateSocket(socket, CODE_ABANDONED, reason);
    this.#lost(CODE_ABANDONED, reason);
  }

  #wasOpen(): boolean {
    return this.#state === "open" || this.#state === "draining";
  }

  /** Reports the socket lost to the pool, as the recovery policy reads it. */
  #lost(code: number, reason: string): void {
    this.#detach();
    const wasOpen = this.#wasOpen();
    const uptime = wasOpen && this.#openedAt > 0 ? this.#host.now() - this.#openedAt : undefined;
    const retiring = this.#expired || this.#state === "draining";
    this.#host.onLost(this, { id: this.id, code, reason, wasOpen, retiring, attempt: this.#attempt, uptime });
  }

  /** Stops listening to the current socket and stops its timers; returns it. */
  #detach(): WebSocketLike | undefined {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#bufferPoll);
    this.#connectTimer = undefined;
    this.#bufferPoll = undefined;
    this.#heartbeat?.stop();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      // Keep a no-op error handler: `ws` throws an unhandled 'error' otherwise.
      socket.onerror = () => {};
    }
    return socket;
  }

  // ------------------------------------------------------------ calls

  /** Puts a call at the end of this connection's queue. */
  enqueue(call: PendingCall): void {
    call.where = CONN_QUEUE;
    call.conn = this;
    this.#queue.push(call);
    this.#host.counts.queued++;
    if (!this.writable()) this.#pollBuffered();
  }

  #pollBuffered(): void {
    if (this.#bufferPoll !== undefined || this.#socket === undefined) return;
    this.#bufferPoll = setTimeout(() => {
      this.#bufferPoll = undefined;
      this.pump();
    }, BUFFER_POLL_MS);
  }

  /** A queued call left by timeout or abort: its queue entry is now stale. */
  forgetQueued(): void {
    this.#queue.forget();
    this.#host.counts.queued--;
  }

  /** Removes every live queued call, oldest first; they are nowhere until placed again. */
  takeQueued(): PendingCall[] {
    const out = this.#queue.take();
    this.#host.counts.queued -= out.length;
    for (const call of out) detach(call);
    return out;
  }

  /** Removes every call in flight (each once, also batches); they are nowhere until settled or re-sent. */
  takeInFlight(): PendingCall[] {
    const out = this.#awaiting.takeAll();
    this.#host.counts.inFlight -= out.length;
    for (const call of out) detach(call);
    return out;
  }

  /** Every call this connection holds, queued first, without taking them (for messages that quote the counts). */
  pendingCalls(): PendingCall[] {
    const queued = [...this.#queue].filter((c) => c.where === CONN_QUEUE && c.conn === this);
    return queued.concat(this.#awaiting.calls());
  }

  /** Sends queued calls while the window has room. */
  pump(): void {
    const max = this.#host.options.maxInFlight;
    let now = 0;
    while ((this.#state === "open" || this.#state === "draining") && this.inFlight < max && this.queued > 0) {
      if (!this.writable()) {
        this.#pollBuffered(); // back-pressure: the queue waits until the link's buffer empties
        return;
      }
      const call = this.#queue.next()!; // there is a live one: queued > 0
      this.#host.counts.queued--;
      // A call whose deadline passed while it waited is never written: the
      // server must not run what the caller is told timed out. (Its own
      // timer may not have fired yet, e.g. when the window opened in the
      // same tick.)
      // Less than 1 ms left counts as expired: timers fire in whole ms, and
      // calls made together (microseconds apart) must not split so that the
      // window opened by the first one's timeout sends the next one.
      if (now === 0) now = this.#host.now();
      if (call.deadline < now + 1) {
        detach(call);
        this.#host.onExpired(call, this);
        continue;
      }
      this.write(call);
    }
    if (this.#state === "open" && this.queued === 0 && this.inFlight < max) this.#host.onRoom(this);
  }

  /** Writes a call to the socket now. The caller checked state and window. */
  write(call: PendingCall): void {
    const host = this.#host;
    let frame: FrameData;
    try {
      frame = encodeCall(call, host.options.codec, host.nextId);
    } catch (error) {
      detach(call);
      host.onEncodeError(this, call, error);
      return;
    }
    if (call.expectsReply) {
      const taken = this.#awaiting.clash(call);
      if (taken !== undefined) {
        detach(call);
        return host.onEncodeError(this, call, new Error(`request id ${String(taken)} is already in flight`));
      }
      this.#awaiting.add(call);
      call.where = IN_FLIGHT;
      call.conn = this;
      host.counts.inFlight++;
    }
    call.sentAt = host.now();
    // A socket that died unnoticed still "accepts" the frame (browsers and ws
    // drop it silently); its close event then handles the call as lost.
    this.#send(frame);
    if (!call.expectsReply) host.onWrittenNoReply(call);
  }

  /** Forgets a call in flight that settled elsewhere (timeout, abort). */
  forgetInFlight(call: PendingCall): void {
    this.#awaiting.forget(call);
    this.#host.counts.inFlight--;
    this.#checkDrained();
  }

  #onMessage(data: FrameData): void {
    const host = this.#host;
    this.#heartbeat?.heard(host.now());
    this.received++;
    let decoded: Incoming | readonly Incoming[];
    try {
      decoded = decodeFrame(data, host.options.codec, host.options.maxMessageSize);
    } catch (error) {
      const e = error as ProtocolError;
      host.onError(this, new ProtocolError(`socket ${this.id}: ${e.message}`, "cause" in e ? { cause: e.cause } : undefined));
      return;
    }
    if (!Array.isArray(decoded)) this.#dispatch(decoded as Incoming);
    else for (const message of decoded) this.#dispatch(message);
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
    const call = this.#awaiting.reply(id, message);
    if (call === null) return; // a batch settles when its last reply is in
    if (call === undefined) {
      // Pings are not in the map (they are no calls): look for them only here, off the hot path.
      if (this.#heartbeat?.isPingReply(id)) return;
      this.#report(`reply for unknown or already settled id ${JSON.stringify(id)}`);
      return;
    }
    this.#host.counts.inFlight--;
    this.#host.onReply(this, call, message);
    this.#checkDrained();
  }

  /** A draining connection with nothing left in flight or queued is done. */
  #checkDrained(): void {
    if (this.#state === "draining" && this.inFlight === 0 && this.queued === 0) this.#host.onDrained(this);
  }

  /** Pings now unless a ping is pending (browsers: back online, tab visible). */
  checkNow(): void {
    if (this.#state === "open" || this.#state === "draining") this.#heartbeat?.checkNow();
  }

  /** Writes a frame now; `false` when there is no socket. A send that throws means the socket is going away: its close event follows. */
  #send(frame: FrameData): boolean {
    if (this.#socket === undefined) return false;
    this.sent++;
    try {
      this.#socket.send(frame);
    } catch {
      // The close event follows.
    }
    return true;
  }

  snapshot(now: number): ConnectionSnapshot {
    const state = this.#state;
    return {
      id: this.id,
      url: this.url,
      state,
      age: this.#openedAt > 0 && state !== "connecting" && state !== "closed" ? Math.round(now - this.#openedAt) : 0,
      ttl: Math.round(this.#ttl),
      inFlight: this.inFlight,
      queued: this.queued,
      buffered: this.#socket?.bufferedAmount ?? 0,
      sent: this.sent,
      received: this.received,
      attempt: this.#attempt,
      exclusive: this.#exclusive,
      tags: this.tags,
      latency: this.latency.snapshot(),
    };
  }
}

/** The call is out of this connection's queue or map, and nowhere yet. */
function detach(call: PendingCall): void {
  call.where = NOWHERE;
  call.conn = undefined;
}
