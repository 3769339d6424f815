/**
 * The dashboard demo in a real Chromium: starts the real demo (RPC server +
 * page server, port 0), opens the page and checks through what the page
 * shows that the pool opens, carries load, and heals from a killed socket, a
 * stalled socket and a server restart, that a TTL rotates sockets without
 * the open count dipping, and that the event log shows every event type.
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
/** Event types seen in the log, across pools (applying settings starts a new log). */
const seenTypes = new Set<string>();

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
  return types;
}

function logTexts(type: string): Promise<string[]> {
  return page.$$eval(`[data-testid=event-log-item][data-type=${type}]`, (items) => items.map((i) => i.textContent ?? ""));
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
    // Let the charts show the recovery, then take the README's picture.
    await page.waitForTimeout(2500);
    // The README's picture is rewritten only on request, so that a test run
    // does not leave the work tree dirty: UPDATE_SCREENSHOT=1 npm run test:e2e
    if (process.env.UPDATE_SCREENSHOT === "1") {
      mkdirSync(join(root, "docs"), { recursive: true });
      await page.screenshot({ path: join(root, "docs", "dashboard.png") });
    }
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

  it("TTL 3000 ms: sockets rotate (expire events) and the open count never drops below the pool size", async () => {
    await page.getByTestId("setting-ttl").fill("3000");
    await page.getByTestId("apply-settings").click();
    await expect.poll(() => page.getByTestId("pool-info").textContent()).toContain("TTL 3.0 s");
    // The old dashboard was unmounted, not stacked.
    expect(await page.getByTestId("muxpool-dashboard").count()).toBe(1);
    await expect.poll(() => stat("open"), { timeout: 5000 }).toBe(SIZE);
    // Sample the open count as the page shows it, every 100 ms, inside the page.
    await page.evaluate(() => {
      const w = window as unknown as { openSamples: number[]; sampler: ReturnType<typeof setInterval> };
      w.openSamples = [];
      w.sampler = setInterval(() => {
        w.openSamples.push(Number(document.querySelector("[data-testid=stat-open]")?.textContent ?? "NaN"));
      }, 100);
    });
    // Every socket expires at least once (TTL 2.7–3 s after jitter), some twice.
    await expect.poll(() => stat("expired"), { timeout: 12_000, interval: 200 }).toBeGreaterThanOrEqual(SIZE + 2);
    const samples = await page.evaluate(() => {
      const w = window as unknown as { openSamples: number[]; sampler: ReturnType<typeof setInterval> };
      clearInterval(w.sampler);
      return w.openSamples;
    });
    expect(samples.length).toBeGreaterThan(30);
    expect(samples.every((n) => Number.isFinite(n))).toBe(true);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(SIZE);
    const types = await logTypes();
    expect(types).toContain("expire");
    // Expired sockets close cleanly (1000) once drained.
    expect((await logTexts("close")).some((t) => t.includes("code 1000"))).toBe(true);
    await expectNoLoadFailures();
    await shot("6-ttl");
  });

  it("calls that time out: counted as timed out, their late replies reported as error events", async () => {
    await page.getByTestId("fault-latency").fill("250");
    await page.getByTestId("load-timeout").fill("100");
    await expect.poll(() => stat("timedout"), { timeout: 5000 }).toBeGreaterThan(0);
    await expect.poll(
      async () => (await logTexts("error")).some((t) => t.includes("ERR_PROTOCOL") && t.includes("unknown or already settled id")),
      { timeout: 5000 },
    ).toBe(true);
    // The log is written by the event listener at once; the stat cards on the next refresh tick.
    await expect.poll(() => stat("protocol-errors"), { timeout: 2000 }).toBeGreaterThan(0);
    expect(await loadCounter("load-failed")).toBeGreaterThan(0);
    expect(await page.getByTestId("load-codes").textContent()).toContain("ERR_TIMEOUT");
    await logTypes();
    await shot("7-timeouts");
    await page.getByTestId("load-timeout").fill("10000");
  });

  it("the event log showed every event type, and the page logged no errors", () => {
    for (const type of ["open", "close", "reconnect", "expire", "reroute", "error"]) {
      expect([...seenTypes], `event type ${type}`).toContain(type);
    }
    expect(consoleErrors).toEqual([]);
  });
});
