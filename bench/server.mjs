// A minimal JSON-RPC echo server for the benchmarks, run as its own process so
// client and server do not share one event loop. Prints its port on stdout.
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.id !== undefined) ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params?.[0] ?? null }));
  });
});
wss.on("listening", () => process.stdout.write(`${wss.address().port}\n`));
process.on("disconnect", () => process.exit(0));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
