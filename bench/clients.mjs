// The Node clients the benchmark compares, each on ONE socket to the same
// server. Every factory resolves, once its socket is open, to
// `{ call(method, params): Promise<result>, close(): Promise<void> }`.
import { once } from "node:events";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { Client as RpcWebSocketsClient } from "rpc-websockets";
import WebSocket from "ws";
import { Pool } from "../dist/index.js";
import { BASELINE_BUILD } from "./report.mjs";

/** Thrown by a client that the built library cannot make (an option it does not know yet). */
export class Unsupported extends Error {
  name = "Unsupported";
}

/**
 * The baseline by hand on `ws`: ids from a counter, a Map of resolvers, one
 * `ws.send()` (and so one write to the kernel) per call.
 *
 * With `corked`, the first send of a tick corks the TCP socket under ws
 * (`ws._socket`, a net.Socket) and a process.nextTick uncorks it, so every
 * frame written in that tick leaves in one writev. nextTick rather than a
 * microtask: Node runs nextTicks only after the microtask queue is empty, so
 * calls made from promise continuations in the same tick still get in.
 * The frames on the wire are the same as uncorked.
 */
async function rawWs(url, { corked }) {
  const ws = new WebSocket(url);
  const pending = new Map();
  let id = 0;
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    const settle = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) settle.reject(new Error(m.error.message));
    else settle.resolve(m.result);
  });
  await once(ws, "open");
  const socket = ws._socket;
  let isCorked = false;
  const uncork = () => {
    isCorked = false;
    socket.uncork();
  };
  return {
    call: (method, params) =>
      new Promise((resolve, reject) => {
        const rid = ++id;
        pending.set(rid, { resolve, reject });
        if (corked && !isCorked) {
          isCorked = true;
          socket.cork();
          process.nextTick(uncork);
        }
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: rid, method, params }));
      }),
    close: async () => {
      const closed = once(ws, "close");
      ws.close(1000);
      await closed;
    },
  };
}

/** rpc-websockets' `Client` with its defaults (reconnect off: a closed bench socket must stay closed). */
async function rpcWebSockets(url) {
  const client = new RpcWebSocketsClient(url, { reconnect: false });
  await once(client, "open");
  return {
    call: (method, params) => client.call(method, params),
    close: async () => {
      const closed = once(client, "close");
      client.close();
      await closed;
    },
  };
}

/**
 * muxpool from dist/index.js (or `PoolClass` from another build), one socket.
 * `options` beyond `size` are what the row measures (none for the defaults row).
 */
async function muxpool(url, options, PoolClass = Pool) {
  let pool;
  try {
    pool = new PoolClass(url, { size: 1, ...options });
  } catch (error) {
    // An option this build does not know yet is refused by name.
    const unknown = Object.keys(options).find((k) => error?.code === "ERR_INVALID_CONFIG" && (error.option === k || String(error.message).includes(`\`${k}\``)));
    if (unknown !== undefined) throw new Unsupported(`this build of muxpool has no \`${unknown}\` option`);
    throw error;
  }
  await pool.ready();
  return { call: (method, params) => pool.call(method, params), close: () => pool.close() };
}

/**
 * The rows, in the order the tables list them. `memory` is how the client is
 * opened for the bytes-per-pending-call measure, where `calls` calls must be
 * on the wire at once (muxpool's per-socket window and queue cap are raised
 * to fit; the raw and rpc-websockets clients have neither).
 */
export const NODE_CLIENTS = {
  "raw ws": { open: (url) => rawWs(url, { corked: false }) },
  "raw ws corked": { open: (url) => rawWs(url, { corked: true }) },
  "rpc-websockets": { open: (url) => rpcWebSockets(url) },
  muxpool: {
    open: (url) => muxpool(url, {}),
    memory: (url, calls) => muxpool(url, { maxInFlight: calls, maxQueue: calls }),
  },
  // coalesce: "batch" is the ONE place the option is passed (issue 11, item 3).
  "muxpool batch": {
    open: (url) => muxpool(url, { coalesce: "batch" }),
    memory: (url, calls) => muxpool(url, { coalesce: "batch", maxInFlight: calls, maxQueue: calls }),
  },
};

// A/B: BENCH_MUXPOOL_BASELINE=/abs/path/to/dist/index.js (another build of
// muxpool, e.g. main before a change) adds the row "muxpool (baseline)", the
// defaults row on that build. bench/run.mjs then runs it in the same rounds
// as this build's row, so the two can be compared round by round.
const baselinePath = process.env.BENCH_MUXPOOL_BASELINE;
if (baselinePath) {
  const baselinePool = async () => (await import(pathToFileURL(baselinePath).href)).Pool;
  NODE_CLIENTS[BASELINE_BUILD] = {
    open: async (url) => muxpool(url, {}, await baselinePool()),
    memory: async (url, calls) => muxpool(url, { maxInFlight: calls, maxQueue: calls }, await baselinePool()),
  };
}
