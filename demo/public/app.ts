/**
 * The demo page: a muxpool Pool against the demo JSON-RPC server, the
 * dashboard widget mounted on it, a load generator, pool settings and the
 * server's fault controls (over its admin WebSocket).
 *
 * Bundled to dist-demo/public/app.js with "muxpool" and "muxpool/dashboard"
 * left as imports of /dist/muxpool.js and /dist/muxpool-dashboard.js: the
 * same files a CDN user loads.
 */
import { InvalidConfigError, Pool } from "muxpool";
import { mountDashboard } from "muxpool/dashboard";
import type { PoolUpdate, ResubscribeEvent, Subscription } from "muxpool";

interface Config {
  rpcUrl: string;
  adminUrl: string;
  /** What the demo server wants in `login`. */
  token: string;
}

interface Settings {
  size: number;
  strategy: "least-pending" | "round-robin" | "random";
  ttl: number;
  maxInFlight: number;
}

interface ServerConnection {
  id: number;
  remoteAddress: string;
  received: number;
  sent: number;
  stalled: boolean;
}

interface AdminState {
  type: "state";
  faults: { latency: number; jitter: number; errorRate: number; dropRate: number };
  connections: ServerConnection[];
  stats: { requests: number; replies: number; errorsInjected: number; repliesDropped: number; connectionsAccepted: number };
  refusing: boolean;
  restarting: boolean;
  /** Logins, and calls refused because their socket had not logged in (0: the pool's setup ran first). */
  login?: { logins: number; refusedBeforeLogin: number };
  /** The demo's methods (test/fixtures/ticker.ts): the ticker's live subscriptions, the sockets that carry them. */
  extension?: { ticker?: { seq: number; live: number; carriers: number[] } };
}

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`demo page: #${id} is missing from index.html`);
  return node as T;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = new Intl.NumberFormat("en-US");
const setText = (node: HTMLElement, text: string): void => {
  if (node.textContent !== text) node.textContent = text;
};

const config = (await (await fetch("/config.json", { cache: "no-store" })).json()) as Config;

// ---------------------------------------------------------------- pool + dashboard

const host = byId("dashboard");

function createPool(s: Settings): Pool {
  return new Pool(config.rpcUrl, {
    size: s.size,
    maxInFlight: s.maxInFlight,
    strategy: s.strategy,
    ttl: s.ttl,
    timeout: 10_000,
    heartbeat: { interval: 2000, timeout: 1000 },
    reconnect: { initialDelay: 100, maxDelay: 2000 },
    // The demo server refuses every call on a socket until it logged in: each new socket
    // (first connect, reconnect, TTL replacement, resize, reload) runs this before any other call.
    setup: async (conn) => {
      await conn.call("login", [config.token]);
    },
  });
}

function readSettings(): Settings {
  return {
    size: Number(byId<HTMLInputElement>("size").value),
    strategy: byId<HTMLSelectElement>("strategy").value as Settings["strategy"],
    ttl: Number(byId<HTMLInputElement>("ttl").value),
    maxInFlight: Number(byId<HTMLInputElement>("max-in-flight").value),
  };
}

// One pool for the page's life: the settings and Reload change it live, so
// the dashboard (its charts, its log) stays mounted and keeps its history.
const pool = createPool(readSettings());
mountDashboard(pool, host, { title: "muxpool · pool 1", refreshInterval: 200, history: 30 });

const hint = byId("pool-hint");
const hintText = hint.textContent ?? "";
const applyButton = byId<HTMLButtonElement>("apply");
const reloadButton = byId<HTMLButtonElement>("reload");

/** What the hint under the settings says: `data-state` is "", "busy", "done" or "error". */
function showHint(state: "" | "busy" | "done" | "error", text: string): void {
  hint.dataset.state = state;
  setText(hint, text);
  hint.style.color = state === "error" ? "#f85149" : state === "done" ? "#3fb950" : "";
}

/** Runs one change of the pool at a time: Apply and Reload wait for the one under way. */
async function change(work: () => Promise<string | undefined>): Promise<void> {
  applyButton.disabled = reloadButton.disabled = true;
  try {
    const done = await work();
    if (done !== undefined) showHint("done", done);
  } catch (error) {
    showHint("error", (error as Error).message);
  } finally {
    applyButton.disabled = reloadButton.disabled = false;
  }
}

applyButton.addEventListener("click", () =>
  void change(async () => {
    const s = readSettings();
    const o = pool.options;
    const live: PoolUpdate = {};
    if (s.strategy !== o.strategy) live.strategy = s.strategy;
    if (s.ttl !== o.ttl) live.ttl = s.ttl;
    if (s.maxInFlight !== o.maxInFlight) live.maxInFlight = s.maxInFlight;
    const resize = s.size !== o.size;
    if (Object.keys(live).length === 0 && !resize) {
      showHint("", hintText);
      return undefined;
    }
    // update() checks every value before it changes any (InvalidConfigError names the option).
    const previous: PoolUpdate = { strategy: o.strategy, ttl: o.ttl, maxInFlight: o.maxInFlight };
    if (Object.keys(live).length > 0) pool.update(live);
    const done = Object.entries(live).map(([key, value]) => `${key} ${String(value)}${key === "ttl" ? " ms" : ""}`);
    if (resize) {
      const from = o.size;
      showHint("busy", `Resizing ${from} → ${s.size}…`);
      try {
        await pool.resize(s.size);
      } catch (error) {
        // A size the pool refuses leaves the pool as it was: undo the rest of this Apply too.
        if (error instanceof InvalidConfigError && Object.keys(live).length > 0) {
          pool.update(Object.fromEntries(Object.keys(live).map((k) => [k, previous[k as keyof PoolUpdate]])) as PoolUpdate);
        }
        throw error;
      }
      done.unshift(`size ${from} → ${s.size}`);
    }
    return `Applied to the live pool: ${done.join(", ")}.`;
  }));

reloadButton.addEventListener("click", () =>
  void change(async () => {
    const open = pool.stats().connections.open;
    showHint("busy", `Reloading: replacing ${open} socket${open === 1 ? "" : "s"}, one at a time…`);
    const started = performance.now();
    await pool.reload();
    return `Reloaded: every socket replaced in ${((performance.now() - started) / 1000).toFixed(1)} s.`;
  }));

// ---------------------------------------------------------------- load generator

const load = { running: false, gen: 0, ok: 0, failed: 0, idempotentFailed: 0, codes: new Map<string, number>() };
const concurrency = byId<HTMLInputElement>("concurrency");
const method = byId<HTMLSelectElement>("method");
const sleepMs = byId<HTMLInputElement>("sleep-ms");
const idempotent = byId<HTMLInputElement>("idempotent");
const callTimeout = byId<HTMLInputElement>("call-timeout");
const toggle = byId<HTMLButtonElement>("load-toggle");

function paramsFor(name: string, n: number): unknown {
  switch (name) {
    case "add":
      return [n, 1];
    case "sleep":
      return [Number(sleepMs.value)];
    case "incr":
      return [];
    default:
      return [{ n, text: "hello muxpool" }];
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : (error as Error | null)?.name ?? "Error";
}

/**
 * One worker: one call at a time, awaited, so at most `concurrency` calls
 * exist however slow the server is. A worker whose generation is over stops
 * after its current call.
 */
async function worker(gen: number): Promise<void> {
  let n = 0;
  while (load.running && load.gen === gen) {
    const name = method.value;
    const isIdempotent = idempotent.checked;
    const timeout = Number(callTimeout.value) >= 1 ? Number(callTimeout.value) : 10_000;
    const started = performance.now();
    try {
      await pool.call(name, paramsFor(name, n++), { idempotent: isIdempotent, timeout });
      load.ok++;
    } catch (error) {
      const code = errorCode(error);
      load.failed++;
      if (isIdempotent) load.idempotentFailed++;
      load.codes.set(code, (load.codes.get(code) ?? 0) + 1);
      // A call that fails at once (no socket, pool full) must not turn into a busy loop.
      if (performance.now() - started < 20) await sleep(100);
    }
  }
}

function startWorkers(): void {
  const gen = ++load.gen;
  const n = Number(concurrency.value);
  for (let i = 0; i < n; i++) void worker(gen);
}

toggle.addEventListener("click", () => {
  load.running = !load.running;
  toggle.toggleAttribute("data-running", load.running);
  toggle.textContent = load.running ? "Stop load" : "Start load";
  if (load.running) startWorkers();
  else load.gen++;
});
concurrency.addEventListener("input", () => {
  setText(byId("concurrency-out"), concurrency.value);
  if (load.running) startWorkers();
});
method.addEventListener("change", () => {
  byId("sleep-row").hidden = method.value !== "sleep";
  if (method.value === "incr") idempotent.checked = false;
});
sleepMs.addEventListener("input", () => setText(byId("sleep-out"), sleepMs.value));
byId("load-clear").addEventListener("click", () => {
  load.ok = load.failed = load.idempotentFailed = 0;
  load.codes.clear();
});

const okOut = byId("load-ok");
const failedOut = byId("load-failed");
const idemOut = byId("load-idem-failed");
const codesOut = byId("load-codes");
setInterval(() => {
  setText(okOut, fmt.format(load.ok));
  setText(failedOut, fmt.format(load.failed));
  failedOut.classList.toggle("bad", load.failed > 0);
  setText(idemOut, fmt.format(load.idempotentFailed));
  idemOut.classList.toggle("bad", load.idempotentFailed > 0);
  setText(
    codesOut,
    [...load.codes]
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${fmt.format(n)}`)
      .join(" · "),
  );
}, 250);

// ---------------------------------------------------------------- live subscription

/** One `ticker_subscription` event: the server's sequence number and when it made it. */
interface Tick {
  seq: number;
  t: number;
}

/** A move of the subscription, and the sequence numbers missed across it (found at the next event). */
interface Move {
  from: number;
  to: number;
  gap: number;
  /** The last seq before the move; the next event closes the entry. */
  before: number | undefined;
  missed: number[];
  closed: boolean;
  li: HTMLLIElement;
}

const ticker = {
  state: "subscribing" as "subscribing" | "flowing" | "waiting" | "ended",
  last: undefined as Tick | undefined,
  lastAt: 0,
  delivered: 0,
  /** Over every subscription the page made (it subscribes again after one ended with an error). */
  moves: 0,
  duplicatesDropped: 0,
  /** Sequence numbers that never arrived, and ones that arrived again or out of order. */
  missed: 0,
  repeated: 0,
  restarts: 0,
  error: "",
  /** The last 2000 sequence numbers delivered, for a look from the console or a test. */
  seqs: [] as number[],
  moveLog: [] as Move[],
};
const gapsList = byId("sub-gaps");
let current: Subscription<Tick> | undefined;

/** A missed range as text: `none`, `51`, `51–53`, `51, 54`. */
function missedText(xs: readonly number[]): string {
  if (xs.length === 0) return "none";
  const parts: string[] = [];
  for (let i = 0; i < xs.length; i++) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    parts.push(j === i ? String(xs[i]) : `${xs[i]}–${xs[j]}`);
    i = j;
  }
  return parts.join(", ");
}

function showMove(m: Move): void {
  const missed = m.closed ? `missed ${missedText(m.missed)}` : "…";
  m.li.replaceChildren();
  const time = document.createElement("time");
  time.textContent = new Date().toTimeString().slice(0, 8);
  const what = document.createElement("span");
  what.textContent = `#${m.from} → #${m.to} · ${fmt.format(m.gap)} ms`;
  const tail = document.createElement("span");
  tail.className = "missed";
  tail.textContent = missed;
  m.li.append(time, what, tail);
  m.li.toggleAttribute("data-missed", m.missed.length > 0);
}

function onMove(e: ResubscribeEvent): void {
  const li = document.createElement("li");
  li.dataset.testid = "sub-gap";
  const m: Move = { from: e.from, to: e.to, gap: e.gap, before: ticker.last?.seq, missed: [], closed: false, li };
  ticker.moves++;
  ticker.moveLog.push(m);
  if (ticker.moveLog.length > 50) ticker.moveLog.shift();
  showMove(m);
  gapsList.querySelector(".empty")?.remove();
  gapsList.prepend(li);
  while (gapsList.childElementCount > 12) gapsList.lastElementChild!.remove();
}

function onTick(tick: Tick): void {
  const last = ticker.last?.seq;
  const missed: number[] = [];
  if (last !== undefined && tick.seq <= last) ticker.repeated++;
  else if (last !== undefined) { for (let n = last + 1; n < tick.seq && missed.length < 1000; n++) missed.push(n); }
  ticker.missed += missed.length;
  // The moves this event follows learn what was missed across them.
  for (const m of ticker.moveLog) {
    if (m.closed) continue;
    m.closed = true;
    m.missed = missed;
    showMove(m);
  }
  ticker.last = tick;
  ticker.lastAt = performance.now();
  ticker.delivered++;
  ticker.seqs.push(tick.seq);
  if (ticker.seqs.length > 2000) ticker.seqs.shift();
}

/**
 * Follows the ticker for the page's life. The subscription moves by itself
 * when its socket is lost, stalls, expires or drains; it ends only when the
 * server refuses it (say, an injected error on the subscribe call): then the
 * page subscribes again, resuming where it stopped.
 */
async function follow(): Promise<void> {
  while (pool.state === "open") {
    const base = current?.stats();
    if (base !== undefined) ticker.duplicatesDropped += base.duplicatesDropped;
    current = undefined;
    ticker.state = "subscribing";
    try {
      const sub = await pool.subscribe<Tick>(
        "ticker_subscribe",
        // Called on every (re)subscribe with the last event of this subscription: resume from it,
        // that one included, so that nothing can fall between (`key` drops the one seen twice).
        // A new subscription (after an error) starts from the page's last event.
        (last?: Tick) => {
          const seen = last ?? ticker.last;
          return [seen === undefined ? {} : { from: seen.seq }];
        },
        {
          unsubscribe: "ticker_unsubscribe",
          notification: "ticker_subscription",
          // A move overlaps the old and the new subscription: the same seq can come from both.
          key: (tick) => tick.seq,
        },
      );
      current = sub;
      sub.addEventListener("resubscribe", onMove);
      ticker.state = "flowing";
      for await (const tick of sub) onTick(tick);
      return; // ended by the page (pagehide) or the pool's close
    } catch (error) {
      ticker.error = `${errorCode(error)}: ${(error as Error).message}`;
      ticker.state = "ended";
      ticker.restarts++;
      await sleep(1000);
    }
  }
}
void follow();

const subState = byId("sub-state");
const subWhere = byId("sub-where");
setInterval(() => {
  const silent = performance.now() - ticker.lastAt;
  const state = ticker.state === "flowing" && silent > 1500 ? "waiting" : ticker.state;
  subState.dataset.state = state;
  const label = state === "waiting"
    ? `no event for ${(silent / 1000).toFixed(1)} s`
    : state === "ended"
    ? "ended, subscribing again"
    : state;
  setText(subState.querySelector("b")!, label);
  const on = pool.connections().filter((c) => c.subscriptions > 0).map((c) => `#${c.id}`);
  const where = state === "ended" ? ticker.error : on.length > 0 ? `on socket ${on.join(" + ")}` : "";
  setText(subWhere, `${where}${ticker.restarts > 0 && state !== "ended" ? ` · subscribed again ${ticker.restarts}×` : ""}`);
  setText(byId("sub-seq"), ticker.last === undefined ? "–" : fmt.format(ticker.last.seq));
  setText(byId("sub-delivered"), fmt.format(ticker.delivered));
  setText(byId("sub-moves"), fmt.format(ticker.moves));
  setText(byId("sub-dropped"), fmt.format(ticker.duplicatesDropped + (current?.stats().duplicatesDropped ?? 0)));
  const missedOut = byId("sub-missed");
  setText(missedOut, fmt.format(ticker.missed));
  missedOut.classList.toggle("bad", ticker.missed > 0);
  const repeatedOut = byId("sub-repeated");
  setText(repeatedOut, fmt.format(ticker.repeated));
  repeatedOut.classList.toggle("bad", ticker.repeated > 0);
}, 250);

// ---------------------------------------------------------------- server admin channel

const adminStatus = byId("admin-status");
let admin: WebSocket | undefined;

function setAdminStatus(state: "connecting" | "open" | "closed"): void {
  adminStatus.dataset.state = state;
  setText(adminStatus.querySelector("span")!, state === "open" ? "connected" : state === "closed" ? "offline, retrying" : "connecting");
}

function connectAdmin(): void {
  setAdminStatus("connecting");
  const ws = new WebSocket(config.adminUrl);
  admin = ws;
  ws.onopen = () => setAdminStatus("open");
  ws.onmessage = (event) => {
    try {
      const state = JSON.parse(String(event.data)) as AdminState;
      if (state.type === "state") showState(state);
    } catch {
      // not a state push: ignore
    }
  };
  ws.onclose = () => {
    if (admin === ws) admin = undefined;
    setAdminStatus("closed");
    setTimeout(connectAdmin, 1000);
  };
}

function sendAdmin(message: Record<string, unknown>): void {
  if (admin?.readyState === WebSocket.OPEN) admin.send(JSON.stringify(message));
}

connectAdmin();

document.querySelectorAll<HTMLButtonElement>("button[data-op]").forEach((button) => {
  button.addEventListener("click", () => {
    const op = button.dataset.op!;
    sendAdmin(op === "restart" ? { op, downMs: 1500 } : { op });
  });
});

interface Fault {
  input: HTMLInputElement;
  out: HTMLElement;
  key: keyof AdminState["faults"];
  /** slider value → server value */
  scale: number;
  unit: string;
}
const faults: Fault[] = [
  { input: byId("latency"), out: byId("latency-out"), key: "latency", scale: 1, unit: " ms" },
  { input: byId("jitter"), out: byId("jitter-out"), key: "jitter", scale: 1, unit: " ms" },
  { input: byId("error-rate"), out: byId("error-rate-out"), key: "errorRate", scale: 0.01, unit: "%" },
  { input: byId("drop-rate"), out: byId("drop-rate-out"), key: "dropRate", scale: 0.01, unit: "%" },
];
let lastFaultInput = 0;
let faultTimer: ReturnType<typeof setTimeout> | undefined;
for (const f of faults) {
  f.input.addEventListener("input", () => {
    lastFaultInput = Date.now();
    setText(f.out, `${f.input.value}${f.unit}`);
    // Coalesce a slider drag into a few messages.
    faultTimer ??= setTimeout(() => {
      faultTimer = undefined;
      const values: Record<string, number> = {};
      for (const g of faults) values[g.key] = Number(g.input.value) * g.scale;
      sendAdmin({ op: "setFaults", faults: values });
    }, 60);
  });
}

const serverRows = new Map<number, { row: HTMLTableRowElement; recv: HTMLElement; sent: HTMLElement; stall: HTMLButtonElement }>();
const serverBody = byId("server-conns");
const serverSummary = byId("server-summary");
const emptyRow = document.createElement("tr");
emptyRow.innerHTML = '<td colspan="4" class="empty">no RPC sockets</td>';
serverBody.append(emptyRow);

/** Server sockets that carry the ticker subscription, from the last state push. */
let tickerCarriers: number[] = [];
const subKill = byId<HTMLButtonElement>("sub-kill");
subKill.addEventListener("click", () => {
  const id = tickerCarriers[0];
  if (id !== undefined) sendAdmin({ op: "kill", id });
});

function showTicker(t: NonNullable<AdminState["extension"]>["ticker"], login: AdminState["login"]): void {
  tickerCarriers = t?.carriers ?? [];
  subKill.disabled = tickerCarriers.length === 0;
  const server = byId("sub-server");
  if (t === undefined) return setText(server, "");
  const refused = login?.refusedBeforeLogin ?? 0;
  setText(
    server,
    `server side: ${t.live} live ticker subscription${t.live === 1 ? "" : "s"}${
      t.carriers.length > 0 ? ` on socket ${t.carriers.map((id) => `#${id}`).join(" + ")}` : ""
    }${login === undefined ? "" : ` · ${refused} call${refused === 1 ? "" : "s"} refused before login`}`,
  );
  server.classList.toggle("bad", refused > 0);
}

function showState(state: AdminState): void {
  showTicker(state.extension?.ticker, state.login);
  // Sliders follow the server unless the user just moved one.
  if (Date.now() - lastFaultInput > 1500) {
    for (const f of faults) {
      const value = String(Math.round(state.faults[f.key] / f.scale));
      if (f.input.value !== value) f.input.value = value;
      setText(f.out, `${f.input.value}${f.unit}`);
    }
  }
  setText(serverSummary, state.restarting ? "restarting…" : state.refusing ? "refusing sockets" : `${state.connections.length} sockets`);
  const seen = new Set<number>();
  for (const c of state.connections) {
    seen.add(c.id);
    let entry = serverRows.get(c.id);
    if (entry === undefined) {
      const row = document.createElement("tr");
      row.dataset.testid = "server-connection";
      row.dataset.id = String(c.id);
      const name = document.createElement("td");
      const port = /:(\d+)$/.exec(c.remoteAddress)?.[1];
      const small = document.createElement("small");
      small.textContent = port === undefined ? ` ${c.remoteAddress}` : ` :${port}`;
      name.append(`#${c.id}`, small);
      const recv = document.createElement("td");
      recv.className = "num";
      const sent = document.createElement("td");
      sent.className = "num";
      const actions = document.createElement("td");
      actions.className = "act";
      const kill = document.createElement("button");
      kill.textContent = "kill";
      kill.className = "danger";
      kill.addEventListener("click", () => sendAdmin({ op: "kill", id: c.id }));
      const stall = document.createElement("button");
      stall.addEventListener("click", () => sendAdmin({ op: stall.dataset.stalled === "1" ? "unstall" : "stall", id: c.id }));
      actions.append(kill, " ", stall);
      row.append(name, recv, sent, actions);
      entry = { row, recv, sent, stall };
      serverRows.set(c.id, entry);
    }
    // New sockets are the server's newest: they go last, as in its list.
    if (entry.row.parentNode !== serverBody) serverBody.append(entry.row);
    setText(entry.recv, fmt.format(c.received));
    setText(entry.sent, fmt.format(c.sent));
    entry.row.toggleAttribute("data-stalled", c.stalled);
    entry.row.toggleAttribute("data-ticker", tickerCarriers.includes(c.id));
    entry.stall.dataset.stalled = c.stalled ? "1" : "0";
    setText(entry.stall, c.stalled ? "unstall" : "stall");
  }
  for (const [id, entry] of serverRows) {
    if (seen.has(id)) continue;
    entry.row.remove();
    serverRows.delete(id);
  }
  emptyRow.hidden = state.connections.length > 0;
  setText(byId("srv-requests"), fmt.format(state.stats.requests));
  setText(byId("srv-errors"), fmt.format(state.stats.errorsInjected));
  setText(byId("srv-dropped"), fmt.format(state.stats.repliesDropped));
}

// For poking around from the browser console: `muxpoolDemo.pool.stats()`.
(globalThis as { muxpoolDemo?: unknown }).muxpoolDemo = { pool, config, ticker };
addEventListener("pagehide", () => void pool.destroy());
