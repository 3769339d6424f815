import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads, increasing } from "../fixtures/subscriptions.ts";
import type { ResubscribeEvent } from "../../src/mod.ts";

const holes = (xs: number[]): number[] => xs.flatMap((x, i) => (i > 0 && x !== xs[i - 1]! + 1 ? [xs[i - 1]!, x] : []));

describe("moves", () => {
  it("TTL rotation with many subscriptions: contiguous (make-before-break), counts balance", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2, ttl: 300 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all(Array.from({ length: 30 }, () => heads(pool, { key: (h: Head) => h.number })));
    const r = subs.map(drain);
    const log = collectEvents(pool, ["resubscribe"]);
    await sleep(1500);
    const h = r.map((x) => holes(x.got)).filter((x) => x.length > 0);
    console.log(
      "ttl: moves",
      log.count("resubscribe"),
      "holes",
      h.length,
      JSON.stringify(h.slice(0, 5)),
      "live",
      server.liveSubscriptions(),
      "peak",
      server.peakSubscriptions,
      JSON.stringify(pool.stats().subscriptions),
      pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
    );
    for (const x of r) expect(increasing(x.got)).toBe(true);
    await waitFor(() => server.liveSubscriptions() === 30, 2000, "30 live, got " + server.liveSubscriptions());
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(30);
    expect(h).toEqual([]);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("resize(1) while subscribed", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 3 } });
    await waitFor(() => pool.stats().connections.open === 3);
    const subs = await Promise.all(Array.from({ length: 9 }, () => heads(pool, { key: (h: Head) => h.number })));
    const r = subs.map(drain);
    await sleep(30);
    await pool.resize(1);
    await sleep(300);
    const h = r.map((x) => holes(x.got)).filter((x) => x.length > 0);
    console.log(
      "resize: holes",
      JSON.stringify(h.slice(0, 5)),
      "live",
      server.liveSubscriptions(),
      JSON.stringify(pool.stats().subscriptions),
      pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
      "server conns",
      server.connections().length,
    );
    expect(server.liveSubscriptions()).toBe(9);
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([9]);
    expect(h).toEqual([]);
    await pool.close();
  });

  it("resize(1) with maxSubscriptionsPerSocket: 2 (no room)", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 3, maxSubscriptionsPerSocket: 2 } });
    await waitFor(() => pool.stats().connections.open === 3);
    const subs = await Promise.all(Array.from({ length: 6 }, () => heads(pool)));
    const r = subs.map(drain);
    const t = pool.resize(1).then(() => "resized", (e) => e);
    const res = await Promise.race([t, sleep(1500).then(() => "resize hang")]);
    await sleep(100);
    console.log(
      "resize capped:",
      res,
      "live",
      server.liveSubscriptions(),
      JSON.stringify(pool.stats().subscriptions),
      pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
    );
    const at = r.map((x) => x.got.length);
    await sleep(100);
    console.log("still flowing:", r.map((x, i) => x.got.length - at[i]!));
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("reload() with many subscriptions, events contiguous", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 3 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all(Array.from({ length: 20 }, () => heads(pool, { key: (h: Head) => h.number })));
    const r = subs.map(drain);
    for (let i = 0; i < 3; i++) {
      await sleep(30);
      await pool.reload();
    }
    await sleep(200);
    const h = r.map((x) => holes(x.got)).filter((x) => x.length > 0);
    console.log(
      "reload: holes",
      h.length,
      JSON.stringify(h.slice(0, 5)),
      "live",
      server.liveSubscriptions(),
      JSON.stringify(pool.stats().subscriptions),
      pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
    );
    expect(server.liveSubscriptions()).toBe(20);
    expect(h).toEqual([]);
    await pool.close();
  });

  it("stalled carrier with heartbeat: moves, and gap explains the missing events", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, heartbeat: { interval: 100, timeout: 100 } } as never,
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const moves: ResubscribeEvent[] = [];
    sub.addEventListener("resubscribe", (e) => moves.push(e));
    const { got } = drain(sub);
    await waitFor(() => got.length > 3);
    server.stall(server.subscriptionSockets()[0]);
    const t0 = Date.now();
    await waitFor(() => moves.length === 1, 4000, "moved off the stalled socket");
    console.log("stall: moved after", Date.now() - t0, "gap", moves[0]!.gap, "holes", holes(got), "live", server.liveSubscriptions());
    const at = got.length;
    await waitFor(() => got.length > at + 3);
    server.unstall();
    await sleep(100);
    expect(increasing(got)).toBe(true);
    await pool.close();
  });

  it("server restart twice while subscribed", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, reconnect: { initialDelay: 20, maxDelay: 50 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all(Array.from({ length: 5 }, () => heads(pool, { key: (h: Head) => h.number })));
    const r = subs.map(drain);
    await server.restart(50);
    await server.restart(50);
    await waitFor(() => server.liveSubscriptions() === 5, 5000, "back");
    await sleep(100);
    console.log(
      "restart: live",
      server.liveSubscriptions(),
      JSON.stringify(pool.stats().subscriptions),
      pool.connections().map((c) => [c.state, c.subscriptions]),
    );
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(5);
    for (const x of r) expect(increasing(x.got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });
});
