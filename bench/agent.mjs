// One client runtime's side of the benchmark: opens a client, runs one cell
// (warm-up, then the measured closed loop) or one memory measure, closes the
// client and reports. Plain JavaScript with no imports beyond ./loop.mjs, so
// the Node agent, the Deno agent and the browser page all run this code.
//
// Runtime hooks: `cpuUsage()` → { user, system } in µs, or null where the
// runtime cannot tell (may return a promise: the browser asks the harness);
// `usedBytes()` → heap + external after a full GC.
import { closedLoop, PAYLOADS } from "./loop.mjs";

/**
 * @param {Record<string, { open(url: string): Promise<Client>, memory?(url: string, calls: number): Promise<Client> }>} clients
 * @param {{ client: string, url: string, payload: string, concurrency: number, durationMs: number, warmMs: number, maxCalls: number }} cell
 * @param {{ cpuUsage?: () => ({ user: number, system: number } | null | Promise<{ user: number, system: number } | null>) }} hooks
 */
export async function runCell(clients, cell, { cpuUsage = () => null } = {}) {
  const { method, params, check } = PAYLOADS[cell.payload];
  const client = await clients[cell.client].open(cell.url);
  try {
    const call = () => client.call(method, params);
    const loop = { concurrency: cell.concurrency, maxCalls: cell.maxCalls, check };
    await closedLoop(call, { ...loop, durationMs: cell.warmMs });
    const cpu0 = await cpuUsage();
    const result = await closedLoop(call, { ...loop, durationMs: cell.durationMs });
    const cpu1 = await cpuUsage();
    const cpuUsPerCall = cpu0 && cpu1 ? (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / result.calls : null;
    return { ...result, cpuUsPerCall };
  } finally {
    await client.close();
  }
}

/**
 * Bytes per pending call: `calls` calls to `hold`, which the server answers
 * only when the client calls `release`; measured as heap + external after GC,
 * against the same client just before, once one more call has made the round
 * trip (the server reads a socket in order, so by then every held call's
 * frame has left the client and no write buffer is counted). The array that
 * holds the promises is allocated before the baseline, so it is not counted.
 * Fails if any call settled before the measure.
 */
export async function measureMemory(clients, { client: name, url, calls }, { usedBytes }) {
  const entry = clients[name];
  // Room for every held call, the round trip after them, and the `release`.
  const client = await (entry.memory ?? entry.open)(url, calls + 2);
  try {
    // Warm the path once so compiled code and lazily made state are in the baseline.
    await Promise.all(Array.from({ length: 64 }, () => client.call("add", [1, 2])));
    const pending = new Array(calls).fill(null);
    const base = await usedBytes();
    for (let i = 0; i < calls; i++) pending[i] = client.call("hold", [7]);
    // A later tick, so a client that batches a tick's calls sends this one alone.
    await new Promise((resolve) => setTimeout(resolve, 10));
    if ((await client.call("add", [1, 2])) !== 3) throw new Error("wrong result from add");
    const during = await usedBytes();
    // Had any call settled already, this race would end in a microtask, before the timer.
    const early = await Promise.race([Promise.race(pending).then(() => true), new Promise((resolve) => setTimeout(resolve, 0, false))]);
    if (early) throw new Error("a held call settled before the measure");
    const released = await client.call("release", []);
    const results = await Promise.all(pending);
    if (released !== calls || results.some((r) => r !== 7)) throw new Error(`the server held ${released} of ${calls} calls, or a result was wrong`);
    return { bytesPerCall: (during - base) / calls };
  } finally {
    await client.close();
  }
}

/**
 * Serves commands, one JSON object per line, until `{ op: "exit" }` or the
 * end of input; writes one JSON line per command: `{ ok: true, ... }`, or
 * `{ ok: false, error, unsupported }`.
 */
export async function serveAgent(clients, lines, write, hooks) {
  for await (const line of lines) {
    if (line.trim() === "") continue;
    const cmd = JSON.parse(line);
    if (cmd.op === "exit") break;
    try {
      const result = cmd.op === "memory" ? await measureMemory(clients, cmd, hooks) : await runCell(clients, cmd, hooks);
      write(JSON.stringify({ ok: true, ...result }) + "\n");
    } catch (error) {
      write(JSON.stringify({ ok: false, error: String(error?.message ?? error), unsupported: error?.name === "Unsupported" }) + "\n");
    }
  }
}
