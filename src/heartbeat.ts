/**
 * Half-open socket detection: after `interval` ms without inbound data a
 * ping goes out; if nothing at all comes in within `timeout` ms after it, the
 * socket is declared dead. Any inbound frame counts as life, and so does any
 * answer to the ping, "method not found" included.
 *
 * The ping is a WebSocket protocol ping where the runtime can send one (`ws`
 * on Node): the peer's WebSocket layer answers it with a pong even while its
 * application is busy, so a server that handles a connection's messages in
 * order does not hold the answer behind a slow call. Browsers, Deno, Bun
 * and Node's global WebSocket cannot send protocol pings; there the ping is
 * a codec request, which such a server answers only after the calls before
 * it: keep `interval + timeout` above the slowest call on those runtimes.
 *
 * The heartbeat owns its timers and knows nothing of sockets: its host sends
 * the ping and is told when the socket is dead.
 *
 * @module
 */

import type { Codec, FrameData, RequestId } from "./codec.ts";

/** What the heartbeat asks of its connection. */
export interface HeartbeatHost {
  now(): number;
  nextId(): RequestId;
  /** Writes a frame to the socket; `false` when there is no socket. */
  send(frame: FrameData): boolean;
  /** Sends a WebSocket protocol ping if the runtime can (`ws`); `false` if not, and the codec's ping request is sent instead. */
  protocolPing(): boolean;
  /** Nothing came in within the timeout after a ping. */
  dead(reason: string): void;
}

/** The heartbeat's settings (see `HeartbeatOptions`). */
export interface HeartbeatSettings {
  readonly interval: number;
  readonly timeout: number;
  readonly method: string;
  readonly params: unknown;
}

/** Unanswered earlier pings remembered, so a slow reply to one is not an unknown id. */
const OLD_PINGS = 4;

export class Heartbeat {
  readonly #host: HeartbeatHost;
  readonly #settings: () => HeartbeatSettings | false;
  readonly #codec: Codec;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When data last came in, on the host's clock. */
  #lastInbound = 0;
  #pingId: RequestId | undefined;
  #oldPings: RequestId[] = [];
  #pingSentAt = 0;

  /**
   * `settings()` is read at every check, so that a live `pool.update()` takes
   * effect (`false`: no heartbeat). A codec ping is a request of
   * `settings.method`, encoded by `codec`.
   */
  constructor(host: HeartbeatHost, settings: () => HeartbeatSettings | false, codec: Codec) {
    this.#host = host;
    this.#settings = settings;
    this.#codec = codec;
  }

  /** The socket opened: nothing heard yet, the first check is armed. */
  start(): void {
    this.#lastInbound = this.#host.now();
    this.#check();
  }

  /** Data came in (the hot path: one assignment). */
  heard(now: number): void {
    this.#lastInbound = now;
  }

  /** The socket is gone: no timer, no ping remembered. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pingId = undefined;
    this.#oldPings = [];
  }

  /** The settings changed: the next check follows them (pings still pending stay known). */
  restart(): void {
    clearTimeout(this.#timer);
    this.#check();
  }

  /** Pings now unless a ping is pending (browsers: back online, tab visible). */
  checkNow(): void {
    if (this.#pingId === undefined) this.#ping();
  }

  /** Whether `id` answers one of our pings (then it is forgotten). Off the hot path: asked only for ids no call owns. */
  isPingReply(id: RequestId): boolean {
    if (id === this.#pingId) {
      this.#pingId = undefined; // any answer, even "method not found", proves life
      return true;
    }
    const old = this.#oldPings.indexOf(id);
    if (old < 0) return false;
    this.#oldPings.splice(old, 1);
    return true;
  }

  #check(): void {
    const settings = this.#settings();
    if (settings === false) return;
    const idle = this.#host.now() - this.#lastInbound;
    const { interval } = settings;
    if (idle < interval) {
      this.#timer = setTimeout(() => this.#check(), interval - idle);
      return;
    }
    this.#ping();
  }

  #ping(): void {
    clearTimeout(this.#timer);
    const settings = this.#settings();
    if (settings === false) return;
    const { method, params, timeout } = settings;
    if (this.#host.protocolPing()) this.#arm(timeout);
    else this.#codecPing(method, params, timeout);
  }

  /** A codec ping: a request the server answers (any answer, even an error, is life). */
  #codecPing(method: string, params: unknown, timeout: number): void {
    let id: RequestId;
    try {
      id = this.#host.nextId();
    } catch {
      return; // a throwing generateId is reported when calls use it
    }
    let frame: FrameData;
    try {
      frame = this.#codec.encodeRequest({ id, method, params });
    } catch {
      return; // a codec that cannot encode the ping fails the calls too, where it is reported
    }
    if (!this.#host.send(frame)) return;
    if (this.#pingId !== undefined) {
      this.#oldPings.push(this.#pingId);
      if (this.#oldPings.length > OLD_PINGS) this.#oldPings.shift(); // a handful of entries: shift is fine here
    }
    this.#pingId = id;
    this.#arm(timeout);
  }

  /** A ping went out: the verdict comes `timeout` ms later unless data came in meanwhile. */
  #arm(timeout: number): void {
    this.#pingSentAt = this.#host.now();
    this.#timer = setTimeout(() => {
      if (this.#lastInbound >= this.#pingSentAt) this.#check();
      // If the event loop was blocked past the deadline, the reply may be
      // waiting unread in the socket (timers run before I/O): let pending
      // I/O run once before the verdict, so a busy process is not a dead link.
      else {
        this.#timer = setTimeout(() => {
          if (this.#lastInbound >= this.#pingSentAt) this.#check();
          else this.#host.dead(`heartbeat: no data for ${timeout} ms after a ping`);
        }, 0);
      }
    }, timeout);
  }
}
