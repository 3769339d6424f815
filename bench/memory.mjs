// Memory per pending call, muxpool against a raw `ws` client, and what is
// left after every call settled (should be nothing). Bounded: N calls once.
//
//   node --expose-gc bench/memory.mjs          (npm run bench runs it)
//   CALLS=50000 node --expose-gc bench/memory.mjs
import { Pool } from "../dist/index.js";
import { rawClient, startServer } from "./raw.mjs";

if (typeof globalThis.gc !== "function") {
  console.error("run with node --expose-gc");
  process.exit(2);
}
const CALLS = Number(process.env.CALLS ?? 20_000);

const server = await startServer();
const url = server.url;

function used() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

/**
 * Opens the client, records memory, makes CALLS calls the server answers
 * after `holdMs`, records memory while they are pending (100 ms in), awaits
 * them all, and records again.
 */
async function measure(open, holdMs) {
  const client = await open();
  const base = used();
  const pending = Array.from({ length: CALLS }, () => client.call(holdMs));
  await new Promise((r) => setTimeout(r, 100)); // frames written, replies held by the server
  const during = used();
  const results = await Promise.all(pending);
  if (results.some((r) => r !== holdMs)) throw new Error("wrong result");
  pending.length = 0;
  results.length = 0;
  await new Promise((r) => setTimeout(r, 50));
  const after = used();
  await client.close();
  return { perCall: (during - base) / CALLS, left: after - base };
}

async function raw() {
  const client = await rawClient(url, 4);
  return { call: (holdMs) => client.call("sleep", [holdMs]), close: client.close };
}

async function mux(maxInFlight, callOptions) {
  const pool = new Pool(url, { size: 4, maxInFlight, maxQueue: CALLS, heartbeat: false });
  while (pool.stats().connections.open < 4) await new Promise((r) => setTimeout(r, 5));
  return { call: (holdMs) => pool.call("sleep", [holdMs], callOptions), close: () => pool.close() };
}

// The queued case drains 1,024 at a time, so its hold is short enough to
// finish well within the default 30 s deadline.
const rows = [
  ["raw ws, all sent", await measure(raw, 1_000)],
  ["muxpool, all in flight", await measure(() => mux(CALLS), 1_000)],
  ["muxpool, 1,024 in flight, rest queued", await measure(() => mux(256), 200)],
  // A timeout of its own on every call, as in the README's first example.
  ["muxpool, all in flight, timeout: 5000", await measure(() => mux(CALLS, { timeout: 5_000 }), 1_000)],
];
const base = rows[0][1].perCall;
console.log(`muxpool memory: ${CALLS} pending calls, 4 sockets, Node ${process.version} (heap + external, after gc)`);
console.log("case                                     bytes/call  ratio   left after settle");
for (const [name, r] of rows) {
  console.log(`${name.padEnd(39)} ${Math.round(r.perCall).toString().padStart(10)}  ${(r.perCall / base).toFixed(2).padStart(5)}   ${Math.round(r.left / 1024)} KiB`);
}
server.stop();
