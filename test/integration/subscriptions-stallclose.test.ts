import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads } from "../fixtures/subscriptions.ts";

it("unsubscribe()/close() with a stalled carrier", async () => {
  const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 2, timeout: 2000 } });
  await waitFor(() => pool.stats().connections.open === 2);
  const sub = await heads(pool, { key: (h: Head) => h.number });
  const { done } = drain(sub);
  server.stall(server.subscriptionSockets()[0]);
  let t0 = Date.now();
  await sub.unsubscribe();
  console.log("unsubscribe took", Date.now() - t0, "ms", JSON.stringify(pool.stats().subscriptions));
  t0 = Date.now();
  await pool.close();
  console.log("close took", Date.now() - t0, "ms");
  expect(await done).toBeUndefined();
}, 10_000);

it("key that throws", async () => {
  const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 1 } });
  let n = 0;
  const sub = await heads(pool, {
    key: () => {
      if (++n === 3) throw new Error("key boom");
      return n;
    },
  });
  const { got, done } = drain(sub);
  const e = await done;
  await waitFor(() => server.liveSubscriptions() === 0);
  console.log("key throws ->", String(e), got.length, JSON.stringify(pool.stats().subscriptions));
  expect(String(e)).toMatch(/key boom/);
});
