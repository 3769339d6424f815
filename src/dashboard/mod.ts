/**
 * A live dashboard for a muxpool `Pool`: one card per socket, the pool's
 * totals, charts over time and an event log. Plain DOM and a canvas, no
 * dependencies, styles scoped to the element it creates.
 *
 * @example
 * ```ts
 * import { Pool } from "muxpool";
 * import { mountDashboard } from "muxpool/dashboard";
 *
 * const pool = new Pool("wss://api.example.com/rpc", { size: 4 });
 * const dashboard = mountDashboard(pool, document.getElementById("health")!);
 * // later
 * dashboard.unmount();
 * ```
 *
 * @module
 */

import type {
  ConnectionEvent,
  ConnectionSnapshot,
  NotificationEvent,
  Pool,
  PoolChangeEvent,
  PoolErrorEvent,
  PoolStats,
  RerouteEvent,
  ResubscribeEvent,
  ResubscribeReason,
} from "../mod.ts";
import { LineChart } from "./chart.ts";
import { bytes, clock, count, duration, ms, rate } from "./format.ts";
import { CSS, type Palette, PALETTES } from "./style.ts";

/** A `resubscribe` event's reason, as the log says it. */
const MOVE_REASONS: Record<ResubscribeReason, string> = {
  lost: "its socket was lost",
  closing: "its socket began closing",
  expired: "its socket expired",
  resize: "resize",
  reload: "reload",
};

/** The pool events the dashboard listens to. */
export type DashboardEventType =
  | "open"
  | "close"
  | "reconnect"
  | "expire"
  | "reroute"
  | "error"
  | "notification"
  | "idle"
  | "shutdown"
  | "resize"
  | "update"
  | "reload"
  | "reloaded"
  | "resubscribe";

/** Options of {@link mountDashboard}. */
export interface DashboardOptions {
  /** Heading shown above the dashboard. @default "muxpool" */
  title?: string;
  /** @default "dark" */
  theme?: "dark" | "light";
  /** How often the numbers are sampled and redrawn, in ms (50 and up). @default 250 */
  refreshInterval?: number;
  /** Seconds of history the charts keep. @default 60 */
  history?: number;
  /** Most entries the event log keeps; older ones are removed. @default 200 */
  maxLogEntries?: number;
  /**
   * Event types written to the log (every type is counted either way).
   * @default ["open", "close", "reconnect", "expire", "reroute", "resubscribe", "error", "shutdown", "resize", "update", "reload", "reloaded"]
   */
  logEvents?: readonly DashboardEventType[];
  /** Ms a socket that left the pool stays on screen, greyed out. @default 1500 */
  closedCardLinger?: number;
}

/** A mounted dashboard. */
export interface Dashboard {
  /** The dashboard's root element (a child of the element it was mounted on). */
  readonly element: HTMLElement;
  /** Samples the pool and redraws now, instead of at the next interval. */
  refresh(): void;
  /** Removes the dashboard: its listeners on the pool, its timers and its DOM. Idempotent. */
  unmount(): void;
}

const ALL_EVENTS: readonly DashboardEventType[] = [
  "open",
  "close",
  "reconnect",
  "expire",
  "reroute",
  "error",
  "notification",
  "idle",
  "shutdown",
  "resize",
  "update",
  "reload",
  "reloaded",
  "resubscribe",
];
const DEFAULT_LOG: readonly DashboardEventType[] = [
  "open",
  "close",
  "reconnect",
  "expire",
  "reroute",
  "resubscribe",
  "error",
  "shutdown",
  "resize",
  "update",
  "reload",
  "reloaded",
];
/** Changes to the live pool: logged, but without a counter chip of their own. */
const CHANGES: ReadonlySet<DashboardEventType> = new Set(["resize", "update", "reload", "reloaded"]);

type CardState = "open" | "connecting" | "reconnecting" | "draining" | "closed";

interface Card {
  readonly root: HTMLElement;
  readonly badge: HTMLElement;
  readonly flags: HTMLElement;
  readonly age: HTMLElement;
  readonly ageFill: HTMLElement;
  readonly inFlight: HTMLElement;
  readonly loadBar: HTMLElement;
  readonly loadFill: HTMLElement;
  readonly queued: HTMLElement;
  readonly sent: HTMLElement;
  readonly received: HTMLElement;
  readonly p50: HTMLElement;
  readonly p99: HTMLElement;
  readonly subscriptions: HTMLElement;
  state: CardState | "";
  /** When the socket left the pool (performance.now()), or 0 while it is in it. */
  goneAt: number;
}

interface LogEntry {
  type: DashboardEventType;
  time: number;
  text: string;
  clean: boolean;
}

interface Tile {
  readonly root: HTMLElement;
  readonly value: HTMLElement;
  readonly suffix: HTMLElement;
}

interface Sample {
  t: number;
  settled: number;
  failed: number;
  timedOut: number;
  protocol: number;
  lost: number;
}

/**
 * Mounts a live dashboard of `pool` inside `element` and keeps it up to date
 * (every `refreshInterval` ms) until `unmount()` is called. The pool is only
 * read: `stats()`, `connections()` and its events.
 */
export function mountDashboard(pool: Pool, element: HTMLElement, options: DashboardOptions = {}): Dashboard {
  const refreshMs = Math.max(50, finite(options.refreshInterval, 250));
  const historyS = Math.max(5, finite(options.history, 60));
  const maxLog = Math.max(1, Math.floor(finite(options.maxLogEntries, 200)));
  const linger = Math.max(0, finite(options.closedCardLinger, 1500));
  const logged = new Set<DashboardEventType>(options.logEvents ?? DEFAULT_LOG);
  const theme = options.theme === "light" ? "light" : "dark";
  const palette: Palette = PALETTES[theme];
  const now = (): number => (typeof performance !== "undefined" ? performance.now() : Date.now());

  // ------------------------------------------------------------ skeleton

  const root = el("section", "mxd");
  root.dataset.theme = theme;
  root.dataset.testid = "muxpool-dashboard";
  const style = document.createElement("style");
  style.textContent = CSS;
  root.append(style);

  const head = el("div", "mxd-head");
  const title = el("span", "mxd-title", options.title ?? "muxpool");
  const sub = el("span", "mxd-sub");
  sub.dataset.testid = "pool-info";
  const live = el("span", "mxd-live", "live");
  live.dataset.testid = "pool-state";
  head.append(title, sub, live);

  const groups = el("div", "mxd-groups");
  const tiles = new Map<string, Tile>();
  const group = (name: string, items: readonly [id: string, label: string][]): void => {
    const box = el("div", "mxd-group");
    box.append(el("h3", "", name));
    const grid = el("div", "mxd-tiles");
    for (const [id, label] of items) {
      const tile = el("div", "mxd-tile");
      const line = el("span", "mxd-tile-value");
      // The number stays alone in its element (tests and scripts read it); a suffix goes beside it.
      const value = el("span", "", "–");
      value.dataset.testid = `stat-${id}`;
      const suffix = el("small", "", "");
      line.append(value, suffix);
      tile.append(line, el("span", "mxd-tile-label", label));
      grid.append(tile);
      tiles.set(id, { root: tile, value, suffix });
    }
    box.append(grid);
    groups.append(box);
  };
  group("Throughput", [["throughput", "calls / s"], ["errors-rate", "failed / s"], ["notifications", "notifications"]]);
  group("Sockets", [["open", "open"], ["connecting", "connecting"], ["draining", "draining"], ["available", "available"], [
    "in-use",
    "in use",
  ]]);
  group("Calls", [["inflight", "in flight"], ["queued", "queued"], ["succeeded", "succeeded"], ["failed", "failed"], [
    "timedout",
    "timed out",
  ]]);
  group("Recovery", [["rerouted", "rerouted"], ["retried", "retried"], ["reconnects", "reconnects"], ["expired", "expired"], [
    "protocol-errors",
    "protocol err.",
  ]]);
  group("Latency", [["p50", "p50"], ["p90", "p90"], ["p99", "p99"], ["max", "max"]]);
  // Test ids and tooltips carry the field names of stats().subscriptions.
  group("Subscriptions", [
    ["sub-active", "active"],
    ["sub-waiting", "waiting"],
    ["sub-resubscribed", "resubscribed"],
    ["sub-duplicatesDropped", "dup. dropped"],
    ["sub-overflowed", "overflowed"],
    ["sub-unsubscribeFailed", "unsub. failed"],
  ]);
  for (const [id, field] of Object.entries(SUBSCRIPTION_FIELDS)) tiles.get(id)!.root.title = SUBSCRIPTION_HELP[field];

  const socketsPanel = el("div", "");
  const socketsHead = el("div", "mxd-section-head");
  const socketsNote = el("span", "mxd-sub");
  socketsHead.append(el("h3", "", "Sockets"), socketsNote);
  const cardsBox = el("div", "mxd-cards");
  cardsBox.dataset.testid = "socket-cards";
  socketsPanel.append(socketsHead, cardsBox);

  const capacity = Math.round((historyS * 1000) / refreshMs);
  const charts = el("div", "mxd-charts");
  const chartThroughput = new LineChart(
    "Throughput (calls/s)",
    "chart-throughput",
    [{ label: "settled", color: palette.green, fill: true }],
    capacity,
    rate,
    palette,
  );
  const chartLatency = new LineChart(
    "Latency (ms)",
    "chart-latency",
    [
      { label: "p50", color: palette.blue, fill: true },
      { label: "p99", color: palette.purple },
    ],
    capacity,
    (v) => ms(v),
    palette,
  );
  const chartLoad = new LineChart(
    "In flight & queued",
    "chart-load",
    [
      { label: "in flight", color: palette.teal, fill: true },
      { label: "queued", color: palette.amber },
    ],
    capacity,
    count,
    palette,
  );
  const chartErrors = new LineChart(
    "Errors by kind (/s)",
    "chart-errors",
    [
      { label: "failed", color: palette.red, fill: true },
      { label: "timeouts", color: palette.amber },
      { label: "sockets lost", color: palette.purple },
      { label: "protocol", color: palette.gray },
    ],
    capacity,
    rate,
    palette,
  );
  const allCharts = [chartThroughput, chartLatency, chartLoad, chartErrors];
  charts.append(...allCharts.map((c) => c.element));

  const logPanel = el("div", "mxd-log-panel");
  const logHead = el("div", "mxd-section-head");
  const countsBox = el("div", "mxd-counts");
  const counts = new Map<DashboardEventType, HTMLElement>();
  const countValues = new Map<DashboardEventType, number>();
  for (const type of ALL_EVENTS) {
    countValues.set(type, 0);
    if (type === "idle" || type === "shutdown" || CHANGES.has(type)) continue;
    const chip = el("span", "mxd-count", type);
    const b = el("b", "", "0");
    b.dataset.testid = `event-count-${type}`;
    chip.append(b);
    countsBox.append(chip);
    counts.set(type, b);
  }
  logHead.append(el("h3", "", "Events"), countsBox);
  const log = el("ul", "mxd-log");
  log.dataset.testid = "event-log";
  const logEmpty = el("div", "mxd-log-empty", "No events yet.");
  logPanel.append(logHead, logEmpty, log);

  const chartsHead = el("div", "mxd-section-head mxd-charts-head");
  chartsHead.append(el("h3", "", "Over time"), el("span", "mxd-sub", `last ${historyS} s, sampled every ${refreshMs} ms`));

  root.append(head, groups, socketsPanel, chartsHead, charts, logPanel);
  element.append(root);

  // ------------------------------------------------------------ events

  let pending: LogEntry[] = [];
  let lostSockets = 0;
  const expiredIds = new Set<number>();

  const push = (type: DashboardEventType, text: string, clean = false): void => {
    countValues.set(type, (countValues.get(type) ?? 0) + 1);
    if (!logged.has(type)) return;
    pending.push({ type, time: Date.now(), text, clean });
    if (pending.length > maxLog * 2) pending = pending.slice(-maxLog);
  };
  const onConnection = (e: Event): void => {
    const ev = e as ConnectionEvent;
    const c = ev.connection;
    switch (ev.type) {
      case "open":
        push("open", `socket #${c.id} open${c.url ? ` → ${c.url}` : ""}`);
        break;
      case "close": {
        const clean = ev.code === 1000;
        if (!clean) lostSockets++;
        expiredIds.delete(c.id);
        push(
          "close",
          `socket #${c.id} closed (code ${ev.code ?? "?"}${ev.reason ? `: ${ev.reason}` : ""})${
            c.age > 0 ? ` after ${duration(c.age)}` : ""
          }`,
          clean,
        );
        break;
      }
      case "reconnect":
        push(
          "reconnect",
          `socket #${c.id} reconnects in ${Math.round(ev.delay ?? 0)} ms (attempt ${ev.attempt ?? "?"})${
            ev.reason ? `: ${ev.reason}` : ""
          }`,
        );
        break;
      case "expire":
        expiredIds.add(c.id);
        push(
          "expire",
          `socket #${c.id} expired at ${duration(c.age)} (TTL ${duration(c.ttl)}), ${c.inFlight} in flight, ${c.queued} queued`,
        );
        break;
    }
  };
  const onReroute = (e: Event): void => {
    const ev = e as RerouteEvent;
    push(
      "reroute",
      `${ev.count} queued call${ev.count === 1 ? "" : "s"} moved from #${ev.from.id} to ${
        ev.to === null ? "the pool queue" : `#${ev.to.id}`
      }`,
    );
  };
  const onError = (e: Event): void => {
    const ev = e as PoolErrorEvent;
    const err = ev.error as Error & { code?: unknown };
    const where = ev.connectionId === undefined ? "" : `socket #${ev.connectionId}: `;
    // The pool's messages often begin with "socket 4: " already: said once.
    const text = String(err.message ?? err).replace(`socket ${ev.connectionId}: `, "");
    push("error", `${where}${typeof err.code === "string" ? `${err.code} ` : ""}${text}`);
  };
  const onResubscribe = (e: Event): void => {
    const ev = e as ResubscribeEvent;
    const outage = ev.gap === 0 ? "make-before-break" : `${duration(ev.gap)} without a socket`;
    push(
      "resubscribe",
      `"${ev.method}" moved #${ev.from} → #${ev.to} (${MOVE_REASONS[ev.reason]}): ${outage}, ${duration(ev.silence)} without an event (id ${
        idText(ev.id)
      })`,
    );
  };
  const onNotification = (e: Event): void => {
    const ev = e as NotificationEvent;
    push("notification", `"${ev.method}" on socket #${ev.connectionId}`);
  };
  const onPoolEvent = (e: Event): void => {
    push(e.type as "idle" | "shutdown", e.type === "idle" ? "nothing in flight or queued" : "the pool is closed");
  };
  const onChange = (e: Event): void => {
    const ev = e as PoolChangeEvent;
    switch (ev.type) {
      case "resize":
        push("resize", `resize ${ev.from ?? "?"} → ${ev.size ?? "?"}`);
        break;
      case "update": {
        const changes = Object.entries(ev.changes ?? {}).map(([key, value]) => `${key} ${optionText(key, value)}`);
        push("update", `update: ${changes.length > 0 ? changes.join(", ") : "nothing changed"}`);
        break;
      }
      case "reload":
        push("reload", `reload: replacing ${plural(ev.count, "socket")}`);
        break;
      case "reloaded":
        push("reloaded", `reloaded ${plural(ev.count, "socket")} in ${ev.duration === undefined ? "?" : duration(ev.duration)}`);
        break;
    }
    // The header and the open / size tile read pool.options: show the change now, not at the next sample.
    if (mounted && frame === 0 && typeof requestAnimationFrame === "function") frame = requestAnimationFrame(render);
  };
  const listeners: [string, (e: Event) => void][] = [
    ["open", onConnection],
    ["close", onConnection],
    ["reconnect", onConnection],
    ["expire", onConnection],
    ["reroute", onReroute],
    ["resubscribe", onResubscribe],
    ["error", onError],
    ["notification", onNotification],
    ["idle", onPoolEvent],
    ["shutdown", onPoolEvent],
    ["resize", onChange],
    ["update", onChange],
    ["reload", onChange],
    ["reloaded", onChange],
  ];
  for (const [type, fn] of listeners) pool.addEventListener(type, fn);

  // ------------------------------------------------------------ sampling

  const cards = new Map<number, Card>();
  const recent: Sample[] = [];
  let latest: { stats: PoolStats; conns: ConnectionSnapshot[]; throughput: number; errorsRate: number; at: number } | undefined;
  let frame = 0;
  let mounted = true;
  let infoText = "";

  const sample = (): void => {
    const t = now();
    const stats = pool.stats();
    const conns = pool.connections();
    const s: Sample = {
      t,
      settled: stats.calls.succeeded + stats.calls.failed,
      failed: stats.calls.failed,
      timedOut: stats.calls.timedOut,
      protocol: stats.protocolErrors,
      lost: lostSockets,
    };
    recent.push(s);
    // Rates over the last second (or what we have of it).
    while (recent.length > 2 && recent[1]!.t <= t - 1000) recent.shift();
    const first = recent[0]!;
    const dt = (t - first.t) / 1000;
    const per = (a: number, b: number): number => (dt > 0 ? Math.max(0, a - b) / dt : 0);
    const throughput = per(s.settled, first.settled);
    const failedRate = per(s.failed, first.failed);
    const timeoutRate = per(s.timedOut, first.timedOut);
    chartThroughput.push([throughput]);
    chartLatency.push([stats.latency.p50, stats.latency.p99]);
    chartLoad.push([stats.calls.inFlight, stats.calls.queued]);
    chartErrors.push([failedRate, timeoutRate, per(s.lost, first.lost), per(s.protocol, first.protocol)]);
    latest = { stats, conns, throughput, errorsRate: failedRate, at: t };
    if (frame === 0 && typeof requestAnimationFrame === "function") frame = requestAnimationFrame(render);
  };

  // ------------------------------------------------------------ rendering

  function render(): void {
    frame = 0;
    if (!mounted || latest === undefined) return;
    const { stats, conns, throughput, errorsRate, at } = latest;
    const o = pool.options;

    const strategy = typeof o.strategy === "function" ? "custom strategy" : o.strategy;
    const url = conns.find((c) => c.url !== "")?.url ?? "";
    const info = `${url ? `${url} · ` : ""}${strategy} · size ${o.size} · maxInFlight ${o.maxInFlight} · TTL ${
      o.ttl > 0 ? duration(o.ttl) : "off"
    }`;
    if (info !== infoText) sub.textContent = infoText = info;
    const poolState = pool.state;
    if (live.dataset.pool !== poolState) {
      live.dataset.pool = poolState;
      live.textContent = poolState === "open" ? "live" : poolState;
    }

    setTile("throughput", rate(throughput), throughput > 0 ? "good" : "");
    setTile("errors-rate", rate(errorsRate), errorsRate > 0 ? "bad" : "");
    setTile("notifications", count(countValues.get("notification") ?? 0), "");
    const c = stats.connections;
    setTile("open", String(c.open), c.open >= o.size ? "good" : "warn");
    setText(tiles.get("open")!.suffix, `/ ${o.size}`);
    setTile("connecting", String(c.connecting), c.connecting > 0 ? "info" : "");
    setTile("draining", String(c.draining), c.draining > 0 ? "warn" : "");
    setTile("available", String(stats.available), "");
    setTile("in-use", String(stats.inUse), "");
    const k = stats.calls;
    setTile("inflight", count(k.inFlight), "");
    setTile("queued", count(k.queued), k.queued > 0 ? "warn" : "");
    setTile("succeeded", count(k.succeeded), "");
    setTile("failed", count(k.failed), k.failed > 0 ? "bad" : "");
    // Hover the tile for the split by error code.
    const byCode = Object.entries(k.failedBy).map(([code, n]) => `${code} ${count(n)}`).join(" · ");
    if (tiles.get("failed")!.root.title !== byCode) tiles.get("failed")!.root.title = byCode;
    setTile("timedout", count(k.timedOut), k.timedOut > 0 ? "bad" : "");
    setTile("rerouted", count(k.rerouted), "");
    setTile("retried", count(k.retried), "");
    setTile("reconnects", count(stats.reconnects), "");
    setTile("expired", count(stats.expired), "");
    setTile("protocol-errors", count(stats.protocolErrors), stats.protocolErrors > 0 ? "bad" : "");
    const subs = stats.subscriptions;
    setTile("sub-active", count(subs.active), "");
    setTile("sub-waiting", count(subs.waiting), subs.waiting > 0 ? "warn" : "");
    setTile("sub-resubscribed", count(subs.resubscribed), "");
    setTile("sub-duplicatesDropped", count(subs.duplicatesDropped), "");
    setTile("sub-overflowed", count(subs.overflowed), subs.overflowed > 0 ? "warn" : "");
    setTile("sub-unsubscribeFailed", count(subs.unsubscribeFailed), subs.unsubscribeFailed > 0 ? "bad" : "");
    const l = stats.latency;
    for (const [id, v] of [["p50", l.p50], ["p90", l.p90], ["p99", l.p99], ["max", l.max]] as const) {
      const [value, unit] = ms(v).split(" ");
      setTile(id, value!, "");
      setText(tiles.get(id)!.suffix, unit ?? "");
    }

    renderCards(conns, o.maxInFlight, o.maxBuffered, at);
    setText(socketsNote, `${conns.length} in the pool · reconnecting and draining sockets are highlighted`);
    for (const chart of allCharts) chart.draw();
    flushLog();
  }

  function setTile(id: string, value: string, tone: string): void {
    const tile = tiles.get(id)!;
    setText(tile.value, value);
    if ((tile.root.dataset.tone ?? "") !== tone) {
      if (tone === "") delete tile.root.dataset.tone;
      else tile.root.dataset.tone = tone;
    }
  }

  function renderCards(conns: readonly ConnectionSnapshot[], maxInFlight: number, maxBuffered: number, at: number): void {
    const present = new Set<number>();
    let previous: HTMLElement | null = null;
    for (const snap of conns) {
      present.add(snap.id);
      let card = cards.get(snap.id);
      if (card === undefined) {
        card = createCard(snap.id);
        cards.set(snap.id, card);
      }
      card.goneAt = 0;
      updateCard(card, snap, maxInFlight, maxBuffered);
      // Keep DOM order = slot order, moving nodes only when it differs.
      const want: ChildNode | null = previous === null ? cardsBox.firstChild : previous.nextSibling;
      if (want !== card.root) cardsBox.insertBefore(card.root, want);
      previous = card.root;
    }
    for (const [id, card] of cards) {
      if (present.has(id)) continue;
      if (card.goneAt === 0) {
        card.goneAt = at;
        setState(card, "closed");
        setText(card.badge, "closed");
        setText(card.flags, "left the pool");
        setText(card.inFlight, "0");
        setText(card.queued, "0");
        setText(card.subscriptions, "0");
        setFill(card, "load", 0);
      } else if (at - card.goneAt >= linger) {
        card.root.remove();
        cards.delete(id);
      }
    }
  }

  function createCard(id: number): Card {
    const root = el("article", "mxd-card");
    root.dataset.testid = "socket-card";
    root.dataset.connId = String(id);
    /** A number on the card, found by tests through its test id. */
    const value = (testid: string, text: string): HTMLElement => {
      const b = el("b", "", text);
      b.dataset.testid = testid;
      return b;
    };
    /** A progress bar and its fill. */
    const bar = (kind: string): [HTMLElement, HTMLElement] => {
      const track = el("div", "mxd-bar");
      track.dataset.kind = kind;
      const fill = el("i", "", "");
      track.append(fill);
      return [track, fill];
    };
    const row = (...children: HTMLElement[]): HTMLElement => {
      const r = el("div", "mxd-row");
      r.append(...children);
      return r;
    };

    const badge = el("span", "mxd-badge", "");
    badge.dataset.testid = "card-state";
    const flags = el("span", "mxd-card-flags", "");
    const top = el("div", "mxd-card-top");
    top.append(el("span", "mxd-card-id", `#${id}`), badge, flags);
    const age = value("card-age", "");
    const [ageBar, ageFill] = bar("age");
    const inFlight = value("card-inflight", "0");
    const queued = value("card-queued", "0");
    const [loadBar, loadFill] = bar("load");
    const sent = value("card-sent", "0");
    const received = value("card-received", "0");
    const p50 = value("card-p50", "–");
    const p99 = value("card-p99", "–");
    const subscriptions = value("card-subscriptions", "0");

    root.append(
      top,
      row(el("span", "", "age / TTL"), age),
      ageBar,
      row(labelled("in flight ", inFlight), labelled("queued ", queued)),
      loadBar,
      row(labelled("sent ", sent), labelled("received ", received)),
      row(labelled("p50 ", p50), labelled("p99 ", p99)),
      row(labelled("subscriptions ", subscriptions)),
    );
    return {
      root,
      badge,
      flags,
      age,
      ageFill,
      inFlight,
      loadBar,
      loadFill,
      queued,
      sent,
      received,
      p50,
      p99,
      subscriptions,
      state: "",
      goneAt: 0,
    };
  }

  function updateCard(card: Card, s: ConnectionSnapshot, maxInFlight: number, maxBuffered: number): void {
    const state: CardState = s.state === "connecting" && s.attempt > 0 ? "reconnecting" : s.state;
    setState(card, state);
    setText(card.badge, state);
    let flags = "";
    if (state === "reconnecting") flags = `attempt ${s.attempt}`;
    else if (state === "connecting") flags = "opening";
    else if (state === "draining") flags = "finishing calls";
    else if (expiredIds.has(s.id)) flags = "expired";
    if (s.exclusive) flags = flags ? `${flags} · checked out` : "checked out";
    // Past maxBuffered the socket takes no new writes until its link drains.
    if (s.buffered >= maxBuffered) flags = `${flags ? `${flags} · ` : ""}backed up: ${bytes(s.buffered)} unsent`;
    setText(card.flags, flags);
    if (s.ttl > 0 && s.age > 0) {
      setText(card.age, `${duration(s.age)} / ${duration(s.ttl)}`);
      setFill(card, "age", s.age / s.ttl);
    } else {
      setText(card.age, s.age > 0 ? `${duration(s.age)} / no TTL` : "–");
      setFill(card, "age", 0);
    }
    setText(card.inFlight, `${count(s.inFlight)} / ${count(maxInFlight)}`);
    setText(card.queued, count(s.queued));
    setFill(card, "load", s.inFlight / Math.max(1, maxInFlight));
    const full = s.inFlight >= maxInFlight;
    if (full !== card.loadBar.hasAttribute("data-full")) card.loadBar.toggleAttribute("data-full", full);
    setText(card.sent, count(s.sent));
    setText(card.received, count(s.received));
    setText(card.p50, ms(s.latency.p50));
    setText(card.p99, ms(s.latency.p99));
    setText(card.subscriptions, count(s.subscriptions));
  }

  function setState(card: Card, state: CardState): void {
    if (card.state === state) return;
    card.state = state;
    card.root.dataset.state = state;
  }

  /** Bars are scaled, not resized: a transform animates without layout. */
  function setFill(card: Card, which: "age" | "load", fraction: number): void {
    const value = `scaleX(${Math.min(1, Math.max(0, fraction)).toFixed(3)})`;
    if (which === "age") {
      if (card.ageFill.style.transform !== value) card.ageFill.style.transform = value;
    } else if (card.loadFill.style.transform !== value) card.loadFill.style.transform = value;
  }

  function flushLog(): void {
    for (const [type, b] of counts) setText(b, count(countValues.get(type) ?? 0));
    if (pending.length === 0) return;
    const entries = pending.length > maxLog ? pending.slice(-maxLog) : pending;
    pending = [];
    const fragment = document.createDocumentFragment();
    // Newest first: the fragment is built newest → oldest and goes on top.
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      const li = document.createElement("li");
      li.dataset.testid = "event-log-item";
      li.dataset.type = e.type;
      if (e.clean) li.dataset.clean = "";
      li.append(el("time", "", clock(new Date(e.time))), el("span", "mxd-type", e.type), el("span", "mxd-msg", e.text));
      fragment.append(li);
    }
    log.insertBefore(fragment, log.firstChild);
    while (log.childElementCount > maxLog) log.lastElementChild!.remove();
    if (logEmpty.isConnected) logEmpty.remove();
  }

  sample();
  const timer = setInterval(sample, refreshMs);

  return {
    element: root,
    refresh(): void {
      if (!mounted) return;
      sample();
      if (frame !== 0 && typeof cancelAnimationFrame === "function") cancelAnimationFrame(frame);
      render();
    },
    unmount(): void {
      if (!mounted) return;
      mounted = false;
      clearInterval(timer);
      if (frame !== 0 && typeof cancelAnimationFrame === "function") cancelAnimationFrame(frame);
      frame = 0;
      for (const [type, fn] of listeners) pool.removeEventListener(type, fn);
      for (const chart of allCharts) chart.destroy();
      cards.clear();
      pending = [];
      root.remove();
    },
  };
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className !== "") node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Tile id → field of `stats().subscriptions`. */
const SUBSCRIPTION_FIELDS = {
  "sub-active": "active",
  "sub-waiting": "waiting",
  "sub-resubscribed": "resubscribed",
  "sub-duplicatesDropped": "duplicatesDropped",
  "sub-overflowed": "overflowed",
  "sub-unsubscribeFailed": "unsubscribeFailed",
} as const;
const SUBSCRIPTION_HELP: Record<(typeof SUBSCRIPTION_FIELDS)[keyof typeof SUBSCRIPTION_FIELDS], string> = {
  active: "subscriptions.active: confirmed by the server and not ended",
  waiting: "subscriptions.waiting: active ones no socket carries now (moving, or no socket has room under maxSubscriptionsPerSocket)",
  resubscribed: "subscriptions.resubscribed: moves to another socket",
  duplicatesDropped: "subscriptions.duplicatesDropped: events dropped because their key was delivered recently",
  overflowed: "subscriptions.overflowed: events dropped, oldest first, from a full buffer (bufferSize)",
  unsubscribeFailed: "subscriptions.unsubscribeFailed: unsubscribe calls refused or unanswered (may still run on the server)",
};

/** A server's subscription id as the log shows it: `0x1f`, `42`, or `"abc"` cut short. */
function idText(id: unknown): string {
  const text = typeof id === "string" ? id : typeof id === "number" ? String(id) : JSON.stringify(id) ?? String(id);
  return text.length > 24 ? `${text.slice(0, 21)}…` : text;
}

function plural(n: number | undefined, word: string): string {
  return `${n ?? "?"} ${word}${n === 1 ? "" : "s"}`;
}

const DURATION_OPTIONS: ReadonlySet<string> = new Set(["ttl", "timeout", "drainTimeout", "connectTimeout"]);
const BYTE_OPTIONS: ReadonlySet<string> = new Set(["maxBuffered", "maxMessageSize", "maxRequestSize"]);

/** An option's new value as the log shows it: `3.0 s`, `off`, `1 MiB`, `every 2.0 s, timeout 1.0 s`. */
function optionText(key: string, value: unknown): string {
  if (typeof value === "function") return "custom";
  if (value === false) return "off";
  if (typeof value === "number") {
    if (key === "ttl" && value === 0) return "off";
    if (DURATION_OPTIONS.has(key)) return duration(value);
    if (BYTE_OPTIONS.has(key)) return bytes(value);
    return Number.isFinite(value) ? count(value) : "∞";
  }
  if (typeof value === "object" && value !== null) {
    const o = value as Record<string, unknown>;
    const d = (v: unknown): string => (typeof v === "number" ? duration(v) : "?");
    if (key === "heartbeat") return `every ${d(o.interval)}, timeout ${d(o.timeout)}`;
    if (key === "reconnect") {
      const attempts = typeof o.maxAttempts === "number" && Number.isFinite(o.maxAttempts) ? `, ${o.maxAttempts} attempts` : "";
      return `delay ${d(o.initialDelay)}–${d(o.maxDelay)}${attempts}`;
    }
    return "changed";
  }
  return String(value);
}

function labelled(label: string, value: HTMLElement): HTMLElement {
  const span = el("span", "", label);
  span.append(value);
  return span;
}

function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

function finite(value: number | undefined, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}
