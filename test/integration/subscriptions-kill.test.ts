import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads, increasing } from "../fixtures/subscriptions.ts";

describe("kill the carrier repeatedly", () => {
  it("10 kills while events flow", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 3 },
      pool: { size: 3, reconnect: { initialDelay: 10, maxDelay: 20 } },
    });
    await waitFor(() => pool.stats().connections.open === 3);
    const sub = await heads(pool, { key: (h: Head) => h.number });
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
    console.log(
      "live",
      server.liveSubscriptions(),
      "stats",
      JSON.stringify(pool.stats().subscriptions),
      JSON.stringify(sub.stats()),
      "conns",
      pool.connections().map((c) => c.subscriptions),
    );
    expect(server.liveSubscriptions()).toBe(1);
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(1);
    expect(pool.stats().subscriptions.resubscribed).toBe(10);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  });

  it("kill every socket 5 times in a row rapidly (kill during the resubscribe)", async () => {
    const { server, pool } = await setup({
      server: { subscriptionInterval: 3 },
      pool: { size: 2, reconnect: { initialDelay: 5, maxDelay: 10 } },
    });
    await waitFor(() => pool.stats().connections.open === 2);
    const subs = await Promise.all([1, 2, 3, 4].map(() => heads(pool, { key: (h: Head) => h.number })));
    const r = subs.map(drain);
    for (let i = 0; i < 8; i++) {
      server.kill();
      await sleep(7);
    }
    await waitFor(() => server.liveSubscriptions() === 4 && pool.stats().subscriptions.active === 4, 4000, "settled");
    await sleep(200);
    console.log(
      "live",
      server.liveSubscriptions(),
      JSON.stringify(pool.stats().subscriptions),
      "conns",
      pool.connections().map((c) => [c.state, c.subscriptions]),
    );
    expect(server.liveSubscriptions()).toBe(4);
    expect(pool.connections().reduce((n, c) => n + c.subscriptions, 0)).toBe(4);
    for (const x of r) expect(increasing(x.got)).toBe(true);
    const at = r.map((x) => x.got.length);
    await waitFor(() => r.every((x, i) => x.got.length > at[i]!), 3000, "flowing");
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
    for (const x of r) expect(await x.done).toBeUndefined();
  });
});
