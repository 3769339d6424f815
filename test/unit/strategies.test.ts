import { describe, expect, it } from "vitest";
import { type ConnectionInfo, createStrategy, leastPending, random, roundRobin } from "../../src/strategies.ts";

function conn(id: number, inFlight = 0, queued = 0): ConnectionInfo {
  return { id, url: "ws://x", state: "open", tags: {}, inFlight, queued, sent: 0, received: 0 };
}
const call = { method: "m", key: undefined, idempotent: false };

describe("strategies", () => {
  it("round-robin cycles through the candidates", () => {
    const s = roundRobin();
    const cs = [conn(1), conn(2), conn(3)];
    expect(Array.from({ length: 6 }, () => s(cs, call).id)).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it("least-pending picks the fewest in flight plus queued", () => {
    const s = leastPending();
    expect(s([conn(1, 5, 5), conn(2, 3, 0), conn(3, 2, 2)], call).id).toBe(2);
    expect(s([conn(1, 0, 1), conn(2, 1, 1), conn(3, 0, 0)], call).id).toBe(3);
  });

  it("least-pending spreads an idle pool instead of always taking the first", () => {
    const s = leastPending();
    const cs = [conn(1), conn(2), conn(3), conn(4)];
    const seen = new Set(Array.from({ length: 8 }, () => s(cs, call).id));
    expect(seen.size).toBe(4);
  });

  it("random uses the injected source", () => {
    const cs = [conn(1), conn(2), conn(3)];
    expect(random(() => 0)(cs, call).id).toBe(1);
    expect(random(() => 0.99)(cs, call).id).toBe(3);
  });

  it("createStrategy gives each pool its own state and passes functions through", () => {
    const a = createStrategy("round-robin");
    const b = createStrategy("round-robin");
    const cs = [conn(1), conn(2)];
    a(cs, call);
    expect(b(cs, call).id).toBe(1);
    const f = (c: readonly ConnectionInfo[]) => c[0]!;
    expect(createStrategy(f)).toBe(f);
  });
});
