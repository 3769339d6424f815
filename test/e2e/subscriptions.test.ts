/**
 * Subscriptions in a real Chromium, through the CDN file (dist/muxpool.js),
 * against the Node test server (test/fixtures/server.ts), which counts the
 * subscriptions live on it and can kill, stall and restart sockets: a page
 * (cdn-page/subscriptions.html) holds the pool and one Ethereum-style
 * `newHeads` subscription; the test makes the faults and checks both sides.
 * The server sends one block number per tick to every live subscription.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RpcServer, type RpcServerOptions, startRpcServer } from "../fixtures/server.ts";
import { launchBrowser, serveStatic } from "./browser.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const bundle = `${root}dist/muxpool.js`;

interface Snapshot {
  got: number[];
  moves: { method: string; id: string; gap: number; silence: number; reason: string; from: number; to: number }[];
  paramsCalls: { last: { number: number } | null; lastRead: number | null }[];
  events: ({ type: "reconnect"; socket: number; attempt: number; delay: number; reason: string } | {
    type: "error";
    name: string;
    code: string;
    cause?: { name: string; code: string; remoteCode: number };
  } | { type: "open" | "close"; socket: number })[];
  setups: number;
  stats: {
    connections: { total: number; open: number };
    calls: { inFlight: number; queued: number; failed: number };
    subscriptions: { active: number; resubscribed: number; duplicatesDropped: number; overflowed: number; unsubscribeFailed: number };
  };
  sub: { id: string; stats: { delivered: number; resubscribed: number; duplicatesDropped: number; overflowed: number } } | null;
  connections: { id: number; state: string; subscriptions: number }[];
  state: string;
}

/** What the page's `window.lab` offers the test (see cdn-page/subscriptions.html). */
interface Lab {
  open(url: string, options: object, how?: { login?: boolean }): Promise<void>;
  subscribe(how?: { key?: boolean }): Promise<void>;
  subscribeLater(): void;
  later: Promise<unknown>;
  snapshot(): Snapshot;
  breakAt: number;
  reading: Promise<unknown>;
  pool: { close(): Promise<void> };
  sub: { unsubscribe(): Promise<void> };
}
type LabWindow = { lab: Lab };

/** Strictly increasing: no block number twice, none out of order. */
const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

describe("subscriptions through the CDN bundle in Chromium", () => {
  let browser: Browser;
  let site: { url: string; close(): Promise<void> };
  let page: Page | undefined;
  let server: RpcServer | undefined;
  let problems: string[] = [];
  /** Console errors a test expects from Chromium itself (its log of a failed WebSocket connection, not the library's). */
  let expected: RegExp | undefined;

  beforeAll(async () => {
    if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`node scripts/build.mjs\` first (npm test does)`);
    site = await serveStatic({ "/dist": `${root}dist`, "/": fileURLToPath(new URL("./cdn-page/", import.meta.url)) });
    browser = await launchBrowser();
  });

  afterEach(async () => {
    // The pool first (closing it unsubscribes), then the page, then the server.
    await page?.evaluate(() => (window as unknown as LabWindow).lab.pool?.close()).catch(() => {});
    await page?.close();
    await server?.close();
    page = undefined;
    server = undefined;
    const seen = problems.filter((p) => expected === undefined || !expected.test(p));
    problems = [];
    expected = undefined;
    expect(seen, "console errors, warnings or page errors").toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });

  /** A server (ticks every 10 ms unless told) and a page whose pool is open on it with `options`. */
  async function start(options: object, serverOptions: RpcServerOptions = {}, how: { login?: boolean } = {}): Promise<RpcServer> {
    server = await startRpcServer({ port: 0, subscriptionInterval: 10, ...serverOptions });
    page = await browser.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(`${site.url}/subscriptions.html`);
    await page.waitForFunction(() => "__ready" in window);
    await page.evaluate(([url, o, h]) => (window as unknown as LabWindow).lab.open(url, o, h), [server.url, options, how] as const);
    return server;
  }

  const snapshot = (): Promise<Snapshot> => page!.evaluate(() => (window as unknown as LabWindow).lab.snapshot());
  const subscribe = (how: { key?: boolean } = {}): Promise<void> =>
    page!.evaluate((h) => (window as unknown as LabWindow).lab.subscribe(h), how);
  /** Waits until `cond` holds on the page's snapshot (polled), and returns that snapshot. */
  async function until(cond: (s: Snapshot) => boolean, what: string, timeout = 10_000): Promise<Snapshot> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const s = await snapshot();
      if (cond(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${JSON.stringify(s).slice(0, 2_000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  /** Breaks out of the page's for-await loop after its next event and waits for the loop to end. */
  const breakOut = (): Promise<unknown> =>
    page!.evaluate(() => {
      const lab = (window as unknown as LabWindow).lab;
      lab.breakAt = lab.snapshot().got.length + 1;
      return lab.reading;
    });
  const closePool = (): Promise<unknown> => page!.evaluate(() => (window as unknown as LabWindow).lab.pool.close());

  it("kill the carrying socket: resubscribed on the other, events keep increasing, params gets the last event; break → 0 live", async () => {
    const server = await start({ size: 2 });
    await subscribe();
    let s = await until((s) => s.got.length >= 5, "5 events");
    expect(server.liveSubscriptions()).toBe(1);
    const [carrier] = server.subscriptionSockets();
    expect(server.kill(carrier)).toBe(true);
    const before = s.got.length;
    s = await until((s) => s.moves.length === 1 && s.got.length >= before + 5, "the move and 5 more events");

    expect(s.moves[0]).toMatchObject({ method: "eth_subscribe", reason: "lost", from: expect.any(Number), to: expect.any(Number) });
    expect(s.moves[0]!.to).not.toBe(s.moves[0]!.from);
    expect(s.moves[0]!.gap).toBeGreaterThanOrEqual(0);
    expect(increasing(s.got), `block numbers ${s.got.join(",")}`).toBe(true);
    expect(server.liveSubscriptions()).toBe(1);
    expect(server.subscriptionSockets()).not.toEqual([carrier]);
    expect(s.sub!.id).toBe(s.moves[0]!.id);
    expect(s.stats.subscriptions).toMatchObject({ active: 1, resubscribed: 1, overflowed: 0, unsubscribeFailed: 0 });
    expect(s.connections.reduce((n, c) => n + c.subscriptions, 0)).toBe(1);

    // The params function: nothing the first time, then the last event delivered before the move, which the server received.
    expect(s.paramsCalls).toHaveLength(2);
    expect(s.paramsCalls[0]).toEqual({ last: null, lastRead: null });
    const last = s.paramsCalls[1]!.last!.number;
    expect(s.paramsCalls[1]!.lastRead).toBe(last);
    expect(server.subscribeParams).toEqual([["newHeads", null], ["newHeads", last]]);
    expect(s.got).toContain(last);

    expect(await breakOut()).toBe("done");
    await expect.poll(() => server.liveSubscriptions(), { timeout: 3_000 }).toBe(0);
    expect(server.unsubscribes).toBe(1);
    s = await snapshot();
    expect(s.stats.subscriptions.active).toBe(0);
    expect(s.stats.subscriptions.unsubscribeFailed).toBe(0);
    expect(s.connections.reduce((n, c) => n + c.subscriptions, 0)).toBe(0);
    expect(s.stats.calls).toMatchObject({ inFlight: 0, queued: 0, failed: 0 });
  });

  it("stall the carrying socket: the heartbeat gives up on it and the subscription moves; events keep increasing", async () => {
    const server = await start({ size: 2, heartbeat: { interval: 100, timeout: 150, method: "ping" } });
    await subscribe();
    await until((s) => s.got.length >= 5, "5 events");
    const [carrier] = server.subscriptionSockets();
    expect(server.stall(carrier)).toBe(true);
    const stalledAt = (await snapshot()).got.length;
    let s = await until((s) => s.moves.length === 1 && s.got.length >= stalledAt + 5, "the move and 5 more events");
    expect(increasing(s.got), `block numbers ${s.got.join(",")}`).toBe(true);
    // Half-open: no event from the stall until the heartbeat gave up (its interval at least); no socket only from then.
    expect(s.moves[0]).toMatchObject({ reason: "lost" });
    expect(s.moves[0]!.silence).toBeGreaterThanOrEqual(100);
    expect(s.moves[0]!.silence).toBeGreaterThan(s.moves[0]!.gap);
    expect(s.stats.subscriptions).toMatchObject({ active: 1, resubscribed: 1 });
    // The stalled socket reads nothing, so the server learns that the pool left it only once it reads again.
    server.unstall(carrier);
    await expect.poll(() => server.subscriptionSockets().includes(carrier!), { timeout: 3_000 }).toBe(false);
    await expect.poll(() => server.liveSubscriptions(), { timeout: 3_000 }).toBe(1);
    await page!.evaluate(() => (window as unknown as LabWindow).lab.sub.unsubscribe());
    expect(await page!.evaluate(() => (window as unknown as LabWindow).lab.reading)).toBe("done");
    expect(server.liveSubscriptions()).toBe(0);
    s = await snapshot();
    expect(s.stats.subscriptions).toMatchObject({ active: 0, unsubscribeFailed: 0 });
  });

  it("TTL rotation is make-before-break: the server always has it, no block number is missed or delivered twice (key)", async () => {
    const server = await start({ size: 2, ttl: 400 });
    server.setFaults({ latency: 30 }); // replies take 3 ticks: around each move both subscriptions deliver for a while
    await subscribe();
    await until((s) => s.got.length >= 1, "the first event");
    // The server's side, sampled all along: never without the subscription.
    let sampling = true;
    const live: number[] = [];
    const sampler = (async () => {
      while (sampling) {
        live.push(server.liveSubscriptions());
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const s = await until((s) => s.moves.length >= 3, "3 moves by TTL", 15_000);
    sampling = false;
    await sampler;
    expect(Math.min(...live), `live subscriptions sampled ${live.length} times`).toBeGreaterThanOrEqual(1);
    expect(increasing(s.got), `block numbers ${s.got.join(",")}`).toBe(true);
    const first = s.got[0]!;
    expect(s.got, "every block number from the first one on, once").toEqual(s.got.map((_, i) => first + i));
    expect(s.stats.subscriptions.resubscribed).toBe(s.moves.length);
    for (const m of s.moves) expect(m, "make-before-break: no time without a socket").toMatchObject({ reason: "expired", gap: 0 });
    expect(s.sub!.stats.delivered).toBe(s.got.length);
    // Both carried it for a while around a move: the overlap came twice and the key dropped it.
    expect(s.stats.subscriptions.duplicatesDropped).toBeGreaterThan(0);
    for (const move of s.moves) expect(move.to).not.toBe(move.from);
    await closePool();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("restart the server: every socket dies, the subscription comes back with the pool and events keep increasing", async () => {
    const server = await start({ size: 2 });
    await subscribe();
    await until((s) => s.got.length >= 5, "5 events");
    const accepted = server.stats.connectionsAccepted;
    // Chromium itself logs each connection refused or reset while the server is down (or answers 503 as it restarts).
    expected = /^console\.error: WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/' failed: .*net::ERR_CONNECTION_(REFUSED|RESET)$/;
    await server.restart(200);
    const restartedAt = (await snapshot()).got.length;
    const s = await until((s) => s.moves.length === 1 && s.got.length >= restartedAt + 5, "the move and 5 more events");
    expect(server.stats.connectionsAccepted).toBeGreaterThan(accepted);
    expect(increasing(s.got), `block numbers ${s.got.join(",")}`).toBe(true);
    expect(s.moves[0]!.gap, "the server was down 200 ms").toBeGreaterThanOrEqual(150);
    expect(s.events.filter((e) => e.type === "reconnect").length).toBeGreaterThanOrEqual(2);
    expect(s.stats.subscriptions).toMatchObject({ active: 1, resubscribed: 1 });
    expect(server.liveSubscriptions()).toBe(1);
  });

  it("pool.close() leaves none live: the subscription ends, and one still unconfirmed is unsubscribed once the server confirms it", async () => {
    const server = await start({ size: 2 });
    await subscribe();
    await until((s) => s.got.length >= 3, "3 events");
    server.setFaults({ latency: 100 });
    await page!.evaluate(() => (window as unknown as LabWindow).lab.subscribeLater());
    await expect.poll(() => server.subscribeParams.length, { timeout: 3_000 }).toBe(2);
    await closePool();
    expect(await page!.evaluate(() => (window as unknown as LabWindow).lab.later)).toEqual({
      name: "PoolClosedError",
      code: "ERR_POOL_CLOSED",
    });
    expect(await page!.evaluate(() => (window as unknown as LabWindow).lab.reading)).toBe("done");
    expect(server.unsubscribes, "both unsubscribed while their sockets were open").toBe(2);
    expect(server.liveSubscriptions()).toBe(0);
    const s = await snapshot();
    expect(s.state).toBe("closed");
    expect(s.stats.connections.total).toBe(0);
    expect(s.stats.subscriptions).toMatchObject({ active: 0, unsubscribeFailed: 0 });
    await expect.poll(() => server.connections().length, { timeout: 3_000 }).toBe(0);
  });

  it("setup (login) runs before any other frame on every new socket (heartbeat pings included): the first ones, after a kill, after TTL", async () => {
    // A login slower than the heartbeat's interval: a ping sent during setup would reach the server before the login's answer.
    const server = await start({ size: 2, ttl: 600, heartbeat: { interval: 40, timeout: 1_000, method: "ping" } }, {
      requireLogin: true,
    }, { login: true });
    server.loginDelay = 80;
    await subscribe();
    await until((s) => s.got.length >= 3, "3 events");
    server.kill(server.subscriptionSockets()[0]);
    const s = await until((s) => s.moves.length >= 3 && s.stats.connections.open === 2, "a move by the kill and 2 by TTL", 15_000);
    expect(server.beforeLogin, "frames a socket sent before its login was answered").toEqual([]);
    expect(server.logins).toBeGreaterThanOrEqual(4); // 2 first sockets, the one after the kill, a TTL replacement at least
    // Every socket the server accepted logged in (a replacement may be logging in right now: polled).
    await expect.poll(() => server.logins === server.stats.connectionsAccepted, { timeout: 3_000 }).toBe(true);
    expect(s.setups).toBeGreaterThanOrEqual(4);
    expect(increasing(s.got)).toBe(true);
    expect(s.events.filter((e) => e.type === "error")).toEqual([]);
  });

  it("a failing setup is a failed connect attempt: ConnectError with the cause, backoff; the subscription waits for a socket that logged in", async () => {
    const server = await start({ size: 1, reconnect: { initialDelay: 20, maxDelay: 200 } }, { requireLogin: true }, { login: true });
    await subscribe();
    await until((s) => s.got.length >= 3, "3 events");
    server.refuseLogins = 2;
    server.kill();
    const s = await until((s) => s.moves.length === 1 && s.got.length >= 6, "the move and more events");
    const errors = s.events.filter((e) => e.type === "error");
    expect(errors).toEqual([1, 2].map(() => ({
      type: "error",
      name: "ConnectError",
      code: "ERR_CONNECT",
      cause: { name: "RemoteError", code: "ERR_REMOTE", remoteCode: -32002 },
    })));
    const reconnects = s.events.filter((e) => e.type === "reconnect") as { attempt: number; delay: number }[];
    expect(reconnects.map((r) => r.attempt), "each failed setup one more attempt").toEqual([1, 2, 3]);
    expect(s.moves[0]!.gap).toBeGreaterThanOrEqual(reconnects.reduce((n, r) => n + r.delay, 0) - 15);
    expect(server.refuseLogins).toBe(0);
    expect(server.beforeLogin, "the subscribe waited for a socket that logged in").toEqual([]);
    expect(increasing(s.got)).toBe(true);
    expect(s.stats.subscriptions).toMatchObject({ active: 1, resubscribed: 1 });
  });
});
