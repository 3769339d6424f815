// A Node client process of the benchmark: bench/run.mjs starts one per client
// (with --expose-gc) and sends it commands on stdin, so each client's CPU is
// measured in a process of its own, apart from the server and the harness.
import { createInterface } from "node:readline";
import { serveAgent } from "./agent.mjs";
import { NODE_CLIENTS } from "./clients.mjs";

const gc = globalThis.gc;
const usedBytes = () => {
  if (typeof gc !== "function") throw new Error("run with node --expose-gc");
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external; // external already includes arrayBuffers
};
await serveAgent(NODE_CLIENTS, createInterface({ input: process.stdin }), (s) => process.stdout.write(s), {
  cpuUsage: () => process.cpuUsage(),
  usedBytes,
});
process.exit(0);
