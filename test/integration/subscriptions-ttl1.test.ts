import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads } from "../fixtures/subscriptions.ts";

const holes = (xs: number[]): number[][] => xs.flatMap((x, i) => (i > 0 && x !== xs[i - 1]! + 1 ? [[xs[i - 1]!, x]] : []));

it("TTL size 1, 50 subscriptions: every rotation make-before-break, no event lost", async () => {
  const { server, pool } = await setup({ server: { subscriptionInterval: 4 }, pool: { size: 1, ttl: 250 } });
  const log = collectEvents(pool, ["notification", "resubscribe"]);
  const subs = await Promise.all(Array.from({ length: 50 }, () => heads(pool, { key: (h: Head) => h.number })));
  const r = subs.map(drain);
  await sleep(1200);
  const h = r.map((x) => holes(x.got)).filter((x) => x.length > 0);
  const leaked = log.of("notification").filter((n) => n.method === "eth_subscription").length;
  console.log(
    "ttl1: moves",
    log.count("resubscribe"),
    "subs with holes",
    h.length,
    JSON.stringify(h.slice(0, 3)),
    "leaked",
    leaked,
    "live",
    server.liveSubscriptions(),
    pool.connections().map((c) => [c.id, c.state, c.subscriptions]),
  );
  await waitFor(() => server.liveSubscriptions() === 50);
  expect(h).toEqual([]);
  await pool.close();
  expect(server.liveSubscriptions()).toBe(0);
});
