/**
 * Issue 12, items 1 and 2: how a subscription ends. unsubscribe(), `break`,
 * close() and destroy() leave none on the server, also in the middle of a
 * move; a failing `params`, `key` or server ends it with that error; an
 * unsubscribe that cannot be confirmed is counted.
 */
import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { carried, drain, type Head, heads, increasing, keyedHeads } from "../fixtures/subscriptions.ts";
import { RemoteError } from "../../src/mod.ts";

describe("ending a subscription in the middle of a move", () => {
  it("close() while a resubscription is in flight leaves none on the server, and the iterator ends cleanly", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.setFaults({ latency: 150 });
    server.kill(server.subscriptionSockets()[0]);
    await sleep(30); // resubscribe on the other socket now in flight
    await pool.close();
    // Confirmed after close() began, it is unsubscribed all the same, and close() waited for that answer.
    expect(server.liveSubscriptions()).toBe(0);
    expect(pool.stats().subscriptions.unsubscribeFailed).toBe(0);
    expect(await done).toBeUndefined();
  });

  it("unsubscribe() while the resubscribe is in flight: none left on the server while the pool stays open", async () => {
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
    expect(server.liveSubscriptions()).toBe(0);
    expect(carried(pool)).toBe(0);
    expect(pool.stats().subscriptions.active).toBe(0);
  });

  it("unsubscribe() during a make-before-break (reload) move: neither the old nor the new one is left on the server", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    server.setFaults({ latency: 100 });
    const reloading = pool.reload();
    await waitFor(() => server.subscribeParams.length === 2, 3000, "second subscribe sent");
    await sub.unsubscribe();
    expect(await done).toBeUndefined();
    expect(await reloading.then(() => "reloaded")).toBe("reloaded");
    await sleep(400);
    expect(server.liveSubscriptions()).toBe(0);
    expect(carried(pool)).toBe(0);
    expect(pool.stats().subscriptions.active).toBe(0);
  });

  it("pool.destroy() from inside a resubscribe listener ends the iterator and leaves none on the server", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const sub = await heads(pool);
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 2);
    let destroyed: Promise<void> | undefined;
    sub.addEventListener("resubscribe", () => {
      destroyed = pool.destroy();
    });
    server.kill(server.subscriptionSockets()[0]);
    await waitFor(() => destroyed !== undefined);
    await destroyed;
    expect(await done).toBeUndefined();
    expect(pool.state).toBe("closed");
    await waitFor(() => server.liveSubscriptions() === 0, 1000, "its socket closed on the server");
  });
});

describe("ending with an error", () => {
  it("a params function that throws on a resubscribe ends the iterator with its error and frees the slot", async () => {
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
    expect(((await done) as Error).message).toBe("params boom");
    expect(pool.stats().subscriptions.active).toBe(0);
    expect(carried(pool)).toBe(0);
    await waitFor(() => server.liveSubscriptions() === 0, 1000, "the killed socket's subscription gone on the server");
  });

  it("a params function that throws on the first subscribe rejects subscribe() with its error, and takes no slot", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    await waitFor(() => pool.stats().connections.open === 1);
    const r = await pool.subscribe("eth_subscribe", () => {
      throw new Error("first boom");
    }, { unsubscribe: "eth_unsubscribe" }).catch((e) => e);
    expect((r as Error).message).toBe("first boom");
    expect(pool.connections()[0]!.subscriptions).toBe(0);
    expect(server.subscribeParams).toEqual([]); // nothing was sent
  });

  it("a key function that throws ends the iterator with its error and unsubscribes", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    let n = 0;
    const sub = await heads(pool, {
      key: () => {
        if (++n === 3) throw new Error("key boom");
        return n;
      },
    });
    const { got, done } = drain(sub);
    expect(((await done) as Error).message).toBe("key boom");
    expect(got).toHaveLength(2); // the two before it were delivered
    await waitFor(() => server.liveSubscriptions() === 0);
    expect(server.unsubscribes).toBe(1);
    expect(pool.stats().subscriptions.active).toBe(0);
  });

  it("resubscriptions the server refuses end every iterator with its RemoteError, and free every slot", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all([heads(pool), heads(pool), heads(pool)]);
    const r = subs.map(drain);
    server.refuseSubscriptions = true;
    server.killAll();
    const errors = await Promise.all(r.map((x) => x.done));
    for (const e of errors) {
      expect(e).toBeInstanceOf(RemoteError);
      expect(e).toMatchObject({ code: "ERR_REMOTE", remoteCode: -32005 });
    }
    expect(pool.stats().subscriptions.active).toBe(0);
    expect(carried(pool)).toBe(0);
    expect(server.liveSubscriptions()).toBe(0);
  });
});

describe("unsubscribing", () => {
  it(
    "unsubscribe() on a stalled carrier resolves after its timeout, counted in unsubscribeFailed; close() after it does not hang",
    async () => {
      const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
      await waitFor(() => pool.stats().connections.open === 2);
      const sub = await keyedHeads(pool, { timeout: 300 });
      const { got, done } = drain(sub);
      await waitFor(() => got.length >= 2);
      server.stall(server.subscriptionSockets()[0]);
      const t0 = Date.now();
      await sub.unsubscribe();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290); // it waited for the answer
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(await done).toBeUndefined();
      expect(pool.stats().subscriptions).toMatchObject({ active: 0, unsubscribeFailed: 1 });
      expect(carried(pool)).toBe(0);
      await pool.close();
      expect(pool.state).toBe("closed");
    },
    10_000,
  );

  it("break right after the first event, 20 times: each one unsubscribed on the server", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 2 }, pool: { size: 1 } });
    for (let i = 0; i < 20; i++) {
      const sub = await heads(pool);
      for await (const _ of sub) break;
    }
    await waitFor(() => server.unsubscribes === 20);
    expect(server.liveSubscriptions()).toBe(0);
    expect(pool.connections()[0]!.subscriptions).toBe(0);
    expect(pool.stats().subscriptions).toMatchObject({ active: 0, unsubscribeFailed: 0 });
  });

  it("two next() calls at once both settle, with two events in order", async () => {
    const { pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
    const sub = await heads(pool);
    const [a, b] = await Promise.all([sub.next(), sub.next()]);
    expect(a.done).toBe(false);
    expect(b.done).toBe(false);
    expect(b.value!.number).toBe(a.value!.number + 1);
    await sub.unsubscribe();
  });

  it("two subscriptions with the same params are independent: ending one leaves the other flowing", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2 } });
    const a = await keyedHeads(pool);
    const b = await keyedHeads(pool);
    const ra = drain(a), rb = drain(b);
    await waitFor(() => ra.got.length > 10 && rb.got.length > 10);
    await a.unsubscribe();
    const at = rb.got.length;
    await waitFor(() => rb.got.length > at + 5);
    expect(server.liveSubscriptions()).toBe(1);
    expect(increasing(rb.got)).toBe(true);
    await b.unsubscribe();
    expect(server.liveSubscriptions()).toBe(0);
  });
});
