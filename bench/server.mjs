// The JSON-RPC server every benchmark client talks to, run in its own process
// (spawned by bench/run.mjs) so its CPU is never counted as a client's.
//
//   add [a, b]  → a + b          echo [x] → x          sleep [ms] → ms, after ms
//   hold [x]    → x, but only once the same socket calls `release`
//   release     → how many held replies it let go (the memory measure's
//                 hold-then-release, so no reply can arrive early)
//
// A batch (JSON array) gets one array back once every entry in it is done.
// Replies written in one tick leave in one write: the socket is corked at the
// first reply and uncorked on process.nextTick. That keeps the server cheap,
// so what differs between rows is the client, not how the server writes.
//
// Talks to its parent over IPC: sends { port } once listening, answers
// { type: "cpu" } with its process.cpuUsage() so the harness can tell when the
// server, not the client, is the bottleneck. Exits when the parent goes.
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });

/** Runs one request; calls `done(reply)` (undefined for a notification). `held` is the socket's held replies. */
function handle(m, done, held) {
  if (m === null || typeof m !== "object" || m.id === undefined) return done(undefined);
  const ok = (result) => done({ jsonrpc: "2.0", id: m.id, result });
  const p = m.params;
  switch (m.method) {
    case "add":
      return ok(p[0] + p[1]);
    case "echo":
      return ok(p[0]);
    case "sleep":
      return void setTimeout(() => ok(p[0]), p[0]);
    case "hold":
      return void held.push(() => ok(p[0]));
    case "release": {
      const count = held.length;
      for (const reply of held.splice(0)) reply();
      return ok(count);
    }
    default:
      return done({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: `Method not found: ${m.method}` } });
  }
}

wss.on("connection", (ws) => {
  const socket = ws._socket;
  let corked = false;
  const held = [];
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  const send = (reply) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    ws.send(JSON.stringify(reply));
  };
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (!Array.isArray(m)) return handle(m, (reply) => reply && send(reply), held);
    const replies = [];
    let left = m.length;
    const settle = (reply) => {
      if (reply) replies.push(reply);
      if (--left === 0 && replies.length > 0) send(replies);
    };
    for (const entry of m) handle(entry, settle, held);
  });
});

wss.on("listening", () => process.send({ port: wss.address().port }));
process.on("message", (m) => {
  if (m?.type === "cpu") process.send({ type: "cpu", usage: process.cpuUsage() });
});
process.on("disconnect", () => process.exit(0));
