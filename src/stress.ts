/**
 * `stressTest`: drives load through a pool and reports throughput, latency
 * percentiles and the pool's stats afterwards.
 *
 * @module
 */

import type { Pool } from "./pool.ts";
import { type LatencySnapshot, LatencyWindow, type PoolStats } from "./stats.ts";
import type { CallOptions } from "./options.ts";
import { checkNumber, onlyKnown } from "./validate.ts";

/** Options of {@link stressTest}. */
export interface StressOptions {
  /** Calls kept going at once. @default 64 */
  workers?: number;
  /** Calls each worker makes, one after another. @default 100 */
  opsPerWorker?: number;
  /** @default "echo" */
  method?: string;
  /** Params of every call, or a function of (worker, op) for each call. */
  params?: unknown | ((worker: number, op: number) => unknown);
  /** Options of every call. */
  callOptions?: CallOptions;
}

/** What {@link stressTest} measured. */
export interface StressResult {
  ops: number;
  succeeded: number;
  failed: number;
  /** Failed calls by error code (or error name). */
  errors: Record<string, number>;
  durationMs: number;
  /** Settled calls per second. */
  throughput: number;
  latency: LatencySnapshot;
  stats: PoolStats;
}

/** Runs `workers × opsPerWorker` calls through `pool` and measures them. */
export async function stressTest(pool: Pool, options: StressOptions = {}): Promise<StressResult> {
  onlyKnown(options, ["workers", "opsPerWorker", "method", "params", "callOptions"]);
  const workers = options.workers ?? 64;
  const opsPerWorker = options.opsPerWorker ?? 100;
  checkNumber("workers", workers, 1, Infinity, "an integer");
  checkNumber("opsPerWorker", opsPerWorker, 1, Infinity, "an integer");
  const method = options.method ?? "echo";
  const params = options.params;
  const window = new LatencyWindow(Math.min(100_000, workers * opsPerWorker));
  let succeeded = 0;
  let failed = 0;
  const errors: Record<string, number> = {};
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < opsPerWorker; i++) {
        const t = performance.now();
        try {
          await pool.call(
            method,
            typeof params === "function" ? (params as (w: number, o: number) => unknown)(w, i) : params,
            options.callOptions,
          );
          succeeded++;
        } catch (error) {
          failed++;
          const code = (error as { code?: string })?.code ?? (error as Error)?.name ?? "unknown";
          errors[code] = (errors[code] ?? 0) + 1;
        }
        window.record(performance.now() - t);
      }
    }),
  );
  const durationMs = performance.now() - started;
  const ops = workers * opsPerWorker;
  return {
    ops,
    succeeded,
    failed,
    errors,
    durationMs: Math.round(durationMs),
    throughput: Math.round((ops / durationMs) * 1000),
    latency: window.snapshot(),
    stats: pool.stats(),
  };
}
