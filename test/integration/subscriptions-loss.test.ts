import { expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { drain, type Head, heads } from "../fixtures/subscriptions.ts";
import type { ResubscribeEvent } from "../../src/mod.ts";

const holes = (xs: number[]): number[][] => xs.flatMap((x, i) => (i > 0 && x !== xs[i - 1]! + 1 ? [[xs[i - 1]!, x]] : []));

it("reload (make-before-break) loses no event, and none leaks out as a plain notification", async () => {
  const { pool } = await setup({ server: { subscriptionInterval: 2 }, pool: { size: 2 } });
  await waitFor(() => pool.stats().connections.open === 2);
  const log = collectEvents(pool, ["notification"]);
  const subs = await Promise.all(Array.from({ length: 20 }, () => heads(pool, { key: (h: Head) => h.number })));
  const moves: ResubscribeEvent[] = [];
  subs.forEach((s) => s.addEventListener("resubscribe", (e) => moves.push(e)));
  const r = subs.map(drain);
  for (let i = 0; i < 5; i++) {
    await sleep(30);
    await pool.reload();
  }
  await sleep(100);
  const h = r.map((x) => holes(x.got)).filter((x) => x.length > 0);
  const leaked = log.of("notification").filter((n) => n.method === "eth_subscription").length;
  const ids = new Set(subs.map((s) => s.id));
  const lk = log.of("notification").filter((n) => n.method === "eth_subscription").map((n) =>
    n.params as { subscription: string; result: Head }
  );
  console.log(
    "leaked belong to a live subscription's current id:",
    lk.filter((p) => ids.has(p.subscription)).length,
    "of",
    lk.length,
    JSON.stringify(lk.slice(0, 3)),
  );
  console.log("holes", JSON.stringify(h), "leaked as pool notifications", leaked, "max gap", Math.max(...moves.map((m) => m.gap)));
  expect(leaked).toBe(0);
  expect(h).toEqual([]);
  await pool.close();
});
