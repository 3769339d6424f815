/**
 * `pool.close()` and subscriptions the server has not confirmed yet: close()
 * rejects them at once, and when the server's confirmation arrives while the
 * pool is closing, their unsubscribe still goes out on the socket before it
 * closes (within the close timeout), so close() leaves nothing open on the
 * server. Past the timeout, an unsubscribe not answered is counted.
 */
import { describe, expect, it } from "vitest";
import { PoolClosedError } from "../../src/mod.ts";
import { setup } from "../fixtures/harness.ts";
import { waitFor } from "../fixtures/pool-helpers.ts";
import { drain, heads } from "../fixtures/subscriptions.ts";

describe("close() while subscribes are unconfirmed", () => {
  it("the server confirms during close(): its unsubscribe goes out before the socket closes, none is counted as failed", async () => {
    const { server, pool } = await setup({ pool: { size: 1, timeout: 5_000 } });
    await pool.ready();
    server.setFaults({ latency: 100 });
    const pending = heads(pool);
    await waitFor(() => server.subscribeParams.length === 1, 2_000, "the subscribe to reach the server");
    const started = Date.now();
    const closing = pool.close();
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolClosedError);
    expect((error as PoolClosedError).code).toBe("ERR_POOL_CLOSED");
    await closing;
    // Counted by the server only while the subscription was still live on its socket: the unsubscribe went out before the close.
    expect(server.unsubscribes).toBe(1);
    expect(server.liveSubscriptions()).toBe(0);
    expect(Date.now() - started, "close() waited for the unsubscribe's reply").toBeGreaterThanOrEqual(150);
    const stats = pool.stats();
    expect(stats.subscriptions).toEqual({
      active: 0,
      waiting: 0,
      resubscribed: 0,
      duplicatesDropped: 0,
      overflowed: 0,
      unsubscribeFailed: 0,
    });
    // eth_subscribe and eth_unsubscribe are the pool's own calls: stats().subscriptions tells of them, not stats().calls.
    expect(stats.calls).toMatchObject({ succeeded: 0, failed: 0, inFlight: 0, queued: 0 });
    expect(pool.state).toBe("closed");
  });

  it("several subscriptions over 2 sockets, some confirmed and some not: close() unsubscribes every one", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2, timeout: 5_000 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const confirmed = await Promise.all([heads(pool), heads(pool)]);
    const readers = confirmed.map(drain);
    await waitFor(() => readers.every((r) => r.got.length > 0));
    server.setFaults({ latency: 80 });
    const pending = [heads(pool), heads(pool), heads(pool)];
    await waitFor(() => server.subscribeParams.length === 5, 2_000, "the 3 new subscribes to reach the server");
    const closing = pool.close();
    const errors = await Promise.all(pending.map((p) => p.catch((e: unknown) => e)));
    expect(errors.map((e) => (e as PoolClosedError).code)).toEqual(["ERR_POOL_CLOSED", "ERR_POOL_CLOSED", "ERR_POOL_CLOSED"]);
    await closing;
    expect(await Promise.all(readers.map((r) => r.done)), "the confirmed ones end without an error").toEqual([undefined, undefined]);
    expect(server.unsubscribes).toBe(5);
    expect(server.liveSubscriptions()).toBe(0);
    expect(pool.stats().subscriptions.unsubscribeFailed).toBe(0);
  });

  it("the close timeout still bounds it: an unsubscribe not answered in time is rejected and counted in unsubscribeFailed", async () => {
    const { server, pool } = await setup({ pool: { size: 1, timeout: 5_000 } });
    await pool.ready();
    server.setFaults({ latency: 150 });
    const pending = heads(pool);
    await waitFor(() => server.subscribeParams.length === 1, 2_000, "the subscribe to reach the server");
    const started = Date.now();
    const closing = pool.close({ timeout: 250 }); // the confirmation comes at ~150 ms, the unsubscribe's reply would at ~300
    await expect(pending).rejects.toMatchObject({ name: "PoolClosedError", code: "ERR_POOL_CLOSED" });
    await closing;
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(1_000);
    expect(pool.stats().subscriptions.unsubscribeFailed).toBe(1);
    expect(pool.stats().calls.failedBy).toEqual({}); // the unsubscribe, rejected by the shutdown: the pool's own call
    // The socket's close ended it on the server all the same.
    await waitFor(() => server.liveSubscriptions() === 0, 2_000, "the server to drop the subscription of the closed socket");
  });
});
