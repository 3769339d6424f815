/**
 * The CDN bundle in a real browser: Chromium loads a page that imports
 * dist/muxpool.js by URL (as from a CDN), makes 500 concurrent calls to a
 * loopback `ws` server, keeps making idempotent calls while the test kills
 * every server-side socket, and reports back. No console errors allowed.
 * Then the rest of the subset every runtime runs (test/runtimes/smoke.test.mjs):
 * a killed socket with a non-idempotent call in flight, and close codes. Then
 * back-pressure on Chromium's own bufferedAmount, and the wake-up checks.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RpcServer, startRpcServer } from "../fixtures/server.ts";
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
    await page.waitForFunction(
      () => (window as { __progress?: { phase: string } }).__progress?.phase === "looping" || "__result" in window,
      undefined,
      {
        timeout: 30_000,
      },
    );
    const early = await page.evaluate(() => (window as { __result?: PageResult }).__result);
    expect(early?.fatal, "the page failed before looping").toBeUndefined();

    const loopOk = (): Promise<number> => page.evaluate(() => (window as unknown as { __progress: { loopOk: number } }).__progress.loopOk);
    const waitLoopPast = async (n: number): Promise<void> => {
      await page.waitForFunction((target) => (window as unknown as { __progress: { loopOk: number } }).__progress.loopOk >= target, n, {
        timeout: 20_000,
      });
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
    expect(r.remote).toEqual({
      isRemoteError: true,
      name: "RemoteError",
      code: "ERR_REMOTE",
      remoteCode: 4242,
      message: expect.stringContaining("from the page"),
    });
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

  it("a killed socket re-sends the idempotent call and rejects the other (maybeExecuted); close() ends every socket with 1000", async () => {
    // The cases every runtime runs (test/runtimes/smoke.test.mjs) that the loop above does not cover.
    const tab = await browser.newPage();
    const tabProblems: string[] = [];
    tab.on("pageerror", (e) => tabProblems.push(`pageerror: ${e.message}`));
    tab.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") tabProblems.push(`console.${m.type()}: ${m.text()}`);
    });
    type Outcome = { ok: unknown } | { error: { name: string; code: string; maybeExecuted: boolean } };
    type Page = {
      Pool: new (u: string, o: object) => PagePool;
      pool: PagePool;
      idempotent: Promise<Outcome>;
      plain: Promise<Outcome>;
      reconnects: number;
      closeEvents: number[];
      sockets: { socket: WebSocket; code: number | null; wasClean: boolean | null }[];
    };
    type PagePool = {
      ready(): Promise<void>;
      close(): Promise<void>;
      call(m: string, p: unknown[], o?: object): Promise<unknown>;
      addEventListener(t: string, f: (e: { code?: number }) => void): void;
      stats(): {
        connections: { total: number; open: number };
        calls: { succeeded: number; failed: number; failedBy: Record<string, number>; retried: number; inFlight: number; queued: number };
      };
      state: string;
    };
    try {
      await tab.goto(`${site.url}/wake.html`);
      await tab.waitForFunction(() => "__ready" in window);
      await expect.poll(() => server.connections().length, { timeout: 5_000 }).toBe(0); // earlier tabs' sockets are gone
      const requestsBefore = server.stats.requests;
      await tab.evaluate(async (url) => {
        const w = window as unknown as Page;
        // Chromium's own WebSocket, wrapped to record how each socket closed (the bundle reads the global when the pool is made).
        w.sockets = [];
        const Native = globalThis.WebSocket;
        globalThis.WebSocket = class extends Native {
          constructor(...args: ConstructorParameters<typeof WebSocket>) {
            super(...args);
            const record = { socket: this as WebSocket, code: null as number | null, wasClean: null as boolean | null };
            this.addEventListener("close", (e) => {
              record.code = e.code;
              record.wasClean = e.wasClean;
            });
            w.sockets.push(record);
          }
        };
        const pool = new w.Pool(url, { size: 1, heartbeat: false, timeout: 10_000, reconnect: { initialDelay: 10, maxDelay: 50 } });
        w.pool = pool;
        w.reconnects = 0;
        w.closeEvents = [];
        pool.addEventListener("reconnect", () => w.reconnects++);
        pool.addEventListener("close", (e) => w.closeEvents.push(e.code!));
        await pool.ready();
        const outcome = (p: Promise<unknown>): Promise<Outcome> =>
          p.then(
            (ok) => ({ ok }),
            (e: { name: string; code: string; maybeExecuted: boolean }) => ({
              error: { name: e.name, code: e.code, maybeExecuted: e.maybeExecuted },
            }),
          );
        w.idempotent = outcome(pool.call("sleep", [1000], { idempotent: true }));
        w.plain = outcome(pool.call("sleep", [1000]));
      }, server.url);
      await expect.poll(() => server.stats.requests - requestsBefore, { timeout: 5_000 }).toBe(2);
      expect(server.killAll()).toBe(1);

      const outcomes = await tab.evaluate(async () => {
        const w = window as unknown as Page;
        return { idempotent: await w.idempotent, plain: await w.plain };
      });
      expect(outcomes.plain).toEqual({ error: { name: "ConnectionLostError", code: "ERR_CONNECTION_LOST", maybeExecuted: true } });
      expect(outcomes.idempotent).toEqual({ ok: 1000 });
      expect(server.stats.requests - requestsBefore, "2 calls + 1 re-sent").toBe(3);

      const end = await tab.evaluate(async () => {
        const w = window as unknown as Page;
        for (let i = 0; i < 500 && w.pool.stats().connections.open < 1; i++) await new Promise((r) => setTimeout(r, 10));
        const stats = w.pool.stats();
        await w.pool.close();
        return {
          stats,
          state: w.pool.state,
          total: w.pool.stats().connections.total,
          reconnects: w.reconnects,
          closeEvents: w.closeEvents,
          sockets: w.sockets.map((r) => ({ code: r.code, wasClean: r.wasClean, readyState: r.socket.readyState })),
        };
      });
      expect(end.stats.connections.open).toBe(1);
      expect(end.reconnects).toBeGreaterThanOrEqual(1);
      expect(end.stats.calls).toMatchObject({
        succeeded: 1,
        failed: 1,
        failedBy: { ERR_CONNECTION_LOST: 1 },
        retried: 1,
        inFlight: 0,
        queued: 0,
      });
      expect(end.state).toBe("closed");
      expect(end.total).toBe(0);
      // The killed socket closed without a handshake; its replacement closed with 1000, cleanly.
      expect(end.sockets).toEqual([
        { code: 1006, wasClean: false, readyState: 3 },
        { code: 1000, wasClean: true, readyState: 3 },
      ]);
      expect(end.closeEvents).toEqual([1006, 1000]);
      await expect.poll(() => server.connections().length, { timeout: 5_000 }).toBe(0);
      expect(tabProblems).toEqual([]);
    } finally {
      await tab.close();
    }
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
        const pool =
          (window as unknown as { pool: { notify(m: string, p: unknown): void; connections(): { buffered: number; queued: number }[] } })
            .pool;
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
        const pool =
          (window as unknown as { pool: { close(): Promise<void>; stats(): { calls: { queued: number; failed: number } } } }).pool;
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
        const w = window as unknown as {
          Pool: new (u: string, o: object) => { ready(): Promise<void>; stats(): { connections: { open: number } } };
          pool: unknown;
        };
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
