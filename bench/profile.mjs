// A small driver to profile one client (issue 11, item 4): starts bench/server.mjs
// in its own process, runs the closed loop of bench/loop.mjs on one client for a
// few seconds, prints calls/s and CPU µs per call. Run it under the profiler:
//
//   node --cpu-prof --cpu-prof-dir=.tmp/prof bench/profile.mjs [client] [C] [seconds]
//   PROFILE_POOL=/tmp/base/dist/index.js node bench/profile.mjs muxpool 16   (another build)
//
//   node --expose-gc bench/profile.mjs muxpool memory     bytes per pending call (bench/agent.mjs's measure)
//
// client: a row of bench/clients.mjs ("muxpool", "muxpool batch", "raw ws", …); default muxpool.
import { fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { closedLoop, PAYLOADS } from "./loop.mjs";

process.env.WS_NO_BUFFER_UTIL = "1";
process.env.WS_NO_UTF_8_VALIDATE = "1";
const [name = "muxpool", c = "16", seconds = "3"] = process.argv.slice(2);
const { NODE_CLIENTS } = await import("./clients.mjs");
const server = fork(join(dirname(fileURLToPath(import.meta.url)), "server.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
const port = await new Promise((resolve) => server.once("message", (m) => resolve(m.port)));
const url = `ws://127.0.0.1:${port}`;
if (c === "memory") {
  const { measureMemory } = await import("./agent.mjs");
  const usedBytes = () => {
    globalThis.gc();
    globalThis.gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  for (let round = 0; round < 3; round++) {
    const { bytesPerCall } = await measureMemory(NODE_CLIENTS, { client: name, url, calls: 20_000 }, { usedBytes });
    console.log(`${name}: ${Math.round(bytesPerCall)} bytes per pending call`);
  }
  server.kill();
  process.exit(0);
}
const client = await NODE_CLIENTS[name].open(url);
const { method, params, check } = PAYLOADS[process.env.PROFILE_PAYLOAD ?? "small"]; // PROFILE_PAYLOAD=4KiB
const call = () => client.call(method, params);
const loop = { concurrency: Number(c), maxCalls: 10_000_000, check };
await closedLoop(call, { ...loop, durationMs: 500 });
const cpu0 = process.cpuUsage();
const r = await closedLoop(call, { ...loop, durationMs: Number(seconds) * 1000 });
const cpu = process.cpuUsage(cpu0);
console.log(`${name} C=${c}: ${Math.round(r.callsPerSec)} calls/s, ${((cpu.user + cpu.system) / r.calls).toFixed(2)} µs CPU/call, p50 ${r.p50.toFixed(3)} ms`);
await client.close();
server.kill();
