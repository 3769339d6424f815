// What the benchmarks share: the server process and the bare `ws` client
// that muxpool is measured against.
import { spawn } from "node:child_process";
import { once } from "node:events";
import WebSocket from "ws";

/** Starts bench/server.mjs in its own process; resolves with its URL and a `stop()`. */
export async function startServer() {
  const server = spawn(process.execPath, [new URL("./server.mjs", import.meta.url).pathname], { stdio: ["pipe", "pipe", "inherit"] });
  const [chunk] = await once(server.stdout, "data");
  return { url: `ws://127.0.0.1:${String(chunk).trim()}`, stop: () => server.kill() };
}

/**
 * The baseline: `sockets` plain ws connections, ids from a counter, a Map of
 * pending resolvers, round-robin over the sockets, nothing else.
 */
export async function rawClient(url, sockets) {
  const conns = await Promise.all(
    Array.from({ length: sockets }, async () => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const pending = new Map();
      ws.on("message", (data) => {
        const m = JSON.parse(data.toString());
        const resolve = pending.get(m.id);
        pending.delete(m.id);
        resolve(m.result);
      });
      await once(ws, "open");
      return { ws, pending };
    }),
  );
  let id = 0;
  return {
    call: (method, params) =>
      new Promise((resolve) => {
        const c = conns[id % conns.length];
        const rid = ++id;
        c.pending.set(rid, resolve);
        c.ws.send(JSON.stringify({ jsonrpc: "2.0", id: rid, method, params }));
      }),
    close: async () => {
      for (const c of conns) c.ws.terminate();
    },
  };
}
