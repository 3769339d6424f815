import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads } from "../fixtures/subscriptions.ts";

describe("lifecycle races", () => {
  it("close() while a resubscription is in flight", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.setFaults({ latency: 150 });
    server.kill(server.subscriptionSockets()[0]);
    await sleep(30); // resubscribe on the other socket now in flight
    const closing = pool.close();
    await closing;
    console.log(
      "after close: live",
      server.liveSubscriptions(),
      "unsubs",
      server.unsubscribes,
      JSON.stringify(pool.stats().subscriptions),
      "peak",
      server.peakSubscriptions,
    );
    expect(server.liveSubscriptions()).toBe(0);
    expect(await done).toBeUndefined();
  });

  it("unsubscribe() during a move (the resubscribe in flight): none left on the server while the pool stays open", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.setFaults({ latency: 100 });
    server.kill(server.subscriptionSockets()[0]);
    await sleep(30);
    await sub.unsubscribe();
    expect(await done).toBeUndefined();
    await sleep(400);
    console.log(
      "unsub during move: live",
      server.liveSubscriptions(),
      "conns",
      pool.connections().map((c) => c.subscriptions),
      JSON.stringify(pool.stats().subscriptions),
    );
    expect(server.liveSubscriptions()).toBe(0);
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(0);
    expect(pool.stats().subscriptions.active).toBe(0);
  });

  it("unsubscribe() during a make-before-break (reload) move", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.setFaults({ latency: 100 });
    const rel = pool.reload().catch((e) => e);
    await waitFor(() => server.subscribeParams.length === 2, 3000, "second subscribe sent");
    await sub.unsubscribe();
    expect(await done).toBeUndefined();
    await rel;
    await sleep(400);
    console.log(
      "unsub during reload: live",
      server.liveSubscriptions(),
      "conns",
      pool.connections().map((c) => [c.state, c.subscriptions]),
      JSON.stringify(pool.stats().subscriptions),
    );
    expect(server.liveSubscriptions()).toBe(0);
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(0);
  });

  it("pool.destroy() from inside a resubscribe listener", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    let d: Promise<void> | undefined;
    sub.addEventListener("resubscribe", () => {
      d = pool.destroy();
    });
    server.kill(server.subscriptionSockets()[0]);
    await waitFor(() => d !== undefined);
    await d;
    expect(await done).toBeUndefined();
    await sleep(50);
    console.log("destroy in listener: live", server.liveSubscriptions(), JSON.stringify(pool.stats().subscriptions), pool.state);
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("params function that throws on resubscribe", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    let n = 0;
    const sub = await pool.subscribe<Head>("eth_subscribe", () => {
      if (n++ > 0) throw new Error("params boom");
      return ["newHeads"];
    }, { unsubscribe: "eth_unsubscribe" });
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.kill(server.subscriptionSockets()[0]);
    const err = await Promise.race([done, sleep(2000).then(() => "hang")]);
    console.log(
      "params throws ->",
      err,
      JSON.stringify(pool.stats().subscriptions),
      "conns",
      pool.connections().map((c) => c.subscriptions),
    );
    expect((err as Error).message).toBe("params boom");
    expect(pool.stats().subscriptions.active).toBe(0);
    expect(pool.connections().reduce((a, c) => a + c.subscriptions, 0)).toBe(0);
  });

  it("params throws on the first subscribe", async () => {
    const { pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    await waitFor(() => pool.stats().connections.open === 1);
    const r = await pool.subscribe("eth_subscribe", () => {
      throw new Error("first boom");
    }, { unsubscribe: "eth_unsubscribe" }).catch((e) => e);
    expect((r as Error).message).toBe("first boom");
    expect(pool.connections()[0]!.subscriptions).toBe(0);
  });

  it("refused re-subscription: stats and counts", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all([heads(pool), heads(pool), heads(pool)]);
    const r = subs.map(drain);
    server.refuseSubscriptions = true;
    server.killAll();
    const errs = await Promise.race([Promise.all(r.map((x) => x.done)), sleep(3000).then(() => "hang")]);
    console.log(
      "refused:",
      Array.isArray(errs) ? errs.map((e) => (e as Error)?.message) : errs,
      JSON.stringify(pool.stats().subscriptions),
      pool.connections().map((c) => c.subscriptions),
    );
    expect(pool.stats().subscriptions.active).toBe(0);
    expect(pool.connections().reduce((a, c) => a + c.subscriptions, 0)).toBe(0);
  });

  it("for await with break right after the first event", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 2 }, pool: { size: 1 } });
    for (let i = 0; i < 20; i++) {
      const sub = await heads(pool);
      for await (const _ of sub) break;
    }
    await sleep(50);
    console.log(
      "break: live",
      server.liveSubscriptions(),
      "unsubs",
      server.unsubscribes,
      JSON.stringify(pool.stats().subscriptions),
      pool.connections()[0]!.subscriptions,
    );
    expect(server.liveSubscriptions()).toBe(0);
    expect(pool.connections()[0]!.subscriptions).toBe(0);
  });

  it("two next() calls at once both settle", async () => {
    const { pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const sub = await heads(pool);
    const both = await Promise.race([Promise.all([sub.next(), sub.next()]), sleep(1000).then(() => "hang")]);
    console.log("two next:", JSON.stringify(both));
    expect(both).not.toBe("hang");
    await sub.unsubscribe();
  });

  it("two subscriptions with the same params are independent", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const a = await heads(pool, { key: (h: Head) => h.number });
    const b = await heads(pool, { key: (h: Head) => h.number });
    const ra = drain(a), rb = drain(b);
    await waitFor(() => ra.got.length > 10 && rb.got.length > 10);
    await a.unsubscribe();
    const at = rb.got.length;
    await waitFor(() => rb.got.length > at + 5);
    expect(server.liveSubscriptions()).toBe(1);
    await b.unsubscribe();
    expect(server.liveSubscriptions()).toBe(0);
  });
});
