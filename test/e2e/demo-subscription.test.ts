/**
 * The demo's live subscription in a real Chromium (issue 12, items 4 and 5):
 * the page's pool logs in on every socket in its `setup` (the server refuses
 * anything else first, and counts it), follows `ticker_subscribe`, and the
 * ticker keeps flowing through a killed socket, a server restart, a TTL
 * rotation and a stalled socket: each move is in the event log and in the
 * page's list of gaps, no sequence number is missed (params resumes from the
 * last one) and none reaches the page twice (key drops the repeat). The
 * dashboard shows the subscription on its socket's card and the pool's
 * subscription counters. At the end the server holds exactly one live ticker
 * subscription: the moves left none behind.
 *
 * Needs the built files: `npm run test:e2e` builds first.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Demo, startDemo } from "../../demo/main.ts";
import { launchBrowser } from "./browser.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SIZE = 4;

let demo: Demo;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];
let serverDown = false;

interface TickerState {
  delivered: number;
  moves: number;
  missed: number;
  repeated: number;
  restarts: number;
  seqs: number[];
}

function ticker(): Promise<TickerState> {
  return page.evaluate(() => {
    const t = (window as unknown as { muxpoolDemo: { ticker: TickerState } }).muxpoolDemo.ticker;
    return { delivered: t.delivered, moves: t.moves, missed: t.missed, repeated: t.repeated, restarts: t.restarts, seqs: [...t.seqs] };
  });
}

async function shown(testid: string): Promise<number> {
  return Number(((await page.getByTestId(testid).textContent()) ?? "").replace(/,/g, ""));
}

function logTexts(type: string): Promise<string[]> {
  return page.$$eval(`[data-testid=event-log-item][data-type=${type}] .mxd-msg`, (items) => items.map((i) => i.textContent ?? ""));
}

/** Per-socket subscription counts on the open cards: `{ cardId: count }`. */
function cardCounts(): Promise<Record<string, number>> {
  return page.$$eval("[data-testid=socket-card][data-state=open]", (cards) =>
    Object.fromEntries(
      cards.map((c) => [
        (c as HTMLElement).dataset.connId ?? "",
        Number(c.querySelector("[data-testid=card-subscriptions]")?.textContent ?? "NaN"),
      ]),
    ));
}

/** The server socket that carries the ticker subscription (one, when nothing is moving). */
async function carrier(): Promise<number> {
  await expect.poll(() => demo.ticker.carriers().length, { timeout: 5000 }).toBe(1);
  return demo.ticker.carriers()[0]!;
}

/** The ticker flows: the page shows a last seq that rises by more than `n` within a few seconds. */
async function expectFlowing(n = 5): Promise<void> {
  await expect.poll(() => shown("sub-seq"), { timeout: 6000 }).not.toBeNaN(); // "–" before the first event
  const before = await shown("sub-seq");
  await expect.poll(() => shown("sub-seq"), { timeout: 6000 }).toBeGreaterThan(before + n);
  expect(await page.getByTestId("sub-state").getAttribute("data-state")).toBe("flowing");
}

/** Nothing missed, nothing twice: the seqs the page got are consecutive. */
async function expectUnbroken(): Promise<TickerState> {
  const t = await ticker();
  expect(t.missed).toBe(0);
  expect(t.repeated).toBe(0);
  const breaks = t.seqs.filter((s, i) => i > 0 && s !== t.seqs[i - 1]! + 1);
  expect(breaks).toEqual([]);
  expect(await shown("sub-missed")).toBe(0);
  expect(await shown("sub-repeated")).toBe(0);
  return t;
}

async function shot(name: string): Promise<void> {
  mkdirSync(join(root, "test-results"), { recursive: true });
  await page.screenshot({ path: join(root, "test-results", `subscription-${name}.png`), fullPage: true });
}

describe("the demo's live subscription in Chromium", () => {
  beforeAll(async () => {
    // 100 ms ticks: a move without resume would miss several.
    demo = await startDemo({ port: 0, subscriptionTicker: 100 });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const text = msg.text();
      if (serverDown && /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/' failed/.test(text)) return;
      consoleErrors.push(text);
    });
    page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it("every socket logs in first (setup), the ticker flows, its socket's card and the counters show it", async () => {
    await page.goto(demo.url);
    await expect.poll(() => page.locator("[data-testid=socket-card][data-state=open]").count(), { timeout: 5000 }).toBe(SIZE);
    await expectFlowing();
    expect(demo.rpc.logins).toBeGreaterThanOrEqual(SIZE);
    expect(demo.rpc.beforeLogin).toEqual([]);
    await expect.poll(() => shown("stat-sub-active")).toBe(1);
    // One card carries it, the others none.
    await expect.poll(async () => Object.values(await cardCounts()).sort()).toEqual([0, 0, 0, 1]);
    expect(await page.getByTestId("sub-where").textContent()).toMatch(/^on socket #\d+$/);
    expect(await shown("sub-moves")).toBe(0);
    // The server's side, as the page shows it from the admin channel; its row is marked.
    await expect.poll(() => page.getByTestId("sub-server").textContent(), { timeout: 3000 }).toBe(
      `server side: 1 live ticker subscription on socket #${await carrier()} · 0 calls refused before login`,
    );
    expect(await page.locator("[data-testid=server-connection][data-ticker]").getAttribute("data-id")).toBe(String(await carrier()));
    await expectUnbroken();
  });

  it("Kill its socket: the subscription moves, the log shows it, the ticker goes on without a gap in seq", async () => {
    const sid = await carrier();
    await page.getByTestId("sub-kill").click();
    await expect.poll(() => demo.rpc.connections().some((c) => c.id === sid), { timeout: 3000 }).toBe(false);
    await expect.poll(() => shown("sub-moves"), { timeout: 5000 }).toBe(1);
    await expect.poll(() => logTexts("resubscribe"), { timeout: 3000 }).toEqual([
      expect.stringMatching(
        /^"ticker_subscribe" moved #\d+ → #\d+ \(its socket was lost\): (\d+ ms|\d+\.\d s) without a socket, (\d+ ms|\d+\.\d s) without an event \(id 0x[0-9a-f]+\)$/,
      ),
    ]);
    expect(await shown("event-count-resubscribe")).toBe(1);
    await expectFlowing();
    // The page's list of gaps: this move, its gap in ms, and no seq missed across it.
    await expect.poll(() => page.getByTestId("sub-gap").allTextContents()).toEqual([
      expect.stringMatching(/#\d+ → #\d+ · \d+ ms\s*missed none$/),
    ]);
    await expect.poll(() => shown("stat-sub-resubscribed")).toBe(1);
    // Resumed from the last seq seen, that one included: the repeat was dropped by key, counted.
    expect(await shown("sub-duplicates-dropped")).toBeGreaterThanOrEqual(1);
    await expect.poll(() => shown("stat-sub-duplicatesDropped")).toBeGreaterThanOrEqual(1);
    await expectUnbroken();
    expect(demo.rpc.beforeLogin).toEqual([]);
    await shot("1-killed");
  });

  it("Restart the server: every socket logs in again and the subscription resumes with no seq missed", async () => {
    const moves = await shown("sub-moves");
    const logins = demo.rpc.logins;
    serverDown = true;
    await page.getByTestId("restart-server").click();
    await expect.poll(() => shown("sub-moves"), { timeout: 10_000 }).toBe(moves + 1);
    await expect.poll(() => page.locator("[data-testid=socket-card][data-state=open]").count(), { timeout: 10_000 }).toBe(SIZE);
    serverDown = false;
    expect(demo.rpc.logins).toBeGreaterThanOrEqual(logins + SIZE);
    expect(demo.rpc.beforeLogin).toEqual([]);
    await expectFlowing();
    // The server was down 1.5 s: a gap of that order, the seqs of that time replayed after it.
    const gaps = await page.getByTestId("sub-gap").allTextContents();
    expect(gaps[0]).toMatch(/· \d+,\d{3} ms\s*missed none$/);
    await expectUnbroken();
    await shot("2-restarted");
  });

  it("TTL rotation: the subscription moves make-before-break, key drops the overlap", async () => {
    const moves = await shown("sub-moves");
    const dropped = await shown("sub-duplicates-dropped");
    await page.getByTestId("setting-ttl").fill("1500");
    await page.getByTestId("apply-settings").click();
    await expect.poll(() => shown("sub-moves"), { timeout: 10_000 }).toBeGreaterThanOrEqual(moves + 3);
    expect((await logTexts("resubscribe")).some((t) => t.includes("its socket expired"))).toBe(true);
    // Each move resumed from the last seq seen, included: key dropped that one each time.
    await expect.poll(() => shown("sub-duplicates-dropped")).toBeGreaterThanOrEqual(dropped + 3);
    await page.getByTestId("setting-ttl").fill("0");
    await page.getByTestId("apply-settings").click();
    await expect.poll(() => page.getByTestId("pool-info").textContent()).toContain("TTL off");
    await expectFlowing();
    await expectUnbroken();
    await shot("3-ttl");
  });

  it("Stall the carrying socket: the heartbeat finds it, the subscription moves, nothing missed", async () => {
    await page.waitForTimeout(500); // the last TTL moves settle
    const moves = await shown("sub-moves");
    const sid = await carrier();
    await page.locator(`[data-testid=server-connection][data-id="${sid}"] button:not(.danger)`).click();
    // heartbeat 2 s + 1 s in the demo
    await expect.poll(() => shown("sub-moves"), { timeout: 8000 }).toBe(moves + 1);
    await expectFlowing();
    await page.getByTestId("unstall").click();
    const t = await expectUnbroken();
    expect(t.restarts).toBe(0);
    expect(t.delivered).toBeGreaterThan(100);
  });

  it("at the end: one subscription on the server and on the cards, none left behind by the moves, no page errors", async () => {
    await expect.poll(() => demo.ticker.live, { timeout: 5000 }).toBe(1);
    await expect.poll(async () => Object.values(await cardCounts()).reduce((a, b) => a + b, 0)).toBe(1);
    expect(await shown("stat-sub-active")).toBe(1);
    expect(await shown("stat-sub-overflowed")).toBe(0);
    expect(await shown("stat-sub-unsubscribeFailed")).toBe(0);
    const texts = await logTexts("resubscribe");
    expect(texts.length).toBe(await shown("sub-moves"));
    expect(texts.filter((t) => /undefined|NaN/.test(t))).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
