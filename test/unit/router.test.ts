/**
 * The router on plain objects: candidate tiers, sticky keys, the strategy
 * call and the check of its answer. No sockets.
 */
import { describe, expect, it } from "vitest";
import { InvalidConfigError } from "../../src/errors.ts";
import { type Routable, Router, strategyError } from "../../src/router.ts";
import { roundRobin } from "../../src/strategies.ts";
import type { ConnectionState, StrategyFunction } from "../../src/strategies.ts";

let ids = 0;
function conn(state: ConnectionState, over: Partial<Omit<Routable, "writable">> & { buffered?: boolean } = {}): Routable {
  const { buffered = false, ...rest } = over;
  return {
    id: ++ids,
    url: "ws://h/",
    state,
    tags: {},
    inFlight: 0,
    queued: 0,
    sent: 0,
    received: 0,
    inBackoff: false,
    exclusive: false,
    retiring: false,
    writable: () => !buffered,
    ...rest,
  };
}
const call = (over: { key?: string; filter?: (c: Routable) => boolean } = {}) => ({
  method: "m",
  key: over.key,
  idempotent: false,
  filter: over.filter as never,
});
const first: StrategyFunction = (cs) => cs[0]!;

describe("Router.route", () => {
  it("prefers open sockets, then connecting or backed-up ones, then backing-off ones; never the excluded one", () => {
    const open = conn("open");
    const backedUp = conn("open", { buffered: true });
    const connecting = conn("connecting");
    const backoff = conn("connecting", { inBackoff: true });
    const r = new Router(first);
    expect(r.route(call(), [backoff, connecting, backedUp, open])).toBe(open);
    expect(r.route(call(), [backoff, connecting, backedUp, open], open)).toBe(connecting);
    expect(r.route(call(), [backoff, backedUp])).toBe(backedUp);
    expect(r.route(call(), [backoff])).toBe(backoff);
  });

  it("passes over sockets that take no new call: draining, closed, checked out, retiring (closing, or expired with no replacement)", () => {
    const none = [conn("draining"), conn("closed"), conn("open", { exclusive: true }), conn("open", { retiring: true })];
    const r = new Router(first);
    expect(r.route(call(), none)).toBeNull(); // they match: wait in the pool queue
    const spare = conn("connecting");
    expect(r.route(call(), [...none, spare])).toBe(spare);
  });

  it("null when only the excluded socket matches (the caller decides), undefined when no socket matches the filter", () => {
    const a = conn("open", { tags: { region: "eu" } });
    const b = conn("open", { tags: { region: "us" } });
    const r = new Router(first);
    expect(r.route(call({ filter: (c) => c.tags.region === "eu" }), [a, b], a)).toBeNull();
    expect(r.route(call({ filter: (c) => c.tags.region === "ap" }), [a, b])).toBeUndefined();
    expect(r.route(call({ filter: (c) => c.tags.region === "us" }), [a, b])).toBe(b);
  });

  it("asks the strategy only among the best tier, and only when there is a choice", () => {
    const asked: number[][] = [];
    const spy: StrategyFunction = (cs) => (asked.push(cs.map((c) => c.id)), cs.at(-1)!);
    const [a, b, c] = [conn("open"), conn("open"), conn("connecting")];
    const r = new Router(spy);
    expect(r.route(call(), [a, b, c])).toBe(b);
    expect(r.route(call(), [a, c])).toBe(a); // one candidate in the best tier: no question
    expect(asked).toEqual([[a.id, b.id]]);
  });

  it("keeps a key on the same socket while it stays a candidate, then picks again", () => {
    const [a, b] = [conn("open"), conn("open")];
    const r = new Router(roundRobin());
    const picked = r.route(call({ key: "k" }), [a, b]);
    for (let i = 0; i < 5; i++) expect(r.route(call({ key: "k" }), [a, b])).toBe(picked);
    const other = picked === a ? b : a;
    expect(r.route(call({ key: "k" }), [other, conn("connecting")])).toBe(other);
    r.forget(other);
    expect([a, b]).toContain(r.route(call({ key: "k" }), [a, b]));
  });

  it("refuses a strategy answer that was not among the candidates, naming what it got", () => {
    const r = new Router(() => conn("open"));
    const e = (() => {
      try {
        r.route(call(), [conn("open"), conn("open")]);
      } catch (error) {
        return error as InvalidConfigError;
      }
    })();
    expect(e).toBeInstanceOf(InvalidConfigError);
    expect(e!.option).toBe("strategy");
    expect(e!.message).toMatch(/one of the 2 connections it was given, got socket \d+/);
  });

  it("strategyError wraps what a user's strategy or filter threw, and passes muxpool errors through", () => {
    const wrapped = strategyError(new Error("boom"));
    expect(wrapped).toBeInstanceOf(InvalidConfigError);
    expect(wrapped.message).toBe("the strategy or filter threw: boom");
    const own = new InvalidConfigError("strategy", "x");
    expect(strategyError(own)).toBe(own);
  });
});
