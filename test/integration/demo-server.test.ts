/**
 * The demo server's own methods (test/fixtures/ticker.ts), which the demo
 * page and its browser test rely on: its login gate refuses and counts a
 * call made before login (so a count of 0 in the browser test means the
 * pool's `setup` ran first), a wrong token fails the pool's setup, and
 * `ticker_subscribe` with `from` replays the ticks it missed, in order, then
 * goes on live.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConnectError, Pool, RemoteError } from "../../src/mod.ts";
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
  server = await startRpcServer({ extension: ticker });
  return ticker;
}

function pool(url: string, options: ConstructorParameters<typeof Pool>[1] = {}): Pool {
  const p = new Pool(url, { size: 1, timeout: 2000, ...options });
  pools.push(p);
  return p;
}

describe("demo server: login and the ticker subscription", () => {
  it("refuses and counts a call before login; the same call after a setup login goes through", async () => {
    const ticker = await start({ token: "t", interval: 1000 });
    const bare = pool(server!.url);
    const error = await bare.call("echo", ["x"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).remoteCode).toBe(-32001);
    expect(ticker.refusedBeforeLogin).toBe(1);

    const good = pool(server!.url, { setup: async (conn) => void (await conn.call("login", ["t"])) });
    expect(await good.call("echo", ["x"])).toBe("x");
    expect(ticker.logins).toBe(1);
    expect(ticker.refusedBeforeLogin).toBe(1);
  });

  it("a wrong token fails the pool's setup: a failed connect attempt with the server's refusal as its cause", async () => {
    await start({ token: "t", interval: 1000 });
    const p = pool(server!.url, {
      setup: async (conn) => void (await conn.call("login", ["wrong"])),
      reconnect: { initialDelay: 10, maxDelay: 20, maxAttempts: 2 },
    });
    const errors: unknown[] = [];
    p.addEventListener("error", (e) => errors.push(e.error));
    const ready = await p.ready({ timeout: 1000 }).catch((e: unknown) => e);
    expect(ready).toBeInstanceOf(Error);
    expect(p.stats().connections.open).toBe(0);
    const failed = errors.filter((e): e is ConnectError => e instanceof ConnectError);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    const cause = failed[0]!.cause;
    expect(cause).toBeInstanceOf(RemoteError);
    expect((cause as RemoteError).message).toContain("wrong token");
  });

  it("ticker_subscribe with from replays the ticks from there in order, then the live ones", async () => {
    const ticker = await start({ interval: 10 });
    while (ticker.seq < 30) await new Promise((r) => setTimeout(r, 10));
    const p = pool(server!.url);
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
  });
});
