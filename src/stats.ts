/**
 * Snapshot shapes of `pool.stats()` and `pool.connections()`, and the
 * fixed-size latency window their percentiles come from.
 *
 * @module
 */

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
