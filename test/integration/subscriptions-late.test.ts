/**
 * A subscribe the server answers after the subscription's `timeout`: the
 * subscription gives up on it (the first one rejects with TimeoutError, a
 * move tries another socket), and when the answer comes after all, that
 * subscription is unsubscribed at once. Before, each one stayed live on the
 * server, unknown to the pool, for as long as its socket lived (a slow
 * server during a move left one per attempt, and `unsubscribe()` ended only
 * the last), and its events came out as plain `notification` events.
 */
import { describe, expect, it } from "vitest";
import { TimeoutError } from "../../src/mod.ts";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads, increasing } from "../fixtures/subscriptions.ts";

describe("a subscribe answered after its timeout", () => {
  it("the first one rejects with TimeoutError; its late confirmation is unsubscribed at once, none of its events surfaces", async () => {
    const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1, timeout: 5_000 } });
    await pool.ready();
    let notifications = 0;
    pool.addEventListener("notification", () => notifications++);
    server.setFaults({ latency: 90 }); // after the 60 ms timeout, before its call gives up at 120
    const error = await heads(pool, { timeout: 60 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).code).toBe("ERR_TIMEOUT");
    server.setFaults({ latency: 0 }); // the reply on its way keeps its 90 ms; the unsubscribe is answered at once
    await waitFor(() => server.unsubscribes === 1, 2_000, "the late confirmation to be unsubscribed");
    expect(server.liveSubscriptions()).toBe(0);
    await sleep(50);
    expect(notifications, "its events are not plain notifications").toBe(0);
    expect(pool.stats().protocolErrors, "its reply was matched, not an unknown id").toBe(0);
    expect(pool.stats().subscriptions).toMatchObject({ active: 0, unsubscribeFailed: 0 });
    expect(pool.connections()[0]!.subscriptions).toBe(0);
  });

  it("a move to a slow socket tries another after `timeout`; every late confirmation is unsubscribed: one live, none after unsubscribe()", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 5 },
      pool: { size: 2, timeout: 5_000, reconnect: { initialDelay: 20, maxDelay: 50 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    let notifications = 0;
    pool.addEventListener("notification", () => notifications++);
    const sub = await heads(pool, { timeout: 60, key: (h: Head) => h.number });
    const { got, done } = drain(sub);
    await waitFor(() => got.length >= 3);
    server.setFaults({ latency: 100 }); // slower than the subscription's timeout
    server.kill(server.subscriptionSockets()[0]);
    await waitFor(() => server.subscribeParams.length >= 4, 3_000, "a few attempts to move it");
    server.setFaults({ latency: 0 });
    await waitFor(() => sub.stats().resubscribed === 1, 3_000, "the move");
    // Every attempt the pool gave up on was confirmed late, and unsubscribed then.
    await waitFor(() => server.liveSubscriptions() === 1, 2_000, "one live subscription on the server");
    expect(server.unsubscribes).toBe(server.subscribeParams.length - 2); // all but the first (its socket was killed) and the live one
    const at = got.length;
    await waitFor(() => got.length >= at + 5);
    expect(increasing(got)).toBe(true);
    await sub.unsubscribe();
    expect(await done).toBeUndefined();
    expect(server.liveSubscriptions()).toBe(0);
    expect(notifications, "no event of a late one surfaced as a plain notification").toBe(0);
    // (unsubscribes sent while the server was slow timed out, though it ran them: counted in unsubscribeFailed)
    expect(pool.stats().subscriptions).toMatchObject({ active: 0, resubscribed: 1 });
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(0);
  });

  it("an attempt never answered at all counts in unsubscribeFailed once its call gives up (twice the timeout)", async () => {
    const { server, pool } = await setup({ pool: { size: 1, timeout: 5_000 } });
    await pool.ready();
    server.hold(); // no reply at all until released
    const error = await heads(pool, { timeout: 60 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(pool.stats().calls.inFlight, "the subscribe call still waits for a late answer").toBe(1);
    await waitFor(() => pool.stats().calls.inFlight === 0, 1_000, "the call to time out at 120 ms");
    expect(pool.stats().subscriptions.unsubscribeFailed).toBe(1);
    expect(pool.stats().calls.failedBy).toEqual({}); // the pool's own call: counted in unsubscribeFailed, not in calls
    expect(pool.connections()[0]!.subscriptions).toBe(0);
    server.release();
  });
});
