// The Deno client process of the benchmark: muxpool (from src/mod.ts, as a
// Deno user imports it) against a bare client on Deno's own WebSocket.
//   node_modules/.bin/deno run --allow-net=127.0.0.1 bench/deno-agent.mjs   (bench/run.mjs starts it)
import process from "node:process";
import { Pool } from "../src/mod.ts";
import { serveAgent } from "./agent.mjs";
import { openWebSocketClient } from "./loop.mjs";

const clients = {
  "raw WebSocket": { open: (url) => openWebSocketClient(url) },
  muxpool: {
    open: async (url) => {
      const pool = new Pool(url, { size: 1 });
      await pool.ready();
      return { call: (method, params) => pool.call(method, params), close: () => pool.close() };
    },
  },
};

async function* lines(stream) {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

const encoder = new TextEncoder();
const write = (s) => {
  for (let bytes = encoder.encode(s); bytes.length > 0; ) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
};
await serveAgent(clients, lines(Deno.stdin.readable), write, {
  cpuUsage: () => process.cpuUsage(),
});
Deno.exit(0);
