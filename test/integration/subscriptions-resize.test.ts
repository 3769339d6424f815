import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads } from "../fixtures/subscriptions.ts";

it("resize(1) while subscribed resolves, and its sockets close", async () => {
  const { server, pool } = await setup({ server: { subscriptionInterval: 5 }, pool: { size: 3 } });
  await waitFor(() => pool.stats().connections.open === 3);
  const subs = await Promise.all(Array.from({ length: 9 }, () => heads(pool, { key: (h: Head) => h.number })));
  subs.map(drain);
  await sleep(30);
  const res = await Promise.race([
    pool.resize(1).then(() => "resized", (e) => e),
    sleep(3000).then(() => "resize still pending after 3 s"),
  ]);
  console.log(
    "resize:",
    res,
    "live",
    server.liveSubscriptions(),
    "unsubs",
    server.unsubscribes,
    JSON.stringify(pool.stats().subscriptions),
    pool.connections().map((c) => [c.id, c.state, c.subscriptions, c.inFlight]),
  );
  expect(res).toBe("resized");
  await pool.close();
}, 10_000);
