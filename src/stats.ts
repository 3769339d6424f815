/**
 * Snapshot shapes of `pool.stats()` and `pool.connections()`, the
 * fixed-size latency window their percentiles come from, and the recorder
 * that keeps the pool's counters.
 *
 * @module
 */

import { TimeoutError } from "./errors.ts";
import type { ConnectionState } from "./strategies.ts";

/** Latency percentiles in ms over a recent window (0 when no sample yet). */
export interface LatencySnapshot {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** `pool.stats()`: a fresh plain object, never a live view. */
export interface PoolStats {
  connections: { total: number; open: number; connecting: number; draining: number };
  /** Open sockets with room under `maxInFlight`. */
  available: number;
  /** Open sockets with at least one call in flight. */
  inUse: number;
  calls: {
    inFlight: number;
    queued: number;
    succeeded: number;
    /** Every rejected call; `timedOut` is part of it. */
    failed: number;
    /** `failed` by error code (`ERR_TIMEOUT`, `ERR_REMOTE`, …); `ABORTED`: by the caller's own signal. Sums to `failed`. */
    failedBy: Record<string, number>;
    timedOut: number;
    rerouted: number;
    retried: number;
  };
  reconnects: number;
  expired: number;
  protocolErrors: number;
  latency: LatencySnapshot;
  subscriptions: SubscriptionStats;
}

/** `pool.stats().subscriptions`. */
export interface SubscriptionStats {
  /** Subscriptions confirmed and not ended. */
  active: number;
  /**
   * Of those, the ones no socket carries now: their socket went and none has room for them yet (every open one
   * carries `maxSubscriptionsPerSocket`, e.g. after `resize` down), or their subscribe on another is in flight.
   */
  waiting: number;
  /** Moves to another socket. */
  resubscribed: number;
  /** Events dropped because their `key` was delivered recently. */
  duplicatesDropped: number;
  /** Events dropped, oldest first, from a full buffer (`bufferSize`), or past 1024 that came before their subscribe reply. */
  overflowed: number;
  /** Unsubscribe calls the server refused (an error, or `false`) or did not answer: those may still run there. */
  unsubscribeFailed: number;
}

/** One socket in `pool.connections()` and in socket events. */
export interface ConnectionSnapshot {
  id: number;
  /** Credentials redacted. */
  url: string;
  state: ConnectionState;
  /** Ms since this socket opened (0 while connecting). */
  age: number;
  /** The socket's TTL after jitter, in ms; 0 = none. */
  ttl: number;
  inFlight: number;
  queued: number;
  /** Bytes written but not yet handed to the network (the socket's `bufferedAmount`). */
  buffered: number;
  /** Frames sent and received on this socket slot, across reconnects. */
  sent: number;
  received: number;
  /** Failed connect attempts in a row (0 when healthy). */
  attempt: number;
  /** `withConnection({ exclusive: true })` holds it. */
  exclusive: boolean;
  /** Subscriptions it carries. */
  subscriptions: number;
  tags: Readonly<Record<string, string>>;
  latency: LatencySnapshot;
}

/** A ring of the last N latency samples. Recording is O(1); percentiles sort a copy. */
export class LatencyWindow {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;

  constructor(size: number) {
    this.#samples = new Float64Array(size);
  }

  record(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count++;
  }

  snapshot(): LatencySnapshot {
    if (this.#count === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
    const sorted = this.#samples.slice(0, this.#count).sort();
    const at = (q: number): number => round(sorted[Math.min(this.#count - 1, Math.ceil(q * this.#count) - 1)]!);
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted[this.#count - 1]!) };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** The part of a connection the stats snapshot counts. */
export interface CountedConnection {
  readonly state: ConnectionState;
  readonly inFlight: number;
}

/**
 * The pool's counters. Everything a snapshot reports that is not read off
 * the connections at the time: calls settled by outcome, moves, re-sends,
 * reconnects, expiries, protocol errors and the latency window.
 */
export class StatsRecorder {
  succeeded = 0;
  timedOut = 0;
  rerouted = 0;
  retried = 0;
  reconnects = 0;
  expired = 0;
  protocolErrors = 0;
  /** Rejected calls by error code; `ABORTED`: by the caller's own signal. */
  readonly #failedBy: Record<string, number> = {};
  readonly latency: LatencyWindow;

  constructor(latencyWindow: number) {
    this.latency = new LatencyWindow(latencyWindow);
  }

  /** A call rejected with `error`, counted under `code` (a `TimeoutError` also counts in `timedOut`). */
  failed(code: string, error?: unknown): void {
    this.#failedBy[code] = (this.#failedBy[code] ?? 0) + 1;
    if (error instanceof TimeoutError) this.timedOut++;
  }

  /** `pool.stats()`: the counters, and what `connections` and `calls` say now. */
  snapshot(
    connections: Iterable<CountedConnection>,
    calls: { inFlight: number; queued: number },
    maxInFlight: number,
    subscriptions: SubscriptionStats,
  ): PoolStats {
    let total = 0;
    let open = 0;
    let connecting = 0;
    let draining = 0;
    let available = 0;
    let inUse = 0;
    for (const c of connections) {
      total++;
      if (c.state === "open") {
        open++;
        if (c.inFlight < maxInFlight) available++;
        if (c.inFlight > 0) inUse++;
      } else if (c.state === "connecting") connecting++;
      else if (c.state === "draining") draining++;
    }
    return {
      connections: { total, open, connecting, draining },
      available,
      inUse,
      calls: {
        inFlight: calls.inFlight,
        queued: calls.queued,
        succeeded: this.succeeded,
        failed: Object.values(this.#failedBy).reduce((sum, n) => sum + n, 0),
        failedBy: { ...this.#failedBy },
        timedOut: this.timedOut,
        rerouted: this.rerouted,
        retried: this.retried,
      },
      reconnects: this.reconnects,
      expired: this.expired,
      protocolErrors: this.protocolErrors,
      latency: this.latency.snapshot(),
      subscriptions,
    };
  }
}
