/**
 * The demo's ticker (test/fixtures/ticker.ts), which the demo page, its
 * browser test and the docs' resume example rely on: `ticker_subscribe` with
 * `from` replays the ticks from there, in order, then goes on live; the
 * demo server wants a login first (its gate is the test server's
 * `requireLogin`), which a pool's `setup` gives.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Pool } from "../../src/mod.ts";
import { type RpcServer, startRpcServer } from "../fixtures/server.ts";
import { type Tick, type TickerMethods, tickerMethods } from "../fixtures/ticker.ts";

let server: RpcServer | undefined;
const pools: Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  await server?.close();
  server = undefined;
});

async function start(options: Parameters<typeof tickerMethods>[0]): Promise<TickerMethods> {
  const ticker = tickerMethods(options);
  server = await startRpcServer({ extension: ticker, requireLogin: true });
  return ticker;
}

function pool(url: string, options: ConstructorParameters<typeof Pool>[1] = {}): Pool {
  const p = new Pool(url, { size: 1, timeout: 2000, ...options });
  pools.push(p);
  return p;
}

describe("demo server: the ticker subscription", () => {
  it("ticker_subscribe with from replays the ticks from there in order, then the live ones", async () => {
    const ticker = await start({ interval: 10 });
    while (ticker.seq < 30) await new Promise((r) => setTimeout(r, 10));
    const p = pool(server!.url, { setup: async (conn) => void (await conn.call("login", ["any"])) });
    const sub = await p.subscribe<Tick>("ticker_subscribe", [{ from: 5 }], {
      unsubscribe: "ticker_unsubscribe",
      notification: "ticker_subscription",
    });
    const seqs: number[] = [];
    for await (const tick of sub) {
      seqs.push(tick.seq);
      if (seqs.length >= 40) break;
    }
    expect(seqs[0]).toBe(5);
    expect(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1)).toBe(true);
    expect(seqs.at(-1)!).toBeGreaterThanOrEqual(ticker.seq - 2); // caught up with the live ticks
    expect(ticker.live).toBe(0); // break unsubscribed
    expect(ticker.unsubscribes).toBe(1);
    expect(server!.beforeLogin).toEqual([]);
  });
});
