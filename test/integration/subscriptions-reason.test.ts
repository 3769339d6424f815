/**
 * A `resubscribe` event says why the subscription moved and how long it had no
 * socket (`gap`: 0 for make-before-break) apart from how long it had no event
 * (`silence`); and a move goes to a socket that stays, not to one about to be
 * replaced in turn.
 */
import { describe, expect, it } from "vitest";
import type { ResubscribeEvent } from "../../src/mod.ts";
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
});
