/**
 * `callAll`: many calls in parallel across the pool, at most `concurrency`
 * at a time, each reported once by its index, never rejecting as a whole.
 *
 * @module
 */

import type { CallOptions } from "./options.ts";
import { checkNumber, onlyKnown } from "./validate.ts";

/** One request of `callAll`. */
export interface CallRequest {
  method: string;
  params?: unknown;
  options?: CallOptions;
}

/** What `callAll` reports: every request once, by its index. */
export interface CallAllResult<T = unknown> {
  successful: { index: number; value: T }[];
  failed: { index: number; error: unknown }[];
}

/** Runs `requests` through `call`, at most `concurrency` (default `fallback`) at a time; `1` runs them one after another. */
export async function callAll<T>(
  call: (method: string, params?: unknown, options?: CallOptions) => Promise<T>,
  requests: readonly CallRequest[],
  options: { concurrency?: number },
  fallback: number,
): Promise<CallAllResult<T>> {
  onlyKnown(options, ["concurrency"]);
  const concurrency = options.concurrency ?? fallback;
  checkNumber("concurrency", concurrency, 1, Infinity, "an integer");
  const result: CallAllResult<T> = { successful: [], failed: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const index = next++;
      const r = requests[index]!;
      try {
        result.successful.push({ index, value: await call(r.method, r.params, r.options) });
      } catch (error) {
        result.failed.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  result.successful.sort((a, b) => a.index - b.index);
  result.failed.sort((a, b) => a.index - b.index);
  return result;
}
