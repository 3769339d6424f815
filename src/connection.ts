/**
 * One connection of the pool: a slot that outlives its sockets. It owns its whole lifecycle — its state
 * (`connecting → open → draining → closed`), the current WebSocket (replaced on every reconnect), its `setup`
 * step, its TTL, drain, backoff and connect timers, its heartbeat, its queue and its in-flight map — and reports
 * what happens through {@link ConnectionHost}. Which socket a call goes to, what a lost socket's calls become and
 * whether it reconnects are the pool's decisions (router.ts, recovery.ts); the pool asks for them through this
 * class's methods and never assigns its fields.
 *
 * @module
 */

import { CONN_QUEUE, HELD, IN_FLIGHT, label, NOWHERE, type PendingCall } from "./call.ts";
import type { FrameData, Incoming } from "./codec.ts";
import { Coalescer } from "./coalesce.ts";
import type { ConnectionHost } from "./host.ts";
import { redactUrl, resolveUrl } from "./endpoints.ts";
import { ConnectError, messageOf, MuxPoolError, ProtocolError, TimeoutError } from "./errors.ts";
import { Heartbeat } from "./heartbeat.ts";
import { unmatched } from "./replies.ts";
import { InFlight } from "./inflight.ts";
import { CallQueue } from "./queue.ts";
import type { Routable } from "./router.ts";
import {
  BUFFER_POLL_MS,
  CLOSE_GRACE_MS,
  closeSocket,
  CODE_ABANDONED,
  OPEN,
  protocolPing,
  terminateSocket,
  type WebSocketLike,
} from "./socket.ts";
import { type ConnectionSnapshot, LatencyWindow } from "./stats.ts";
import { decodeFrame, frameFor } from "./wire.ts";
import type { ConnectionState } from "./strategies.ts";
import { sendFrame } from "./websocket.ts";

export class Connection implements Routable {
  readonly id: number;
  /** Slot index: what `url(index)` receives; a replacement keeps it. */
  readonly index: number;
  readonly tags: Readonly<Record<string, string>>;
  readonly latency: LatencyWindow;
  /** The URL in use, credentials redacted. */
  url: string;
  /** Frames sent and received, across reconnects; subscriptions it carries (kept by subscriptions.ts). */
  sent = 0;
  received = 0;
  subscriptions = 0;

  readonly #host: ConnectionHost<Connection>;
  readonly #resolveUrl: (index: number) => string | Promise<string>;
  /** Calls waiting for this socket; entries whose call left (timeout, abort, moved) point elsewhere. */
  readonly #queue: CallQueue<PendingCall> = new CallQueue((c) => c.where === CONN_QUEUE && c.conn === this);
  readonly #awaiting = new InFlight();
  /** Calls held for this tick's batch frames (`coalesce: "batch"`). */
  readonly #held: Coalescer<Connection>;
  readonly #heartbeat: Heartbeat;
  #state: ConnectionState = "connecting";
  #socket: WebSocketLike | undefined;
  /** Bumped on every new socket; a `withConnection` session is bound to one. */
  #generation = 0;
  #openedAt = 0;
  #attempt = 0;
  #inBackoff = false;
  #exclusive = false;
  #ttl = 0;
  #ttlFactor = 1;
  #expired = false;
  #replacement: Connection | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #ttlTimer: ReturnType<typeof setTimeout> | undefined;
  /** Waiting for a replacement, then the drain timeout. */
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #backoffTimer: ReturnType<typeof setTimeout> | undefined;
  /** Re-pumps the queue while the socket holds more than `maxBuffered` unsent bytes. */
  #bufferPoll: ReturnType<typeof setTimeout> | undefined;
  /** Why the current connect attempt failed: the runtime's error, the url function's or the constructor's. */
  #failure: unknown;
  /** The socket's close has begun (either side): no more writes, and it is terminated if the handshake stalls. */
  #closing = false;
  /** Open, running `setup`: only its calls may be written. */
  #settingUp = false;
  #closingTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    host: ConnectionHost<Connection>,
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
    const heartbeat = {
      now: host.now,
      nextId: host.nextId,
      send: (frame: FrameData) => this.#send(frame),
      protocolPing: () => protocolPing(this.#socket),
      dead: (reason: string) => this.#giveUp(reason),
    };
    this.#heartbeat = new Heartbeat(heartbeat, () => host.options.heartbeat, host.options.codec);
    this.#held = new Coalescer(this, host, this.#awaiting, {
      socket: () => this.#closing ? undefined : this.#socket,
      writeNow: (call) => this.#writeNow(call),
      send: (frame) => this.#send(frame),
    });
  }

  /** Calls in flight (a `pool.batch` counts once), and those held for this tick's batch frame. */
  get inFlight(): number {
    return this.#awaiting.count + this.#held.live;
  }
  get state(): ConnectionState {
    return this.#state;
  }
  get generation(): number {
    return this.#generation;
  }
  /** Its socket is open and runs the pool's `setup`. */
  get settingUp(): boolean {
    return this.#settingUp;
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
  /** Takes no new call: its socket's close has begun, or it is past its TTL with no replacement opening. */
  get retiring(): boolean {
    return this.#closing || (this.#expired && this.#replacement === undefined);
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
    return !this.#closing && (this.#socket?.bufferedAmount ?? 0) < this.#host.options.maxBuffered;
  }

  /** Opens a socket unless one is open or opening (or the connection waits out a backoff, or was removed). */
  start(): void {
    if (this.#generation === 0 && this.#state === "connecting") this.connect();
  }

  /** Opens a new socket. Failures are reported through `onLost(…, wasOpen = false)`. */
  connect(): void {
    this.#state = "connecting";
    this.#inBackoff = false;
    const generation = ++this.#generation;
    const { connectTimeout } = this.#host.options;
    this.#connectTimer = setTimeout(() => {
      const text = `${this.#settingUp ? "setup not done" : "no open"} within connectTimeout (${connectTimeout} ms)`;
      this.#settingUp ? this.#cannotStart("setup failed", new TimeoutError(text), text) : this.#giveUp(text); // setup: a ConnectError event
    }, connectTimeout);
    // A late URL is stale once this attempt gave up (connectTimeout): the slot is backing off.
    const current = (): boolean => this.#generation === generation && this.#state === "connecting" && !this.#inBackoff;
    resolveUrl(this.#resolveUrl, this.index, current, (url) => this.#open(url), (e) => this.#cannotStart("the url function failed", e));
  }

  /** Applies the recovery plan after a lost socket: `attempt` failures in a row; reconnect after `delay` ms, or leave. */
  recover(plan: { readonly attempt: number; readonly reconnect: boolean; readonly delay: number }): void {
    this.#attempt = plan.attempt;
    this.#clearTimers();
    if (!plan.reconnect) return this.remove();
    this.#state = "connecting";
    this.#inBackoff = true;
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      if (this.#state !== "closed") this.connect();
    }, plan.delay);
  }

  /** Takes the connection out of the pool for good; its socket is already gone or being closed. */
  remove(): void {
    this.#state = "closed";
    this.#clearTimers();
  }

  /** Checked out by an exclusive `withConnection` session (`true`), or back (`false`). */
  setExclusive(exclusive: boolean): void {
    this.#exclusive = exclusive;
  }

  /** Make-before-break: this connection serves until `replacement` opens, or `connectTimeout` ms at most; then `onDrainDue`. */
  awaitReplacement(replacement: Connection): void {
    this.#replacement = replacement;
    this.#drainTimer = setTimeout(() => this.#host.onDrainDue(this), this.#host.options.connectTimeout);
  }

  /**
   * Enters `draining`: no new calls; its calls in flight have `drainTimeout` ms before the socket is terminated.
   * Returns the calls that waited in its queue, for the pool to move (`undefined`: it was not open).
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

  /** A connect attempt could not even start: reported as a `ConnectError` event, then lost like a failed connect. */
  #cannotStart(text: string, cause: unknown, reason = `${text}: ${messageOf(cause)}`): void {
    this.#failure = cause;
    const message = `socket ${this.id}: ${text}: ${messageOf(cause)}`;
    this.#host.onError(this, new ConnectError(message, { url: this.url, attempt: this.#attempt + 1, cause }));
    this.#giveUp(reason);
  }

  /** Reports `socket 3: <text>` as a `ProtocolError` event. */
  #report(text: string, cause?: unknown): void {
    this.#host.onError(this, new ProtocolError(`socket ${this.id}: ${text}`, cause === undefined ? undefined : { cause }));
  }

  #open(url: string): void {
    this.url = redactUrl(url);
    this.#failure = undefined;
    let socket: WebSocketLike;
    try {
      socket = new this.#host.WebSocket(url, this.#host.options.protocols);
    } catch (error) {
      this.#cannotStart(`cannot open ${this.url}`, error);
      return;
    }
    this.#socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => this.#onOpen();
    socket.onmessage = (event: { data: unknown }) => this.#onMessage(event.data as FrameData);
    socket.onclose = (event: { code: number; reason: string }) => this.#onClose(event.code, event.reason);
    // `ws`: a pong answers the heartbeat's protocol ping.
    if (typeof socket.on === "function") socket.on("pong", () => this.#socket === socket && this.#heartbeat.heard(this.#host.now()));
    // A close event follows an error and decides, except on Node 22's own WebSocket (undici) after a failed connect:
    // it stays CONNECTING, and the attempt would wait out connectTimeout. ws and Deno say why a socket failed
    // ("Unexpected server response: 401", "connect ECONNREFUSED …"); browsers do not. Kept for the close reason.
    socket.onerror = (event: { message?: unknown; error?: unknown } | null) => {
      if (typeof event?.message === "string" && event.message !== "") this.#failure = event.error ?? new Error(event.message);
      if (socket.readyState === 0 && this.#socket === socket) this.#onClose(1006, "");
    };
  }

  #onOpen(): void {
    const setup = this.#host.options.setup;
    if (setup === undefined) return this.#opened();
    // `setup` first: only its calls go on this socket until it resolves; connectTimeout covers it too.
    this.#settingUp = true;
    const generation = this.#generation;
    const current = (): boolean => this.#generation === generation && this.#settingUp;
    this.#host.onSetup(this).then(
      () => current() && this.#opened(),
      (error: unknown) => current() && this.#cannotStart("setup failed", error),
    );
  }

  #opened(): void {
    this.#settingUp = false;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#state = "open";
    this.#openedAt = this.#host.now();
    this.#ttlFactor = 1 - 0.1 * Math.random(); // up to 10% jitter: sockets opened together do not expire together
    this.#armTtl();
    this.#heartbeat.start();
    this.#host.onOpen(this);
    this.pump();
  }

  /** (Re)arms the TTL timer from when the socket opened, with the pool's `ttl` now (`pool.update` may change it). */
  #armTtl(): void {
    clearTimeout(this.#ttlTimer);
    this.#ttl = this.#host.options.ttl * this.#ttlFactor;
    // Past a TTL that was just shortened: expire within the next tenth of it, not all sockets at once.
    const left = this.#openedAt + this.#ttl - this.#host.now();
    this.#ttlTimer = this.#ttl > 0 ? setTimeout(() => this.#onTtl(), left > 0 ? left : Math.random() * this.#ttl * 0.1) : undefined;
  }

  /** Options changed on the live pool (`pool.update`): TTL and heartbeat follow at once, a wider window fills at once. */
  applyOptions(): void {
    if (this.#state === "open" && !this.#expired) this.#armTtl();
    if (this.#state === "open" || this.#state === "draining") this.#heartbeat.restart();
    this.pump();
  }

  #onTtl(): void {
    this.#ttlTimer = undefined;
    if (this.#state !== "open" || this.#expired) return;
    this.#expired = true;
    this.#host.onExpire(this);
  }

  #onClose(code: number, reason: string): void {
    const detail = this.#failure === undefined ? "" : `: ${messageOf(this.#failure)}`;
    this.#lost(code, reason || (this.#state === "connecting" ? "could not connect" : "closed by peer") + detail);
  }

  /** Declares the socket dead now, without waiting for a close handshake: it is terminated and reported lost with {@link CODE_ABANDONED}. */
  #giveUp(reason: string): void {
    const socket = this.#detach();
    if (socket !== undefined) terminateSocket(socket, CODE_ABANDONED, reason);
    this.#lost(CODE_ABANDONED, reason);
  }

  /** Reports the socket lost to the pool, as the recovery policy reads it. */
  #lost(code: number, reason: string): void {
    this.#detach();
    const wasOpen = this.#state === "open" || this.#state === "draining";
    const uptime = wasOpen && this.#openedAt > 0 ? this.#host.now() - this.#openedAt : undefined;
    const retiring = this.#expired || this.#state === "draining";
    this.#host.onLost(this, { id: this.id, code, reason, wasOpen, retiring, attempt: this.#attempt, uptime, cause: this.#failure });
    this.#failure = undefined;
  }

  /** Stops listening to the current socket and stops its timers; returns it. */
  #detach(): WebSocketLike | undefined {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#bufferPoll);
    clearTimeout(this.#closingTimer);
    this.#connectTimer = this.#bufferPoll = this.#closingTimer = undefined;
    this.#closing = this.#settingUp = false;
    this.#heartbeat.stop();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      // Keep a no-op error handler: `ws` throws an unhandled 'error' otherwise.
      socket.onerror = () => {};
    }
    return socket;
  }

  /** Puts a call at the end of this connection's queue. */
  enqueue(call: PendingCall): void {
    call.where = CONN_QUEUE;
    call.conn = this;
    this.#queue.push(call);
    this.#host.counts.queued++;
    if (!this.writable()) this.#pollBuffered();
  }

  #pollBuffered(): void {
    if (this.#bufferPoll === undefined && this.#socket !== undefined) {
      this.#bufferPoll = setTimeout(() => (this.#bufferPoll = undefined, this.pump()), BUFFER_POLL_MS);
    }
  }

  /** A queued call left by timeout or abort: its queue entry is now stale. */
  forgetQueued(): void {
    this.#queue.forget();
    this.#host.counts.queued--;
  }

  /** Removes every live queued call (held ones first: never written either), oldest first; they are nowhere until placed again. */
  takeQueued(): PendingCall[] {
    const queued = this.#queue.take();
    this.#host.counts.queued -= queued.length;
    const out = this.#held.live === 0 ? queued : this.#held.take().concat(queued);
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
    return this.#held.calls().concat(queued, this.#awaiting.calls());
  }

  /** Sends queued calls while the window has room. */
  pump(): void {
    const max = this.#host.options.maxInFlight;
    let now = 0;
    while ((this.#state === "open" || this.#state === "draining") && !this.#closing && this.inFlight < max && this.queued > 0) {
      if (!this.writable()) {
        this.#pollBuffered(); // back-pressure: the queue waits until the link's buffer empties
        return;
      }
      const call = this.#queue.next()!; // there is a live one: queued > 0
      this.#host.counts.queued--;
      // Past its deadline (its timer may not have fired yet), a call is never written: the server must not run
      // what its caller is told timed out. Under 1 ms left counts as past: timers fire in whole ms, and calls made
      // together must not split so that the window opened by the first one's timeout sends the next one.
      if (now === 0) now = this.#host.now();
      if (call.deadline < now + 1) {
        detach(call);
        this.#host.onExpired(call, this);
        continue;
      }
      this.write(call);
    }
    if (this.#state === "open" && !this.#closing && this.queued === 0 && this.inFlight < max) this.#host.onRoom(this);
  }

  /**
   * Writes a call now (the caller checked state and window), unless its signal was aborted, the socket's close
   * has begun (runtimes discard such frames) or its frame is over `maxRequestSize`: then the pool is told it was
   * never written, whatever order a group of calls settles in. With `coalesce: "batch"`, a batchable call is
   * held instead (counted in flight) and written with the others of its tick.
   */
  write(call: PendingCall): void {
    if (call.batchable && this.#host.options.coalesce !== false) return this.#held.hold(call);
    this.#writeNow(call);
  }

  #writeNow(call: PendingCall): void {
    const host = this.#host;
    if (call.signal?.aborted) {
      detach(call);
      return host.onNotWritten(this, call, "aborted");
    }
    const socket = this.#socket;
    if (socket === undefined || socket.readyState !== OPEN) {
      detach(call);
      this.#closing = true; // before the call is placed again: not here
      host.onNotWritten(this, call, "closing");
      return this.#closeBegan();
    }
    let frame = frameFor(call, host.options.codec, host.nextId, host.options.maxRequestSize, ` for socket ${this.id}`);
    const taken = call.expectsReply && !(frame instanceof MuxPoolError) ? this.#awaiting.clash(call) : undefined;
    if (taken !== undefined) {
      frame = new ProtocolError(`${label(call)} could not be sent: request id ${String(taken)} is already in flight`);
    }
    if (frame instanceof MuxPoolError) {
      detach(call);
      return host.onEncodeError(call, frame);
    }
    if (call.expectsReply) {
      this.#awaiting.add(call);
      call.where = IN_FLIGHT;
      call.conn = this;
      host.counts.inFlight++;
    }
    call.sentAt = host.now();
    this.#send(frame); // a socket that died unnoticed still "accepts" it (ws and browsers drop it): its close event handles the call
    if (!call.expectsReply) host.onWrittenNoReply(call);
    else if (!call.idempotent) call.params = undefined; // never written again: the caller's objects need not stay alive
  }

  /**
   * The socket's close has begun (a close frame came in, or `close()` was called) before its close event: no more
   * writes, the queue moves, and a handshake not done within {@link CLOSE_GRACE_MS} (a peer that stopped reading)
   * ends in a terminate, so that calls in flight need not wait out their deadline.
   */
  #closeBegan(): void {
    this.#closing = true;
    if (this.#closingTimer !== undefined) return;
    this.#closingTimer = setTimeout(() => this.#giveUp(`close handshake not complete after ${CLOSE_GRACE_MS} ms`), CLOSE_GRACE_MS);
    this.#host.onClosing(this);
  }

  /** Forgets a call in flight, or held for a batch frame, that settled elsewhere (timeout, abort). */
  forgetInFlight(call: PendingCall): void {
    if (call.where === HELD) this.#held.live--;
    else this.#awaiting.forget(call);
    this.#host.counts.inFlight--;
    this.#checkDrained();
  }

  #onMessage(data: FrameData): void {
    const host = this.#host;
    this.#heartbeat.heard(host.now());
    this.received++;
    let decoded: Incoming | readonly Incoming[];
    try {
      decoded = decodeFrame(data, host.options.codec, host.options.maxMessageSize);
    } catch (error) {
      return this.#report((error as Error).message, (error as Error).cause);
    }
    if (!Array.isArray(decoded)) this.#dispatch(decoded as Incoming, true);
    else {
      const socket = this.#socket;
      // A listener may have closed the pool, or a reply settled this socket's fate: the rest is moot.
      for (const message of decoded) if (this.#socket === socket) this.#dispatch(message);
    }
    this.pump();
  }

  #dispatch(message: Incoming, alone = false): void {
    if (message === null || typeof message !== "object") {
      this.#report(`the codec returned ${String(message)}`);
      return;
    }
    if (message.kind === "notification") {
      this.#host.onNotification(this, message.method, message.params);
      return;
    }
    const call = this.#awaiting.match(message);
    if (call === null) return; // a batch settles when its last reply is in
    if (call === undefined) {
      const id = message.id;
      // Pings are not in the map (no calls): looked for only here. An error without id, alone in its frame, may refuse a batch.
      if (id === null ? message.kind === "error" && alone && this.#held.refused(message) : this.#heartbeat.isPingReply(id)) return;
      return this.#report(unmatched(message, this.inFlight));
    }
    if (message.kind === "invalid") this.#host.countProtocolError();
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
    if (this.#state === "open" || this.#state === "draining") this.#heartbeat.checkNow();
  }

  /** Writes a frame now; `false` when there is no socket. A send that throws means the socket is going away: its close event follows. */
  #send(frame: FrameData): boolean {
    if (this.#socket === undefined) return false;
    this.sent++;
    try {
      sendFrame(this.#socket, frame);
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
      subscriptions: this.subscriptions,
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
