/**
 * Issue 12, item 2: a subscription moves with its socket. Make-before-break
 * moves (TTL, reload, resize) lose no event; moves off a lost socket (kill,
 * stall, restart) resubscribe at once, and with `key` never deliver an
 * event twice. Every test ends with the server's count of live
 * subscriptions, so none is left behind.
 */
import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { carried, drain, heads, holes, increasing, keyedHeads } from "../fixtures/subscriptions.ts";
import type { ResubscribeEvent } from "../../src/mod.ts";

describe("make-before-break moves lose no event", () => {
  it("TTL rotation of 2 sockets with 30 subscriptions: every event delivered once, in order, and the counts balance", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2, ttl: 300 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all(Array.from({ length: 30 }, () => keyedHeads(pool)));
    const r = subs.map(drain);
    const log = collectEvents(pool, ["resubscribe"]);
    await sleep(1500);
    expect(log.count("resubscribe")).toBeGreaterThanOrEqual(30); // each rotated at least once
    for (const x of r) expect(increasing(x.got)).toBe(true);
    await waitFor(() => server.liveSubscriptions() === 30, 2000, "30 live, got " + server.liveSubscriptions());
    expect(carried(pool)).toBe(30);
    expect(r.map((x) => holes(x.got)).filter((h) => h.length > 0)).toEqual([]);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("TTL rotation of a single socket with 50 subscriptions: no event lost, none leaks out as a plain notification", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 4 }, pool: { size: 1, ttl: 250 } });
    const log = collectEvents(pool, ["notification", "resubscribe"]);
    const subs = await Promise.all(Array.from({ length: 50 }, () => keyedHeads(pool)));
    const r = subs.map(drain);
    await sleep(1200);
    expect(log.count("resubscribe")).toBeGreaterThanOrEqual(100); // each rotated at least twice
    expect(log.of("notification").filter((n) => n.method === "eth_subscription")).toEqual([]);
    await waitFor(() => server.liveSubscriptions() === 50);
    expect(r.map((x) => holes(x.got)).filter((h) => h.length > 0)).toEqual([]);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("five reloads with 20 subscriptions: no hole, no event twice, none leaks out as a plain notification", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 2 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const log = collectEvents(pool, ["notification", "resubscribe"]);
    const subs = await Promise.all(Array.from({ length: 20 }, () => keyedHeads(pool)));
    const r = subs.map(drain);
    for (let i = 0; i < 5; i++) {
      await sleep(30);
      await pool.reload();
    }
    await sleep(100);
    expect(log.count("resubscribe")).toBeGreaterThanOrEqual(100); // 20 moved at each reload
    expect(log.of("notification").filter((n) => n.method === "eth_subscription")).toEqual([]);
    for (const x of r) expect(increasing(x.got)).toBe(true);
    expect(r.map((x) => holes(x.got)).filter((h) => h.length > 0)).toEqual([]);
    await waitFor(() => server.liveSubscriptions() === 20);
    expect(carried(pool)).toBe(20);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("a make-before-break move delivers the old socket's last events before the new one's, even when the old socket lags", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const sub = await keyedHeads(pool);
    const { got } = drain(sub);
    await waitFor(() => got.length >= 3);
    const [old] = server.subscriptionSockets();
    server.stall(old); // its events wait on the server: they will arrive after the new socket's
    await pool.reload();
    await waitFor(() => sub.stats().resubscribed === 1, 3000, "moved");
    await sleep(50); // the new socket's events arrive meanwhile; the old one's unsubscribe is not answered yet
    server.unstall(old);
    await waitFor(() => server.liveSubscriptions() === 1, 3000, "the old one unsubscribed");
    const at = got.length;
    await waitFor(() => got.length > at + 3, 3000, "flowing on the new socket");
    expect(increasing(got)).toBe(true);
    expect(holes(got)).toEqual([]);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("resize(1) moves the leaving sockets' subscriptions first, so it resolves long before drainTimeout, with no hole", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 3 } }); // drainTimeout 30 s
    await waitFor(() => pool.stats().connections.open === 3);
    const subs = await Promise.all(Array.from({ length: 9 }, () => keyedHeads(pool)));
    const r = subs.map(drain);
    await sleep(30);
    const t0 = Date.now();
    await pool.resize(1);
    expect(Date.now() - t0).toBeLessThan(1000);
    await waitFor(() => server.connections().length === 1, 1000, "the leaving sockets closed on the server too");
    // Six moved; one may move twice: the leaving sockets drain one after another, so the first one's may land on the second.
    expect(pool.stats().subscriptions.resubscribed).toBeGreaterThanOrEqual(6);
    await sleep(300);
    expect(server.liveSubscriptions()).toBe(9);
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([9]);
    expect(r.map((x) => holes(x.got)).filter((h) => h.length > 0)).toEqual([]);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("resize(1) with no room under maxSubscriptionsPerSocket: the leaving sockets carry theirs until drainTimeout, then those wait for room", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 3, maxSubscriptionsPerSocket: 2, drainTimeout: 400 },
    });
    await waitFor(() => pool.stats().connections.open === 3);
    const subs = await Promise.all(Array.from({ length: 6 }, () => heads(pool)));
    const r = subs.map(drain);
    const resized = pool.resize(1).then(() => "resized");
    expect(await Promise.race([resized, sleep(200).then(() => "draining")])).toBe("draining");
    let at = r.map((x) => x.got.length);
    await waitFor(() => r.every((x, i) => x.got.length > at[i]!), 1000, "all six still flowing while their sockets drain");
    expect(await resized).toBe("resized"); // the drain timeout ended the two leaving sockets
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([2]);
    expect(pool.stats().subscriptions.active).toBe(6); // four wait for room, not ended
    await waitFor(() => server.liveSubscriptions() === 2);
    await pool.resize(3); // room again: the waiting ones take it
    await waitFor(() => server.liveSubscriptions() === 6, 3000, "the four resubscribed");
    at = r.map((x) => x.got.length);
    await waitFor(() => r.every((x, i) => x.got.length > at[i]!), 1000, "all six flowing again");
    expect(pool.stats().subscriptions.resubscribed).toBe(4);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
    for (const x of r) expect(await x.done).toBeUndefined();
  });
});

describe("moves off a lost socket", () => {
  it("the carrier killed 10 times while events flow: 10 moves, in order, one subscription on the server", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 3 },
      pool: { size: 3, reconnect: { initialDelay: 10, maxDelay: 20 } },
    });
    await waitFor(() => pool.stats().connections.open === 3);
    const sub = await keyedHeads(pool);
    const { got } = drain(sub);
    for (let i = 0; i < 10; i++) {
      await waitFor(() => got.length > 0);
      const before = sub.stats().resubscribed;
      server.kill(server.subscriptionSockets()[0]);
      await waitFor(() => sub.stats().resubscribed === before + 1, 3000, `move ${i}`);
      await sleep(15);
    }
    await sleep(50);
    expect(increasing(got)).toBe(true);
    expect(server.liveSubscriptions()).toBe(1);
    expect(carried(pool)).toBe(1);
    expect(pool.stats().subscriptions.resubscribed).toBe(10);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("every socket killed 8 times 7 ms apart (kills during the resubscribe): each subscription ends up once on the server, flowing", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 3 },
      pool: { size: 2, reconnect: { initialDelay: 5, maxDelay: 10 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all([1, 2, 3, 4].map(() => keyedHeads(pool)));
    const r = subs.map(drain);
    for (let i = 0; i < 8; i++) {
      server.kill();
      await sleep(7);
    }
    await waitFor(() => server.liveSubscriptions() === 4 && pool.stats().subscriptions.active === 4, 4000, "settled");
    await sleep(200);
    expect(server.liveSubscriptions()).toBe(4);
    expect(carried(pool)).toBe(4);
    for (const x of r) expect(increasing(x.got)).toBe(true);
    const at = r.map((x) => x.got.length);
    await waitFor(() => r.every((x, i) => x.got.length > at[i]!), 3000, "flowing");
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
    for (const x of r) expect(await x.done).toBeUndefined();
  });

  it("a stalled carrier (heartbeat on): it moves, and the move's silence accounts for the events it missed", async () => {
    const interval = 5;
    const { server, pool } = await setup({
      server: { subscriptionInterval: interval },
      pool: { size: 2, heartbeat: { interval: 100, timeout: 100 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await keyedHeads(pool);
    const moves: ResubscribeEvent[] = [];
    sub.addEventListener("resubscribe", (e) => moves.push(e));
    const { got } = drain(sub);
    await waitFor(() => got.length > 3);
    server.stall(server.subscriptionSockets()[0]);
    await waitFor(() => moves.length === 1, 4000, "moved off the stalled socket");
    const at = got.length;
    await waitFor(() => got.length > at + 3);
    server.unstall();
    await sleep(100);
    expect(increasing(got)).toBe(true);
    // The server ticks at most once per `interval` ms (less 1 ms of timer rounding): the events
    // missed fit in the silence, give or take the last event's own delivery time (20 ms of slack).
    const missed = holes(got).reduce((n, [a, b]) => n + b - a - 1, 0);
    expect(missed).toBeGreaterThan(0); // the stall did cost events: heartbeat interval + timeout
    expect(missed).toBeLessThanOrEqual(Math.ceil((moves[0]!.silence + 20) / (interval - 1)) + 1);
    expect(moves[0]!.silence).toBeGreaterThanOrEqual(100); // no event for at least the heartbeat's timeout
    // Half-open: the pool knew the socket was gone only when the heartbeat gave up, so the time without a socket is shorter.
    expect(moves[0]).toMatchObject({ reason: "lost" });
    expect(moves[0]!.gap).toBeLessThan(moves[0]!.silence);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("the carrier killed while the only other socket is stalled (heartbeat on): it resubscribes once the stall is detected", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, heartbeat: { interval: 100, timeout: 100 }, reconnect: { initialDelay: 20, maxDelay: 50 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await keyedHeads(pool);
    const { got } = drain(sub);
    await waitFor(() => got.length > 3);
    const carrier = server.subscriptionSockets()[0]!;
    const other = server.connections().map((c) => c.id).find((id) => id !== carrier)!;
    server.stall(other);
    server.kill(carrier);
    await waitFor(() => sub.stats().resubscribed >= 1 && server.liveSubscriptions() >= 1, 3000, "resubscribed");
    expect(server.subscriptionSockets()).not.toContain(other); // not on the stalled one
    server.unstall();
    const at = got.length;
    await waitFor(() => got.length > at + 3, 2000, "flowing after the move");
    expect(increasing(got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("two server restarts while subscribed: all five come back, in order, carried once", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, reconnect: { initialDelay: 20, maxDelay: 50 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all(Array.from({ length: 5 }, () => keyedHeads(pool)));
    const r = subs.map(drain);
    await server.restart(50);
    await server.restart(50);
    await waitFor(() => server.liveSubscriptions() === 5, 5000, "back");
    await sleep(100);
    expect(server.liveSubscriptions()).toBe(5);
    expect(carried(pool)).toBe(5);
    for (const x of r) expect(increasing(x.got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });
});
