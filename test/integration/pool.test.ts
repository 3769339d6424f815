/**
 * The healthy-network call path against a real ws JSON-RPC server on
 * 127.0.0.1, port 0: results, every error path, deadlines, aborts, queues,
 * strategies, filters and keys, close and destroy, and leaks.
 */
import { getEventListeners } from "node:events";
import { beforeEach, describe, expect, it } from "vitest";
import { own, startServer } from "../fixtures/harness.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { waitFor } from "../fixtures/pool-helpers.ts";
import {
  ConnectionEvent,
  type ConnectionInfo,
  InvalidConfigError,
  type MuxPoolError,
  NoConnectionError,
  NotificationEvent,
  Pool,
  PoolClosedError,
  type PoolErrorEvent,
  PoolExhaustedError,
  type PoolOptions,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "../../src/mod.ts";
import { stressTest } from "../../src/stress.ts";

let server: RpcServer;

function pool(options: PoolOptions = {}, url?: string): Pool {
  return own(new Pool(url ?? server.url, { heartbeat: false, ...options }));
}

async function rejection(promise: Promise<unknown>): Promise<MuxPoolError> {
  try {
    await promise;
  } catch (error) {
    return error as MuxPoolError;
  }
  throw new Error("expected the promise to reject");
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

beforeEach(async () => {
  server = await startServer();
});

describe("calls", () => {
  it("10,000 concurrent calls resolve with their own results, matched out of order", async () => {
    server.setFaults({ jitter: 15 }); // replies overtake each other
    const p = pool({ size: 4, maxInFlight: 256 });
    const results = await Promise.all(Array.from({ length: 10_000 }, (_, i) => p.call("add", [i, 1])));
    results.forEach((r, i) => expect(r).toBe(i + 1));
    const s = p.stats();
    expect(s.calls).toMatchObject({ succeeded: 10_000, failed: 0, inFlight: 0, queued: 0 });
    expect(server.stats.requests).toBe(10_000);
    const perSocket = server.connections().map((c) => c.received);
    expect(perSocket).toHaveLength(4);
    for (const n of perSocket) expect(n).toBeGreaterThan(1_000); // spread over the pool
  });

  it("resolves results of any JSON type and passes params through", async () => {
    const p = pool({ size: 1 });
    expect(await p.call("echo", [{ a: [1, "x", null] }])).toEqual({ a: [1, "x", null] });
    expect(await p.call("echo", [null])).toBeNull();
    expect(await p.call("add", { a: 2, b: 3 })).toBe(5);
  });

  it("ready() resolves once a socket is open; sockets open eagerly", async () => {
    const p = pool({ size: 3 });
    await p.ready();
    await waitFor(() => p.stats().connections.open === 3);
    expect(server.connections()).toHaveLength(3);
    expect(p.connections().map((c) => c.state)).toEqual(["open", "open", "open"]);
  });

  it("ready() rejects with TimeoutError, saying why, when no socket opens in time", async () => {
    server.refuse(true); // every upgrade gets HTTP 503
    const p = pool({ size: 1, timeout: 300, reconnect: { initialDelay: 5, maxDelay: 20 } });
    const before = timers();
    const t0 = performance.now();
    const error = await rejection(p.ready());
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.code).toBe("ERR_TIMEOUT");
    expect(error.message).toMatch(
      /^ready: no socket opened within 300 ms; last: socket 1 \(ws:\/\/127\.0\.0\.1:\d+\/\), \d+ failed attempts?: could not connect: Unexpected server response: 503$/,
    );
    expect((await rejection(p.ready({ timeout: 50 }))).message).toContain("within 50 ms");
    expect(((await rejection(p.ready({ timout: 50 } as never))) as InvalidConfigError).option).toBe("timout");
    server.refuse(false);
    await p.ready({ timeout: 2_000 }); // resolves once the server accepts again
    expect(timers()).toBeLessThanOrEqual(before); // no ready() timer left behind
  });

  it("notify sends a frame with no id and no reply", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    p.notify("log", { level: "info" });
    await waitFor(() => server.stats.notificationsReceived === 1);
    expect(p.stats().calls).toMatchObject({ inFlight: 0, succeeded: 0, failed: 0 });
  });

  it("notify throws when refused on the way in (maxQueue); a queued one that fails later is an error event", async () => {
    const p = pool({ size: 1, maxInFlight: 1, maxQueue: 1, timeout: 150 });
    const errors: PoolErrorEvent[] = [];
    p.addEventListener("error", (e) => errors.push(e));
    await p.ready();
    server.hold();
    const blocker = p.call("echo", ["blocker"], { timeout: 5_000 }); // fills the window
    p.notify("log", { n: 1 }); // waits in the queue: the window is full
    expect(p.stats().calls.queued).toBe(1);
    expect(() => p.notify("log", { n: 2 })).toThrow(PoolExhaustedError); // the queue is full: refused at once
    expect(p.stats().calls.queued).toBe(1);
    await waitFor(() => errors.length === 1); // the queued one passes its deadline
    expect(errors[0]!.error).toBeInstanceOf(TimeoutError);
    expect(errors[0]!.error.message).toContain('("log") timed out after 150 ms');
    server.release();
    expect(await blocker).toBe("blocker");
    expect(server.stats.notificationsReceived).toBe(0); // neither was sent
    expect(p.stats().calls).toMatchObject({ queued: 0, inFlight: 0, succeeded: 1, failed: 0 });
  });

  it("server messages without an id arrive as notification events", async () => {
    const p = pool({ size: 1 });
    const seen: NotificationEvent[] = [];
    p.addEventListener("notification", (e) => seen.push(e));
    expect(await p.call("notifyMe", [3, "price"])).toBe(3);
    expect(seen.map((e) => [e.method, e.params])).toEqual([
      ["price", { i: 0 }],
      ["price", { i: 1 }],
      ["price", { i: 2 }],
    ]);
    expect(seen[0]).toBeInstanceOf(NotificationEvent);
  });

  it("batch sends one frame and resolves one allSettled-shaped entry per request, in order", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    const before = server.connections()[0]!.received;
    const results = await p.batch([{ method: "add", params: [1, 2] }, { method: "fail", params: [7, "nope", { why: 1 }] }, {
      method: "echo",
      params: ["x"],
    }]);
    expect(results[0]).toEqual({ status: "fulfilled", value: 3 });
    expect(results[1]!.status).toBe("rejected");
    const reason = (results[1] as { reason: RemoteError }).reason;
    expect(reason).toBeInstanceOf(RemoteError);
    expect([reason.code, reason.remoteCode, reason.data]).toEqual(["ERR_REMOTE", 7, { why: 1 }]);
    expect(results[2]).toEqual({ status: "fulfilled", value: "x" });
    expect(server.connections()[0]!.received - before).toBe(3);
    expect(p.connections()[0]!.sent).toBe(1);
    await expect(p.batch([])).rejects.toBeInstanceOf(InvalidConfigError);
  });

  it("callAll reports each success and failure with its index and never rejects", async () => {
    const p = pool({ size: 2 });
    const requests = Array.from(
      { length: 20 },
      (_, i) => (i % 5 === 0 ? { method: "fail", params: [i] } : { method: "add", params: [i, i] }),
    );
    const { successful, failed } = await p.callAll<number>(requests, { concurrency: 4 });
    expect(successful).toHaveLength(16);
    expect(failed.map((f) => f.index)).toEqual([0, 5, 10, 15]);
    for (const f of failed) expect((f.error as RemoteError).remoteCode).toBe(f.index);
    for (const s of successful) expect(s.value).toBe(s.index * 2);
  });

  it("callAll with concurrency 1 runs the calls one after another", async () => {
    const p = pool({ size: 4 });
    let maxInFlight = 0;
    const timer = setInterval(() => (maxInFlight = Math.max(maxInFlight, p.stats().calls.inFlight)), 1);
    const { successful } = await p.callAll(Array.from({ length: 10 }, () => ({ method: "sleep", params: [5] })), { concurrency: 1 });
    clearInterval(timer);
    expect(successful).toHaveLength(10);
    expect(maxInFlight).toBe(1);
  });

  it("request ids are unique, never falsy, and generateId can replace them", async () => {
    let n = 0;
    const p = pool({ size: 2, generateId: () => `custom-${++n}` });
    await Promise.all(Array.from({ length: 50 }, (_, i) => p.call("echo", [i])));
    expect(n).toBe(50);
    const bad = pool({ size: 1, generateId: () => 0 });
    const error = await rejection(bad.call("echo", [1]));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toContain("generateId");
  });
});

describe("errors", () => {
  it("a server error rejects with RemoteError carrying the server's code, message and data", async () => {
    const p = pool({ size: 1 });
    const error = await rejection(p.call("fail", [-32099, "out of cheese", { retryIn: 5 }]));
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.code).toBe("ERR_REMOTE");
    expect((error as RemoteError).remoteCode).toBe(-32099);
    expect((error as RemoteError).data).toEqual({ retryIn: 5 });
    expect(error.message).toContain("out of cheese");
    const unknown = await rejection(p.call("nope"));
    expect((unknown as RemoteError).remoteCode).toBe(-32601);
    expect(p.stats().calls).toMatchObject({ failed: 2, succeeded: 0, timedOut: 0 });
  });

  it("the constructor throws InvalidConfigError naming the option and the value", () => {
    expect(() => new Pool(server.url, { size: 0 })).toThrow(InvalidConfigError);
    expect(() => new Pool(server.url, { size: 0 })).toThrow("Expected `size` to be an integer from 1 to 1024, got `0` (number)");
    expect(() => new Pool("http//oops", {})).toThrow(/`url`/);
    expect(() => new Pool(server.url, { strategy: "fastest" as never })).toThrow(/strategy/);
  });

  it("bad call arguments reject with InvalidConfigError, and nothing is sent", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    expect(await rejection(p.call(42 as never))).toBeInstanceOf(InvalidConfigError);
    expect((await rejection(p.call("echo", [], { timeout: -1 }))).message).toContain("`timeout`");
    expect((await rejection(p.call("echo", [], { filter: "x" as never }))).message).toContain("`filter`");
    // A misspelt option is refused, not ignored: `idempotant: true` would
    // otherwise leave the call without the resend the caller asked for.
    const misspelt = await rejection(p.call("echo", [], { idempotant: true } as never));
    expect(misspelt).toBeInstanceOf(InvalidConfigError);
    expect((misspelt as InvalidConfigError).option).toBe("idempotant");
    expect(misspelt.message).toContain(
      "Unknown option `idempotant` (did you mean `idempotent`?); known: timeout, signal, idempotent, filter, key",
    );
    expect(server.stats.requests).toBe(0);
    expect(p.stats().calls).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it("withConnection gives up after its timeout with TimeoutError, saying whether sockets are busy or down", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    let release!: () => void;
    const held = p.withConnection(() => new Promise<void>((r) => (release = r)), { exclusive: true });
    await waitFor(() => p.connections()[0]!.exclusive);
    const busy = await rejection(p.withConnection(() => "never", { timeout: 100 }));
    expect(busy).toBeInstanceOf(TimeoutError);
    expect(busy.message).toMatch(/^withConnection: no socket became free within \d+ ms \(all are checked out or expiring\)$/);
    release();
    await held;
    expect(await p.withConnection((conn) => conn.id)).toBe(1); // free again

    server.refuse(true);
    const q = pool({ size: 1, reconnect: { initialDelay: 5, maxDelay: 20 } });
    const down = await rejection(q.withConnection(() => "never", { timeout: 200 }));
    expect(down).toBeInstanceOf(TimeoutError);
    expect(down.message).toContain("(none is open; last: socket 1 (ws://127.0.0.1:");
    expect(down.message).toContain("could not connect: Unexpected server response: 503)");
  });

  it("withConnection, callAll, stressTest and close refuse misspelt or mistyped options", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    const fn = (): string => "ran";
    const exclusive = await rejection(p.withConnection(fn, { exclusve: true } as never));
    expect([exclusive.code, (exclusive as InvalidConfigError).option]).toEqual(["ERR_INVALID_CONFIG", "exclusve"]);
    expect(exclusive.message).toContain("(did you mean `exclusive`?)");
    expect((await rejection(p.withConnection(fn, { exclusive: "yes" } as never))).message).toContain(
      "Expected `exclusive` to be a boolean",
    );
    expect((await rejection(p.withConnection(fn, { timeout: "1s" } as never))).message).toContain(
      "Expected `timeout` to be a number of ms",
    );
    expect(((await rejection(p.callAll([], { concurency: 2 } as never))) as InvalidConfigError).option).toBe("concurency");
    expect(((await rejection(stressTest(p, { opsPerworker: 5 } as never))) as InvalidConfigError).option).toBe("opsPerworker");
    expect(((await rejection(p.close({ timeot: 5 } as never))) as InvalidConfigError).option).toBe("timeot");
    expect(p.state).toBe("open"); // the refused close() changed nothing
    expect(await p.withConnection(fn, { exclusive: true })).toBe("ran");
    expect(server.stats.requests).toBe(0);
  });

  it("a filter that matches no socket rejects with NoConnectionError at once", async () => {
    const p = pool({ size: 2 });
    const started = Date.now();
    const error = await rejection(p.call("echo", [1], { filter: (c) => c.tags.region === "mars" }));
    expect(error).toBeInstanceOf(NoConnectionError);
    expect(error.code).toBe("ERR_NO_CONNECTION");
    expect(error.message).toContain("no socket matches its filter");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("malformed frames and unknown ids are counted and reported, never thrown, and never settle a call", async () => {
    const p = pool({ size: 1 });
    const errors: PoolErrorEvent[] = [];
    p.addEventListener("error", (e) => errors.push(e));
    await p.ready();
    server.hold();
    const pending = p.call("add", [2, 2]);
    await waitFor(() => server.heldCount() === 1);
    server.sendRaw("{not json");
    server.sendRaw(JSON.stringify({ jsonrpc: "2.0", id: "nobody.1", result: 666 }));
    server.sendRaw(JSON.stringify({ jsonrpc: "2.0", id: 1, result: 666 }));
    await waitFor(() => p.stats().protocolErrors === 3);
    server.release();
    expect(await pending).toBe(4);
    expect(errors).toHaveLength(3);
    for (const e of errors) {
      expect(e.error).toBeInstanceOf(ProtocolError);
      expect((e.error as ProtocolError).code).toBe("ERR_PROTOCOL");
    }
    expect(errors[0]!.error.message).toContain("could not decode");
    expect(errors[1]!.error.message).toContain("unknown or already settled id");
  });

  it("a frame over maxMessageSize is dropped and reported", async () => {
    const p = pool({ size: 1, maxMessageSize: 100 });
    const errors: PoolErrorEvent[] = [];
    p.addEventListener("error", (e) => errors.push(e));
    const error = await rejection(p.call("echo", ["x".repeat(500)], { timeout: 300 }));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(p.stats().protocolErrors).toBe(1);
    expect(errors[0]!.error.message).toMatch(/over maxMessageSize \(100\)/);
    expect(await p.call("echo", ["small"])).toBe("small");
  });
});

describe("deadlines and aborts", () => {
  it("a call in flight past its deadline rejects with TimeoutError naming the socket and counts", async () => {
    const p = pool({ size: 1 });
    const error = await rejection(p.call("sleep", [2_000], { timeout: 100 }));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.code).toBe("ERR_TIMEOUT");
    expect(error.message).toMatch(/call 1 \("sleep"\) timed out after 100 ms, sent on socket 1 \(1 in flight, 0 queued\)/);
    expect(p.stats().calls).toMatchObject({ failed: 1, timedOut: 1, inFlight: 0 });
  });

  it("the deadline covers queue time: a queued call times out and is never sent", async () => {
    const p = pool({ size: 1, maxInFlight: 1 });
    await p.ready();
    const blocker = p.call("sleep", [400]);
    const queued = p.call("record", ["queued-timeout"], { timeout: 100 });
    const error = await rejection(queued);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toContain("queued on socket 1");
    await blocker;
    await new Promise((r) => setTimeout(r, 50));
    expect(server.executions.get("queued-timeout")).toBeUndefined();
    expect(p.stats().calls).toMatchObject({ queued: 0, inFlight: 0, succeeded: 1, failed: 1, timedOut: 1 });
  });

  it("an aborted queued call is removed from the queue, rejects with signal.reason, and never reaches the server", async () => {
    const p = pool({ size: 1, maxInFlight: 1 });
    await p.ready();
    const blocker = p.call("sleep", [200]);
    const controller = new AbortController();
    const aborted = p.call("record", ["aborted-queued"], { signal: controller.signal });
    expect(p.stats().calls.queued).toBe(1);
    const reason = new Error("user gave up");
    controller.abort(reason);
    expect(await rejection(aborted)).toBe(reason);
    expect(p.stats().calls.queued).toBe(0);
    await blocker;
    expect(await p.call("record", ["after"])).toBe(1);
    expect(server.executions.has("aborted-queued")).toBe(false);
  });

  it("an aborted call in flight rejects at once and its late reply is ignored safely", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    const controller = new AbortController();
    const call = p.call("sleep", [150], { signal: controller.signal });
    await waitFor(() => p.stats().calls.inFlight === 1);
    controller.abort();
    const error = await rejection(call);
    expect((error as unknown as Error).name).toBe("AbortError");
    expect(p.stats().calls.inFlight).toBe(0);
    await waitFor(() => p.stats().protocolErrors === 1); // the late reply, counted
    expect(await p.call("echo", [1])).toBe(1);
  });

  it("an already aborted signal rejects without sending", async () => {
    const p = pool({ size: 1 });
    const reason = new Error("already");
    const error = await rejection(p.call("record", ["never"], { signal: AbortSignal.abort(reason) }));
    expect(error).toBe(reason);
    await p.ready();
    expect(server.stats.requests).toBe(0);
  });

  it("one signal shared by many calls: in flight and queued reject with its reason, the others are untouched", async () => {
    const p = pool({ size: 2, maxInFlight: 4 });
    await waitFor(() => p.stats().connections.open === 2);
    server.hold();
    const controller = new AbortController();
    const shared = Array.from({ length: 20 }, (_, i) => p.call("echo", [i], { signal: controller.signal }));
    const others = Array.from({ length: 5 }, (_, i) => p.call("echo", [100 + i]));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1); // one listener for 20 calls
    expect(p.stats().calls).toMatchObject({ inFlight: 8, queued: 17 });
    const reason = new Error("page left");
    controller.abort(reason);
    const settled = await Promise.allSettled(shared);
    expect(settled.every((r) => r.status === "rejected" && r.reason === reason)).toBe(true);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    expect(p.stats().calls).toMatchObject({ failed: 20, timedOut: 0, queued: 0 });
    server.release();
    expect(await Promise.all(others)).toEqual([100, 101, 102, 103, 104]);
    // The same signal, already aborted: refused before anything is sent.
    const sent = server.stats.requests;
    expect(await rejection(p.call("echo", [1], { signal: controller.signal }))).toBe(reason);
    expect(server.stats.requests).toBe(sent);
    expect(p.stats().calls).toMatchObject({ inFlight: 0, queued: 0, succeeded: 5 });
  });

  it("settled calls leave no timer and no abort listener behind; a shared signal holds one listener at a time", async () => {
    const p = pool({ size: 2 });
    await p.ready();
    const before = timers();
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => (added++, add(...args))) as typeof add;
    controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => (removed++, remove(...args))) as typeof remove;
    await Promise.all(Array.from({ length: 500 }, (_, i) => p.call("echo", [i], { signal: controller.signal })));
    await Promise.allSettled(Array.from({ length: 50 }, () => p.call("sleep", [60], { timeout: 20, signal: controller.signal })));
    // Two bursts, each sharing the signal: one listener each, removed when its last call settled.
    expect(added).toBe(2);
    expect(removed).toBe(2);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 120)); // the in-process server's own sleeps end too
    expect(timers()).toBeLessThanOrEqual(before);
  });
});

describe("queues", () => {
  it("maxInFlight caps each socket's window; more calls wait in that socket's queue", async () => {
    const p = pool({ size: 2, maxInFlight: 3, strategy: "round-robin" });
    await waitFor(() => p.stats().connections.open === 2);
    server.hold();
    const calls = Array.from({ length: 10 }, (_, i) => p.call("echo", [i]));
    await waitFor(() => server.heldCount() === 6);
    expect(p.connections().map((c) => [c.inFlight, c.queued])).toEqual([
      [3, 2],
      [3, 2],
    ]);
    expect(p.stats()).toMatchObject({ available: 0, inUse: 2, calls: { inFlight: 6, queued: 4 } });
    server.release();
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("maxQueue bounds waiting calls: one more is refused at once with PoolExhaustedError", async () => {
    const p = pool({ size: 1, maxInFlight: 2, maxQueue: 3 });
    await p.ready();
    server.hold();
    const accepted = Array.from({ length: 5 }, (_, i) => p.call("echo", [i]));
    const error = await rejection(p.call("echo", ["one too many"]));
    expect(error).toBeInstanceOf(PoolExhaustedError);
    expect(error.code).toBe("ERR_POOL_EXHAUSTED");
    expect(error.message).toContain("3 calls already wait (maxQueue 3), 2 in flight");
    expect(p.stats().calls).toMatchObject({ inFlight: 2, queued: 3, failed: 1 });
    server.release();
    expect(await Promise.all(accepted)).toEqual([0, 1, 2, 3, 4]);
  });

  it("calls made before any socket is open wait in the connecting sockets' queues", async () => {
    const p = pool({ size: 2 });
    const calls = Array.from({ length: 100 }, (_, i) => p.call("echo", [i]));
    const s = p.stats();
    expect(s.connections.connecting).toBe(2);
    expect(s.calls.queued).toBe(100);
    expect(await Promise.all(calls)).toHaveLength(100);
  });
});

describe("strategies, filters and keys", () => {
  async function spread(strategy: NonNullable<PoolOptions["strategy"]>, calls = 400): Promise<number[]> {
    const p = pool({ size: 4, strategy });
    await waitFor(() => p.stats().connections.open === 4);
    for (let i = 0; i < calls / 40; i++) await Promise.all(Array.from({ length: 40 }, () => p.call("echo", [i])));
    return server.connections().map((c) => c.received);
  }

  it("round-robin spreads calls evenly", async () => {
    expect(await spread("round-robin")).toEqual([100, 100, 100, 100]);
  });

  it("least-pending spreads calls across every socket", async () => {
    const counts = await spread("least-pending");
    for (const n of counts) expect(n).toBeGreaterThanOrEqual(60);
  });

  it("least-pending steers around a slow socket", async () => {
    const p = pool({ size: 2, strategy: "least-pending" });
    await waitFor(() => p.stats().connections.open === 2);
    const slow = p.call("sleep", [300], { filter: (c) => c.id === 1 });
    for (let i = 0; i < 20; i++) await p.call("echo", [i]);
    await slow;
    const [first, second] = server.connections().map((c) => c.received);
    expect(first).toBeLessThan(second!);
  });

  it("random reaches every socket", async () => {
    for (const n of await spread("random")) expect(n).toBeGreaterThan(40);
  });

  it("a custom strategy function decides; returning a foreign object rejects the call", async () => {
    const seen: number[] = [];
    const counts = await spread((conns: readonly ConnectionInfo[]) => {
      seen.push(conns.length);
      return conns[conns.length - 1]!;
    });
    expect(counts.filter((n) => n > 0)).toEqual([400]);
    expect(Math.max(...seen)).toBe(4);
    const p = pool({ size: 2, strategy: () => ({ id: 99 }) as ConnectionInfo });
    await waitFor(() => p.stats().connections.open === 2);
    const error = await rejection(p.call("echo", [1]));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toContain("Expected the strategy to return one of the 2 connections");
  });

  it("filter routes by endpoint tags; key keeps calls on one socket", async () => {
    const second = await startServer();
    const p = pool({ size: 4 }, undefined);
    const tagged = own(
      new Pool(
        [
          { url: server.url, tags: { region: "eu" } },
          { url: second.url, tags: { region: "us" } },
        ],
        { size: 4, heartbeat: false },
      ),
    );
    await waitFor(() => tagged.stats().connections.open === 4);
    expect(tagged.connections().map((c) => c.tags.region).sort()).toEqual(["eu", "eu", "us", "us"]);
    await Promise.all(Array.from({ length: 30 }, () => tagged.call("incr", [], { filter: (c) => c.tags.region === "us" })));
    expect(second.stats.requests).toBe(30);
    expect(server.stats.requests).toBe(0);
    await waitFor(() => p.stats().connections.open === 4);
    const before = server.connections().map((c) => c.received);
    await Promise.all(Array.from({ length: 60 }, (_, i) => p.call("echo", [i], { key: "user-42" })));
    const delta = server.connections().map((c, i) => c.received - (before[i] ?? 0));
    expect(delta.filter((n) => n > 0)).toHaveLength(1);
  });

  it("weights spread sockets over endpoints", () => {
    const p = own(
      new Pool(
        [
          { url: server.url, weight: 3 },
          { url: server.url.replace("127.0.0.1", "localhost"), weight: 1 },
        ],
        { size: 4, heartbeat: false },
      ),
    );
    expect(p.connections().filter((c) => c.url.includes("localhost"))).toHaveLength(1);
  });
});

describe("withConnection", () => {
  it("pins every call in the block to one socket, in order", async () => {
    const p = pool({ size: 3 });
    await waitFor(() => p.stats().connections.open === 3);
    const order = await p.withConnection(async (conn) => {
      const results = await Promise.all(Array.from({ length: 30 }, () => conn.call<number>("incr")));
      return { id: conn.id, results };
    });
    expect(order.results).toEqual([...order.results].sort((a, b) => a - b));
    expect(server.connections().filter((c) => c.received > 0)).toHaveLength(1);
  });

  it("exclusive keeps other calls off the socket while the block runs, and returns it after a throw", async () => {
    const p = pool({ size: 2, strategy: "round-robin" });
    await waitFor(() => p.stats().connections.open === 2);
    let pinnedId = 0;
    const error = await rejection(
      p.withConnection(
        async (conn) => {
          pinnedId = conn.id;
          expect(conn.snapshot().exclusive).toBe(true);
          await Promise.all(Array.from({ length: 20 }, () => p.call("echo", [1])));
          await conn.call("echo", ["mine"]);
          throw new RemoteError("boom", 1, undefined);
        },
        { exclusive: true },
      ),
    );
    expect(error.message).toBe("boom");
    const received = server.connections().map((c) => c.received);
    expect(received.sort((a, b) => a - b)).toEqual([1, 20]);
    expect(p.connections().find((c) => c.id === pinnedId)!.exclusive).toBe(false);
    await Promise.all(Array.from({ length: 20 }, () => p.call("echo", [1])));
    expect(Math.min(...server.connections().map((c) => c.received))).toBeGreaterThan(1);
  });

  it("a pinned handle used after its block ends rejects", async () => {
    const p = pool({ size: 1 });
    const handle = await p.withConnection((conn) => conn);
    expect(await rejection(handle.call("echo", [1]))).toBeInstanceOf(NoConnectionError);
  });
});

describe("close and destroy", () => {
  it("close lets queued and in-flight calls finish, refuses new ones, closes sockets with 1000", async () => {
    const p = pool({ size: 2, maxInFlight: 1 });
    await waitFor(() => p.stats().connections.open === 2);
    const closes: ConnectionEvent[] = [];
    p.addEventListener("close", (e) => closes.push(e));
    let shutdown = 0;
    p.addEventListener("shutdown", () => shutdown++);
    const calls = Array.from({ length: 6 }, (_, i) => p.call("sleep", [30 + i]));
    const closing = p.close();
    expect(p.state).toBe("closing");
    const refused = await rejection(p.call("echo", [1]));
    expect(refused).toBeInstanceOf(PoolClosedError);
    expect(refused.code).toBe("ERR_POOL_CLOSED");
    expect(() => p.notify("x")).toThrow(PoolClosedError);
    expect(await Promise.all(calls)).toEqual([30, 31, 32, 33, 34, 35]);
    await closing;
    expect(p.state).toBe("closed");
    expect(closes.map((e) => e.code)).toEqual([1000, 1000]);
    expect(shutdown).toBe(1);
    expect(p.connections()).toEqual([]);
    expect(p.close()).toBe(closing); // idempotent
    await p.destroy();
    expect(shutdown).toBe(1);
  });

  it("close rejects what is left after its timeout with PoolClosedError", async () => {
    const p = pool({ size: 1, maxInFlight: 1 });
    await p.ready();
    const inFlight = p.call("sleep", [5_000]);
    const queued = p.call("echo", [1]);
    const outcomes = Promise.all([rejection(inFlight), rejection(queued)]);
    const started = Date.now();
    await p.close({ timeout: 100 });
    expect(Date.now() - started).toBeLessThan(2_000);
    const [a, b] = await outcomes;
    expect(a).toBeInstanceOf(PoolClosedError);
    expect(a.message).toContain("sent on socket 1");
    expect(b).toBeInstanceOf(PoolClosedError);
    expect(b.message).toContain("queued on socket 1");
    // The one written may have run; the queued one never left.
    expect((a as PoolClosedError).maybeExecuted).toBe(true);
    expect((b as PoolClosedError).maybeExecuted).toBe(false);
    expect(p.stats().calls).toMatchObject({ failed: 2, inFlight: 0, queued: 0 });
  });

  it("destroy rejects everything at once with the reason as cause; it is idempotent", async () => {
    const p = pool({ size: 2 });
    const reason = new Error("shutting down");
    const calls = Array.from({ length: 50 }, () => p.call("sleep", [1_000]));
    await waitFor(() => p.stats().calls.inFlight > 0);
    const started = Date.now();
    const d = p.destroy(reason);
    const errors = await Promise.all(calls.map(rejection));
    expect(Date.now() - started).toBeLessThan(500);
    for (const e of errors) {
      expect(e).toBeInstanceOf(PoolClosedError);
      expect(e.cause).toBe(reason);
      expect((e as PoolClosedError).maybeExecuted).toBe(e.message.includes("while it was sent")); // written: it may have run
    }
    expect(errors.some((e) => (e as PoolClosedError).maybeExecuted)).toBe(true);
    await d;
    await p.destroy();
    expect(p.stats().calls).toMatchObject({ failed: 50, succeeded: 0, inFlight: 0, queued: 0 });
    expect(await rejection(p.ready())).toBeInstanceOf(PoolClosedError);
    // Refused at once, and no timer left behind waiting for a socket (it was, for the call's 30 s).
    const before = timers();
    expect(await rejection(p.withConnection(() => "never"))).toBeInstanceOf(PoolClosedError);
    expect(await rejection(p.ready())).toBeInstanceOf(PoolClosedError);
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it("destroy during a graceful close ends it at once", async () => {
    const p = pool({ size: 1 });
    await p.ready();
    const slow = rejection(p.call("sleep", [5_000]));
    const closing = p.close({ timeout: 10_000 });
    await p.destroy();
    await closing;
    expect(await slow).toBeInstanceOf(PoolClosedError);
  });

  it("await using closes the pool", async () => {
    let ref: Pool | undefined;
    {
      await using p = new Pool(server.url, { size: 1, heartbeat: false });
      ref = p;
      expect(await p.call("echo", [1])).toBe(1);
    }
    expect(ref.state).toBe("closed");
  });

  it("after close no timer or socket is left", async () => {
    const baseline = process.getActiveResourcesInfo().length;
    const p = own(new Pool(server.url, { size: 3, heartbeat: { interval: 50, timeout: 50 }, ttl: 60_000 }));
    await Promise.all(Array.from({ length: 200 }, (_, i) => p.call("echo", [i])));
    await p.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(baseline);
  });
});

describe("observability", () => {
  it("stats add up: succeeded + failed equals the calls settled", async () => {
    const p = pool({ size: 2 });
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 40 }, (_, i) => p.call("echo", [i])),
      ...Array.from({ length: 7 }, () => p.call("fail")),
      ...Array.from({ length: 3 }, () => p.call("sleep", [1_000], { timeout: 30 })),
    ]);
    const s = p.stats();
    expect(s.calls.succeeded + s.calls.failed).toBe(outcomes.length);
    expect(s.calls).toMatchObject({ succeeded: 40, failed: 10, timedOut: 3 });
    expect(s.latency.p50).toBeGreaterThan(0);
    expect(s.latency.max).toBeGreaterThanOrEqual(s.latency.p99);
    expect(s.latency.p99).toBeGreaterThanOrEqual(s.latency.p50);
  });

  it("failedBy counts the rejected calls by error code, and sums to failed", async () => {
    const p = pool({ size: 1, maxInFlight: 1, maxQueue: 1 });
    await p.ready();
    expect(p.stats().calls.failedBy).toEqual({});
    await rejection(p.call("fail")); // ERR_REMOTE
    await rejection(p.call("sleep", [1_000], { timeout: 30 })); // ERR_TIMEOUT, in flight
    server.hold();
    const blocker = p.call("echo", ["blocker"], { timeout: 5_000 }); // fills the window
    const controller = new AbortController();
    const aborted = p.call("echo", ["queued"], { signal: controller.signal }); // fills the queue
    const refused = rejection(p.call("echo", ["one too many"])); // ERR_POOL_EXHAUSTED
    controller.abort(new Error("gave up")); // ABORTED, whatever the reason is
    await rejection(aborted);
    await refused;
    server.release();
    await blocker;
    const { calls } = p.stats();
    expect(calls.failedBy).toEqual({ ERR_REMOTE: 1, ERR_TIMEOUT: 1, ERR_POOL_EXHAUSTED: 1, ABORTED: 1 });
    expect(Object.values(calls.failedBy).reduce((a, b) => a + b, 0)).toBe(calls.failed);
    expect(calls).toMatchObject({ failed: 4, timedOut: 1, succeeded: 1 });
    calls.failedBy.ERR_REMOTE = 99; // a copy: the pool's own count is untouched
    expect(p.stats().calls.failedBy.ERR_REMOTE).toBe(1);
  });

  it("connections() snapshots are fresh plain objects with the spec's fields", async () => {
    const p = pool({ size: 1 });
    await p.call("echo", [1]);
    const [c] = p.connections();
    expect(Object.keys(c!).sort()).toEqual([
      "age",
      "attempt",
      "buffered",
      "exclusive",
      "id",
      "inFlight",
      "latency",
      "queued",
      "received",
      "sent",
      "state",
      "subscriptions",
      "tags",
      "ttl",
      "url",
    ]);
    expect(c).toMatchObject({ id: 1, state: "open", inFlight: 0, queued: 0, buffered: 0, sent: 1, received: 1, subscriptions: 0 });
    const before = c!.sent;
    await p.call("echo", [2]);
    expect(c!.sent).toBe(before);
  });

  it("credentials in URLs are redacted in snapshots, events and errors", async () => {
    const secretUrl = server.url.replace("ws://", "ws://alice:hunter2@") + "/?token=s3cr3t&room=a";
    const p = pool({ size: 1 }, secretUrl);
    const events: string[] = [];
    p.addEventListener("open", (e) => events.push(JSON.stringify(e.connection)));
    await p.ready();
    const text = JSON.stringify(p.connections()) + events.join("") + (await rejection(p.call("sleep", [1000], { timeout: 10 }))).message;
    expect(text).not.toMatch(/hunter2|s3cr3t|alice/);
    expect(p.connections()[0]!.url).toContain("token=***");
    expect(p.connections()[0]!.url).toContain("room=a");
  });

  it("idle fires once when the pool goes quiet, not once per call", async () => {
    const p = pool({ size: 2 });
    let idle = 0;
    p.addEventListener("idle", () => idle++);
    await Promise.all(Array.from({ length: 100 }, (_, i) => p.call("echo", [i])));
    await new Promise((r) => setTimeout(r, 20));
    expect(idle).toBe(1);
  });

  it("open events carry a connection snapshot", async () => {
    const p = pool({ size: 2 });
    const opened: ConnectionEvent[] = [];
    p.addEventListener("open", (e) => opened.push(e));
    await waitFor(() => opened.length === 2);
    expect(opened.map((e) => e.connection.state)).toEqual(["open", "open"]);
    expect(opened[0]).toBeInstanceOf(ConnectionEvent);
  });
});
