// Profiles one client of the Deno and Chromium rows (issue 11: what stands in
// the way of muxpool ≥ 0.9× the runtime's raw WebSocket at C=256). Starts
// bench/server.mjs in its own process, then runs the closed loop of
// bench/loop.mjs on one client for a few seconds after a warm-up, with V8's
// sampling profiler on for the measured part only, over the inspector protocol:
//
//   node bench/profile-web.mjs deno     [client] [C] [seconds]
//   node bench/profile-web.mjs chromium [client] [C] [seconds]
//
// client: "muxpool" (default), "batch" (muxpool with coalesce: "batch") or "raw"
// (bench/loop.mjs's openWebSocketClient).
// Deno runs muxpool from src/mod.ts (this same file, under --inspect-wait);
// Chromium loads dist/muxpool.js (build it first: node scripts/build.mjs) in a
// page, and the profile's positions in it are mapped back to src/ through
// dist/muxpool.js.map. Prints calls/s, CPU per call of each process (from
// /proc: the client, the server, and for Chromium each of its processes), the
// profile's idle, GC and program shares, self time by file and the top
// functions; writes the .cpuprofile to .tmp/prof/ (open it in DevTools).
//
// PROFILE_COALESCE='{"mode":"batch","maxBytes":1000}' (the batch client's option), PROFILE_INTERVAL_US=1000 (sampling interval; a short one slows the client, and
// raw more than muxpool: 200 µs gave 0.89× in Deno where 1000 µs gave 0.59×;
// 100000 is as good as off, for plain calls/s), PROFILE_TOP=25 (functions listed).

const PAYLOAD = { method: "add", params: [1, 2] };

if ("Deno" in globalThis) await denoClient();
else await main();

// ------------------------------------------------------------------ the Deno side

/** Under Deno: opens the client, warms up, says "warm", waits for "go", runs, prints the result, waits for stdin to close. */
async function denoClient() {
  const { closedLoop } = await import("./loop.mjs");
  const [url, name, c, seconds, coalesce] = Deno.args;
  let client;
  if (name === "raw") client = await (await import("./loop.mjs")).openWebSocketClient(url);
  else {
    const { Pool } = await import("../src/mod.ts");
    const pool = new Pool(url, name === "batch" ? { size: 1, coalesce: JSON.parse(coalesce) } : { size: 1 });
    await pool.ready();
    client = { call: (m, p) => pool.call(m, p), close: () => pool.close() };
  }
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  const say = (s) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));
  const loop = { concurrency: Number(c), maxCalls: 50_000_000, check: (r) => r === 3 };
  const call = () => client.call(PAYLOAD.method, PAYLOAD.params);
  await closedLoop(call, { ...loop, durationMs: 1000 });
  say("warm");
  await lines.read();
  const r = await closedLoop(call, { ...loop, durationMs: Number(seconds) * 1000 });
  say(JSON.stringify({ calls: r.calls, callsPerSec: r.callsPerSec, p50: r.p50 }));
  await lines.read();
  await client.close();
  Deno.exit(0);
}

// ------------------------------------------------------------------ the Node side

async function main() {
  const { fork, spawn } = await import("node:child_process");
  const { mkdirSync, readFileSync, readdirSync, writeFileSync } = await import("node:fs");
  const { dirname, join } = await import("node:path");
  const { fileURLToPath } = await import("node:url");
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const [runtime, clientArg = "muxpool", c = "256", seconds = "5"] = process.argv.slice(2);
  if (runtime !== "deno" && runtime !== "chromium") throw new Error("usage: node bench/profile-web.mjs deno|chromium [muxpool|batch|raw] [C] [seconds]");
  const client = clientArg.startsWith("raw") ? "raw" : clientArg.endsWith("batch") ? "batch" : "muxpool";
  const coalesce = process.env.PROFILE_COALESCE ? JSON.parse(process.env.PROFILE_COALESCE) : "batch";
  const interval = Number(process.env.PROFILE_INTERVAL_US ?? 1000);
  const env = { ...process.env, WS_NO_BUFFER_UTIL: "1", WS_NO_UTF_8_VALIDATE: "1", DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" };

  /** CPU time (µs, user + system) of a process, from /proc; NaN once it is gone. */
  const TICK_US = 1e6 / 100; // USER_HZ
  const cpuOf = (pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(f[11]) + Number(f[12])) * TICK_US;
    } catch {
      return NaN;
    }
  };
  /** The pid and its descendants, each with a label (Chromium's --type=, or the command's name). */
  const tree = (pid) => {
    const parent = new Map();
    for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const s = readFileSync(`/proc/${p}/stat`, "utf8");
        parent.set(Number(p), Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]));
      } catch { /* gone */ }
    }
    const out = [];
    const walk = (p) => {
      let label;
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " "); // Chromium rewrites its argv into one string
        const type = /--type=(\S+)/.exec(cmd)?.[1];
        const sub = /--utility-sub-type=(\S+)/.exec(cmd)?.[1];
        label = type ? (sub ? `${type} (${sub})` : type) : cmd.split(" ")[0].split("/").pop();
      } catch {
        label = "?";
      }
      out.push({ pid: p, label });
      for (const [q, pp] of parent) if (pp === p) walk(q);
    };
    walk(pid);
    return out;
  };
  const cpuSnapshot = (procs) => new Map(procs.map((p) => [p.pid, cpuOf(p.pid)]));

  const server = fork(join(root, "bench", "server.mjs"), [], { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise((resolve) => server.once("message", (m) => resolve(m.port)));
  const url = `ws://127.0.0.1:${port}`;
  let profile;
  let result;
  let procs;
  let cpu0;
  let cpu1;
  let cleanup;
  try {
    if (runtime === "deno") {
      const deno = spawn(join(root, "node_modules", ".bin", "deno"), ["run", "--allow-net=127.0.0.1", "--allow-read", "--inspect-wait=127.0.0.1:0", fileURLToPath(import.meta.url), url, client, c, seconds, JSON.stringify(coalesce)], {
        cwd: root,
        env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      cleanup = () => deno.kill("SIGKILL");
      const inspectorUrl = await new Promise((resolve, reject) => {
        let err = "";
        deno.stderr.setEncoding("utf8");
        deno.stderr.on("data", (s) => {
          err += s;
          const m = /ws:\/\/\S+/.exec(err);
          if (m) resolve(m[0]);
        });
        deno.once("exit", (code) => reject(new Error(`deno exited (${code}): ${err}`)));
      });
      const { default: WebSocket } = await import("ws");
      const ins = new WebSocket(inspectorUrl);
      await new Promise((r, j) => (ins.once("open", r), ins.once("error", j)));
      let next = 0;
      const waiting = new Map();
      ins.on("message", (d) => {
        const m = JSON.parse(d);
        if (m.id !== undefined) waiting.get(m.id)?.(m), waiting.delete(m.id);
      });
      const send = (method, params = {}) =>
        new Promise((r, j) => {
          const id = ++next;
          waiting.set(id, (m) => (m.error ? j(new Error(`${method}: ${m.error.message}`)) : r(m.result)));
          ins.send(JSON.stringify({ id, method, params }));
        });
      const lines = [];
      let wake = () => {};
      let buffered = "";
      deno.stdout.setEncoding("utf8");
      deno.stdout.on("data", (s) => {
        buffered += s;
        for (let nl; (nl = buffered.indexOf("\n")) >= 0; buffered = buffered.slice(nl + 1)) lines.push(buffered.slice(0, nl));
        wake();
      });
      const line = async () => {
        while (lines.length === 0) await new Promise((r) => (wake = r));
        return lines.shift();
      };
      await send("Profiler.enable");
      await send("Profiler.setSamplingInterval", { interval });
      await send("Runtime.runIfWaitingForDebugger");
      if ((await line()) !== "warm") throw new Error("deno: no warm-up");
      procs = [{ pid: deno.pid, label: "deno" }];
      await send("Profiler.start");
      cpu0 = cpuSnapshot([...procs, { pid: server.pid }]);
      deno.stdin.write("go\n");
      result = JSON.parse(await line());
      cpu1 = cpuSnapshot([...procs, { pid: server.pid }]);
      ({ profile } = await send("Profiler.stop"));
      deno.stdin.end("exit\n");
      ins.close();
    } else {
      const { chromium } = await import("playwright-core");
      const { createServer } = await import("node:http");
      const page0 = `<!doctype html><meta charset="utf-8"><script type="module">
import { Pool } from "/dist/muxpool.js";
import { closedLoop, openWebSocketClient } from "/bench/loop.mjs";
let client;
window.openClient = async (name, url, coalesce) => {
  if (name === "raw") client = await openWebSocketClient(url);
  else {
    const pool = new Pool(url, name === "batch" ? { size: 1, coalesce } : { size: 1 });
    await pool.ready();
    client = { call: (m, p) => pool.call(m, p), close: () => pool.close() };
  }
};
window.runLoop = async (concurrency, durationMs) => {
  const r = await closedLoop(() => client.call("add", [1, 2]), { concurrency, durationMs, maxCalls: 50_000_000, check: (r) => r === 3 });
  return { calls: r.calls, callsPerSec: r.callsPerSec, p50: r.p50 };
};
window.ready = true;
</script>`;
      const files = { "/dist/muxpool.js": "dist/muxpool.js", "/dist/muxpool.js.map": "dist/muxpool.js.map", "/bench/loop.mjs": "bench/loop.mjs" };
      const http = createServer((req, res) => {
        const path = new URL(req.url, "http://x").pathname;
        if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(page0);
        if (files[path] === undefined) return res.writeHead(404).end();
        res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(join(root, files[path])));
      });
      await new Promise((r) => http.listen(0, "127.0.0.1", r));
      const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
      });
      cleanup = () => (browser.close(), http.close());
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${http.address().port}/`);
      await page.waitForFunction(() => globalThis.ready === true);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval });
      await page.evaluate(([n, u, co]) => globalThis.openClient(n, u, co), [client, url, coalesce]);
      await page.evaluate((cc) => globalThis.runLoop(cc, 1000), Number(c));
      // Chromium's processes: the browser (a child of this process) and all below it.
      procs = tree(findChromium(tree(process.pid)));
      await cdp.send("Profiler.start");
      cpu0 = cpuSnapshot([...procs, { pid: server.pid }]);
      result = await page.evaluate(([cc, ms]) => globalThis.runLoop(cc, ms), [Number(c), Number(seconds) * 1000]);
      cpu1 = cpuSnapshot([...procs, { pid: server.pid }]);
      ({ profile } = await cdp.send("Profiler.stop"));
    }
  } finally {
    await cleanup?.();
    server.kill();
  }

  // ---------------------------------------------------------------- report
  const perCall = (pid) => (cpu1.get(pid) - cpu0.get(pid)) / result.calls;
  console.log(`${runtime} ${client} C=${c}: ${Math.round(result.callsPerSec)} calls/s over ${seconds} s, p50 ${result.p50.toFixed(2)} ms`);
  const byLabel = new Map();
  for (const p of procs) byLabel.set(p.label, (byLabel.get(p.label) ?? 0) + perCall(p.pid));
  const wallUsPerCall = 1e6 / result.callsPerSec;
  for (const [label, us] of byLabel) if (us > 0) console.log(`  CPU ${label}: ${us.toFixed(1)} µs/call (${((us / wallUsPerCall) * 100).toFixed(0)} % of a core)`);
  const s = perCall(server.pid);
  console.log(`  CPU server: ${s.toFixed(1)} µs/call (${((s / wallUsPerCall) * 100).toFixed(0)} % of a core)`);

  const mapper = runtime === "chromium" ? await sourceMapper(join(root, "dist", "muxpool.js.map")) : null;
  summarize(profile, { top: Number(process.env.PROFILE_TOP ?? 25), mapper, root });
  mkdirSync(join(root, ".tmp", "prof"), { recursive: true });
  const file = join(root, ".tmp", "prof", `${runtime}-${client}-C${c}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  console.log(`  profile: ${file}`);
}

function findChromium(procs) {
  const p = procs.find((x) => /chrom/i.test(x.label));
  if (p === undefined) throw new Error("could not find the Chromium process");
  return p.pid;
}

/** Maps a (0-based) position in dist/muxpool.js to `src/file.ts:line name`. */
async function sourceMapper(mapPath) {
  const { readFileSync } = await import("node:fs");
  const { SourceMapConsumer } = (await import("source-map-js")).default;
  const consumer = new SourceMapConsumer(JSON.parse(readFileSync(mapPath, "utf8")));
  return (line, column) => {
    const o = consumer.originalPositionFor({ line: line + 1, column });
    return o.source === null ? null : { file: o.source.replace(/^(\.\.\/)+/, ""), line: o.line, name: o.name };
  };
}

/** Self time per function and per file, and the idle, GC and program shares, of a CDP profile. */
function summarize(profile, { top, mapper, root }) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    const dt = profile.timeDeltas[i + 1] ?? 0; // a sample's time is the gap to the next one
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  let total = 0;
  for (const v of self.values()) total += v;
  const fns = new Map();
  const files = new Map();
  for (const [id, t] of self) {
    const f = byId.get(id).callFrame;
    let file = f.url === "" ? "(native)" : f.url.replace(`file://${root}/`, "").replace(/^http:\/\/127\.0\.0\.1:\d+\//, "");
    let line = f.lineNumber + 1;
    let name = f.functionName || "(anonymous)";
    if (mapper !== null && file === "dist/muxpool.js") {
      const m = mapper(f.lineNumber, f.columnNumber);
      if (m !== null) {
        file = m.file;
        line = m.line;
        name = `${name}${m.name ? ` → ${m.name}` : ""}`;
      }
    }
    if (file.startsWith("ext:") || file.startsWith("node:")) file = file.split("/")[0].replace(/:.*/, ":") + file.split("/").slice(1).join("/");
    const key = `${name}  ${file}:${line}`;
    fns.set(key, (fns.get(key) ?? 0) + t);
    const fileKey = f.url === "" ? name.startsWith("(") ? name : "(native)" : file.startsWith("src/") ? "src/ (muxpool)" : file;
    files.set(fileKey, (files.get(fileKey) ?? 0) + t);
  }
  const pct = (t) => `${((t / total) * 100).toFixed(1).padStart(5)} %`;
  console.log(`  samples: ${profile.samples.length}, ${(total / 1000).toFixed(0)} ms`);
  console.log("  by file / kind:");
  for (const [k, t] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`    ${pct(t)}  ${k}`);
  const src = [...fns].filter(([k]) => k.includes("  src/")).sort((a, b) => b[1] - a[1]);
  console.log(`  top ${top} functions (self):`);
  for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(t)}  ${k}`);
  if (src.length > 0) {
    console.log(`  muxpool's own (src/), top 15 of ${src.length}:`);
    for (const [k, t] of src.slice(0, 15)) console.log(`    ${pct(t)}  ${k}`);
  }
}
