// `npm run bench`: every client, one server process, one run.
//
//   npm run bench                   full run (~6 min on 2 cores), tables on stdout
//   npm run bench -- --write        … and writes docs/benchmarks.md (or BENCH_WRITE=1)
//   BENCH_QUICK=1 npm run bench     ~1 min
//   BENCH_ROUNDS=3 BENCH_CELL_MS=800 BENCH_BUDGET_S=300 CHROMIUM_PATH=…   (knobs)
//   BENCH_MUXPOOL_BASELINE=/tmp/old/dist/index.js npm run bench
//       A/B: one more Node row, "muxpool (baseline)", the muxpool client on that
//       other build (say main before a change), in the same rounds and against
//       the same server as this build's; the tables end with this ÷ baseline.
//
// Phases, all against the one server (bench/server.mjs, its own process):
//   1. Node: raw ws, raw ws corked, rpc-websockets, muxpool, muxpool batch, each in
//      its own process (bench/node-agent.mjs); small and 4 KiB payloads; C = 1, 16, 256.
//   2. Memory: bytes per pending call, same Node processes.
//   3. Deno: muxpool against Deno's WebSocket (bench/deno-agent.mjs); C = 16, 256.
//   4. Chromium: the same in a page loading dist/muxpool.js (bench/browser.mjs).
// Rounds interleave: each round runs every client once per cell, in an order
// rotated every round. Each phase stops starting rounds when the next would
// run past its share of BENCH_BUDGET_S; a run that overstays the budget by a
// minute is killed. Exits 1 when a row failed (n/a rows are not failures).
import { spawn, execFileSync, fork } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openBrowser } from "./browser.mjs";
import { BASELINE_BUILD, markdownReport, memoryRows, NODE_ORDER as PLAIN_NODE_ORDER, textReport, throughputRows, WEB_ORDER } from "./report.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const at = (...p) => join(root, ...p);
const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1000;

// ------------------------------------------------------------------ config

const QUICK = process.env.BENCH_QUICK === "1";
const WRITE = process.argv.includes("--write") || process.env.BENCH_WRITE === "1";
const num = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
};
const BUDGET_DEFAULT = QUICK ? 100 : 420;
const cfg = {
  rounds: num("BENCH_ROUNDS", QUICK ? 2 : 7),
  cellMs: num("BENCH_CELL_MS", QUICK ? 400 : 1000),
  warmMs: QUICK ? 100 : 200,
  memCalls: QUICK ? 5_000 : 20_000,
  memRounds: QUICK ? 1 : 3,
  budgetS: num("BENCH_BUDGET_S", BUDGET_DEFAULT),
};
// A/B: the baseline build's row goes right after this build's muxpool row.
const baselinePath = process.env.BENCH_MUXPOOL_BASELINE ? resolve(process.env.BENCH_MUXPOOL_BASELINE) : "";
if (baselinePath !== "" && !existsSync(baselinePath)) throw new Error(`BENCH_MUXPOOL_BASELINE: no such file: ${baselinePath}`);
const NODE_ORDER = baselinePath === "" ? PLAIN_NODE_ORDER : PLAIN_NODE_ORDER.toSpliced(PLAIN_NODE_ORDER.indexOf("muxpool") + 1, 0, BASELINE_BUILD);
const NODE_CS = [1, 16, 256];
const WEB_CS = [16, 256];
const PAYLOADS = ["small", "4KiB"];
/** A bound on calls per loop, far above what any client reaches (so time is what stops a loop). */
const maxCalls = (ms) => Math.max(100_000, Math.ceil(ms * 1_000));
/** What one cell costs beyond its measured time: warm-up, and about 20 ms (measured) to connect, close and report, taken as 100. */
const cellCost = () => (cfg.warmMs + cfg.cellMs + 100) / 1000;

// The run as a whole is bounded, whatever happens inside it.
const children = new Set();
const killAll = () => {
  for (const c of children) c.kill("SIGKILL");
};
const watchdog = setTimeout(() => {
  console.error(`bench: still running ${cfg.budgetS + 60} s after start (budget ${cfg.budgetS} s): killed`);
  killAll();
  process.exit(2);
}, (cfg.budgetS + 60) * 1000);
watchdog.unref();
process.on("exit", killAll);

// The same `ws` everywhere: without its optional native add-ons (see docs/benchmarks.md).
const childEnv = { ...process.env, BENCH_MUXPOOL_BASELINE: baselinePath, WS_NO_BUFFER_UTIL: "1", WS_NO_UTF_8_VALIDATE: "1", DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" };

// ------------------------------------------------------------------ server

async function startServer() {
  const child = fork(at("bench", "server.mjs"), [], { env: childEnv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  const port = await new Promise((resolvePort, reject) => {
    child.once("message", (m) => resolvePort(m.port));
    child.once("exit", (code) => reject(new Error(`bench server exited with code ${code} before listening`)));
  });
  return {
    url: `ws://127.0.0.1:${port}`,
    /** The server's CPU time so far, µs (user + system); NaN if it does not answer within 5 s. */
    cpu: () =>
      new Promise((resolveCpu) => {
        const done = (v) => {
          clearTimeout(timer);
          child.off("message", on);
          resolveCpu(v);
        };
        const on = (m) => m?.type === "cpu" && done(m.usage.user + m.usage.system);
        const timer = setTimeout(done, 5_000, NaN);
        child.on("message", on);
        if (child.connected) child.send({ type: "cpu" });
      }),
    stop: () => child.kill(),
  };
}

// ------------------------------------------------------------------ agents

/**
 * A client process that takes one JSON command per line on stdin and answers
 * one JSON line on stdout. Started on first use; a command that gets no
 * answer in time kills it (the next command starts a fresh one).
 */
class Agent {
  #command;
  #args;
  #child = null;
  #waiting = [];
  #buffered = "";
  constructor(command, args) {
    this.#command = command;
    this.#args = args;
  }
  #start() {
    const child = spawn(this.#command, this.#args, { cwd: root, env: childEnv, stdio: ["pipe", "pipe", "inherit"] });
    children.add(child);
    this.#child = child;
    this.#buffered = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      this.#buffered += chunk;
      let nl;
      while ((nl = this.#buffered.indexOf("\n")) >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        this.#waiting.shift()?.resolve(JSON.parse(line));
      }
    });
    const gone = (why) => {
      children.delete(child);
      if (this.#child === child) this.#child = null;
      for (const w of this.#waiting.splice(0)) w.reject(new Error(why));
    };
    child.on("error", (e) => gone(`could not start ${this.#command}: ${e.message}`));
    child.on("exit", (code, signal) => gone(`client process exited (${signal ?? `code ${code}`})`));
    child.stdin.on("error", () => {}); // a dead child's stdin: its exit is what reports it
  }
  request(cmd, timeoutMs) {
    if (this.#child === null) this.#start();
    const child = this.#child;
    return new Promise((resolveReply, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`));
        child.kill("SIGKILL");
      }, timeoutMs);
      this.#waiting.push({
        resolve: (v) => (clearTimeout(timer), resolveReply(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      child.stdin.write(JSON.stringify(cmd) + "\n");
    });
  }
  async stop() {
    const child = this.#child;
    if (child === null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.stdin.end(JSON.stringify({ op: "exit" }) + "\n");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- recorder

const cells = [];
function cellOf(group, client, payload, concurrency) {
  let c = cells.find((x) => x.group === group && x.client === client && x.payload === payload && x.concurrency === concurrency);
  if (c === undefined) cells.push((c = { group, client, payload, concurrency, runs: [], errors: [], unsupported: false }));
  return c;
}
const memCells = NODE_ORDER.map((client) => ({ client, runs: [], errors: [], unsupported: false }));
const unsupported = new Set();

function record(cell, round, reply, extra = {}) {
  if (reply.ok) cell.runs.push({ round, ...reply, ...extra });
  else if (reply.unsupported) {
    cell.unsupported = true;
    unsupported.add(cell.client);
  } else {
    cell.errors.push(`round ${round + 1}: ${reply.error}`);
    console.log(`  ${cell.group ?? "memory"} ${cell.client} ${cell.payload ?? ""} C=${cell.concurrency ?? ""}: FAILED ${reply.error}`);
  }
}

/** Runs one cell on `agent`, bracketing it with the server's CPU time. */
async function measure(server, agent, cell, round) {
  const cmd = { op: "cell", client: cell.client, url: server.url, payload: cell.payload, concurrency: cell.concurrency, durationMs: cfg.cellMs, warmMs: cfg.warmMs, maxCalls: maxCalls(cfg.cellMs) };
  const cpu0 = await server.cpu();
  const t0 = performance.now();
  const reply = await agent.request(cmd, cfg.warmMs + cfg.cellMs + 30_000).catch((e) => ({ ok: false, error: e.message }));
  const wallUs = (performance.now() - t0) * 1000;
  const cpu1 = await server.cpu();
  record(cell, round, reply, { serverCpuPct: ((cpu1 - cpu0) / wallUs) * 100 });
}

const rotate = (xs, by) => xs.map((_, i) => xs[(i + by) % xs.length]);

/**
 * Runs `round(r)` for r = 0 … rounds-1 while the next round would still end
 * before `deadline` (judged by the slowest round so far, or `estimateS` before
 * the first). Resolves to the number of rounds run.
 */
async function rounds(name, count, estimateS, deadline, round) {
  let slowest = estimateS;
  for (let r = 0; r < count; r++) {
    if (elapsedS() + slowest > deadline) {
      console.log(`${name}: stopping after ${r} of ${count} rounds (time budget: ${Math.round(deadline)} s into the run)`);
      return r;
    }
    const t0 = elapsedS();
    await round(r);
    slowest = Math.max(r === 0 ? 0 : slowest, elapsedS() - t0);
    console.log(`${name}: round ${r + 1}/${count} done in ${(elapsedS() - t0).toFixed(1)} s (${elapsedS().toFixed(0)} s into the run)`);
  }
  return count;
}

// ------------------------------------------------------------------ phases

const estimates = {
  node: cfg.rounds * NODE_ORDER.length * NODE_CS.length * PAYLOADS.length * cellCost(),
  memory: cfg.memRounds * NODE_ORDER.length * 1.5,
  deno: 2 + cfg.rounds * WEB_ORDER.length * WEB_CS.length * cellCost(),
  chromium: 4 + cfg.rounds * WEB_ORDER.length * WEB_CS.length * cellCost(),
};
/** A phase may run until the budget minus what the phases after it are expected to need. */
const deadlineFor = (phase) => {
  const order = ["node", "memory", "deno", "chromium"];
  const later = order.slice(order.indexOf(phase) + 1).reduce((s, p) => s + estimates[p], 0);
  return cfg.budgetS - later;
};

console.log(
  `bench: ${QUICK ? "QUICK" : "full"} run, ${cfg.rounds} rounds of ${cfg.cellMs} ms cells (+${cfg.warmMs} ms warm-up), budget ${cfg.budgetS} s, ` +
    `expected ~${Math.round(Object.values(estimates).reduce((a, b) => a + b, 0))} s; Node ${process.version}, ${os.availableParallelism()} cores`,
);
const loadStart = os.loadavg()[0].toFixed(2);
const server = await startServer();

// 1. Node matrix.
const nodeAgents = Object.fromEntries(NODE_ORDER.map((client) => [client, new Agent(process.execPath, ["--expose-gc", at("bench", "node-agent.mjs")])]));
const nodeRounds = await rounds("node", cfg.rounds, estimates.node / cfg.rounds, deadlineFor("node"), async (r) => {
  for (const payload of PAYLOADS) {
    for (const c of NODE_CS) {
      for (const client of rotate(NODE_ORDER, r)) {
        const cell = cellOf("Node", client, payload, c);
        if (unsupported.has(client)) cell.unsupported = true;
        else await measure(server, nodeAgents[client], cell, r);
      }
    }
  }
});

// 2. Memory.
const memoryRounds = await rounds("memory", cfg.memRounds, estimates.memory / cfg.memRounds, deadlineFor("memory"), async (r) => {
  for (const client of rotate(NODE_ORDER, r)) {
    const cell = memCells.find((m) => m.client === client);
    if (unsupported.has(client)) {
      cell.unsupported = true;
      continue;
    }
    const cmd = { op: "memory", client, url: server.url, calls: cfg.memCalls };
    const reply = await nodeAgents[client].request(cmd, 30_000).catch((e) => ({ ok: false, error: e.message }));
    record(cell, r, reply);
  }
});
await Promise.all(Object.values(nodeAgents).map((a) => a.stop()));

// 3. Deno.
const denoBin = at("node_modules", ".bin", "deno");
let denoVersion = null;
try {
  denoVersion = execFileSync(denoBin, ["--version"], { encoding: "utf8", env: childEnv, timeout: 20_000 }).split("\n")[0].replace(/^deno\s+/, "").split(" ")[0];
} catch (e) {
  console.log(`deno: not found at ${denoBin} (${e.message.split("\n")[0]}): run \`npm ci\`; the Deno rows fail`);
}
const denoAgent = new Agent(denoBin, ["run", "--quiet", "--allow-net=127.0.0.1", "--no-prompt", at("bench", "deno-agent.mjs")]);
const denoRounds = await rounds("deno", cfg.rounds, estimates.deno / cfg.rounds, deadlineFor("deno"), async (r) => {
  for (const c of WEB_CS) for (const client of rotate(WEB_ORDER, r)) await measure(server, denoAgent, cellOf("Deno", client, "small", c), r);
});
await denoAgent.stop();

// 4. Chromium.
let chromiumVersion = null;
let chromiumRounds = 0;
try {
  const browser = await openBrowser(root);
  chromiumVersion = browser.version;
  const agent = {
    request: (cmd, timeoutMs) => {
      let timer;
      const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs)));
      return Promise.race([browser.run(cmd), late]).finally(() => clearTimeout(timer));
    },
  };
  try {
    chromiumRounds = await rounds("chromium", cfg.rounds, estimates.chromium / cfg.rounds, deadlineFor("chromium"), async (r) => {
      for (const c of WEB_CS) for (const client of rotate(WEB_ORDER, r)) await measure(server, agent, cellOf("Chromium", client, "small", c), r);
    });
  } finally {
    await browser.close();
  }
} catch (error) {
  console.log(`chromium: ${error.message}`);
  for (const c of WEB_CS) for (const client of WEB_ORDER) cellOf("Chromium", client, "small", c).errors.push(error.message);
}
server.stop();

// ------------------------------------------------------------------ report

const pkgVersion = (name) => JSON.parse(readFileSync(at("node_modules", name, "package.json"), "utf8")).version;
const git = (...args) => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  } catch {
    return "";
  }
};
const ordered = (rows, order) => rows.sort((a, b) => order.indexOf(a.client) - order.indexOf(b.client));
const nodeCells = cells.filter((c) => c.group === "Node");
const node = throughputRows(nodeCells, { baseline: "raw ws", peer: "rpc-websockets" });
const nodeSorted = PAYLOADS.flatMap((p) => NODE_CS.flatMap((c) => ordered(node.filter((r) => r.payload === p && r.concurrency === c), NODE_ORDER)));
const webCells = cells.filter((c) => c.group !== "Node");
const web = throughputRows(webCells, { baseline: "raw WebSocket" });
const webSorted = ["Deno", "Chromium"].flatMap((g) => WEB_CS.flatMap((c) => ordered(web.filter((r) => r.group === g && r.concurrency === c), WEB_ORDER)));
const memory = memoryRows(memCells);
const dirty = git("status", "--porcelain", "--untracked-files=no") !== "";
const meta = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  wallSeconds: Math.round(elapsedS()),
  quick: QUICK,
  commit: `${git("rev-parse", "--short", "HEAD") || "?"}${dirty ? " (with uncommitted changes)" : ""}`,
  nproc: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model.trim() ?? "unknown CPU",
  memGiB: Math.round(os.totalmem() / 2 ** 30),
  os: `${os.type()} ${os.release()}`,
  loadavg: { start: loadStart, end: os.loadavg()[0].toFixed(2) },
  node: process.version.slice(1),
  ws: pkgVersion("ws"),
  rpcWebSockets: pkgVersion("rpc-websockets"),
  deno: denoVersion,
  chromium: chromiumVersion,
  config: cfg,
  budgetDefault: BUDGET_DEFAULT,
  rounds: { node: nodeRounds, memory: memoryRounds, deno: denoRounds, chromium: chromiumRounds },
};
const report = { node: nodeSorted, memory, web: webSorted, meta };
console.log("\n" + textReport(report));
if (WRITE) {
  writeFileSync(at("docs", "benchmarks.md"), markdownReport(report));
  console.log("\nbench: wrote docs/benchmarks.md");
}
const failed = [...nodeSorted, ...memory, ...webSorted].filter((r) => r.status === "failed").length;
console.log(`\nbench: done in ${Math.round(elapsedS())} s${failed > 0 ? `, ${failed} row(s) FAILED` : ""}`);
process.exit(failed > 0 ? 1 : 0);
