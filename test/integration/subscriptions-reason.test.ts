/**
 * A `resubscribe` event says why the subscription moved and how long it had no
 * socket (`gap`: 0 for make-before-break) apart from how long it had no event
 * (`silence`); and a move goes to a socket that stays, not to one about to be
 * replaced in turn.
 */
import { describe, expect, it } from "vitest";
import { type ResubscribeEvent, TimeoutError } from "../../src/mod.ts";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads, increasing } from "../fixtures/subscriptions.ts";

describe("resubscribe events: reason, gap and silence", () => {
  it("a killed carrier: reason lost, gap from the loss to the new confirmation, silence at least as long", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, reconnect: { initialDelay: 10, maxDelay: 20 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    // The other socket answers slowly: the new subscribe takes at least that long, so the gap cannot be 0.
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const moves: ResubscribeEvent[] = [];
    sub.addEventListener("resubscribe", (e) => moves.push(e));
    const { got } = drain(sub);
    await waitFor(() => got.length > 2);
    server.setFaults({ latency: 60 });
    server.kill(server.subscriptionSockets()[0]);
    await waitFor(() => moves.length === 1, 3000, "the move");
    server.setFaults({ latency: 0 });
    const [m] = moves;
    expect(m!.reason).toBe("lost");
    expect(m!.gap).toBeGreaterThanOrEqual(50);
    expect(m!.silence).toBeGreaterThanOrEqual(m!.gap);
    expect(m!.from).not.toBe(m!.to);
    await waitFor(() => got.length > 10);
    expect(increasing(got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("reload of 4 sockets: each subscription moves once, to its carrier's own replacement, make-before-break (gap 0)", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 4 } });
    await waitFor(() => pool.stats().connections.open === 4);
    const subs = await Promise.all([heads(pool, { key: (h: Head) => h.number }), heads(pool, { key: (h: Head) => h.number })]);
    const moves: ResubscribeEvent[] = [];
    for (const s of subs) s.addEventListener("resubscribe", (e) => moves.push(e));
    const readers = subs.map(drain);
    const before = new Set(pool.connections().map((c) => c.id));
    await pool.reload();
    await waitFor(() => moves.length >= 2 && pool.connections().every((c) => c.state === "open"), 3000, "both moved");
    await sleep(50); // a third move, if any, would show now
    expect(moves.map((m) => [m.reason, m.gap])).toEqual([["reload", 0], ["reload", 0]]);
    // Not onto another old socket that the reload replaces next: onto one it opened.
    for (const m of moves) expect(before.has(m.to), `moved to #${m.to}, an old socket`).toBe(false);
    for (const r of readers) expect(increasing(r.got)).toBe(true);
    expect(server.liveSubscriptions()).toBe(2);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("TTL: an expired carrier keeps its subscriptions until a replacement opens, then they move there (reason expired, gap 0)", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 3, ttl: 400 } });
    const log = collectEvents(pool, ["expire", "open"]);
    await waitFor(() => pool.stats().connections.open === 3);
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const moves: { event: ResubscribeEvent; at: number }[] = [];
    const t0 = performance.now();
    sub.addEventListener("resubscribe", (event) => moves.push({ event, at: performance.now() - t0 }));
    const { got } = drain(sub);
    await sleep(1100); // two TTL periods
    expect(moves.length).toBeGreaterThanOrEqual(1);
    const expired = new Set(log.of("expire").map((e) => e.connection.id));
    for (const { event } of moves) {
      expect(event.reason).toBe("expired");
      expect(event.gap).toBe(0);
      // It went to a socket that opened after its old carrier expired (a replacement), never to another old one.
      expect(expired.has(event.from)).toBe(true);
      const opened = log.of("open").find((o) => o.connection.id === event.to);
      const expiredAt = log.timesOf("expire")[log.of("expire").findIndex((e) => e.connection.id === event.from)]!;
      const openedAt = log.timesOf("open")[log.of("open").indexOf(opened!)]!;
      expect(openedAt, `#${event.to} opened before #${event.from} expired`).toBeGreaterThan(expiredAt);
    }
    // At most one move per carrier: never twice from the same socket.
    expect(new Set(moves.map((m) => m.event.from)).size).toBe(moves.length);
    expect(increasing(got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("resize below what maxSubscriptionsPerSocket can carry: the one left without room waits, counted in waiting, and moves when room comes (reason resize)", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, maxSubscriptionsPerSocket: 1, drainTimeout: 200 },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all([heads(pool, { key: (h: Head) => h.number }), heads(pool, { key: (h: Head) => h.number })]);
    const moves: ResubscribeEvent[] = [];
    for (const s of subs) s.addEventListener("resubscribe", (e) => moves.push(e));
    const readers = subs.map(drain);
    await pool.resize(1); // the drained socket is closed after drainTimeout, its subscription with nowhere to go
    expect(pool.stats().subscriptions).toMatchObject({ active: 2, waiting: 1 });
    await waitFor(() => server.liveSubscriptions() === 1, 1000, "the closed socket's subscription ended on the server");
    await sleep(100);
    await pool.resize(2);
    await waitFor(() => moves.length === 1, 3000, "the waiting one moved");
    expect(moves[0]).toMatchObject({ reason: "resize" });
    expect(moves[0]!.gap).toBeGreaterThanOrEqual(100); // it had no socket from the close until the new one took it
    expect(pool.stats().subscriptions).toMatchObject({ active: 2, waiting: 0 });
    await waitFor(() => readers.every((r) => r.got.length > 5));
    for (const r of readers) expect(increasing(r.got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("a first subscribe that no socket has room for times out saying so, and was never sent", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1, maxSubscriptionsPerSocket: 1 } });
    await heads(pool);
    const error = await heads(pool, { timeout: 150 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).message).toBe(
      'subscribe "eth_subscribe": not sent: no open socket had room under maxSubscriptionsPerSocket within 150 ms',
    );
    expect(server.liveSubscriptions()).toBe(1);
    await pool.close();
  });
});

describe("the pool's own subscription calls", () => {
  it("subscribe and unsubscribe calls, failed ones included, are not counted in stats().calls: only the app's calls are", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, reconnect: { initialDelay: 5, maxDelay: 10 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all([heads(pool, { key: (h: Head) => h.number }), heads(pool, { key: (h: Head) => h.number })]);
    subs.map(drain);
    for (let i = 0; i < 3; i++) {
      server.killAll(); // resubscribes race the sockets' deaths: some attempts are lost with their socket
      await waitFor(
        () =>
          pool.stats().subscriptions.resubscribed === 2 * (i + 1) && pool.stats().connections.open === 2 &&
          server.liveSubscriptions() === 2,
        3000,
        `back after kill ${i}`,
      );
    }
    expect(await pool.call("add", [1, 2])).toBe(3);
    await Promise.all(subs.map((s) => s.unsubscribe()));
    expect(pool.stats().calls).toMatchObject({ succeeded: 1, failed: 0, failedBy: {} });
    expect(pool.stats().subscriptions).toMatchObject({ active: 0, resubscribed: 6 });
    expect(server.liveSubscriptions()).toBe(0);
  });
});

describe("events before the subscribe reply", () => {
  it("past 1024 of them the rest are dropped, counted in stats().subscriptions.overflowed, and the first 1024 delivered in order", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 1 }, pool: { size: 1 } });
    const first = await heads(pool);
    const a = drain(first);
    await waitFor(() => a.got.length > 1300, 5000, "the server's sequence past 1300");
    // Resuming from 0: the server sends every event since before it answers the subscribe.
    const late = await heads(pool, { bufferSize: 5000 }, ["newHeads", { from: 0 }]);
    const b = drain(late);
    await waitFor(() => b.got.length > 1030, 3000, "the early events and a few live ones");
    expect(b.got.slice(0, 1024)).toEqual(Array.from({ length: 1024 }, (_, i) => i + 1));
    const dropped = b.got[1024]! - 1025; // the numbers between the 1024th kept one and the first after the reply
    expect(dropped).toBeGreaterThan(0);
    expect(pool.stats().subscriptions.overflowed).toBe(dropped);
    expect(late.stats().overflowed).toBe(0); // dropped before it existed: counted for the pool only
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });
});
