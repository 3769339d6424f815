/**
 * Issue 12, items 1, 2 and 4 (stats): `pool.subscribe()` against the test
 * server's Ethereum-style `eth_subscribe("newHeads")`, whose events carry one
 * sequence number per server. The server counts live subscriptions, so each
 * test can check that none is left after unsubscribe, `break` and close.
 */
import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, ETH, type Head, heads, increasing } from "../fixtures/subscriptions.ts";
import { InvalidConfigError, jsonRpc, RemoteError, type ResubscribeEvent, TimeoutError } from "../../src/mod.ts";

describe("pool.subscribe", () => {
  it("resolves once the server confirmed, delivers events in order, and unsubscribe() ends it on the server", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const sub = await heads(pool);
    expect(typeof sub.id).toBe("string");
    expect(sub.method).toBe("eth_subscribe");
    expect(server.liveSubscriptions()).toBe(1);
    const got: number[] = [];
    for await (const head of sub) {
      got.push(head.number);
      if (got.length === 5) break;
    }
    expect(got.slice(1).every((n, i) => n === got[i]! + 1)).toBe(true);
    await waitFor(() => server.liveSubscriptions() === 0, 2_000, "the break unsubscribed");
    expect(server.unsubscribes).toBe(1);
    expect(await sub.next()).toEqual({ value: undefined, done: true });
    expect(pool.stats().subscriptions.active).toBe(0);

    const other = await heads(pool);
    expect(server.liveSubscriptions()).toBe(1);
    await other.unsubscribe();
    expect(server.liveSubscriptions()).toBe(0);
    expect(server.unsubscribes).toBe(2);
    await other.unsubscribe(); // idempotent
  });

  it("pool.close() unsubscribes every subscription on the server before closing its sockets", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const subs = await Promise.all([heads(pool), heads(pool), heads(pool)]);
    expect(server.liveSubscriptions()).toBe(3);
    const reading = subs.map(drain);
    await pool.close();
    expect(server.unsubscribes).toBe(3);
    expect(server.liveSubscriptions()).toBe(0);
    for (const r of reading) expect(await r.done).toBeUndefined(); // ended, not failed
  });

  it("stats() and connections() count subscriptions; they spread over the sockets", async () => {
    const { pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const a = await heads(pool);
    const b = await heads(pool);
    expect(pool.stats().subscriptions).toEqual({
      active: 2,
      waiting: 0,
      resubscribed: 0,
      duplicatesDropped: 0,
      overflowed: 0,
      unsubscribeFailed: 0,
    });
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([1, 1]);
    await a.unsubscribe();
    expect(pool.connections().map((c) => c.subscriptions).sort()).toEqual([0, 1]);
    await b.unsubscribe();
    expect(pool.stats().subscriptions.active).toBe(0);
  });

  it("maxSubscriptionsPerSocket caps each socket: one more waits for room, and rejects with TimeoutError after its timeout", async () => {
    const { server, pool } = await setup({ pool: { size: 2, maxSubscriptionsPerSocket: 1 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const first = await heads(pool);
    await heads(pool);
    const third = await heads(pool, { timeout: 200 }).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(TimeoutError);
    expect(server.liveSubscriptions()).toBe(2);
    const fourth = heads(pool, { timeout: 2_000 });
    await sleep(50);
    expect(server.liveSubscriptions()).toBe(2); // still waiting for room
    await first.unsubscribe();
    const sub = await fourth; // room freed: it takes it
    expect(server.liveSubscriptions()).toBe(2);
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([1, 1]);
    await sub.unsubscribe();
  });

  it("checks its options", async () => {
    const { pool } = await setup({ pool: { size: 1 } });
    await expect(pool.subscribe("eth_subscribe", ["newHeads"], {} as never)).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(heads(pool, { bufferSize: 0 })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(heads(pool, { keys: 1 })).rejects.toThrow(/did you mean `key`/);
    await expect(heads(pool, {}, ["pendingTransactions"])).rejects.toBeInstanceOf(RemoteError);
  });

  it("the carrying socket dies: it subscribes again on another, with a resubscribe event, and events keep flowing without duplicates", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const poolMoves = collectEvents(pool, ["resubscribe"]);
    const moves: ResubscribeEvent[] = [];
    sub.addEventListener("resubscribe", (e) => moves.push(e));
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 5);
    const carrier = pool.connections().find((c) => c.subscriptions === 1)!;
    const firstId = sub.id;
    server.kill(server.subscriptionSockets()[0]);
    await waitFor(() => moves.length === 1, 3_000, "a resubscribe event");
    const at = got.length;
    await waitFor(() => got.length >= at + 5, 3_000, "events after the move");
    expect(moves[0]!.from).toBe(carrier.id);
    expect(moves[0]!.to).not.toBe(carrier.id);
    expect(moves[0]!.gap).toBeGreaterThanOrEqual(0);
    expect(moves[0]!.id).toBe(sub.id);
    expect(sub.id).not.toBe(firstId);
    expect(poolMoves.of("resubscribe")).toHaveLength(1);
    expect(new Set(got).size).toBe(got.length);
    expect(increasing(got)).toBe(true);
    expect(pool.stats().subscriptions.resubscribed).toBe(1);
    expect(sub.stats().resubscribed).toBe(1);
    expect(server.liveSubscriptions()).toBe(1);
    await sub.unsubscribe();
    expect(await done).toBeUndefined();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("with key, an event delivered again is dropped and counted", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 1_000 }, pool: { size: 1 } });
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const [socket] = server.subscriptionSockets();
    const frame = JSON.stringify({ jsonrpc: "2.0", method: "eth_subscription", params: { subscription: sub.id, result: { number: 1e6 } } });
    server.sendRaw(frame, socket);
    server.sendRaw(frame, socket);
    expect((await sub.next()).value).toEqual({ number: 1e6 });
    await waitFor(() => sub.stats().duplicatesDropped === 1);
    expect(pool.stats().subscriptions.duplicatesDropped).toBe(1);
    expect(sub.stats().delivered).toBe(1);
  });

  it("a notification for a subscription is not also a pool notification event; others still are", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const log = collectEvents(pool, ["notification"]);
    const sub = await heads(pool);
    await sub.next();
    server.notifyAll("news", { x: 1 });
    await waitFor(() => log.of("notification").length === 1);
    expect(log.of("notification")[0]!.method).toBe("news");
    await sub.unsubscribe();
  });

  it("TTL rotation is make-before-break: the new subscription runs before the old one is unsubscribed, with a short gap", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 10 }, pool: { size: 1, ttl: 400 } });
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const moves: ResubscribeEvent[] = [];
    sub.addEventListener("resubscribe", (e) => moves.push(e));
    const { got } = drain(sub);
    await waitFor(() => moves.length >= 2, 4_000, "two TTL rotations");
    expect(server.peakSubscriptions).toBe(2); // both lived at once: make before break
    // The old ones were unsubscribed, not only dropped with their socket (the last call may still be on its way).
    await waitFor(() => server.unsubscribes >= 2, 2_000, "two unsubscribes");
    for (const m of moves) expect(m.gap).toBeLessThan(250);
    expect(increasing(got)).toBe(true);
    await waitFor(() => server.liveSubscriptions() === 1);
    await sub.unsubscribe();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("params may be a function of the last event delivered, called on every (re)subscribe", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const seen: (Head | undefined)[] = [];
    const sub = await pool.subscribe<Head>("eth_subscribe", (last: Head | undefined) => {
      seen.push(last);
      return ["newHeads", { from: last?.number ?? null }];
    }, ETH);
    const { got } = drain(sub);
    await waitFor(() => got.length >= 3);
    server.kill(server.subscriptionSockets()[0]);
    await waitFor(() => seen.length === 2 && sub.stats().resubscribed === 1, 3_000, JSON.stringify(seen) + JSON.stringify(sub.stats()));
    expect(seen[0]).toBeUndefined();
    expect(seen[1]!.number).toBeGreaterThanOrEqual(got[2]!);
    expect(got).toContain(seen[1]!.number);
    expect(server.subscribeParams.at(-1)).toEqual(["newHeads", { from: seen[1]!.number }]);
    await sub.unsubscribe();
  });

  it("a refused resubscription makes the iterator throw the server's RemoteError", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.refuseSubscriptions = true;
    server.kill(server.subscriptionSockets()[0]);
    const error = await done;
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).message).toMatch(/subscriptions refused/);
    expect(pool.stats().subscriptions.active).toBe(0);
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("a slow consumer's buffer is bounded: the oldest events are dropped and counted", async () => {
    const { pool } = await setup({ server: { subscriptionInterval: 2 }, pool: { size: 1 } });
    const sub = await heads(pool, { bufferSize: 3 });
    await waitFor(() => sub.stats().overflowed >= 5);
    const { delivered, overflowed } = sub.stats();
    expect(delivered - overflowed).toBe(3);
    const first = (await sub.next()).value!.number;
    const second = (await sub.next()).value!.number;
    const third = (await sub.next()).value!.number;
    expect([second - first, third - second]).toEqual([1, 1]);
    expect(first).toBeGreaterThan(overflowed); // the oldest went
    expect(pool.stats().subscriptions.overflowed).toBeGreaterThanOrEqual(overflowed);
    await sub.unsubscribe();
  });

  it("with no open socket it waits, and subscribes again when one opens", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 1, reconnect: { initialDelay: 50, maxDelay: 50 } },
    });
    const sub = await heads(pool, { key: (h: Head) => h.number });
    const { got } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.kill();
    await sleep(20);
    expect(pool.stats().subscriptions.active).toBe(1);
    await waitFor(() => sub.stats().resubscribed === 1, 3_000, "resubscribed after the reconnect");
    const at = got.length;
    await waitFor(() => got.length > at);
    expect(server.liveSubscriptions()).toBe(1);
    await sub.unsubscribe();
  });

  it("reload() moves subscriptions make-before-break: each new one runs before the old one is unsubscribed", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const subs = await Promise.all([heads(pool, { key: (h: Head) => h.number }), heads(pool, { key: (h: Head) => h.number })]);
    const reading = subs.map(drain);
    const log = collectEvents(pool, ["resubscribe"]);
    await pool.reload();
    await waitFor(() => log.count("resubscribe") === 2, 3_000, "both moved");
    await waitFor(() => server.unsubscribes === 2, 2_000, "both old ones unsubscribed");
    expect(server.peakSubscriptions).toBeGreaterThanOrEqual(3);
    const at = reading.map((r) => r.got.length);
    await waitFor(() => reading.every((r, i) => r.got.length > at[i]! + 2), 3_000, "events after the reload");
    for (const r of reading) expect(increasing(r.got)).toBe(true);
    expect(server.liveSubscriptions()).toBe(2);
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([1, 1]);
    await Promise.all(subs.map((sub) => sub.unsubscribe()));
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("signal: aborting ends the subscription on the server and the iterator rejects with its reason", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const controller = new AbortController();
    const sub = await heads(pool, { signal: controller.signal });
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    controller.abort(new Error("enough"));
    expect(((await done) as Error).message).toBe("enough");
    await waitFor(() => server.liveSubscriptions() === 0);
    await expect(heads(pool, { signal: controller.signal })).rejects.toThrow("enough");
  });

  it("Codec.subscriptionOf says which subscription a notification belongs to, and what its event is", async () => {
    const codec = {
      ...jsonRpc(),
      subscriptionOf: (method: string, params: unknown) => {
        const p = params as { subscription: string; result: Head };
        return method === "eth_subscription" ? { id: p.subscription, event: { n: p.result.number } } : undefined;
      },
    };
    const { pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1, codec } });
    const sub = await pool.subscribe<{ n: number }>("eth_subscribe", ["newHeads"], { unsubscribe: "eth_unsubscribe" });
    expect(typeof (await sub.next()).value!.n).toBe("number");
    await sub.unsubscribe();
  });

  it("many subscriptions over several sockets survive losing every socket and a server restart, and close leaves none", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 10 },
      pool: { size: 4, reconnect: { initialDelay: 20, maxDelay: 50 } },
    });
    await waitFor(() => pool.stats().connections.open === 4); // subscriptions made at once go to the sockets open then
    const subs = await Promise.all(Array.from({ length: 40 }, () => heads(pool, { key: (h: Head) => h.number })));
    expect(pool.connections().map((c) => c.subscriptions)).toEqual([10, 10, 10, 10]);
    const reading = subs.map(drain);
    server.killAll();
    await waitFor(() => pool.stats().subscriptions.resubscribed === 40, 5_000, "all 40 moved");
    await server.restart(100);
    await waitFor(() => pool.stats().subscriptions.resubscribed === 80, 5_000, "all 40 moved again");
    const at = reading.map((r) => r.got.length);
    await waitFor(() => reading.every((r, i) => r.got.length > at[i]!), 3_000, "events after the restart");
    expect(server.liveSubscriptions()).toBe(40);
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(40);
    for (const r of reading) expect(increasing(r.got)).toBe(true);
    expect(pool.stats().subscriptions.active).toBe(40);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
    for (const r of reading) expect(await r.done).toBeUndefined();
  });

  it("a codec hook that throws leaves the message a plain notification", async () => {
    const codec = {
      ...jsonRpc(),
      subscriptionOf: () => {
        throw new Error("bad hook");
      },
    };
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1, codec } });
    const log = collectEvents(pool, ["notification", "error"]);
    const sub = await heads(pool);
    await waitFor(() => log.count("notification") >= 2);
    expect(log.count("error")).toBe(0);
    await sub.unsubscribe();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("an unsubscribe the server refuses or does not answer is counted in unsubscribeFailed", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const a = await heads(pool);
    const b = await heads(pool, { timeout: 100 });
    server.setFaults({ errorRate: 1 });
    await a.unsubscribe(); // best effort: resolves all the same
    server.setFaults({ errorRate: 0, dropRate: 1 });
    await b.unsubscribe();
    expect(pool.stats().subscriptions.unsubscribeFailed).toBe(2);
    // The refused one is still there, as the counter warns; the unanswered one did run (its reply was dropped).
    expect(server.liveSubscriptions()).toBe(1);
  });
});
