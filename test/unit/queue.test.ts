import { describe, expect, it } from "vitest";
import { Fifo } from "../../src/queue.ts";

describe("Fifo", () => {
  it("returns items in insertion order and undefined when empty", () => {
    const q = new Fifo<number>();
    expect(q.shift()).toBeUndefined();
    for (let i = 0; i < 5; i++) q.push(i);
    expect(q.length).toBe(5);
    expect(q.peek()).toBe(0);
    expect([q.shift(), q.shift()]).toEqual([0, 1]);
    q.push(5);
    expect([...q]).toEqual([2, 3, 4, 5]);
    expect(q.removeAll()).toEqual([2, 3, 4, 5]);
    expect(q.length).toBe(0);
  });

  it("stays correct across many interleaved pushes and shifts (compaction)", () => {
    const q = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 1000; i++) q.push(next++);
      for (let i = 0; i < 900; i++) expect(q.shift()).toBe(expected++);
    }
    expect(q.length).toBe(next - expected);
    while (q.length > 0) expect(q.shift()).toBe(expected++);
    expect(expected).toBe(next);
  });

  it("retain keeps order and drops the rest", () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 10; i++) q.push(i);
    q.shift();
    q.retain((n) => n % 2 === 0);
    expect(q.removeAll()).toEqual([2, 4, 6, 8]);
  });

  it("shift is O(1): 1e6 items drain far faster than Array#shift would need", () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 1_000_000; i++) q.push(i);
    let sum = 0;
    for (let i = 0; i < 1_000_000; i++) sum += q.shift()!;
    expect(sum).toBe((1_000_000 * 999_999) / 2);
  });
});
