/**
 * The pool's events: one class per event type, each carrying its data as
 * readonly properties, and a typed `EventTarget` base. No event is dispatched
 * per call; per-call numbers go into `stats()`.
 *
 * @module
 */

import type { MuxPoolError } from "./errors.ts";
import type { ConnectionSnapshot } from "./stats.ts";

/** A socket event: `open`, `close`, `reconnect`, `expire`. */
export class ConnectionEvent extends Event {
  /** The socket, as `pool.connections()` shows it at the time of the event. */
  readonly connection: ConnectionSnapshot;
  /** `close`: the close code (1006 when the socket was lost without a close frame). */
  readonly code: number | undefined;
  /** `close`: why the socket closed, in words. `reconnect`: why it reconnects. */
  readonly reason: string | undefined;
  /** `reconnect`: the failed attempts so far (1 for the first retry). */
  readonly attempt: number | undefined;
  /** `reconnect`: ms until the next attempt. */
  readonly delay: number | undefined;
  constructor(
    type: "open" | "close" | "reconnect" | "expire",
    connection: ConnectionSnapshot,
    extra: { code?: number; reason?: string; attempt?: number; delay?: number } = {},
  ) {
    super(type);
    this.connection = connection;
    this.code = extra.code;
    this.reason = extra.reason;
    this.attempt = extra.attempt;
    this.delay = extra.delay;
  }
}

/** Calls waiting in one socket's queue moved elsewhere. */
export class RerouteEvent extends Event {
  readonly count: number;
  readonly from: ConnectionSnapshot;
  /** The socket that took them, or `null` for the pool's wait queue. */
  readonly to: ConnectionSnapshot | null;
  constructor(count: number, from: ConnectionSnapshot, to: ConnectionSnapshot | null) {
    super("reroute");
    this.count = count;
    this.from = from;
    this.to = to;
  }
}

/** A message from the server that is not a reply (no id). */
export class NotificationEvent extends Event {
  readonly method: string;
  readonly params: unknown;
  /** Id of the socket it arrived on. */
  readonly connectionId: number;
  constructor(method: string, params: unknown, connectionId: number) {
    super("notification");
    this.method = method;
    this.params = params;
    this.connectionId = connectionId;
  }
}

/** Something went wrong that no single call owns: a bad frame, a late reply, a `url` function that threw. (A failed connect is a `reconnect` event.) */
export class PoolErrorEvent extends Event {
  readonly error: MuxPoolError | Error;
  /** Id of the socket concerned, if any. */
  readonly connectionId: number | undefined;
  constructor(error: MuxPoolError | Error, connectionId?: number) {
    super("error");
    this.error = error;
    this.connectionId = connectionId;
  }
}

/** `idle`: nothing in flight or queued any more. `shutdown`: close or destroy finished. */
export class PoolEvent extends Event {
  constructor(type: "idle" | "shutdown") {
    super(type);
  }
}

/**
 * A change made to the live pool: `resize` (`size`, `from`), `update`
 * (`changes`: the options that changed, with their new values; `previous`:
 * their values before), `reload` (`count`:
 * sockets to replace) and `reloaded` (`count` replaced, `duration` in ms).
 */
export class PoolChangeEvent extends Event {
  readonly size: number | undefined;
  readonly from: number | undefined;
  readonly changes: Readonly<Record<string, unknown>> | undefined;
  readonly previous: Readonly<Record<string, unknown>> | undefined;
  readonly count: number | undefined;
  readonly duration: number | undefined;
  constructor(
    type: "resize" | "update" | "reload" | "reloaded",
    data: {
      size?: number;
      from?: number;
      changes?: Record<string, unknown>;
      previous?: Record<string, unknown>;
      count?: number;
      duration?: number;
    },
  ) {
    super(type);
    this.size = data.size;
    this.from = data.from;
    this.changes = data.changes;
    this.previous = data.previous;
    this.count = data.count;
    this.duration = data.duration;
  }
}

/**
 * Why a subscription moved: its socket was `"lost"` (its close event came, e.g. the server closed it, or it failed
 * the heartbeat), or a write found its close begun before that event (`"closing"`); or, make-before-break, it
 * `"expired"` (TTL) or drains for `"resize"` or `"reload"`.
 */
export type ResubscribeReason = "lost" | "closing" | "expired" | "resize" | "reload";

/** A subscription moved to another socket and the server confirmed it there (on the subscription and on the pool). */
export class ResubscribeEvent extends Event {
  /** The subscribe method. */
  readonly method: string;
  /** The server's new subscription id. */
  readonly id: unknown;
  /**
   * Ms it had no socket: from the moment its socket was known lost or closing until the server confirmed it on the
   * new one. 0 for a make-before-break move (the old one carried it until the new one ran). A socket that died
   * unnoticed (half-open) counts from when the heartbeat gave up on it: see `silence`.
   */
  readonly gap: number;
  /** Ms since the last event delivered (or the first confirmation) when the move was confirmed: covers a half-open socket's unnoticed time too. */
  readonly silence: number;
  /** Ids of the sockets it left and now lives on. */
  readonly from: number;
  readonly to: number;
  readonly reason: ResubscribeReason;
  constructor(
    method: string,
    id: unknown,
    move: { gap: number; silence: number; from: number; to: number; reason: ResubscribeReason },
  ) {
    super("resubscribe");
    this.method = method;
    this.id = id;
    this.gap = move.gap;
    this.silence = move.silence;
    this.from = move.from;
    this.to = move.to;
    this.reason = move.reason;
  }
}

/** Event type → event class, for typed listeners. */
export interface PoolEventMap {
  open: ConnectionEvent;
  close: ConnectionEvent;
  reconnect: ConnectionEvent;
  expire: ConnectionEvent;
  reroute: RerouteEvent;
  notification: NotificationEvent;
  error: PoolErrorEvent;
  idle: PoolEvent;
  shutdown: PoolEvent;
  resize: PoolChangeEvent;
  update: PoolChangeEvent;
  reload: PoolChangeEvent;
  reloaded: PoolChangeEvent;
  resubscribe: ResubscribeEvent;
}

/** `addEventListener` / `removeEventListener` typed by an event map such as {@link PoolEventMap}. */
export interface TypedEventTargetInstance<M extends object> extends EventTarget {
  addEventListener<K extends keyof M & string>(
    type: K,
    listener: ((event: M[K]) => void) | { handleEvent(event: M[K]): void } | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof M & string>(
    type: K,
    listener: ((event: M[K]) => void) | { handleEvent(event: M[K]): void } | null,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/**
 * An `EventTarget` whose listeners are typed by an event map. At run time it
 * is `EventTarget` itself: the typing costs no code.
 */
export const TypedEventTarget: new <M extends object>() => TypedEventTargetInstance<M> = EventTarget as never;
