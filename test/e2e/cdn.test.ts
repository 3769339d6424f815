/**
 * The CDN bundle in a real browser: Chromium loads a page that imports
 * dist/muxpool.js by URL (as from a CDN), makes 500 concurrent calls to a
 * loopback `ws` server, keeps making idempotent calls while the test kills
 * every server-side socket, and reports back. No console errors allowed.
 * Then back-pressure on Chromium's own bufferedAmount, and the wake-up checks.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRpcServer, type RpcServer } from "../fixtures/server.ts";
import { launchBrowser, serveStatic } from "./browser.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dist = `${root}dist`;
const bundle = `${dist}/muxpool.js`;

interface PageResult {
  fatal?: string;
  bundleUrl: string;
  burst: { total: number; ok: number; wrong: unknown[] };
  remote: { isRemoteError: boolean; name: string; code: string; remoteCode: number; message: string } | null;
  timeout: { isTimeoutError: boolean; name: string; code: string } | null;
  statsBefore: { calls: { succeeded: number; failed: number; timedOut: number }; reconnects: number };
  loop: { ok: number; wrong: number; failed: number; errors: string[] };
  statsAfter: {
    connections: { total: number; open: number };
    calls: { succeeded: number; failed: number; inFlight: number; queued: number; retried: number; rerouted: number };
    reconnects: number;
  };
  events: { open: number; close: number; reconnect: number; reroute: number };
  stateAfterClose: string;
  socketsAfterClose: number;
}

describe("CDN bundle (dist/muxpool.js) in Chromium", () => {
  let browser: Browser;
  let page: Page;
  let server: RpcServer;
  let site: { url: string; close(): Promise<void> };
  const problems: string[] = [];
  const requested: string[] = [];

  beforeAll(async () => {
    if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\` first (npm test does)`);
    server = await startRpcServer({ port: 0 });
    site = await serveStatic({ "/dist": dist, "/": fileURLToPath(new URL("./cdn-page/", import.meta.url)) });
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
    page.on("request", (r) => requested.push(new URL(r.url()).pathname));
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await server?.close();
  });

  it("the bundle is one self-contained ESM file", () => {
    const code = readFileSync(bundle, "utf8");
    expect(code).toMatch(/\bexport\s*\{/);
    expect(code).not.toMatch(/\bimport\s*(?:[\w*{}\s,$]+from\s*)?["'](?![./]|https?:)/);
  });

  it("500 concurrent calls, then idempotent calls across server-side socket kills: all correct", async () => {
    await page.goto(`${site.url}/?ws=${encodeURIComponent(server.url)}`);
    await page.waitForFunction(() => (window as { __progress?: { phase: string } }).__progress?.phase === "looping" || "__result" in window, undefined, {
      timeout: 30_000,
    });
    const early = await page.evaluate(() => (window as { __result?: PageResult }).__result);
    expect(early?.fatal, "the page failed before looping").toBeUndefined();

    const loopOk = (): Promise<number> => page.evaluate(() => (window as unknown as { __progress: { loopOk: number } }).__progress.loopOk);
    const waitLoopPast = async (n: number): Promise<void> => {
      await page.waitForFunction((target) => (window as unknown as { __progress: { loopOk: number } }).__progress.loopOk >= target, n, { timeout: 20_000 });
    };

    // Kill every server-side socket (no close frame) three times while the page keeps calling.
    const accepted0 = server.stats.connectionsAccepted;
    const kills: number[] = [];
    for (let round = 0; round < 3; round++) {
      await waitLoopPast((await loopOk()) + 200);
      kills.push(server.killAll());
    }
    const killed = kills.reduce((a, b) => a + b, 0);
    await waitLoopPast((await loopOk()) + 300);
    await page.evaluate(() => {
      (window as { __stop?: boolean }).__stop = true;
    });
    await page.waitForFunction(() => "__result" in window, undefined, { timeout: 20_000 });
    const r = await page.evaluate(() => (window as unknown as { __result: PageResult }).__result);

    expect(r.fatal).toBeUndefined();
    // It is the CDN file that ran.
    expect(r.bundleUrl).toBe(`${site.url}/dist/muxpool.js`);
    expect(requested).toContain("/dist/muxpool.js");

    // Phase 1: every one of the 500 calls got its own answer.
    expect(r.burst.wrong).toEqual([]);
    expect(r.burst.ok).toBe(500);
    // Errors keep their class names and codes through minification.
    expect(r.remote).toEqual({ isRemoteError: true, name: "RemoteError", code: "ERR_REMOTE", remoteCode: 4242, message: expect.stringContaining("from the page") });
    expect(r.timeout).toEqual({ isTimeoutError: true, name: "TimeoutError", code: "ERR_TIMEOUT" });
    expect(r.statsBefore.calls.succeeded).toBe(500);
    expect(r.statsBefore.calls.failed).toBe(2);
    expect(r.statsBefore.calls.timedOut).toBe(1);

    // Phase 2: the kills happened, the pool reconnected, no idempotent call failed.
    expect(kills.every((k) => k > 0), `sockets killed per round: ${kills.join(", ")}`).toBe(true);
    expect(kills[0]).toBe(4);
    expect(server.stats.connectionsAccepted - accepted0).toBeGreaterThanOrEqual(killed);
    expect(r.statsAfter.reconnects).toBeGreaterThan(0);
    expect(r.events.reconnect).toBeGreaterThan(0);
    expect(r.events.close).toBeGreaterThanOrEqual(killed);
    expect(r.loop.errors).toEqual([]);
    expect(r.loop.failed).toBe(0);
    expect(r.loop.wrong).toBe(0);
    expect(r.loop.ok).toBeGreaterThanOrEqual(900);
    expect(r.statsAfter.calls.retried, "idempotent calls in flight at a kill were re-sent").toBeGreaterThan(0);
    expect(r.statsAfter.calls.failed).toBe(2); // only phase 1's deliberate failures
    expect(r.statsAfter.calls.succeeded).toBe(500 + r.loop.ok);
    expect(r.statsAfter.calls.inFlight).toBe(0);
    expect(r.statsAfter.calls.queued).toBe(0);

    // close() left nothing behind.
    expect(r.stateAfterClose).toBe("closed");
    expect(r.socketsAfterClose).toBe(0);
    await expect.poll(() => server.connections().length, { timeout: 5_000 }).toBe(0);

    expect(problems).toEqual([]);
  });

  it("back-pressure on Chromium's bufferedAmount: a stalled link takes no more writes, notify throws at maxQueue, all arrive after", async () => {
    const tab = await browser.newPage();
    const tabProblems: string[] = [];
    tab.on("pageerror", (e) => tabProblems.push(`pageerror: ${e.message}`));
    tab.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") tabProblems.push(`console.${m.type()}: ${m.text()}`);
    });
    try {
      await tab.goto(`${site.url}/wake.html`);
      await tab.waitForFunction(() => "__ready" in window);
      const notificationsBefore = server.stats.notificationsReceived;
      await tab.evaluate(async (url) => {
        const w = window as unknown as { Pool: new (u: string, o: object) => { ready(): Promise<void> }; pool: unknown };
        const pool = new w.Pool(url, { size: 1, heartbeat: false, maxBuffered: 256 * 1024, maxQueue: 20 });
        w.pool = pool;
        await pool.ready();
      }, server.url);
      expect(server.stall()).toBe(true);
      type Flood = { accepted: number; error: { name: string; code: string } | null; buffered: number; queued: number };
      const flood: Flood = await tab.evaluate(() => {
        const pool = (window as unknown as { pool: { notify(m: string, p: unknown): void; connections(): { buffered: number; queued: number }[] } }).pool;
        const payload = "x".repeat(64 * 1024);
        let accepted = 0;
        let error: { name: string; code: string } | null = null;
        for (let i = 0; i < 2_000; i++) {
          try {
            pool.notify("log", [payload]);
            accepted++;
          } catch (e) {
            error = { name: (e as Error).name, code: (e as { code: string }).code };
            break;
          }
        }
        const [socket] = pool.connections();
        return { accepted, error, buffered: socket!.buffered, queued: socket!.queued };
      });
      expect(flood.error).toEqual({ name: "PoolExhaustedError", code: "ERR_POOL_EXHAUSTED" });
      expect(flood.queued).toBe(20);
      expect(flood.buffered).toBeGreaterThanOrEqual(256 * 1024);
      expect(flood.accepted).toBeLessThan(60); // about 256 KiB of frames, then the queue: not 2,000 x 64 KiB in memory
      server.unstall();
      await expect.poll(() => server.stats.notificationsReceived - notificationsBefore, { timeout: 10_000 }).toBe(flood.accepted);
      const after = await tab.evaluate(async () => {
        const pool = (window as unknown as { pool: { close(): Promise<void>; stats(): { calls: { queued: number; failed: number } } } }).pool;
        const { queued, failed } = pool.stats().calls;
        await pool.close();
        return { queued, failed };
      });
      expect(after).toEqual({ queued: 0, failed: 0 });
      expect(tabProblems).toEqual([]);
    } finally {
      await tab.close();
    }
  });

  it("coming back online or becoming visible pings every socket at once (half-open check)", async () => {
    const wake = await browser.newPage();
    try {
      await wake.goto(`${site.url}/wake.html`);
      await wake.waitForFunction(() => "__ready" in window);
      // A long heartbeat interval: any ping seen now comes from the wake-up events.
      await wake.evaluate(async (url) => {
        const w = window as unknown as { Pool: new (u: string, o: object) => { ready(): Promise<void>; stats(): { connections: { open: number } } }; pool: unknown };
        const pool = new w.Pool(url, { size: 2, heartbeat: { interval: 60_000, timeout: 5_000, method: "ping" } });
        w.pool = pool;
        await pool.ready();
        while (pool.stats().connections.open < 2) await new Promise((r) => setTimeout(r, 5));
      }, server.url);
      const pingsBefore = server.stats.requests;
      await wake.evaluate(() => globalThis.dispatchEvent(new Event("online")));
      await expect.poll(() => server.stats.requests - pingsBefore, { timeout: 3_000 }).toBe(2);
      await wake.waitForTimeout(100); // the pongs come back; no ping is pending any more
      expect(await wake.evaluate(() => document.visibilityState)).toBe("visible");
      await wake.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
      await expect.poll(() => server.stats.requests - pingsBefore, { timeout: 3_000 }).toBe(4);
      const protocolErrors = await wake.evaluate(async () => {
        const pool = (window as unknown as { pool: { close(): Promise<void>; stats(): { protocolErrors: number } } }).pool;
        await pool.close();
        return pool.stats().protocolErrors;
      });
      expect(protocolErrors).toBe(0); // the pongs were matched, not reported as unknown ids
    } finally {
      await wake.close();
    }
  });
});
