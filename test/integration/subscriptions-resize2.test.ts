import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads } from "../fixtures/subscriptions.ts";

it("resize(1) with drainTimeout 1000: what happens to the stuck one", async () => {
  const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 3, drainTimeout: 1000 } });
  await waitFor(() => pool.stats().connections.open === 3);
  const subs = await Promise.all(Array.from({ length: 9 }, () => heads(pool, { key: (h: Head) => h.number })));
  subs.map(drain);
  const t0 = Date.now();
  const res = await pool.resize(1).then(() => "resized", (e) => String(e));
  console.log(
    "resize2:",
    res,
    "after",
    Date.now() - t0,
    "ms; live",
    server.liveSubscriptions(),
    JSON.stringify(pool.stats().subscriptions),
    pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
  );
  await sleep(200);
  console.log(
    "resize2 later: live",
    server.liveSubscriptions(),
    JSON.stringify(pool.stats().subscriptions),
    pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
  );
  expect(Date.now() - t0).toBeLessThan(1000);
  await pool.close();
}, 10_000);
