#!/usr/bin/env node
/**
 * The RPC test server (./server.ts) in a Node process of its own, for the
 * smoke test in every runtime: the server is always the real `ws` on Node,
 * whatever runs the client. (Bun swaps the `ws` package for its own
 * implementation, and Node 20 cannot load TypeScript: the fixture is bundled
 * with esbuild, `ws` left external, and imported from .tmp/.)
 *
 * One JSON message a line.
 *   stdout, once listening:  {"ready":true,"url":"ws://127.0.0.1:PORT"}
 *   stdin → stdout:          {"id":1,"op":"killAll"} → {"id":1,"value":3}
 *                            (or {"id":1,"error":"…"})
 * Ops:
 *   killAll        terminate every RPC socket (no close frame); → how many
 *   stats          the server's counters (requests, connectionsAccepted, …)
 *   connections    the RPC sockets open now
 *   closes         every socket close the server saw, in order: [{ code, reason }]
 *   subscriptions  { live, unsubscribes }: eth_subscribe subscriptions live now, eth_unsubscribe calls that ended one
 *   killCarriers   terminate every socket that carries a subscription; → how many
 *
 * When stdin ends (the test process is done, or died), the server closes and
 * this process exits. It never outlives 10 minutes.
 */
import { build } from "esbuild";
import { mkdirSync, rmSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { WebSocketServer } from "ws";

const root = fileURLToPath(new URL("../../", import.meta.url));
setTimeout(() => process.exit(3), 600_000).unref();

// Close codes, as the server saw them: wraps ws's public handleUpgrade, which
// every WebSocketServer goes through, to listen to each socket's `close`.
/** @type {{ code: number, reason: string }[]} */
const closes = [];
const handleUpgrade = WebSocketServer.prototype.handleUpgrade;
WebSocketServer.prototype.handleUpgrade = function (req, socket, head, done) {
  return handleUpgrade.call(this, req, socket, head, (ws, request) => {
    ws.once("close", (code, reason) => closes.push({ code, reason: String(reason) }));
    done(ws, request);
  });
};

// `ws` stays external so the bundle shares the ws module patched above.
mkdirSync(`${root}.tmp/runtimes`, { recursive: true });
const bundle = `${root}.tmp/runtimes/server-${process.pid}.mjs`;
await build({
  entryPoints: [`${root}test/runtimes/server.ts`],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  logLevel: "warning",
});
const { startRpcServer } = await import(pathToFileURL(bundle).href);
rmSync(bundle, { force: true });
const server = await startRpcServer({ port: 0 });

const ops = {
  killAll: () => server.killAll(),
  stats: () => ({ ...server.stats }),
  connections: () => server.connections(),
  closes: () => closes,
  subscriptions: () => ({ live: server.liveSubscriptions(), unsubscribes: server.unsubscribes }),
  killCarriers: () => server.subscriptionSockets().filter((id) => server.kill(id)).length,
};

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
let pending = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  pending += chunk;
  for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    if (line.trim() === "") continue;
    let id;
    try {
      const request = JSON.parse(line);
      id = request.id;
      const op = ops[request.op];
      if (op === undefined) throw new Error(`unknown op ${JSON.stringify(request.op)} (known: ${Object.keys(ops).join(", ")})`);
      send({ id, value: op() });
    } catch (error) {
      send({ id, error: String(error?.message ?? error) });
    }
  }
});
process.stdin.on("end", () => {
  void server.close().then(() => process.exit(0));
});
send({ ready: true, url: server.url });
