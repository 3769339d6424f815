/**
 * The recovery policy as a table (SPEC §3.3, §3.4, §4): for a lost socket,
 * which calls move, which are re-sent, which fail with which error, and
 * whether the connection reconnects, after which delay. No sockets.
 */
import { describe, expect, it } from "vitest";
import { ConnectionLostError } from "../../src/errors.ts";
import type { ResolvedReconnect } from "../../src/options.ts";
import { CLOSE_CODES, type LostSocket, planRecovery } from "../../src/recovery.ts";

const reconnect: ResolvedReconnect = { initialDelay: 100, maxDelay: 10_000, factor: 2, jitter: false, maxAttempts: 5, resetAfter: 5_000 };
const options = { reconnect, revive: true };
const loss = (over: Partial<LostSocket> = {}): LostSocket => ({
  id: 3,
  code: 1006,
  reason: "cut",
  wasOpen: true,
  retiring: false,
  attempt: 0,
  uptime: 1_000,
  ...over,
});
const call = (seq: number, idempotent: boolean, pin?: object) => ({ seq, method: `m${seq}`, idempotent, pin });
const idem = call(1, true);
const once = call(2, false);
const pinned = call(3, true, {});
const queued = call(4, false);
const queuedPinned = call(5, false, {});

describe("planRecovery: calls", () => {
  it("written idempotent calls are re-sent; written others fail maybeExecuted; never-written calls move; pinned ones fail", () => {
    const plan = planRecovery(loss(), [idem, once, pinned], [queued, queuedPinned], options);
    expect(plan.resend).toEqual([idem]);
    expect(plan.move).toEqual([queued]);
    const failed = new Map(plan.fail.map(([c, e]) => [c, e as ConnectionLostError]));
    expect([...failed.keys()]).toEqual([once, pinned, queuedPinned]);
    for (const e of failed.values()) expect(e).toBeInstanceOf(ConnectionLostError);
    expect(failed.get(once)!.maybeExecuted).toBe(true);
    expect(failed.get(once)!.message).toMatch(/call 2 \("m2"\) was sent but socket 3 closed \(code 1006: cut\).*not idempotent/);
    expect([failed.get(once)!.closeCode, failed.get(once)!.reason]).toEqual([1006, "cut"]);
    expect(failed.get(pinned)!.maybeExecuted).toBe(true);
    expect(failed.get(queuedPinned)!.maybeExecuted).toBe(false); // it never left the client
  });

  // code → [kind, idempotent in-flight calls re-sent?, delay of the first reconnect (no jitter)]
  const table: [number, string, boolean, number][] = [
    [1000, "normal closure", true, 100],
    [1001, "going away", true, 100],
    [1002, "protocol error", false, 100],
    [1003, "unsupported data", false, 100],
    [1005, "no status", true, 100],
    [1006, "abnormal closure", true, 100],
    [1007, "invalid payload", false, 100],
    [1008, "policy violation", false, 100],
    [1009, "message too big", false, 100],
    [1010, "mandatory extension", true, 100],
    [1011, "internal error", true, 100],
    [1012, "service restart", true, 100],
    [1013, "try again later", true, 10_000],
    [1014, "bad gateway", true, 100],
    [4000, "given up by muxpool", true, 100],
    [4401, "an application's own", true, 100],
  ];
  it.each(table)("close %i (%s): idempotent calls re-sent: %s; first reconnect after %i ms", (code, _name, resent, delay) => {
    const plan = planRecovery(loss({ code }), [idem, once], [queued], options);
    expect(plan.reconnect).toBe(true);
    expect(plan.delay).toBe(delay);
    expect(plan.move).toEqual([queued]); // never written: always moves
    expect(plan.resend).toEqual(resent ? [idem] : []);
    const failed = plan.fail.map(([c, e]) => [c, (e as ConnectionLostError).closeCode, (e as ConnectionLostError).maybeExecuted]);
    expect(failed).toEqual(resent ? [[once, code, true]] : [[idem, code, true], [once, code, true]]);
    if (!resent) expect(plan.fail[0]![1].message).toMatch(/the peer refused what it was sent/);
  });

  it("CLOSE_CODES lists exactly the refused and the come-back-later codes", () => {
    expect(CLOSE_CODES).toEqual({ 1002: "refused", 1003: "refused", 1007: "refused", 1008: "refused", 1009: "refused", 1013: "later" });
  });
});

describe("planRecovery: reconnect or drop", () => {
  it("backs off exponentially with the failed-attempt count, capped at maxDelay", () => {
    const delays = [0, 1, 2, 3, 4].map((attempt) =>
      planRecovery(loss({ wasOpen: false, uptime: undefined, attempt }), [], [], options).delay
    );
    expect(delays).toEqual([100, 200, 400, 800, 1600]);
    const capped = planRecovery(loss({ wasOpen: false, uptime: undefined, attempt: 3 }), [], [], {
      ...options,
      reconnect: { ...reconnect, maxAttempts: 99, maxDelay: 500 },
    });
    expect(capped.delay).toBe(500);
  });

  it("full jitter draws the delay in [0, cap)", () => {
    const jitter = { ...options, reconnect: { ...reconnect, jitter: true } };
    expect(planRecovery(loss({ attempt: 2, uptime: 10 }), [], [], jitter, () => 0.5).delay).toBe(200); // cap 400
  });

  it("resets the attempt count only after the socket stayed open for resetAfter", () => {
    expect(planRecovery(loss({ attempt: 3, uptime: 4_999 }), [], [], options).attempt).toBe(4);
    expect(planRecovery(loss({ attempt: 3, uptime: 5_000 }), [], [], options).attempt).toBe(1);
    expect(planRecovery(loss({ attempt: 3, wasOpen: false, uptime: undefined }), [], [], options).attempt).toBe(4);
  });

  it("drops the connection when maxAttempts is spent, when revive is off, when it was retiring, or when reconnect is off", () => {
    const dropped = (plan: { reconnect: boolean; keepOnSocket: boolean }) => [plan.reconnect, plan.keepOnSocket];
    expect(dropped(planRecovery(loss({ attempt: 5, uptime: 10 }), [], [], options))).toEqual([false, false]);
    expect(dropped(planRecovery(loss(), [], [], { ...options, revive: false }))).toEqual([false, false]);
    expect(dropped(planRecovery(loss({ retiring: true }), [], [], options))).toEqual([false, false]);
    expect(dropped(planRecovery(loss(), [], [], { reconnect: false, revive: true }))).toEqual([false, false]);
    // A failed connect is retried even without revive (revive is about sockets that were open).
    expect(dropped(planRecovery(loss({ wasOpen: false, uptime: undefined }), [], [], { ...options, revive: false }))).toEqual([true, true]);
  });

  it("reconnect.shouldRetry sees the close and can stop reconnecting, saying why", () => {
    const seen: unknown[] = [];
    const stopOn4401 = {
      ...options,
      reconnect: { ...reconnect, shouldRetry: (c: { code: number; reason: string }) => (seen.push(c), c.code !== 4401) },
    };
    const stop = planRecovery(loss({ code: 4401, reason: "token expired" }), [idem], [queued], stopOn4401);
    expect(seen).toEqual([{ code: 4401, reason: "token expired" }]);
    expect([stop.reconnect, stop.stopped]).toEqual([false, "reconnect.shouldRetry declined (code 4401: token expired)"]);
    expect([stop.resend, stop.move]).toEqual([[idem], [queued]]); // the calls go elsewhere as usual
    const go = planRecovery(loss({ code: 1006 }), [], [], stopOn4401);
    expect([go.reconnect, go.stopped]).toEqual([true, undefined]);
  });
});
