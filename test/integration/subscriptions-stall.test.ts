import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads, increasing } from "../fixtures/subscriptions.ts";

it("carrier killed while the only other socket is stalled (heartbeat on): resubscribes once the stall is detected", async () => {
  const { server, pool } = await setup({
    server: { subscriptionInterval: 5 },
    pool: { size: 2, heartbeat: { interval: 100, timeout: 100 }, reconnect: { initialDelay: 20, maxDelay: 50 } } as never,
  });
  await waitFor(() => pool.stats().connections.open === 2);
  const sub = await heads(pool, { key: (h: Head) => h.number });
  const { got } = drain(sub);
  await waitFor(() => got.length > 3);
  const carrier = server.subscriptionSockets()[0]!;
  const other = server.connections().map((c) => c.id).find((id) => id !== carrier)!;
  server.stall(other);
  server.kill(carrier);
  const t0 = Date.now();
  const ok = await waitFor(() => sub.stats().resubscribed >= 1 && server.liveSubscriptions() >= 1, 3000).then(() => true, () => false);
  console.log(
    "stall+kill: resubscribed",
    ok,
    "after",
    Date.now() - t0,
    "ms",
    JSON.stringify(sub.stats()),
    "live",
    server.liveSubscriptions(),
    pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
  );
  expect(ok).toBe(true);
  server.unstall();
  await sleep(100);
  expect(increasing(got)).toBe(true);
  await pool.close();
});
