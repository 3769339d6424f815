/**
 * The dashboard demo in a real Chromium: starts the real demo (RPC server +
 * page server, port 0), opens the page and checks through what the page
 * shows that the pool opens, carries load, and heals from a killed socket, a
 * stalled socket and a server restart, that the settings change the live
 * pool (resize, update) without restarting the charts, that a TTL rotates
 * sockets and a Reload replaces them without the open count dipping, that a
 * bad setting is refused with the pool's own message, and that the event
 * log shows every event type.
 *
 * Needs the built files (dist/, dist-demo/): `npm test` and `npm run test:e2e`
 * build first. Screenshots go to test-results/; with UPDATE_SCREENSHOT=1 the
 * README's picture, docs/dashboard.png, is taken anew.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Demo, startDemo } from "../../demo/main.ts";
import { launchBrowser } from "./browser.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SIZE = 4;

/** The built files the page loads must exist and be newer than their sources. */
function checkBuilt(): void {
  const built = ["dist/muxpool.js", "dist/muxpool-dashboard.js", "dist-demo/public/app.js", "dist-demo/main.mjs"].map((f) => join(root, f));
  const missing = built.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(", ")}: run \`npm run build\` before this test (\`npm run test:e2e\` does)`);
  }
  const oldest = Math.min(...built.map((f) => statSync(f).mtimeMs));
  const sources = [...listTs(join(root, "src")), join(root, "demo/public/app.ts")];
  const newer = sources.filter((f) => statSync(f).mtimeMs > oldest + 1);
  if (newer.length > 0) {
    throw new Error(`the build is older than ${newer.map((f) => f.slice(root.length)).join(", ")}: run \`npm run build\` again`);
  }
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith(".ts"))
    .map((d) => join(d.parentPath, d.name));
}

let demo: Demo;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];
/** Browser-logged failures of WebSocket connects while the server is down on purpose. */
const expectedConnectFailures: string[] = [];
let serverDown = false;
/** Event types seen in the log over the whole run. */
const seenTypes = new Set<string>();
/** The log's resubscribe lines seen over the run (the log keeps only its last 200 entries). */
const seenMoves = new Set<string>();

async function shot(name: string): Promise<void> {
  mkdirSync(join(root, "test-results"), { recursive: true });
  await page.screenshot({ path: join(root, "test-results", `dashboard-${name}.png`), fullPage: true });
}

async function stat(id: string): Promise<number> {
  const text = (await page.getByTestId(`stat-${id}`).textContent()) ?? "";
  return Number(text.replace(/,/g, ""));
}

async function loadCounter(id: string): Promise<number> {
  return Number(((await page.getByTestId(id).textContent()) ?? "").replace(/,/g, ""));
}

async function logTypes(): Promise<string[]> {
  const types = await page.$$eval("[data-testid=event-log-item]", (items) => items.map((i) => (i as HTMLElement).dataset.type ?? ""));
  for (const t of types) seenTypes.add(t);
  const moves = await page.$$eval(
    "[data-testid=event-log-item][data-type=resubscribe] .mxd-msg",
    (items) => items.map((i) => i.textContent ?? ""),
  );
  for (const t of moves) seenMoves.add(t);
  return types;
}

function logTexts(type: string): Promise<string[]> {
  return page.$$eval(`[data-testid=event-log-item][data-type=${type}]`, (items) => items.map((i) => i.textContent ?? ""));
}

/** Ids of the socket cards in the open state. */
function openCardIds(): Promise<string[]> {
  return page.$$eval("[data-testid=socket-card][data-state=open]", (cards) => cards.map((c) => (c as HTMLElement).dataset.connId ?? ""));
}

/** Samples the throughput chart has taken since the dashboard was mounted. */
async function chartSamples(): Promise<number> {
  return Number(await page.getByTestId("chart-throughput").getAttribute("data-samples"));
}

/** Starts sampling the open count as the page shows it, every 100 ms, inside the page. */
async function startOpenSampler(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { openSamples: number[]; sampler: ReturnType<typeof setInterval> };
    w.openSamples = [];
    w.sampler = setInterval(() => {
      w.openSamples.push(Number(document.querySelector("[data-testid=stat-open]")?.textContent ?? "NaN"));
    }, 100);
  });
}

/** Stops the sampler and returns its samples. */
function stopOpenSampler(): Promise<number[]> {
  return page.evaluate(() => {
    const w = window as unknown as { openSamples: number[]; sampler: ReturnType<typeof setInterval> };
    clearInterval(w.sampler);
    return w.openSamples;
  });
}

/** Fills the pool settings (those given) and clicks Apply. */
async function applySettings(s: { size?: number; strategy?: string; ttl?: number; maxInFlight?: number }): Promise<void> {
  if (s.size !== undefined) await page.getByTestId("setting-size").fill(String(s.size));
  if (s.strategy !== undefined) await page.getByTestId("setting-strategy").selectOption(s.strategy);
  if (s.ttl !== undefined) await page.getByTestId("setting-ttl").fill(String(s.ttl));
  if (s.maxInFlight !== undefined) await page.getByTestId("setting-maxinflight").fill(String(s.maxInFlight));
  await page.getByTestId("apply-settings").click();
}

function hintState(): Promise<string | null> {
  return page.getByTestId("pool-hint").getAttribute("data-state");
}

function openCards(): Promise<number> {
  return page.locator("[data-testid=socket-card][data-state=open]").count();
}

/** The load generator has had no failures at all (no faults but latency are injected). */
async function expectNoLoadFailures(): Promise<void> {
  expect(await loadCounter("load-failed-idempotent"), await page.getByTestId("load-codes").textContent() ?? "").toBe(0);
  expect(await loadCounter("load-failed")).toBe(0);
}

describe("dashboard demo in Chromium", () => {
  beforeAll(async () => {
    checkBuilt();
    demo = await startDemo({ port: 0 });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 1080 } });
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const text = msg.text();
      if (serverDown && /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/' failed/.test(text)) expectedConnectFailures.push(text);
      else consoleErrors.push(text);
    });
    page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it(`opens the page with ${SIZE} open sockets, one card each`, async () => {
    await page.goto(demo.url);
    await expect.poll(openCards, { timeout: 5000 }).toBe(SIZE);
    await expect.poll(() => stat("open")).toBe(SIZE);
    expect(await page.getByTestId("admin-status").getAttribute("data-state")).toBe("open");
    // The demo's ticker subscription: on one socket's card, in the pool's counters.
    await expect.poll(() => stat("sub-active")).toBe(1);
    expect(await stat("sub-waiting")).toBe(0);
    await expect.poll(() => page.$$eval("[data-testid=card-subscriptions]", (cells) => cells.map((c) => Number(c.textContent)).sort()))
      .toEqual([0, 0, 0, 1]);
    await expect.poll(() => page.getByTestId("server-connection").count()).toBe(SIZE);
    await logTypes();
  });

  it("runs load: the succeeded count rises, nothing fails", async () => {
    await page.getByTestId("fault-latency").fill("20");
    await page.getByTestId("load-toggle").click();
    await expect.poll(() => stat("succeeded"), { timeout: 10_000 }).toBeGreaterThan(500);
    // 48 workers on 4 sockets × 8 in flight: calls queue, and the server's 20 ms show in p50.
    await expect.poll(() => stat("p50"), { timeout: 5000 }).toBeGreaterThanOrEqual(15);
    await expect.poll(() => stat("throughput")).toBeGreaterThan(100);
    await expectNoLoadFailures();
    await shot("1-load");
  });

  it("kill socket: it closes and reconnects, its calls are rerouted or retried, no idempotent call fails", async () => {
    const movedBefore = (await stat("rerouted")) + (await stat("retried"));
    const closesBefore = (await logTexts("close")).length;
    const opensBefore = (await logTexts("open")).length;
    await page.getByTestId("kill-socket").click();
    await expect.poll(async () => (await logTexts("close")).length, { timeout: 5000 }).toBeGreaterThan(closesBefore);
    await expect.poll(async () => (await logTexts("reconnect")).length, { timeout: 5000 }).toBeGreaterThan(0);
    await expect.poll(async () => (await logTexts("open")).length, { timeout: 5000 }).toBeGreaterThan(opensBefore);
    await expect.poll(() => stat("open"), { timeout: 5000 }).toBe(SIZE);
    await expect.poll(async () => (await stat("rerouted")) + (await stat("retried"))).toBeGreaterThan(movedBefore);
    expect(await stat("reconnects")).toBeGreaterThanOrEqual(1);
    await expectNoLoadFailures();
    await logTypes();
    await shot("2-killed");
  });

  it("stall socket: the heartbeat finds the half-open socket within seconds and it is replaced", async () => {
    const started = Date.now();
    await page.getByTestId("stall-socket").click();
    // interval 2000 + timeout 1000 ms: detected ~3 s after the last inbound frame.
    await expect.poll(async () => (await logTexts("close")).some((t) => t.includes("heartbeat")), { timeout: 7000, interval: 100 }).toBe(
      true,
    );
    const detectedAfter = Date.now() - started;
    expect(detectedAfter).toBeLessThan(6000);
    await expect.poll(() => stat("open"), { timeout: 5000 }).toBe(SIZE);
    await page.getByTestId("unstall").click();
    await expectNoLoadFailures();
    await logTypes();
    await shot("3-stalled");
  });

  it("restart server: sockets show as reconnecting, failed attempts are logged, all come back", async () => {
    serverDown = true;
    await page.getByTestId("restart-server").click();
    await expect.poll(() => page.locator("[data-testid=socket-card][data-state=reconnecting]").count(), { timeout: 3000, interval: 50 })
      .toBeGreaterThan(0);
    await shot("4-restarting");
    // The server is down for 1.5 s: attempts fail and back off.
    await expect.poll(async () => (await logTexts("reconnect")).some((t) => t.includes("could not connect")), { timeout: 5000 }).toBe(true);
    await expect.poll(openCards, { timeout: 10_000 }).toBe(SIZE);
    serverDown = false;
    await expect.poll(() => stat("open")).toBe(SIZE);
    await expectNoLoadFailures();
    await logTypes();
    // Let the charts show the recovery.
    await page.waitForTimeout(2500);
    await shot("5-recovered");
  });

  it("kill socket under non-idempotent load (incr): its sent calls fail with ERR_CONNECTION_LOST, never re-sent", async () => {
    await page.getByTestId("load-method").selectOption("incr");
    expect(await page.getByTestId("load-idempotent").isChecked()).toBe(false);
    await page.getByTestId("load-clear").click();
    await expect.poll(() => loadCounter("load-ok"), { timeout: 5000 }).toBeGreaterThan(100);
    await page.getByTestId("kill-socket").click();
    // 8 incr calls were in flight on the killed socket: they may have run, so they fail, and nothing else does.
    await expect.poll(async () => (await page.getByTestId("load-codes").textContent()) ?? "", { timeout: 5000 }).toMatch(
      /^ERR_CONNECTION_LOST \d+$/,
    );
    expect(await loadCounter("load-failed-idempotent")).toBe(0);
    // The pool's own split of its failures, on the "failed" tile's tooltip.
    const failedTitle = (): Promise<string> =>
      page.$eval("[data-testid=stat-failed]", (v) => (v.closest(".mxd-tile") as HTMLElement).title);
    await expect.poll(failedTitle, { timeout: 3000 }).toMatch(/\bERR_CONNECTION_LOST \d+/);
    await expect.poll(() => stat("open"), { timeout: 5000 }).toBe(SIZE);
    // Back to idempotent echo for what follows.
    await page.getByTestId("load-method").selectOption("echo");
    await page.getByTestId("load-idempotent").check();
    await page.waitForTimeout(300); // let calls of the old kind settle
    await page.getByTestId("load-clear").click();
    await logTypes();
  });

  it("settings change the live pool: resize and update, same dashboard, the charts keep their history", async () => {
    // The dashboard element is marked: a remount would make a new one without the mark.
    await page.getByTestId("muxpool-dashboard").evaluate((el) => (el as HTMLElement & { e2eMark?: number }).e2eMark = 1);
    const title = await page.locator("[data-testid=muxpool-dashboard] .mxd-title").textContent();
    expect(title).toBe("muxpool · pool 1");
    const samplesBefore = await chartSamples();
    expect(samplesBefore).toBeGreaterThan(50);
    const logBefore = await page.getByTestId("event-log-item").count();
    const closesBefore = (await logTexts("close")).length;

    await applySettings({ size: 6, strategy: "round-robin", maxInFlight: 16 });
    await expect.poll(hintState, { timeout: 10_000 }).toBe("done");
    expect(await page.getByTestId("pool-hint").textContent()).toContain("size 4 → 6");
    expect(await logTexts("resize")).toEqual([expect.stringContaining("resize 4 → 6")]);
    const updates = await logTexts("update");
    expect(updates).toHaveLength(1);
    expect(updates[0]).toContain("strategy round-robin");
    expect(updates[0]).toContain("maxInFlight 16");
    // Only what changed is updated: the TTL stayed.
    expect(updates[0]).not.toContain("ttl");
    await expect.poll(() => stat("open"), { timeout: 5000 }).toBe(6);
    expect(await page.locator("[data-testid=stat-open] + small").textContent()).toBe("/ 6");
    await expect.poll(() => page.getByTestId("pool-info").textContent()).toMatch(/round-robin · size 6 · maxInFlight 16 · TTL off/);
    await expect.poll(openCards).toBe(6);
    await expect.poll(() => page.locator("[data-testid=card-inflight]").first().textContent()).toMatch(/ \/ 16$/);
    await expect.poll(() => page.getByTestId("server-connection").count(), { timeout: 5000 }).toBe(6);

    // Same pool, same dashboard: one element, still the marked one, its charts and log went on.
    expect(await page.getByTestId("muxpool-dashboard").count()).toBe(1);
    expect(await page.getByTestId("muxpool-dashboard").evaluate((el) => (el as HTMLElement & { e2eMark?: number }).e2eMark)).toBe(1);
    expect(await page.locator("[data-testid=muxpool-dashboard] .mxd-title").textContent()).toBe(title);
    expect(await page.getByTestId("event-log-item").count()).toBeGreaterThanOrEqual(logBefore);
    await expect.poll(chartSamples).toBeGreaterThan(samplesBefore + 5);
    // The new sockets carry load.
    await expect.poll(() =>
      page.locator("[data-testid=socket-card][data-state=open] [data-testid=card-received]").evaluateAll(
        (cells) => cells.filter((c) => Number((c.textContent ?? "").replace(/,/g, "")) > 0).length,
      ), { timeout: 5000 }).toBe(6);

    // And back down: the two sockets removed drain and close cleanly (1000, "resize").
    await applySettings({ size: SIZE, strategy: "least-pending", maxInFlight: 8 });
    await expect.poll(hintState, { timeout: 10_000 }).toBe("done");
    await expect.poll(async () => (await logTexts("resize"))[0]).toContain(`resize 6 → ${SIZE}`);
    await expect.poll(() => stat("open"), { timeout: 5000 }).toBe(SIZE);
    await expect.poll(() => page.getByTestId("server-connection").count(), { timeout: 5000 }).toBe(SIZE);
    await expect.poll(() => page.getByTestId("pool-info").textContent()).toMatch(/least-pending · size 4 · maxInFlight 8 · TTL off/);
    // A draining socket leaves the open count before its close event: wait for the two closes themselves.
    const resizeCloses = async () =>
      (await logTexts("close")).slice(0, (await logTexts("close")).length - closesBefore).filter((t) => t.includes("resize"));
    await expect.poll(async () => (await resizeCloses()).length, { timeout: 5000 }).toBe(2);
    expect((await resizeCloses()).every((t) => t.includes("code 1000"))).toBe(true);
    expect(await page.getByTestId("muxpool-dashboard").evaluate((el) => (el as HTMLElement & { e2eMark?: number }).e2eMark)).toBe(1);
    await expectNoLoadFailures();
    await logTypes();
    await shot("6-resized");
  });

  it("TTL 3000 ms: sockets rotate (expire events) and the open count never drops below the pool size", async () => {
    const expiredBefore = await stat("expired");
    // Sampled from before the change: sockets already older than the new TTL expire at once.
    await startOpenSampler();
    await applySettings({ ttl: 3000 });
    await expect.poll(() => page.getByTestId("pool-info").textContent()).toContain("TTL 3.0 s");
    // Applied to the live pool: one dashboard, not a new one stacked on the old, and an update event.
    expect(await page.getByTestId("muxpool-dashboard").count()).toBe(1);
    await expect.poll(async () => (await logTexts("update"))[0]).toEqual(expect.stringContaining("update: ttl 3.0 s"));
    // Every slot rotates twice: its socket expires within 3 s (at once if already older), then its replacement 2.7–3 s after opening.
    await expect.poll(() => stat("expired"), { timeout: 12_000, interval: 200 }).toBeGreaterThanOrEqual(expiredBefore + 2 * SIZE);
    const samples = await stopOpenSampler();
    expect(samples.length).toBeGreaterThan(30);
    expect(samples.every((n) => Number.isFinite(n))).toBe(true);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(SIZE);
    const types = await logTypes();
    expect(types).toContain("expire");
    // Expired sockets close cleanly (1000) once drained.
    expect((await logTexts("close")).some((t) => t.includes("code 1000"))).toBe(true);
    await expectNoLoadFailures();
    await shot("7-ttl");
  });

  it("Reload under load: every socket is replaced, the open count never dips, no call fails", async () => {
    // TTL off again, so that only the reload replaces sockets.
    await applySettings({ ttl: 0 });
    await expect.poll(() => page.getByTestId("pool-info").textContent()).toContain("TTL off");
    await expect.poll(openCards, { timeout: 5000 }).toBe(SIZE);
    await page.getByTestId("load-clear").click();
    const before = await openCardIds();
    expect(before).toHaveLength(SIZE);
    const reloadCloses = async (): Promise<string[]> => (await logTexts("close")).filter((t) => t.includes("reload"));
    const closesBefore = (await reloadCloses()).length;
    await startOpenSampler();
    // A reload can be quicker than the page's 200 ms refresh: also read the pool's own open count at each
    // socket event, the moments when capacity could dip.
    await page.evaluate(() => {
      const w = window as unknown as { muxpoolDemo: { pool: EventTarget & { stats(): { connections: { open: number } } } } };
      const atEvents: number[] = [];
      (window as unknown as { openAtEvents: number[] }).openAtEvents = atEvents;
      const record = (): void => void atEvents.push(w.muxpoolDemo.pool.stats().connections.open);
      for (const type of ["open", "close", "reload", "reloaded"]) w.muxpoolDemo.pool.addEventListener(type, record);
    });
    await page.getByTestId("reload-pool").click();
    await expect.poll(hintState).not.toBe("");
    await expect.poll(hintState, { timeout: 15_000 }).toBe("done");
    expect(await page.getByTestId("pool-hint").textContent()).toMatch(/^Reloaded: every socket replaced in \d+\.\d s\.$/);
    expect(await logTexts("reload")).toEqual([expect.stringContaining(`reload: replacing ${SIZE} sockets`)]);
    expect(await logTexts("reloaded")).toEqual([expect.stringMatching(new RegExp(`reloaded ${SIZE} sockets in \\d`))]);
    // The old sockets drain and close cleanly, with "reload" as their reason.
    await expect.poll(async () => (await reloadCloses()).length - closesBefore, { timeout: 5000 }).toBe(SIZE);
    expect((await reloadCloses()).slice(0, SIZE).every((t) => t.includes("code 1000"))).toBe(true);
    // Sample on past the reload: the old sockets have left, the new ones carry the load alone.
    await page.waitForTimeout(1000);
    const samples = await stopOpenSampler();
    expect(samples.length).toBeGreaterThan(10);
    expect(samples.every((n) => Number.isFinite(n))).toBe(true);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(SIZE);
    const atEvents = await page.evaluate(() => (window as unknown as { openAtEvents: number[] }).openAtEvents);
    // reload, SIZE opens, SIZE closes, reloaded
    expect(atEvents.length).toBeGreaterThanOrEqual(2 * SIZE + 2);
    expect(Math.min(...atEvents)).toBeGreaterThanOrEqual(SIZE);
    // Every socket is new: no open card is one of those before the reload.
    await expect.poll(openCardIds, { timeout: 5000 }).toHaveLength(SIZE);
    const after = await openCardIds();
    expect(after.filter((id) => before.includes(id))).toEqual([]);
    await expect.poll(() => page.getByTestId("server-connection").count(), { timeout: 5000 }).toBe(SIZE);
    expect(await loadCounter("load-ok")).toBeGreaterThan(0);
    await expectNoLoadFailures();
    await logTypes();
    // The README's picture: the settings with Reload, the log showing the reload.
    // It is rewritten only on request, so that a test run does not leave the
    // work tree dirty: UPDATE_SCREENSHOT=1 npm run test:e2e
    if (process.env.UPDATE_SCREENSHOT === "1") {
      mkdirSync(join(root, "docs"), { recursive: true });
      await page.screenshot({ path: join(root, "docs", "dashboard.png") });
    }
    await shot("8-reloaded");
  });

  it("a bad setting shows the pool's InvalidConfigError in the hint and changes nothing", async () => {
    const info = await page.getByTestId("pool-info").textContent();
    const changes = async (): Promise<number> => (await logTexts("resize")).length + (await logTexts("update")).length;
    const changesBefore = await changes();

    await applySettings({ size: 0 });
    await expect.poll(hintState).toBe("error");
    expect(await page.getByTestId("pool-hint").textContent()).toBe("Expected `size` to be an integer from 1 to 1024, got `0` (number)");
    await applySettings({ size: SIZE, maxInFlight: 0 });
    await expect.poll(() => page.getByTestId("pool-hint").textContent()).toMatch(
      /^Expected `maxInFlight` to be an integer from 1 .*, got `0` \(number\)$/,
    );
    expect(await hintState()).toBe("error");
    // A bad size with a good TTL: the whole Apply is refused, the TTL too.
    await applySettings({ size: 0, ttl: 5000, maxInFlight: 8 });
    await expect.poll(() => page.getByTestId("pool-hint").textContent()).toContain("`size`");
    expect(await hintState()).toBe("error");
    await page.waitForTimeout(500);
    expect(await page.getByTestId("pool-info").textContent()).toBe(info);
    expect(await logTexts("resize")).not.toContainEqual(expect.stringContaining("→ 0"));
    expect(await stat("open")).toBe(SIZE);
    expect(await page.getByTestId("server-connection").count()).toBe(SIZE);
    await shot("9-invalid");

    // Valid values again: Apply with nothing changed is not a change either.
    await page.getByTestId("setting-size").fill(String(SIZE));
    await page.getByTestId("setting-ttl").fill("0");
    await page.getByTestId("apply-settings").click();
    await expect.poll(hintState).toBe("");
    // Only the undo of the refused TTL was logged (update there, update back), no resize.
    expect((await logTexts("resize")).length + (await logTexts("update")).length - changesBefore).toBeLessThanOrEqual(2);
    expect(await page.getByTestId("pool-info").textContent()).toBe(info);
    await expectNoLoadFailures();
  });

  it("calls that time out: counted as timed out, their late replies reported as error events", async () => {
    await page.getByTestId("fault-latency").fill("250");
    await page.getByTestId("load-timeout").fill("100");
    await expect.poll(() => stat("timedout"), { timeout: 5000 }).toBeGreaterThan(0);
    await expect.poll(
      async () => (await logTexts("error")).some((t) => t.includes("ERR_PROTOCOL") && t.includes("unknown or already settled id")),
      { timeout: 5000 },
    ).toBe(true);
    // Each line names its socket once ("socket #4: ERR_PROTOCOL reply for …", not "… ERR_PROTOCOL socket 4: reply …").
    for (const t of await logTexts("error")) expect(t).not.toMatch(/^socket #(\d+): .*\bsocket \1: /);
    // The log is written by the event listener at once; the stat cards on the next refresh tick.
    await expect.poll(() => stat("protocol-errors"), { timeout: 2000 }).toBeGreaterThan(0);
    expect(await loadCounter("load-failed")).toBeGreaterThan(0);
    expect(await page.getByTestId("load-codes").textContent()).toContain("ERR_TIMEOUT");
    await logTypes();
    await shot("10-timeouts");
    await page.getByTestId("load-timeout").fill("10000");
  });

  it("the event log showed every event type, and the page logged no errors", () => {
    // resubscribe: the demo's ticker subscription moved off a killed, stalled, expired or reloaded socket.
    for (
      const type of ["open", "close", "reconnect", "expire", "reroute", "resubscribe", "error", "resize", "update", "reload", "reloaded"]
    ) {
      expect([...seenTypes], `event type ${type}`).toContain(type);
    }
    expect(consoleErrors).toEqual([]);
  });

  it("every log entry reads as text: no undefined or NaN from an event field the page could not see", async () => {
    const texts = await page.$$eval("[data-testid=event-log-item] .mxd-msg", (items) => items.map((i) => i.textContent ?? ""));
    expect(texts.length).toBeGreaterThan(10);
    expect(texts.filter((t) => /undefined|NaN/.test(t))).toEqual([]);
    const reroutes = await page.$$eval(
      "[data-testid=event-log-item][data-type=reroute] .mxd-msg",
      (items) => items.map((i) => i.textContent ?? ""),
    );
    for (const t of reroutes) expect(t).toMatch(/^\d+ queued calls? moved from #\d+ to (#\d+|the pool queue)$/);
    expect(seenMoves.size).toBeGreaterThan(0);
    for (const t of seenMoves) {
      expect(t).toMatch(
        /^"ticker_subscribe" moved #\d+ → #\d+ \((its socket (expired|was lost|began closing)|resize|reload)\): (make-before-break|(\d+ ms|\d+\.\d s) without a socket), (\d+ ms|\d+\.\d s) without an event \(id 0x[0-9a-f]+\)$/,
      );
    }
  });
});
