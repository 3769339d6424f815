// A minimal JSON-RPC server for the benchmarks, run as its own process so
// client and server do not share one event loop. `echo` answers at once,
// `sleep` after params[0] ms. Prints its port on stdout.
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.id === undefined) return;
    const reply = () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params?.[0] ?? null }));
    if (m.method === "sleep") setTimeout(reply, m.params[0]);
    else reply();
  });
});
wss.on("listening", () => process.stdout.write(`${wss.address().port}\n`));
process.on("disconnect", () => process.exit(0));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
