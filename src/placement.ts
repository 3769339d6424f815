/**
 * Where a call goes next: written at once (the fast path), into a
 * connection's queue, into the pool's wait queue, or refused; and moving
 * the calls of a connection that dies, drains or is checked out to the
 * others (`reroute` events). Which connection is the router's choice; what
 * a refused call becomes is the pool's (settlement).
 *
 * @module
 */

import { label, NOWHERE, type PendingCall, type Placement, POOL_QUEUE, SETTLED } from "./call.ts";
import type { Connection } from "./connection.ts";
import type { ConnectionSet } from "./connections.ts";
import { NoConnectionError, PoolClosedError, PoolExhaustedError } from "./errors.ts";
import { RerouteEvent } from "./events.ts";
import type { CallCounts } from "./host.ts";
import type { ResolvedOptions } from "./options.ts";
import { CallQueue } from "./queue.ts";
import { pinnedLost } from "./recovery.ts";
import { strategyError } from "./router.ts";
import type { StatsRecorder } from "./stats.ts";

/** What placement asks of the pool. */
export interface PlacementHost {
  readonly options: ResolvedOptions;
  readonly counts: CallCounts;
  readonly stats: StatsRecorder;
  now(): number;
  closed(): boolean;
  /** Settles a call that cannot be placed. */
  fail(call: PendingCall, error: unknown): void;
  emit(event: Event): void;
}

/** How calls moved off a connection may wait: for it to reconnect, or in the pool queue. */
export interface MoveOptions {
  /** With no open connection to go to, wait in `from`'s queue for it to reconnect. */
  readonly waitForFrom: boolean;
}

export class Placer {
  /** Calls no connection can take yet (every matching one is full or down). */
  readonly waiting = new CallQueue<PendingCall>((c) => c.where === POOL_QUEUE);
  readonly #host: PlacementHost;
  readonly #connections: ConnectionSet;

  constructor(host: PlacementHost, connections: ConnectionSet) {
    this.#host = host;
    this.#connections = connections;
  }

  /**
   * Puts a call where it goes next. `from` is the connection it is being
   * moved off (never chosen). Returns the connection that took it, `null`
   * for the pool queue, or `undefined` if it settled.
   */
  place(call: PendingCall, placement: Placement, from?: Connection): Connection | null | undefined {
    const pin = call.pin;
    if (pin !== undefined) {
      const conn = pin.conn as Connection;
      const live = pin.setup === true ? conn.settingUp : conn.state === "open" || conn.state === "draining";
      if (conn.generation !== pin.generation || !live) {
        this.#host.fail(call, pinnedLost(call, conn.id));
        return undefined;
      }
      if (pin.setup !== true) return this.#deliver(call, conn, placement);
      conn.write(call); // setup's calls go at once, ahead of the calls waiting for the socket
      return call.where === SETTLED ? undefined : conn;
    }
    const target = this.#route(call, from);
    return target === false ? undefined : this.#deliver(call, target, placement);
  }

  /** The router's choice for `call`; `false` when a strategy or filter threw (the call has failed with it). */
  #route(call: PendingCall, from: Connection | undefined): Connection | null | undefined | false {
    try {
      return this.#connections.route(call, from);
    } catch (error) {
      this.#host.fail(call, strategyError(error));
      return false;
    }
  }

  /** The second half of {@link place}: the call goes to `target` (`null`: the pool queue; `undefined`: no connection matches). */
  #deliver(call: PendingCall, target: Connection | null | undefined, placement: Placement): Connection | null | undefined {
    const host = this.#host;
    if (host.closed()) {
      // Being moved while a listener destroyed the pool: nothing may be placed now.
      host.fail(call, new PoolClosedError(`${label(call)} rejected: the pool closed while it was being placed`));
      return undefined;
    }
    if (target === undefined) {
      const n = this.#connections.list.length;
      const why = n === 0
        ? this.#connections.noneLeftError(label(call))
        : new NoConnectionError(`${label(call)}: no socket matches its filter (${n} sockets)`);
      host.fail(call, why);
      return undefined;
    }
    const { options, counts } = host;
    if (
      target !== null && (target.state === "open" || target.state === "draining") && target.queued === 0 &&
      target.inFlight < options.maxInFlight && target.writable()
    ) {
      target.write(call); // fast path: no queue
      return call.where === SETTLED ? undefined : (call.conn as Connection | undefined) ?? null; // it may have gone elsewhere
    }
    if (placement === "admit" && counts.queued >= options.maxQueue) {
      const sockets = this.#connections.list.length;
      const why = `${counts.queued} calls already wait (maxQueue ${options.maxQueue}), ${counts.inFlight} in flight on ${sockets} sockets`;
      host.fail(call, new PoolExhaustedError(`${label(call)} refused: ${why}`));
      return undefined;
    }
    if (target === null) {
      call.where = POOL_QUEUE;
      call.conn = undefined;
      this.waiting.push(call);
      counts.queued++;
    } else target.enqueue(call);
    return target;
  }

  /** Places again the calls of the pool queue, now that a connection may take some. */
  placeWaiting(): void {
    if (this.waiting.live === 0) return;
    const waiting = this.waiting.take();
    this.#host.counts.queued -= waiting.length;
    for (const call of waiting) {
      call.where = NOWHERE;
      this.place(call, "move");
    }
  }

  /** Fails every call of the pool queue (no connection left, or the pool closed). */
  failWaiting(error: (call: PendingCall) => unknown): void {
    // Each fail takes its call out of the count (the queue is emptied first).
    for (const call of this.waiting.removeAll()) if (call.where === POOL_QUEUE) this.#host.fail(call, error(call));
  }

  /**
   * Moves calls taken from `from`'s queue to other connections (pinned ones
   * stay on `from`: a session never changes socket). One `reroute` event
   * per destination.
   */
  moveQueued(from: Connection, calls: readonly PendingCall[], how: MoveOptions): void {
    if (calls.length === 0) return;
    const moved = new Map<Connection | null, number>();
    for (const call of calls) {
      if (call.pin !== undefined) from.enqueue(call);
      else {
        const placed = this.moveOne(call, from, how);
        if (placed !== undefined) moved.set(placed, (moved.get(placed) ?? 0) + 1);
      }
    }
    if (moved.size === 0) return;
    const now = this.#host.now();
    const fromSnapshot = from.snapshot(now);
    for (const [to, count] of moved) {
      this.#host.stats.rerouted += count;
      this.#host.emit(new RerouteEvent(count, fromSnapshot, to === null ? null : to.snapshot(now)));
    }
  }

  /** Moves one unpinned call off `from`; returns where it went (`null`: the pool queue), or `undefined` if it stayed on `from` or settled. */
  moveOne(call: PendingCall, from: Connection, how: MoveOptions): Connection | null | undefined {
    const target = this.#route(call, from);
    if (target === false) return undefined;
    // Only an open socket is worth the move: during an outage the others
    // are waiting to reconnect too, and bouncing calls between them helps nobody.
    if (how.waitForFrom && (target === null || (target !== undefined && target.state !== "open"))) {
      from.enqueue(call);
      return undefined;
    }
    return this.#deliver(call, target, "move"); // routed once: the strategy is not asked twice
  }
}
