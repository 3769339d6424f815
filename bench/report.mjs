// Turns the runs bench/run.mjs recorded into rows (medians, spread, paired
// ratios), the stdout tables, and docs/benchmarks.md. Pure functions of the
// data: no I/O here.

export const NODE_ORDER = ["raw ws", "raw ws corked", "rpc-websockets", "muxpool", "muxpool batch"];
/** The extra Node row of an A/B run (BENCH_MUXPOOL_BASELINE): the muxpool row on another build. */
export const BASELINE_BUILD = "muxpool (baseline)";
export const WEB_ORDER = ["raw WebSocket", "muxpool"];
const BASELINE = "raw ws";
const PEER = "rpc-websockets";

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs) => (xs.length === 0 ? null : { med: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/**
 * Ratios of `runs` to `base`, paired by round (the two ran minutes apart at
 * most, so the pair shares the machine's mood), then summarised.
 */
function pairedRatio(runs, base, pick = (r) => r.callsPerSec) {
  const byRound = new Map(base.map((r) => [r.round, pick(r)]));
  const ratios = runs.filter((r) => byRound.has(r.round)).map((r) => pick(r) / byRound.get(r.round));
  return spread(ratios);
}

/**
 * One row per cell. `cells` is the recorder's list:
 * `{ group, client, payload, concurrency, runs: [{ round, callsPerSec, p50, p99, cpuUsPerCall, serverCpuPct }], errors: [string], unsupported }`.
 * Ratios are against `baseline` (and `peer`, when given) in the same group, payload and C.
 */
export function throughputRows(cells, { baseline, peer }) {
  const find = (c, client) => cells.find((x) => x.group === c.group && x.payload === c.payload && x.concurrency === c.concurrency && x.client === client);
  return cells.map((c) => {
    const row = { group: c.group, client: c.client, payload: c.payload, concurrency: c.concurrency, runs: c.runs, errors: c.errors };
    if (c.unsupported) return { ...row, status: "n/a" };
    if (c.runs.length === 0) return { ...row, status: "failed" };
    const base = find(c, baseline);
    const peerCell = peer ? find(c, peer) : undefined;
    const cpu = c.runs.map((r) => r.cpuUsPerCall).filter((v) => typeof v === "number");
    return {
      ...row,
      status: "ok",
      cps: spread(c.runs.map((r) => r.callsPerSec)),
      isBase: c.client === baseline,
      vsBase: base && base.runs.length > 0 ? pairedRatio(c.runs, base.runs) : null,
      vsPeer: peerCell && peerCell.runs.length > 0 ? pairedRatio(c.runs, peerCell.runs) : null,
      p50: median(c.runs.map((r) => r.p50)),
      p99: median(c.runs.map((r) => r.p99)),
      p50VsBase: base && base.runs.length > 0 ? pairedRatio(c.runs, base.runs, (r) => r.p50) : null,
      cpu: cpu.length > 0 ? spread(cpu) : null,
      cpuVsBase: base && base.runs.length > 0 && cpu.length > 0 ? pairedRatio(c.runs, base.runs, (r) => r.cpuUsPerCall) : null,
      serverCpuPct: median(c.runs.map((r) => r.serverCpuPct)),
    };
  });
}

/** Memory rows: `cells` as `{ client, runs: [{ round, bytesPerCall }], errors, unsupported }`. */
export function memoryRows(cells) {
  const base = cells.find((c) => c.client === BASELINE);
  return cells.map((c) => {
    const row = { client: c.client, runs: c.runs, errors: c.errors };
    if (c.unsupported) return { ...row, status: "n/a" };
    if (c.runs.length === 0) return { ...row, status: "failed" };
    return {
      ...row,
      status: "ok",
      bytes: spread(c.runs.map((r) => r.bytesPerCall)),
      vsBase: base && base.runs.length > 0 ? pairedRatio(c.runs, base.runs, (r) => r.bytesPerCall) : null,
    };
  });
}

// ---------------------------------------------------------------- formatting

/** 3 significant figures with k/M: 72100 → "72.1k". */
export function si(n) {
  if (!Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  const [v, unit] = abs >= 1e6 ? [n / 1e6, "M"] : abs >= 1e3 ? [n / 1e3, "k"] : [n, ""];
  return `${Number(v.toPrecision(3))}${unit}`;
}
const fixed = (n, digits) => (Number.isFinite(n) ? n.toFixed(digits) : "–");
/** Milliseconds: 2 decimals from 1 ms up, 3 significant figures below (0.0312). */
const ms = (n) => (!Number.isFinite(n) ? "–" : n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : String(Number(n.toPrecision(3))));
const withSpread = (s, f) => (s === null ? "–" : `${f(s.med)} (${f(s.min)}–${f(s.max)})`);
const ratio = (s) => withSpread(s, (v) => fixed(v, 2));
const failure = (row) => (row.status === "n/a" ? "n/a (not built)" : `FAILED: ${row.errors[0] ?? "no run finished"}`);
const payloadName = (p) => (p === "4KiB" ? "4 KiB" : p);
const count = (n) => n.toLocaleString("en-US");

function throughputCells(row, { peer }) {
  if (row.status !== "ok") return [failure(row), "", ...(peer ? [""] : []), "", "", "", ""];
  return [
    withSpread(row.cps, si),
    row.isBase ? "1.00" : ratio(row.vsBase),
    ...(peer ? [row.client === peer ? "1.00" : ratio(row.vsPeer)] : []),
    ms(row.p50),
    ms(row.p99),
    withSpread(row.cpu, (v) => fixed(v, 1)),
    Number.isFinite(row.serverCpuPct) ? `${Math.round(row.serverCpuPct)} %` : "–",
  ];
}

const NODE_HEAD = ["payload", "C", "client", "calls/s", "× raw ws", "× rpc-websockets", "p50 ms", "p99 ms", "client CPU µs/call", "server CPU"];
const WEB_HEAD = ["runtime", "C", "client", "calls/s", "× raw WebSocket", "p50 ms", "p99 ms", "CPU µs/call", "server CPU"];
const MEM_HEAD = ["client", "bytes per pending call", "× raw ws"];

const nodeLine = (r) => [payloadName(r.payload), String(r.concurrency), r.client, ...throughputCells(r, { peer: PEER })];
const webLine = (r) => [r.group, String(r.concurrency), r.client, ...throughputCells(r, { peer: undefined })];
const memLine = (r) => (r.status !== "ok" ? [r.client, failure(r), ""] : [r.client, withSpread(r.bytes, (v) => String(Math.round(v))), r.client === BASELINE ? "1.00" : ratio(r.vsBase)]);

/** A plain-text table with padded columns. */
function textTable(head, lines) {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells) => cells.map((c, i) => (c ?? "").padEnd(widths[i])).join("  ").trimEnd();
  return [fmt(head), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}

function mdTable(head, lines) {
  const esc = (s) => String(s ?? "").replace(/\|/g, "\\|");
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...lines.map((l) => `| ${l.map(esc).join(" | ")} |`)].join("\n");
}

// ------------------------------------------------------------------ targets

/**
 * Issue 11's targets, each read off this run: met or missed by the median,
 * and marked "unsure" when the rounds' spread reaches across the target
 * (some rounds on each side), so a reader does not take noise for a verdict.
 */
export function targets({ node, memory, web }) {
  const get = (payload, c, client) => node.find((r) => r.payload === payload && r.concurrency === c && r.client === client && r.status === "ok");
  const out = [];
  /** `s` is a spread; `min`/`max` the target's bound; `f` formats a number, `unit` follows the median; `note` is appended. */
  const add = (target, s, { min, max }, { f = (v) => fixed(v, 2), unit = "×" } = {}, note = "") => {
    if (!s) return out.push({ target, value: "not measured", status: "not measured" });
    const ok = (v) => (min === undefined || v >= min) && (max === undefined || v <= max);
    const unsure = ok(s.min) !== ok(s.max);
    out.push({ target, value: `${f(s.med)}${unit} (${f(s.min)}–${f(s.max)})${note}`, status: `${ok(s.med) ? "met" : "missed"}${unsure ? ", unsure: rounds on both sides" : ""}` });
  };
  for (const c of [16, 256]) add(`muxpool ≥ 1.3× rpc-websockets calls/s, small, C=${c}`, get("small", c, "muxpool")?.vsPeer, { min: 1.3 });
  for (const c of [16, 256]) {
    const m = get("small", c, "muxpool");
    const k = get("small", c, "raw ws corked");
    add(`muxpool ≥ 0.9× raw ws corked calls/s, small, C=${c}`, m && k ? pairedRatio(m.runs, k.runs) : null, { min: 0.9 });
  }
  for (const c of [16, 256]) {
    const m = get("small", c, "muxpool");
    add(`muxpool client CPU per call ≤ raw ws's, small, C=${c}`, m?.cpuVsBase, { max: 1 }, {}, m?.cpu ? `; ${fixed(m.cpu.med, 1)} µs` : "");
  }
  const one = get("small", 1, "muxpool");
  add("muxpool p50 at C=1 within 10 % of raw ws's", one?.p50VsBase, { max: 1.1 }, {}, one ? `; ${ms(one.p50)} ms` : "");
  add('`coalesce: "batch"` ≥ 3× raw ws calls/s, small, C=256', get("small", 256, "muxpool batch")?.vsBase, { min: 3 });
  for (const c of [16, 256]) add(`muxpool ≥ 1.0× raw ws calls/s, 4 KiB, C=${c}`, get("4KiB", c, "muxpool")?.vsBase, { min: 1 });
  const mem = memory.find((r) => r.client === "muxpool" && r.status === "ok");
  add("muxpool ≤ 300 bytes per pending call", mem?.bytes, { max: 300 }, { f: (v) => String(Math.round(v)), unit: " B" });
  for (const runtime of ["Deno", "Chromium"]) {
    const m = web.find((r) => r.group === runtime && r.concurrency === 256 && r.client === "muxpool" && r.status === "ok");
    add(`${runtime}: muxpool ≥ 0.9× raw WebSocket calls/s, C=256`, m?.vsBase, { min: 0.9 });
  }
  return out;
}

/**
 * An A/B run's verdict lines: the muxpool row over the same client on the
 * baseline build, each measure paired by round (ratios above 1 mean this
 * build is faster, or costs more CPU, latency or memory). Empty without one.
 */
export function buildVsBaseline({ node, memory }) {
  const ok = (r) => r?.status === "ok";
  const lines = node.filter((m) => m.client === "muxpool" && ok(m)).flatMap((m) => {
    const b = node.find((r) => r.client === BASELINE_BUILD && r.payload === m.payload && r.concurrency === m.concurrency);
    if (!ok(b)) return [];
    const by = (pick) => ratio(pairedRatio(m.runs, b.runs, pick));
    return [[payloadName(m.payload), String(m.concurrency), by((r) => r.callsPerSec), by((r) => r.cpuUsPerCall), by((r) => r.p50), by((r) => r.p99)]];
  });
  const [m, b] = ["muxpool", BASELINE_BUILD].map((client) => memory.find((r) => r.client === client));
  if (ok(m) && ok(b)) lines.push(["memory", "", "", "", "", "", ratio(pairedRatio(m.runs, b.runs, (r) => r.bytesPerCall))]);
  return lines;
}

// ------------------------------------------------------------------- output

/** What bench/run.mjs prints at the end. */
export function textReport({ node, memory, web, meta }) {
  const t = targets({ node, memory, web });
  const ab = buildVsBaseline({ node, memory });
  return [
    `Node ${meta.node}, 1 socket per client, median (min–max) of ${meta.rounds.node} rounds, ${meta.config.cellMs} ms per cell; ratios paired by round`,
    textTable(NODE_HEAD, node.map(nodeLine)),
    "",
    `Memory: ${count(meta.config.memCalls)} pending calls on 1 socket, median (min–max) of ${meta.rounds.memory} rounds`,
    textTable(MEM_HEAD, memory.map(memLine)),
    "",
    `Deno ${meta.deno ?? "(not run)"} and Chromium ${meta.chromium ?? "(not run)"}: small payload, median (min–max) of ${meta.rounds.deno} and ${meta.rounds.chromium} rounds`,
    textTable(WEB_HEAD, web.map(webLine)),
    "",
    "Issue 11 targets (this run)",
    textTable(["target", "measured", ""], t.map((x) => [x.target.replace(/`/g, ""), x.value, x.status])),
    ...(ab.length === 0 ? [] : [
      "",
      `A/B: muxpool (this build) ÷ ${BASELINE_BUILD}, paired by round, median (min–max)`,
      textTable(["payload", "C", "calls/s", "client CPU/call", "p50", "p99", "bytes per pending call"], ab),
    ]),
  ].join("\n");
}

const PALETTE = [
  ["raw ws", "#555555", "⬛"],
  ["raw ws corked", "#8c564b", "🟫"],
  ["rpc-websockets", "#ff7f0e", "🟧"],
  ["muxpool", "#1f77b4", "🟦"],
  ["muxpool batch", "#2ca02c", "🟩"],
];

/**
 * A Mermaid xychart: calls/s (thousands) against C, one line per client that
 * has a figure at every C. Named lines get a legend where the renderer has
 * one (Mermaid's `showLegend`); the line under the chart names the colours
 * for renderers that do not.
 */
function chart(node, payload) {
  const cs = [1, 16, 256];
  const series = PALETTE.map(([client, color, swatch]) => {
    const rows = cs.map((c) => node.find((r) => r.payload === payload && r.client === client && r.concurrency === c));
    return rows.every((r) => r?.status === "ok") ? { client, color, swatch, values: rows.map((r) => Math.round(r.cps.med / 100) / 10) } : null;
  }).filter((s) => s !== null);
  const top = Math.max(...series.flatMap((s) => s.values));
  const lines = [
    "```mermaid",
    "---",
    "config:",
    "  xyChart:",
    "    showLegend: true",
    "  themeVariables:",
    "    xyChart:",
    `      plotColorPalette: "${series.map((s) => s.color).join(", ")}"`,
    "---",
    "xychart-beta",
    `  title "Node, ${payload === "small" ? "small payload" : "4 KiB payload"}: calls/s (thousands) by calls in flight"`,
    '  x-axis "calls in flight (C)" ["1", "16", "256"]',
    `  y-axis "calls/s (thousands)" 0 --> ${Math.ceil((top * 1.1) / 10) * 10}`,
    ...series.map((s) => `  line "${s.client}" [${s.values.join(", ")}]`),
    "```",
    "",
    series.map((s) => `${s.swatch} ${s.client}`).join(" · "),
  ];
  return lines.join("\n");
}

/** docs/benchmarks.md. */
export function markdownReport({ node, memory, web, meta }) {
  const t = targets({ node, memory, web });
  const failed = [...node, ...memory, ...web].filter((r) => r.status === "failed");
  const cfg = meta.config;
  const rounds = (group) => node.concat(web).filter((r) => r.group === group);
  const perRound = (rows) =>
    mdTable(
      ["group", "payload", "C", "client", "calls/s, round by round"],
      rows.map((r) => [r.group, payloadName(r.payload), String(r.concurrency), r.client, r.runs.map((x) => `${x.round + 1}: ${si(x.callsPerSec)}`).join(", ") || "–"]),
    );
  return `# Benchmarks

<!-- Written by \`npm run bench -- --write\` (bench/run.mjs). Edit bench/report.mjs, not this file. -->

One run of \`npm run bench\` measures every client below against **the same
JSON-RPC server process**, side by side, in interleaved rounds. The machine
is a shared ${meta.nproc}-core box where other jobs run at the same time, so
absolute figures move from run to run: **read the ratios**, which pair each
client with raw \`ws\` (or with rpc-websockets) measured in the same round, a
few seconds apart. Every figure is the median over the rounds, with the
lowest and highest round in brackets. Wide brackets here mostly follow the
machine's load (its load average is below), so a difference that stays
inside the brackets is not shown by this run.

- **Run:** ${meta.date} · ${meta.wallSeconds} s · ${meta.quick ? "**BENCH_QUICK=1** (short cells, few rounds: indicative only)" : "full run"} · muxpool ${meta.commit}
- **Machine:** ${meta.nproc} cores (${meta.cpuModel}), ${meta.memGiB} GiB · ${meta.os} · load average ${meta.loadavg.start} at start, ${meta.loadavg.end} at end
- **Runtimes:** Node ${meta.node} (ws ${meta.ws}, rpc-websockets ${meta.rpcWebSockets}) · Deno ${meta.deno ?? "not run"} · Chromium ${meta.chromium ?? "not run"}
- **Method:** closed loop (each of C workers makes its next call when its last one settles), ${cfg.warmMs} ms warm-up then ${cfg.cellMs} ms measured per cell; ${meta.rounds.node} rounds for Node${meta.rounds.node < cfg.rounds ? ` (of ${cfg.rounds} planned: the time budget cut the rest)` : ""}, ${meta.rounds.deno} for Deno, ${meta.rounds.chromium} for Chromium, ${meta.rounds.memory} for memory; within a round the clients take turns in an order rotated every round.
${failed.length > 0 ? `\n> **${failed.length} row(s) failed in this run** (see the tables): ${[...new Set(failed.map((r) => r.errors[0]))].join("; ")}\n` : ""}
## Calls per second against calls in flight

${chart(node, "small")}

${chart(node, "4KiB")}

## Node: every client on one socket

${mdTable(NODE_HEAD, node.map(nodeLine))}

- **calls/s**, **client CPU µs/call**: median (min–max) over the rounds.
  CPU is \`process.cpuUsage()\` (user + system) of the client's own process
  over the measured window, divided by the calls completed.
- **× raw ws**, **× rpc-websockets**: the client's calls/s divided by that
  client's in the same round, then median (min–max) of those ratios.
- **p50 / p99**: per-call latency from \`call()\` to settle, median over the rounds.
- **server CPU**: the server process's CPU over the cell, as a share of one
  core. Near 100 % the server, not the client, sets the pace.

## Memory: bytes per pending call

${mdTable(MEM_HEAD, memory.map(memLine))}

${count(cfg.memCalls)} calls to \`hold\`, which the server answers only when the
client then calls \`release\`, all on one socket; heap + external memory of
the client process (after a forced GC) once one more call made the round trip
(so every held call's frame has left the client), minus the same just
before, divided by the calls. muxpool's \`maxInFlight\` and \`maxQueue\`
are raised to ${count(cfg.memCalls)} here so every call is on the wire, as it is for the
other clients (with the defaults, 256 would be in flight and the rest queued).

## Deno and Chromium: muxpool against the runtime's own WebSocket

${mdTable(WEB_HEAD, web.map(webLine))}

Small payload, one socket, same server. Deno runs muxpool from \`src/mod.ts\`
(as a Deno user imports it); Chromium loads \`dist/muxpool.js\` (the CDN file)
in a page served from 127.0.0.1. CPU for Deno is \`process.cpuUsage()\` of the
Deno process; for Chromium it is the renderer process's CPU time (DevTools
\`Performance.getMetrics\`), which leaves out the browser's network service
that does the socket I/O, so it reads low. Where the server CPU column is
low, the runtime itself is what limits the rate.

## Issue 11's targets, read off this run

${mdTable(["target", "measured: median (min–max)", "status"], t.map((x) => [x.target, x.value, x.status]))}

Ratios here are paired by round, like the tables'. On a machine this
noisy, a target whose rounds fall on both sides of it is marked *unsure*:
only a quieter machine or more rounds can settle it.

## What each client is

- **raw ws**: a bare client written for the bench on \`ws\` (\`bench/clients.mjs\`):
  ids from a counter, a \`Map\` of resolvers, one \`ws.send()\` per call. No
  timeout, no queue, no reconnect. The floor any library pays on top of.
- **raw ws corked**: the same, but the first send of a tick corks the TCP
  socket under \`ws\` (\`ws._socket.cork()\`) and \`process.nextTick\` uncorks it,
  so all frames of a tick leave in one \`writev\`. Same frames on the wire; it
  shows what transport-level coalescing is worth.
- **rpc-websockets**: \`Client\` from rpc-websockets ${meta.rpcWebSockets}, the fastest
  single-socket JSON-RPC client issue 11 measured, with its defaults
  (reconnect turned off). One socket. Its calls carry no timeout unless
  given one.
- **muxpool**: \`new Pool(url, { size: 1 })\` from \`dist/index.js\`, every other
  option at its default: a 30 s deadline per call, 256 in flight per socket,
  heartbeat, stats.
- **muxpool batch**: the same with \`coalesce: "batch"\` (calls of one tick sent
  as one JSON-RPC batch frame). Shown as *n/a (not built)* while the built
  library does not accept that option.
- **raw WebSocket** (Deno, Chromium): the raw client above written on the
  runtime's own \`WebSocket\` (\`openWebSocketClient\` in \`bench/loop.mjs\`).

The server (\`bench/server.mjs\`) is a \`ws\` JSON-RPC server on 127.0.0.1 in a
process of its own: \`add\`, \`echo\`, \`sleep\`, \`hold\`/\`release\`, and batches. It corks its
replies per tick, so it is cheap and the client is what differs between rows.
Each Node client runs in its own process too (\`bench/node-agent.mjs\`), so
client CPU is that client's alone. \`ws\` runs without its optional native
add-ons (\`WS_NO_BUFFER_UTIL=1\`, \`WS_NO_UTF_8_VALIDATE=1\` for every
process): rpc-websockets pulls \`bufferutil\` into node_modules, and a user of
muxpool on Node gets plain \`ws\` unless they install it.

## How to run

\`\`\`sh
npm run bench                    # builds, runs everything (~6 min on 2 cores), prints the tables
npm run bench -- --write         # … and writes this file (or BENCH_WRITE=1)
BENCH_QUICK=1 npm run bench      # ~1 min: 2 rounds of short cells, for a quick look
BENCH_MUXPOOL_BASELINE=/tmp/old/dist/index.js npm run bench   # A/B: adds a "muxpool (baseline)" row on that build, and a table of this ÷ baseline
\`\`\`

Other knobs: \`BENCH_ROUNDS\`, \`BENCH_CELL_MS\`, \`BENCH_BUDGET_S\` (the whole
run stops starting rounds when it would pass this; default ${meta.budgetDefault} s),
\`CHROMIUM_PATH\` (default \`/usr/bin/chromium\`; \`apt-get install chromium\`).
Deno comes from \`node_modules/.bin/deno\` (a devDependency). Everything
listens on and connects to 127.0.0.1 only; every loop stops at a time and a
call count, and a run that overstays its budget by a minute is killed.

<details><summary>Every round's calls/s</summary>

${perRound([...rounds("Node"), ...rounds("Deno"), ...rounds("Chromium")])}

</details>
`;
}
