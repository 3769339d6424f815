// Throughput and latency of muxpool against a raw `ws` client doing the same
// request/response work by hand, measured side by side in the same run
// against the same server process. Figures are reported as ratios to raw ws:
// this machine is shared and noisy, absolute numbers are not comparable
// across runs. Bounded: every round stops at CALLS calls or ROUND_MS ms.
//
//   npm run bench            (builds first)
//   CALLS=50000 ROUNDS=5 npm run bench
import { Pool } from "../dist/index.js";
import { rawClient, startServer } from "./raw.mjs";

const CALLS = Number(process.env.CALLS ?? 60_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ROUND_MS = Number(process.env.ROUND_MS ?? 15_000);
const CONCURRENCY = 256;

const server = await startServer();
const url = server.url;

function percentile(sorted, q) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function drive(call) {
  const latencies = [];
  let issued = 0;
  const started = performance.now();
  const deadline = started + ROUND_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < CALLS && performance.now() < deadline) {
        const i = issued++;
        const t = performance.now();
        const r = await call(i);
        if (r !== i) throw new Error(`wrong result ${r} for ${i}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const ms = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { callsPerSec: (latencies.length / ms) * 1000, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

async function rawWs(sockets) {
  const client = await rawClient(url, sockets);
  const result = await drive((i) => client.call("echo", [i]));
  await client.close();
  return result;
}

async function muxpool(size) {
  const pool = new Pool(url, { size, maxInFlight: CONCURRENCY, heartbeat: false });
  await pool.ready();
  while (pool.stats().connections.open < size) await new Promise((r) => setTimeout(r, 5));
  const result = await drive((i) => pool.call("echo", [i]));
  await pool.close();
  return result;
}

const cases = {
  "raw ws, 1 socket": () => rawWs(1),
  "muxpool, 1 socket": () => muxpool(1),
  "raw ws, 4 sockets": () => rawWs(4),
  "muxpool, 4 sockets": () => muxpool(4),
};
const runs = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
await muxpool(1); // warm-up: JIT, sockets
await rawWs(1);
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(cases)) runs[name].push(await run());
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = Object.fromEntries(
  Object.entries(runs).map(([name, rs]) => [name, { callsPerSec: median(rs.map((r) => r.callsPerSec)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)) }]),
);
console.log(`muxpool bench: ${CALLS} calls per round, ${CONCURRENCY} in flight, median of ${ROUNDS} rounds, Node ${process.version}`);
console.log("case                 calls/s   ratio   p50 ms   p99 ms");
for (const [name, s] of Object.entries(summary)) {
  const base = summary[name.startsWith("muxpool, 1") || name.startsWith("raw ws, 1") ? "raw ws, 1 socket" : "raw ws, 4 sockets"].callsPerSec;
  console.log(`${name.padEnd(20)} ${Math.round(s.callsPerSec).toString().padStart(8)}   ${(s.callsPerSec / base).toFixed(2).padStart(5)}   ${s.p50.toFixed(2).padStart(6)}   ${s.p99.toFixed(2).padStart(6)}`);
}
server.stop();
