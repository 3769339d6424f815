/**
 * `pool.subscribe()`: server subscriptions that outlive their socket. Each
 * lives on one connection (its server id is valid there only); when that
 * socket is lost or starts closing it subscribes again on another, and when
 * it expires or drains it subscribes on another first and then unsubscribes
 * on the old one (make-before-break; a draining connection is not retired
 * while it still carries one). Events go to a bounded buffer the
 * {@link Subscription}'s async iterator reads.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import { PoolClosedError, RemoteError, TimeoutError } from "./errors.ts";
import { ResubscribeEvent, type ResubscribeReason, TypedEventTarget } from "./events.ts";
import type { CallOptions, ResolvedOptions } from "./options.ts";
import type { SubscriptionStats } from "./stats.ts";
import { checkNumber, checkObject, fail, MAX_DELAY, onlyKnown } from "./validate.ts";

/** Options of `pool.subscribe`. */
export interface SubscribeOptions<E = unknown> {
  /** The method that ends the subscription on the server, called with `[id]` (e.g. `"eth_unsubscribe"`). */
  unsubscribe: string;
  /** The notification method that carries its events (e.g. `"eth_subscription"`); without it, any method whose subscription id matches. */
  notification?: string;
  /** Events whose key was delivered recently (the last 1024 keys) are dropped, counted in `duplicatesDropped`. */
  key?: (event: E) => unknown;
  /** Events kept for a slow consumer; on overflow the oldest is dropped, counted in `overflowed`. @default 1000 */
  bufferSize?: number;
  /**
   * Ms for the server to confirm (at a move too: then another socket is tried) and for each unsubscribe call. A
   * confirmation that comes later, within as long again, is unsubscribed at once. @default the pool's `timeout`
   */
  timeout?: number;
  /** Aborting ends the subscription (unsubscribing); the promise, or the iterator, rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** What the subscriptions need of the pool. */
export interface SubscriptionHost {
  readonly options: ResolvedOptions;
  now(): number;
  /** The pool's state: `"open"`, `"closing"`, `"closed"`. */
  state(): string;
  /** The connections, in slot order. */
  list(): readonly Connection[];
  /** A call pinned to `conn`. */
  call(method: string, params: unknown, options: CallOptions, conn: Connection): Promise<unknown>;
  /** A draining connection that carries nothing any more may close. */
  retire(conn: Connection): void;
  emit(event: Event): void;
}

const KEYS = 1024;
/** Events kept per subscription id before its subscribe reply is read. */
const EARLY = 1024;
const noop = (): void => {};

/** The state of one subscription, kept here; the {@link Subscription} reads it. */
export interface Entry {
  sub: Subscription<unknown>;
  readonly method: string;
  readonly params: unknown;
  readonly o: SubscribeOptions;
  readonly size: number;
  readonly timeout: number;
  /** The connection carrying it, and its server id there. */
  carrier?: Connection | undefined;
  sid?: unknown;
  /** A subscribe call is in flight. */
  busy?: boolean;
  /** It needs another carrier. */
  moving: boolean;
  /** The socket it last left, and why, for the `resubscribe` event. */
  from: number;
  why: ResubscribeReason;
  /** When it lost its carrier (the socket was lost or began closing); 0 while one carries it, or a move is make-before-break. */
  lostAt: number;
  confirmed?: boolean;
  ended?: boolean;
  lastEvent?: unknown;
  /** When an event was last delivered (or it was first confirmed). */
  lastAt: number;
  buf: unknown[];
  /** Make-before-break: the new carrier's events, held until the old one's unsubscribe is answered (its last events come first). */
  held?: unknown[] | undefined;
  /** Readers waiting for the next event, oldest first (several `next()` calls may wait at once). */
  waiters: [(r: IteratorResult<unknown>) => void, (error: unknown) => void][];
  error?: unknown;
  seen: Set<unknown>;
  counts: { delivered: number; resubscribed: number; duplicatesDropped: number; overflowed: number };
  settle: { resolve: (s: Subscription<unknown>) => void; reject: (e: unknown) => void };
  timer?: ReturnType<typeof setTimeout>;
  onAbort: () => void;
  closing?: Promise<void>;
}

/**
 * A live server subscription: an async iterable of its events
 * (`for await (const event of sub)`; `break` unsubscribes), with
 * `resubscribe` events when it moves to another socket.
 */
export class Subscription<E = unknown> extends TypedEventTarget<{ resubscribe: ResubscribeEvent }> implements AsyncIterableIterator<E> {
  /** The subscribe method. */
  readonly method: string;
  readonly #e: Entry;
  readonly #end: () => Promise<void>;

  /** @internal made by `pool.subscribe` */
  constructor(entry: Entry, end: () => Promise<void>) {
    super();
    this.method = entry.method;
    this.#e = entry;
    this.#end = end;
  }

  /** The server's subscription id now (it changes when the subscription moves). */
  get id(): unknown {
    return this.#e.sid;
  }

  /** Its counters: events delivered, moves, duplicates dropped (`key`), events dropped on overflow (`bufferSize`). */
  stats(): { delivered: number; resubscribed: number; duplicatesDropped: number; overflowed: number } {
    return { ...this.#e.counts };
  }

  /** Ends it: calls the unsubscribe method on its socket (best effort, errors swallowed) and ends the iterator. Idempotent. */
  unsubscribe(): Promise<void> {
    return this.#end();
  }

  next(): Promise<IteratorResult<E>> {
    const e = this.#e;
    return new Promise((resolve, reject) => {
      if (e.buf.length > 0) return resolve({ value: e.buf.shift() as E, done: false });
      const error = e.error;
      e.error = undefined;
      if (error !== undefined) reject(error);
      else if (e.ended) resolve({ value: undefined, done: true });
      else e.waiters.push([resolve as (r: IteratorResult<unknown>) => void, reject]);
    });
  }

  /** `break` out of `for await`: unsubscribes. */
  async return(): Promise<IteratorResult<E>> {
    await this.#end();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Every subscription of one pool. */
export class Subscriptions {
  readonly #host: SubscriptionHost;
  readonly #all = new Set<Entry>();
  /** `connection id + server id` → its subscription; `null`: being unsubscribed, its late events are dropped. */
  readonly #byId = new Map<string, Entry | null>();
  readonly #counts = { resubscribed: 0, duplicatesDropped: 0, overflowed: 0, unsubscribeFailed: 0 };
  /** A subscription found no socket with room: the next one freed wakes them. */
  #starved = false;
  /** Subscribe calls in flight, per connection: while one is, an unclaimed subscription event there may be one of its first. */
  readonly #pending = new Map<Connection, number>();
  /** Such events, kept until the subscribe reply names their id (the reply and the first events can come in one read). */
  readonly #early = new Map<string, unknown[]>();

  constructor(host: SubscriptionHost) {
    this.#host = host;
  }

  stats(): SubscriptionStats {
    let active = 0;
    let waiting = 0;
    for (const e of this.#all) {
      if (e.confirmed) {
        active++;
        if (e.carrier === undefined) waiting++;
      }
    }
    return { active, waiting, ...this.#counts };
  }

  subscribe<E>(method: string, params: unknown, options: SubscribeOptions<E>): Promise<Subscription<E>> {
    const host = this.#host;
    if (host.state() !== "open") return Promise.reject(new PoolClosedError(`subscribe "${method}" refused: the pool is ${host.state()}`));
    try {
      if (typeof method !== "string" || method === "") fail("method", "a non-empty string", method);
      const o = checkObject("options", options);
      onlyKnown(o, ["unsubscribe", "notification", "key", "bufferSize", "timeout", "signal"]);
      if (typeof o.unsubscribe !== "string" || o.unsubscribe === "") fail("unsubscribe", "a method name", o.unsubscribe);
      if (o.notification !== undefined && typeof o.notification !== "string") fail("notification", "a method name", o.notification);
      if (o.key !== undefined && typeof o.key !== "function") fail("key", "a function of the event", o.key);
      if (o.bufferSize !== undefined) checkNumber("bufferSize", o.bufferSize, 1, Infinity, "an integer");
      if (o.timeout !== undefined) checkNumber("timeout", o.timeout, 1, MAX_DELAY, "a number of ms");
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const e: Entry = {
        method,
        params,
        o: options as SubscribeOptions,
        size: options.bufferSize ?? 1000,
        timeout: options.timeout ?? host.options.timeout,
        moving: true,
        from: 0,
        why: "lost",
        lostAt: 0,
        lastAt: 0,
        buf: [],
        waiters: [],
        seen: new Set(),
        counts: { delivered: 0, resubscribed: 0, duplicatesDropped: 0, overflowed: 0 },
        settle: { resolve: resolve as (s: Subscription<unknown>) => void, reject },
        onAbort: () => void this.#end(e, signal!.reason),
      } as Omit<Entry, "sub"> as Entry;
      e.sub = new Subscription(e, () => this.#end(e));
      e.timer = setTimeout(() => {
        // Never sent: every open socket carried maxSubscriptionsPerSocket (or none was open) all that time.
        const why = e.busy ? "not confirmed" : "not sent: no open socket had room under maxSubscriptionsPerSocket";
        this.#end(e, new TimeoutError(`subscribe "${method}": ${why} within ${e.timeout} ms`));
      }, e.timeout);
      signal?.addEventListener("abort", e.onAbort);
      this.#all.add(e);
      this.#open(e);
    });
  }

  /**
   * A notification came in on `conn`: `true` if it belonged to a subscription
   * (delivered, or dropped as a late event of one being unsubscribed).
   */
  notify(conn: Connection, method: string, params: unknown): boolean {
    const codec = this.#host.options.codec;
    const p = params as { subscription?: unknown; result?: unknown } | null;
    let found: { id: unknown; event: unknown } | undefined;
    try {
      found = codec.subscriptionOf !== undefined
        ? codec.subscriptionOf(method, params)
        : typeof p === "object" && p !== null && "subscription" in p
        ? { id: p.subscription, event: p.result }
        : undefined;
    } catch {
      // A codec hook that throws says nothing: the message is a plain notification.
    }
    if (found === undefined) return false;
    const k = idOn(conn, found.id);
    const e = this.#byId.get(k);
    if (e === undefined && (this.#pending.get(conn) ?? 0) > 0) {
      const early = this.#early.get(k) ?? [];
      if (early.length < EARLY) early.push(found.event);
      else this.#counts.overflowed++; // past EARLY before the reply: dropped, counted with the full buffers
      this.#early.set(k, early);
      return true;
    }
    if (e === undefined || (e !== null && e.o.notification !== undefined && e.o.notification !== method)) return false;
    if (e !== null) this.#take(e, found.event, conn);
    return true;
  }

  /**
   * The subscriptions on `conn` need another socket: at once if it is gone or
   * closing (`"lost"`, `"closing"`), else make-before-break (it expired, or
   * drains for `resize` or `reload`). An expired socket whose replacement is
   * on its way keeps them until a socket opens (`wake()`): moving to another
   * old socket would only move them again when that one expires.
   */
  moveFrom(conn: Connection, why: ResubscribeReason): void {
    const alive = why !== "lost" && why !== "closing";
    const now = this.#host.now();
    for (const e of this.#all) {
      if (e.carrier !== conn) continue;
      if (!e.moving) e.why = why; // one waiting to move since a drain keeps that reason when its socket then goes
      e.moving = true;
      e.from = conn.id;
      if (!alive) {
        if (e.lostAt === 0) e.lostAt = now;
        this.#detach(e);
      }
      if (why !== "expired" || conn.state !== "open" || conn.replacement === undefined) this.#open(e, conn);
    }
  }

  /** A socket opened (or room appeared): the subscriptions waiting for one try again. */
  wake(): void {
    this.#starved = false;
    for (const e of this.#all) if (e.moving) this.#open(e);
  }

  /** The pool closes: every subscription ends, unsubscribing while the pool still can. */
  close(): void {
    for (const e of this.#all) void this.#end(e, undefined);
  }

  /**
   * Subscribes `e` on the least loaded open socket other than its carrier and `avoid` (a lost one, not yet marked
   * so); of equally loaded ones the newest (highest id), the one furthest from its own TTL or a reload's turn.
   */
  #open(e: Entry, avoid?: Connection): void {
    const host = this.#host;
    if (e.busy || e.ended || host.state() !== "open") return;
    const cap = host.options.maxSubscriptionsPerSocket;
    let to: Connection | undefined;
    for (const c of host.list()) {
      const usable = c !== e.carrier && c !== avoid && c.state === "open" && !c.expired && !c.retiring && !c.exclusive &&
        c.subscriptions < cap;
      if (usable && (to === undefined || c.subscriptions < to.subscriptions || (c.subscriptions === to.subscriptions && c.id > to.id))) {
        to = c;
      }
    }
    if (to === undefined) return void (this.#starved = true); // waits for wake()
    let params: unknown;
    try {
      params = typeof e.params === "function" ? e.params(e.lastEvent) : e.params;
    } catch (error) {
      return void this.#end(e, error);
    }
    e.busy = true;
    to.subscriptions++; // counted from now, so that subscriptions made together spread
    this.#pending.set(to, (this.#pending.get(to) ?? 0) + 1);
    // Given up on after `timeout` (the first one by e.timer: it rejects), the call still waits as long again for its
    // answer: a subscription the server confirms late is unsubscribed then, not left running there unknown to us.
    const attempt = { abandoned: false };
    if (e.confirmed) {
      e.timer = setTimeout(() => {
        attempt.abandoned = true;
        e.busy = false;
        this.#open(e, to); // a slow socket: another one
      }, e.timeout);
    }
    host.call(e.method, params, { timeout: Math.min(2 * e.timeout, MAX_DELAY) }, to).then((sid) => {
      const early = this.#settled(to, sid);
      if (attempt.abandoned || e.ended) return void this.#unsubscribe(e, to, sid, null).then(() => this.#drop(to));
      clearTimeout(e.timer);
      e.busy = false;
      const [old, oldSid] = [e.carrier, e.sid];
      // Make-before-break: the old one ends after the new one runs (the call, in flight, keeps a draining socket
      // open). Until its unsubscribe is answered its events still count: they may be ones the new one started
      // after; `key` drops the overlap. The new one's events wait until then: the two sockets' events can
      // cross, and the old one's come first (the server answers the unsubscribe after its last event).
      if (old !== undefined) {
        this.#release(e, e.held); // a move before the last one's old socket answered: its held events go first
        const held: unknown[] = (e.held = []);
        void this.#unsubscribe(e, old, oldSid, e).then(() => this.#release(e, held));
      }
      this.#detach(e);
      if (old !== undefined && old.state !== "closed") this.#byId.set(idOn(old, oldSid), e);
      e.carrier = to;
      e.sid = sid;
      this.#byId.set(idOn(to, sid), e);
      e.moving = false;
      const now = host.now();
      const silence = Math.round(now - e.lastAt); // before the early events move lastAt
      const gap = e.lostAt === 0 ? 0 : Math.round(now - e.lostAt);
      e.lostAt = 0;
      const first = !e.confirmed;
      if (first) {
        e.confirmed = true;
        e.lastAt = now;
        clearTimeout(e.timer);
        e.settle.resolve(e.sub);
      }
      for (const event of early) this.#take(e, event, to);
      // Its new socket began to drain, expire or close while the reply was on its way: on again, make-before-break.
      if (to.state !== "open" || to.expired || to.retiring) {
        e.moving = true;
        e.from = to.id;
        this.#open(e, to);
      }
      if (first) return;
      this.#counts.resubscribed++;
      e.counts.resubscribed++;
      const event = (): ResubscribeEvent =>
        new ResubscribeEvent(e.method, sid, {
          gap: Math.max(0, gap),
          silence: Math.max(0, silence),
          from: old?.id ?? e.from,
          to: to.id,
          reason: e.why,
        });
      e.sub.dispatchEvent(event());
      host.emit(event());
    }, (error: unknown) => {
      this.#settled(to, undefined);
      this.#drop(to);
      // Never answered, even late: the server may run it (as an unsubscribe not answered).
      if (attempt.abandoned || e.ended) return void (error instanceof TimeoutError && this.#counts.unsubscribeFailed++);
      clearTimeout(e.timer);
      e.busy = false;
      // Refused by the server (or never confirmed in time): final. A lost or slow socket: try another.
      if (error instanceof RemoteError || (!e.confirmed && error instanceof TimeoutError)) void this.#end(e, error);
      else queueMicrotask(() => this.#open(e));
    });
  }

  /** A subscribe call on `conn` settled (`sid` its id, if any): returns the events kept for that id; unclaimed ones go when none is pending. */
  #settled(conn: Connection, sid: unknown): unknown[] {
    const n = (this.#pending.get(conn) ?? 1) - 1;
    if (n > 0) this.#pending.set(conn, n);
    else this.#pending.delete(conn);
    const k = idOn(conn, sid);
    const early = sid === undefined ? [] : this.#early.get(k) ?? [];
    this.#early.delete(k);
    if (n === 0) { for (const key of this.#early.keys()) if (key.startsWith(`${conn.id} `)) this.#early.delete(key); }
    return early;
  }

  /** Takes `e` off its carrier (a draining one may then close). */
  #detach(e: Entry): void {
    const c = e.carrier;
    if (c === undefined) return;
    e.carrier = undefined;
    const k = idOn(c, e.sid);
    if (this.#byId.get(k) === e) this.#byId.delete(k);
    this.#drop(c);
  }

  /** `c` carries one subscription less (a draining one may then close). */
  #drop(c: Connection): void {
    c.subscriptions--;
    if (this.#starved) queueMicrotask(() => this.wake()); // after the caller is done (a lost socket is not marked so yet)
    if (c.state === "draining" && c.inFlight + c.queued + c.subscriptions === 0) this.#host.retire(c);
  }

  /** Calls the unsubscribe method on `conn` (best effort); meanwhile its late events go to `late` (`null`: dropped). */
  #unsubscribe(e: Entry, conn: Connection, sid: unknown, late: Entry | null): Promise<void> {
    if (conn.state !== "open" && conn.state !== "draining") return Promise.resolve();
    const k = idOn(conn, sid);
    this.#byId.set(k, late);
    const forget = (ok: unknown): void => {
      if (ok === false) this.#counts.unsubscribeFailed++; // the server may still run it: it said no, or did not answer
      if (this.#byId.get(k) === late) this.#byId.delete(k);
    };
    return this.#host.call(e.o.unsubscribe, [sid], { timeout: e.timeout }, conn).then(forget, () => forget(false));
  }

  /** An event from `conn`: held if it comes from a new carrier while the old one's last events may still be on their way. */
  #take(e: Entry, event: unknown, conn: Connection): void {
    if (e.held === undefined || conn !== e.carrier) return this.#deliver(e, event);
    if (e.held.length >= e.size) {
      e.held.shift();
      e.counts.overflowed++;
      this.#counts.overflowed++;
    }
    e.held.push(event);
  }

  /** The old carrier's unsubscribe settled (or `e` moves again): the events held meanwhile are delivered. */
  #release(e: Entry, held: unknown[] | undefined): void {
    if (held === undefined || e.held !== held) return;
    e.held = undefined;
    if (e.ended) return;
    for (const event of held) this.#deliver(e, event);
  }

  #deliver(e: Entry, event: unknown): void {
    if (e.o.key !== undefined) {
      let k: unknown;
      try {
        k = e.o.key(event);
      } catch (error) {
        return void this.#end(e, error);
      }
      if (e.seen.has(k)) {
        e.counts.duplicatesDropped++;
        this.#counts.duplicatesDropped++;
        return;
      }
      e.seen.add(k);
      if (e.seen.size > KEYS) e.seen.delete(e.seen.values().next().value);
    }
    e.lastEvent = event;
    e.lastAt = this.#host.now();
    e.counts.delivered++;
    const waiter = e.waiters.shift();
    if (waiter !== undefined) return waiter[0]({ value: event, done: false });
    if (e.buf.length >= e.size) {
      e.buf.shift();
      e.counts.overflowed++;
      this.#counts.overflowed++;
    }
    e.buf.push(event);
  }

  /** Ends `e` (unsubscribing on its socket); with `error`, the promise or the iterator rejects with it. */
  #end(e: Entry, error?: unknown): Promise<void> {
    if (e.ended) return e.closing ?? Promise.resolve();
    e.ended = true;
    e.moving = false;
    clearTimeout(e.timer);
    e.o.signal?.removeEventListener("abort", e.onAbort);
    this.#all.delete(e);
    const c = e.carrier;
    e.closing = c === undefined ? Promise.resolve() : this.#unsubscribe(e, c, e.sid, null);
    this.#detach(e);
    const waiters = e.waiters.splice(0);
    if (!e.confirmed) e.settle.reject(error ?? new PoolClosedError(`subscribe "${e.method}": the pool closed`));
    else if (waiters.length === 0) e.error = error;
    waiters.forEach(([resolve, reject], i) => (i === 0 && error !== undefined ? reject(error) : resolve({ value: undefined, done: true })));
    return e.closing.then(noop);
  }
}

function idOn(conn: Connection, id: unknown): string {
  return `${conn.id} ${String(id)}`;
}
