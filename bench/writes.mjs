// How the calls of a closed loop travel (h-perf2): counts every `data` event and
// every write (`_write`/`_writev`) on the client's TCP socket, and times read to
// write (the client working) and write to read (the client waiting), per read.
// calls/read = calls/write = C means the C calls move as one convoy and the two
// processes take turns (docs/decisions.md, "Why not one write per tick").
//
//   node bench/writes.mjs [client] [C] [seconds]        client: a row of bench/clients.mjs
//   BENCH_MUXPOOL_BASELINE=/tmp/base/dist/index.js node bench/writes.mjs "muxpool (baseline)" 16
import net from "node:net";
import { fork } from "node:child_process";
process.env.WS_NO_BUFFER_UTIL = "1";
process.env.WS_NO_UTF_8_VALIDATE = "1";
const [name = "muxpool", c = "16", seconds = "2"] = process.argv.slice(2);
let reads = 0, writes = 0, writeCalls = 0, readBytes = 0, writeBytes = 0;
let lastRead = 0n, lastWrite = 0n, clientNs = 0n, waitNs = 0n, on = false;
const P = net.Socket.prototype;
const origEmit = P.emit;
P.emit = function (ev, ...a) {
  if (ev === "data" && on && this.remotePort !== undefined && !this.__ipc) {
    reads++;
    readBytes += a[0].length;
    const t = process.hrtime.bigint();
    if (lastWrite) waitNs += t - lastWrite;
    lastWrite = 0n;
    lastRead = t;
  }
  return origEmit.call(this, ev, ...a);
};
const origWritev = P._writev, origWrite = P._write;
const mark = (n, bytes) => {
  if (!on) return;
  writes++;
  writeCalls += n;
  writeBytes += bytes;
  const t = process.hrtime.bigint();
  if (lastRead) clientNs += t - lastRead;
  lastRead = 0n;
  lastWrite = t;
};
P._writev = function (chunks, cb) {
  mark(chunks.length, chunks.reduce((s, x) => s + x.chunk.length, 0));
  return origWritev.call(this, chunks, cb);
};
P._write = function (chunk, enc, cb) {
  mark(1, chunk.length);
  return origWrite.call(this, chunk, enc, cb);
};
const { NODE_CLIENTS } = await import("./clients.mjs");
const { closedLoop, PAYLOADS } = await import("./loop.mjs");
const server = fork(new URL("./server.mjs", import.meta.url).pathname, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
const port = await new Promise((r) => server.once("message", (m) => r(m.port)));
const client = await NODE_CLIENTS[name].open(`ws://127.0.0.1:${port}`);
const { method, params, check } = PAYLOADS[process.env.PROFILE_PAYLOAD ?? "small"];
const call = () => client.call(method, params);
const loop = { concurrency: Number(c), maxCalls: 10_000_000, check };
await closedLoop(call, { ...loop, durationMs: 300 });
on = true;
const cpu0 = process.cpuUsage();
const r = await closedLoop(call, { ...loop, durationMs: Number(seconds) * 1000 });
const cpu = process.cpuUsage(cpu0);
on = false;
console.log(
  `${name.padEnd(14)} C=${c}: ${Math.round(r.callsPerSec)} calls/s, ${((cpu.user + cpu.system) / r.calls).toFixed(2)} µs CPU/call, p50 ${
    r.p50.toFixed(3)
  } ms | calls/read ${(r.calls / reads).toFixed(1)} calls/writev ${(r.calls / writes).toFixed(1)} (frames/writev ${
    (writeCalls / writes).toFixed(1)
  }) | read->write ${(Number(clientNs) / 1e3 / reads).toFixed(1)} µs, write->read ${(Number(waitNs) / 1e3 / reads).toFixed(1)} µs`,
);
await client.close();
server.kill();
