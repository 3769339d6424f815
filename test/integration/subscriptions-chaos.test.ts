import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { prng, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads, increasing } from "../fixtures/subscriptions.ts";

for (const seed of [1, 2, 3]) {
  it(`chaos seed ${seed}: kills + reloads + latency, then counts balance`, async () => {
    const rnd = prng(seed);
    const { server, pool } = await setup({
      server: { subscriptionInterval: 3 },
      pool: { size: 3, reconnect: { initialDelay: 5, maxDelay: 20 } },
    });
    await waitFor(() => pool.stats().connections.open === 3);
    const subs = await Promise.all(Array.from({ length: 12 }, () => heads(pool, { key: (h: Head) => h.number })));
    const r = subs.map(drain);
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      server.setFaults({ latency: Math.floor(rnd() * 30) });
      const x = rnd();
      if (x < 0.5) server.kill();
      else if (x < 0.7) ops.push(pool.reload().catch((e) => e));
      else if (x < 0.8) server.kill(server.subscriptionSockets()[0]);
      await sleep(5 + rnd() * 30);
    }
    server.setFaults({ latency: 0 });
    await Promise.race([Promise.all(ops), sleep(3000)]);
    const ok = await waitFor(
      () =>
        server.liveSubscriptions() === 12 && pool.stats().subscriptions.active === 12 &&
        pool.connections().reduce((n, c) => n + c.subscriptions, 0) === 12,
      4000,
    ).then(() => true, () => false);
    console.log(
      `seed ${seed}: settled ${ok} live ${server.liveSubscriptions()} active ${pool.stats().subscriptions.active}`,
      pool.connections().map((c) => [c.id, c.state, c.subscriptions, c.inFlight]),
      JSON.stringify(pool.stats().subscriptions),
      "ended",
      (await Promise.all(r.map((x) => Promise.race([x.done.then((e) => String(e)), sleep(1).then(() => "running")])))).filter((s) =>
        s !== "running"
      ),
    );
    expect(ok).toBe(true);
    for (const x of r) expect(increasing(x.got)).toBe(true);
    await pool.close();
    expect(server.liveSubscriptions()).toBe(0);
  }, 20_000);
}
