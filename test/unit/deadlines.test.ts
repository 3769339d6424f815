import { describe, expect, it } from "vitest";
import { DeadlineLane, type Timed } from "../../src/deadlines.ts";

interface Item extends Timed {
  n: number;
}
const item = (n: number): Item => ({ n, deadline: 0, inLane: false });
/** The pool sets each deadline before adding; the tests do the same. */
const add = (lane: DeadlineLane<Item>, i: Item, timeoutMs: number): void => {
  i.deadline = performance.now() + timeoutMs;
  lane.add(i);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("DeadlineLane (one timer for the pool's default timeout)", () => {
  it("expires items in order, once each, not before their deadline; forgotten ones never", async () => {
    const expired: [number, number][] = [];
    const started = performance.now();
    const lane = new DeadlineLane<Item>(() => performance.now(), (i) => expired.push([i.n, performance.now() - started]));
    const items = Array.from({ length: 6 }, (_, n) => item(n));
    for (const i of items.slice(0, 3)) add(lane, i, 40);
    await sleep(15);
    for (const i of items.slice(3)) add(lane, i, 40);
    lane.forget(items[1]!);
    lane.forget(items[4]!);
    await sleep(120);
    expect(expired.map(([n]) => n)).toEqual([0, 2, 3, 5]);
    for (const [n, at] of expired) expect(at, `item ${n}`).toBeGreaterThanOrEqual(n < 3 ? 39 : 54);
    expect(items.every((i) => !i.inLane)).toBe(true);
  });

  it("keeps no timer while nothing is pending", () => {
    const lane = new DeadlineLane<Item>(() => performance.now(), () => {
      throw new Error("nothing should expire");
    });
    const items = Array.from({ length: 100 }, (_, n) => item(n));
    for (const i of items) add(lane, i, 10_000);
    expect(lane.armed).toBe(true); // one timer for all of them
    expect(lane.size).toBe(100);
    for (const i of items) lane.forget(i);
    expect(lane.armed).toBe(false);
    expect(lane.size).toBe(0);
  });

  it("sweeps settled items so that a long deadline does not hold them", async () => {
    const expired: number[] = [];
    const lane = new DeadlineLane<Item>(() => performance.now(), (i) => expired.push(i.n));
    const keep = item(-1);
    add(lane, keep, 30); // one call that never settles keeps the lane alive
    let maxBacklog = 0;
    for (let n = 0; n < 50_000; n++) {
      const i = item(n);
      add(lane, i, 30);
      lane.forget(i);
      maxBacklog = Math.max(maxBacklog, lane.backlog);
    }
    expect(lane.size).toBe(1);
    expect(maxBacklog).toBeLessThanOrEqual(1_026); // swept every ~1,024 settled entries, not held for 30 ms
    await sleep(80);
    expect(expired).toEqual([-1]);
  });

  it("an expiry that adds an item leaves exactly one timer, and the new item expires too", async () => {
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const pending = new Set<unknown>();
    // Count the lane's own timers: armed and not yet fired or cleared.
    globalThis.setTimeout = ((fn: () => void, ms: number) => {
      const handle: unknown = realSet(() => {
        pending.delete(handle);
        fn();
      }, ms);
      pending.add(handle);
      return handle;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((handle: unknown) => {
      pending.delete(handle);
      realClear(handle as ReturnType<typeof setTimeout>);
    }) as typeof clearTimeout;
    const expired: number[] = [];
    const lane: DeadlineLane<Item> = new DeadlineLane<Item>(() => performance.now(), (i) => {
      expired.push(i.n);
      if (i.n === 0) add(lane, item(1), 20);
    });
    try {
      add(lane, item(0), 20);
      await new Promise((r) => realSet(r, 35));
      expect(expired).toEqual([0]);
      expect(pending.size).toBe(1);
      expect(lane.armed).toBe(true);
      await new Promise((r) => realSet(r, 40));
      expect(expired).toEqual([0, 1]);
      expect(pending.size).toBe(0);
      expect(lane.armed).toBe(false);
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  });
});
