import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/backoff.ts";

const opts = { initialDelay: 100, maxDelay: 10_000, factor: 2, jitter: false };

describe("backoffDelay", () => {
  it("grows exponentially from initialDelay and is capped at maxDelay", () => {
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, opts))).toEqual([100, 200, 400, 800]);
    expect(backoffDelay(8, opts)).toBe(10_000);
    expect(backoffDelay(10_000, opts)).toBe(10_000); // no overflow to Infinity or NaN
  });

  it("full jitter draws uniformly in [0, cap)", () => {
    const j = { ...opts, jitter: true };
    expect(backoffDelay(3, j, () => 0)).toBe(0);
    expect(backoffDelay(3, j, () => 0.5)).toBe(200);
    expect(backoffDelay(3, j, () => 0.999)).toBe(399);
    expect(backoffDelay(50, j, () => 0.999)).toBeLessThan(10_000);
  });
});
