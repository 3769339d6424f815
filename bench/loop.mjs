// The measuring loop, shared by Node, Deno and the browser page: plain
// JavaScript with no imports, so every runtime runs the same code.

/** The two workloads: JSON-RPC `add [1, 2]`, and `echo` of a 4 KiB string. */
export const PAYLOADS = {
  small: { method: "add", params: [1, 2], check: (r) => r === 3 },
  "4KiB": { method: "echo", params: ["x".repeat(4096)], check: (r) => typeof r === "string" && r.length === 4096 },
};

/**
 * Closed loop: `concurrency` workers, each making one call and, when it
 * settles, the next; so exactly `concurrency` calls are in flight until the
 * time is up. Stops starting calls at `durationMs` or after `maxCalls` calls,
 * whichever comes first, then waits for the calls in flight.
 *
 * @param {() => Promise<unknown>} call
 * @param {{ concurrency: number, durationMs: number, maxCalls: number, check: (r: unknown) => boolean }} o
 */
export async function closedLoop(call, { concurrency, durationMs, maxCalls, check }) {
  const latencies = new Float64Array(maxCalls);
  let issued = 0;
  let done = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    while (issued < maxCalls) {
      const t0 = performance.now();
      if (t0 >= deadline) return;
      issued++;
      const result = await call();
      latencies[done++] = performance.now() - t0;
      if (!check(result)) throw new Error(`wrong result: ${JSON.stringify(result)?.slice(0, 80)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - started;
  const sorted = latencies.subarray(0, done).sort();
  return {
    calls: done,
    elapsedMs,
    callsPerSec: (done / elapsedMs) * 1000,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
  };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, q) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * The bare client over the runtime's own WebSocket (Deno, browsers): ids from
 * a counter, a Map of resolvers, one send() per call, nothing else.
 */
export async function openWebSocketClient(url) {
  const ws = new WebSocket(url);
  const pending = new Map();
  let id = 0;
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    const settle = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) settle.reject(new Error(m.error.message));
    else settle.resolve(m.result);
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`could not connect to ${url}`)), { once: true });
  });
  return {
    call: (method, params) =>
      new Promise((resolve, reject) => {
        const rid = ++id;
        pending.set(rid, { resolve, reject });
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: rid, method, params }));
      }),
    close: async () => {
      const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
      ws.close(1000);
      await closed;
    },
  };
}
