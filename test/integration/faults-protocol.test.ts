/**
 * SPEC §3.5: late replies, replies with unknown ids, duplicate replies,
 * malformed and oversized frames are counted (stats().protocolErrors) and
 * reported as `error` events carrying a ProtocolError; nothing throws, no
 * call settles wrongly, later calls still work.
 */
import { describe, expect, it } from "vitest";
import { own, startServer } from "../fixtures/harness.ts";
import { collectEvents, sleep, spyWebSocket, track, waitFor } from "../fixtures/pool-helpers.ts";
import { Pool, type PoolOptions, ProtocolError, TimeoutError } from "../../src/mod.ts";

async function setup(options: PoolOptions = {}) {
  const server = await startServer();
  const spy = spyWebSocket();
  const pool = own(new Pool(server.url, { size: 1, heartbeat: false, WebSocket: spy.WebSocket, ...options }));
  const log = collectEvents(pool, ["error", "notification", "close", "reconnect"]);
  await pool.ready();
  /** ids of the requests sent so far, by method */
  const sentIds = (method: string): string[] =>
    spy.instances.flatMap((s) => s.frames).map((f) => JSON.parse(f) as { id?: string; method: string }).filter((m) =>
      m.method === method && m.id !== undefined
    ).map((m) => m.id!);
  const expectProtocolErrors = (n: number): void => {
    expect(pool.stats().protocolErrors).toBe(n);
    const errs = log.of("error");
    expect(errs).toHaveLength(n);
    for (const e of errs) {
      expect(e.error).toBeInstanceOf(ProtocolError);
      expect((e.error as ProtocolError).code).toBe("ERR_PROTOCOL");
      expect(e.connectionId).toBe(pool.connections()[0]!.id);
    }
  };
  return { server, pool, log, spy, sentIds, expectProtocolErrors };
}

describe("protocol errors", () => {
  it("a late reply (after its call timed out) is counted, reported, and settles nothing", async () => {
    const { server, pool, log, expectProtocolErrors } = await setup();
    server.hold();
    const late = track(pool.call("echo", ["late"], { timeout: 100 }));
    const other = track(pool.call("echo", ["other"], { timeout: 5_000 }));
    await late.promise;
    expect(late.outcome!.ok).toBe(false);
    const e = (late.outcome as { error: TimeoutError }).error;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.code).toBe("ERR_TIMEOUT");
    expect(e.message).toMatch(/timed out after 100 ms, sent on socket/);
    expect(server.release()).toBe(2);
    expect(await other.promise).toMatchObject({ ok: true, value: "other" });
    await waitFor(() => pool.stats().protocolErrors === 1, 1_000, "late reply counted");
    expectProtocolErrors(1);
    expect(log.of("error")[0]!.error.message).toMatch(/reply for unknown or already settled id/);
    expect(late.settles).toBe(1);
    expect(pool.stats().calls).toMatchObject({ succeeded: 1, failed: 1, timedOut: 1, inFlight: 0 });
    expect(await pool.call("add", [20, 22])).toBe(42);
    expect(log.count("close")).toBe(0);
  });

  it("replies with unknown ids and duplicate replies are counted; the first reply wins, once", async () => {
    const { server, pool, sentIds, expectProtocolErrors } = await setup();
    server.hold();
    const call = track(pool.call("echo", ["real"], { timeout: 5_000 }));
    await waitFor(() => server.heldCount() === 1, 1_000, "held");
    const [id] = sentIds("echo");
    expect(id).toBeTruthy();
    // unknown ids, including near misses of the real one (other type, other case, prefix, suffix)
    const unknown = [`${id}x`, id!.slice(0, -1), id!.toUpperCase() === id ? id!.toLowerCase() : id!.toUpperCase(), 12345, "nope"];
    for (const u of unknown) server.sendRaw(JSON.stringify({ jsonrpc: "2.0", id: u, result: "forged" }));
    server.sendRaw(JSON.stringify({ jsonrpc: "2.0", id: "nope-2", error: { code: 1, message: "forged error" } }));
    await waitFor(() => pool.stats().protocolErrors === unknown.length + 1, 1_000, "unknown ids counted");
    expect(call.outcome).toBeUndefined();
    // the real reply, then a duplicate of it (with another value) and a duplicate error
    server.release();
    expect(await call.promise).toMatchObject({ ok: true, value: "real" });
    server.sendRaw(JSON.stringify({ jsonrpc: "2.0", id, result: "duplicate" }));
    server.sendRaw(JSON.stringify({ jsonrpc: "2.0", id, error: { code: -1, message: "duplicate error" } }));
    await waitFor(() => pool.stats().protocolErrors === unknown.length + 3, 1_000, "duplicates counted");
    await sleep(20);
    expect(call.settles).toBe(1);
    expectProtocolErrors(unknown.length + 3);
    expect(pool.stats().calls).toMatchObject({ succeeded: 1, failed: 0, inFlight: 0 });
    expect(await pool.call("echo", ["after"])).toBe("after");
  });

  it("malformed messages are counted one each and reported; notifications are not errors; calls in flight are unaffected", async () => {
    const { server, pool, log, expectProtocolErrors } = await setup();
    server.setFaults({ latency: 150 });
    const calls = Array.from({ length: 5 }, (_, i) => track(pool.call("add", [i, i], { timeout: 5_000 })));
    const bad: (string | Buffer)[] = [
      "not json at all",
      "{",
      "",
      "null",
      "42",
      '"a string"',
      "[]",
      "[1, 2]",
      '{"jsonrpc":"1.0","id":"x","result":1}',
      '{"id":"x","result":1}',
      '{"jsonrpc":"2.0","id":0,"result":1}',
      '{"jsonrpc":"2.0","id":"","result":1}',
      '{"jsonrpc":"2.0","id":{},"result":1}',
      '{"jsonrpc":"2.0","id":[1],"result":1}',
      '{"jsonrpc":"2.0","id":true,"result":1}',
      '{"jsonrpc":"2.0","id":"x"}',
      '{"jsonrpc":"2.0","id":"x","error":"not an object"}',
      '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}',
      '{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"}}',
      '{"jsonrpc":"2.0","method":42}',
      '{"jsonrpc":"2.0"}',
      '[{"jsonrpc":"2.0","id":"zz","result":1}, "garbage"]',
      '{"__proto__":{"polluted":true},"jsonrpc":"2.0","id":"p","result":1}',
      Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]),
      Buffer.from("also not json"),
    ];
    for (const frame of bad) server.sendRaw(frame);
    server.notifyAll("hello", { from: "server" });
    // One per bad message: "[1, 2]" holds two, and so does the frame of an unknown id next to "garbage" (issue 10:
    // each message of a frame is read on its own).
    const errors = bad.length + 2;
    await waitFor(() => pool.stats().protocolErrors === errors, 2_000, `${errors} protocol errors`);
    const outs = await Promise.all(calls.map((c) => c.promise));
    expect(outs.map((o) => o.ok && o.value)).toEqual([0, 2, 4, 6, 8]);
    await sleep(20);
    expectProtocolErrors(errors);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(log.of("notification").map((n) => [n.method, n.params])).toEqual([["hello", { from: "server" }]]);
    expect(log.count("close")).toBe(0);
    expect(pool.stats().calls).toMatchObject({ succeeded: 5, failed: 0 });
  });

  it("oversized frames (maxMessageSize) are dropped and counted; the call whose reply was dropped times out; others work", async () => {
    const { server, pool, log, expectProtocolErrors } = await setup({ maxMessageSize: 1_000 });
    const big = "x".repeat(2_000);
    const dropped = track(pool.call("echo", [big], { timeout: 300 }));
    const small = track(pool.call("echo", ["small"], { timeout: 5_000 }));
    server.sendRaw(JSON.stringify({ jsonrpc: "2.0", method: "huge", params: [big] }));
    expect(await small.promise).toMatchObject({ ok: true, value: "small" });
    await dropped.promise;
    expect((dropped.outcome as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expectProtocolErrors(2);
    expect(log.of("error").every((e) => /over maxMessageSize \(1000\)/.test(e.error.message))).toBe(true);
    expect(log.count("notification")).toBe(0);
    // exactly at the limit is fine
    const frameFor = (s: string): string => JSON.stringify({ jsonrpc: "2.0", id: "x", result: s });
    const fit = "y".repeat(1_000 - frameFor("").length - 20);
    expect(await pool.call("echo", [fit])).toBe(fit);
    expect(pool.stats().protocolErrors).toBe(2);
    expect(log.count("close")).toBe(0);
  });
});
