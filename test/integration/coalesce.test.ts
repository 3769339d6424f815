/**
 * Coalescing (issue 11, items 2 and 3).
 *
 * Transport level, always on with `ws`: the frames written in one tick leave
 * in a few TCP writes (the net.Socket under ws is corked for the tick and let
 * go at 512 bytes, then at as many bytes as already left), and a lone call is
 * not held past the tick. Counted on the client's net.Socket:
 * every chunk that reaches the kernel goes through its `_write` or `_writev`.
 *
 * Protocol level, `coalesce: "batch"`: the calls routed to one socket in one
 * tick go as one JSON-RPC batch frame, within `maxCalls` and `maxBytes`;
 * `batchable: false` calls go alone; each call settles on its own whether the
 * replies come as one array or as separate frames, with its own deadline,
 * abort and re-send rules.
 */
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { type WebSocket as WsSocket, WebSocketServer } from "ws";
import { own, ownServer, setup } from "../fixtures/harness.ts";
import { collectEvents, spyWebSocket, waitFor } from "../fixtures/pool-helpers.ts";
import { ConnectionLostError, InvalidConfigError, Pool, type PoolOptions, RemoteError, TimeoutError } from "../../src/mod.ts";

/** Counts the writes that reach `socket`'s handle (one per `_write` or `_writev`, each one syscall), and their bytes. */
function countWrites(socket: Socket): { readonly count: number; readonly sizes: number[] } {
  type Chunk = { chunk: { length: number } };
  const s = socket as Socket & { _write: (...a: never[]) => void; _writev: (...a: never[]) => void };
  const counter = { count: 0, sizes: [] as number[] };
  const count = (bytes: number): void => void (counter.count++, counter.sizes.push(bytes));
  const write = s._write.bind(s) as (...a: unknown[]) => void;
  const writev = s._writev.bind(s) as (...a: unknown[]) => void;
  s._write = (chunk: { length: number }, ...rest: unknown[]) => (count(chunk.length), write(chunk, ...rest));
  s._writev = (chunks: Chunk[], ...rest: unknown[]) => (count(chunks.reduce((n, c) => n + c.chunk.length, 0)), writev(chunks, ...rest));
  return counter;
}

/** A pool of one socket on the test server, with every frame it sends recorded; resolves once open. */
async function spiedPool(options: PoolOptions = {}) {
  const { server } = await setup();
  const spy = spyWebSocket();
  const pool = own(new Pool(server.url, { size: 1, heartbeat: false, WebSocket: spy.WebSocket, ...options }));
  await pool.ready();
  const socket = spy.instances[0]!;
  const sent = () => socket.frames.map((f) => JSON.parse(f) as unknown);
  return { server, pool, socket, raw: (socket as unknown as { _socket: Socket })._socket, sent };
}

describe("transport coalescing (ws): a tick's frames leave in a few writes", () => {
  it("the frames of one tick leave in writes of 512 bytes and up, each as large as those before it, and each is a frame of its own on the wire", async () => {
    const { pool, raw, sent, server } = await spiedPool();
    const writes = countWrites(raw);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.call("add", [i, 1])));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // The first write leaves once 512 bytes are held, so the server starts on it while the rest are written;
    // every later one but the tick's last carries at least the bytes that left before it: few writes per tick.
    const total = writes.sizes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(2_048);
    expect(writes.sizes[0]).toBeGreaterThanOrEqual(512);
    expect(writes.sizes[0]).toBeLessThan(512 + 100);
    writes.sizes.slice(1, -1).forEach((bytes, i) =>
      expect(bytes).toBeGreaterThanOrEqual(writes.sizes.slice(0, i + 1).reduce((a, b) => a + b))
    );
    expect(writes.count).toBeLessThanOrEqual(2 + Math.log2(total / 512));
    expect(sent()).toHaveLength(50); // 50 frames, each a plain request: nothing changed on the wire
    expect(server.connections()[0]!.received).toBe(50);
  });

  it("a lone call is written within its tick, not held for more", async () => {
    const { pool, raw } = await spiedPool();
    const writes = countWrites(raw);
    const reply = pool.call("add", [1, 2]);
    expect(raw.writableCorked).toBe(1); // corked for the tick...
    await new Promise((resolve) => setImmediate(resolve)); // ...and uncorked before the event loop polls for I/O
    expect(raw.writableCorked).toBe(0);
    expect(raw.writableLength).toBe(0);
    expect(writes.count).toBe(1);
    await expect(reply).resolves.toBe(3);
  });

  it("calls made in promise continuations of one tick, however deep, join its write", async () => {
    const { pool, raw } = await spiedPool();
    const writes = countWrites(raw);
    // Call i is made i microtask hops into the tick: after a plain queueMicrotask of the first call's.
    // Seven small frames: under the 512 bytes that would let the first ones leave early.
    const hops = (n: number): Promise<void> => n === 0 ? Promise.resolve() : hops(n - 1).then(() => {});
    const replies = Array.from({ length: 7 }, (_, i) => hops(i).then(() => pool.call("add", [i, i])));
    await expect(Promise.all(replies)).resolves.toEqual(Array.from({ length: 7 }, (_, i) => 2 * i));
    expect(writes.sizes[0]).toBeLessThan(512);
    expect(writes.count).toBe(1);
  });
});

describe('coalesce: "batch"', () => {
  it("refuses bad options by name", () => {
    const make = (coalesce: unknown, more: PoolOptions = {}) => () => new Pool("ws://127.0.0.1:1", { coalesce, ...more } as PoolOptions);
    expect(make("batched")).toThrow(InvalidConfigError);
    expect(make("batched")).toThrow(/`coalesce`/);
    expect(make({ mode: "batch", maxCalls: 1 })).toThrow(/`coalesce.maxCalls` to be an integer from 2/);
    expect(make({ mode: "batch", maxBytes: 0 })).toThrow(/`coalesce.maxBytes`/);
    expect(make({ mode: "tick" })).toThrow(/`coalesce.mode`/);
    expect(make({ mode: "batch", maxCall: 4 })).toThrow(/did you mean `coalesce.maxCalls`/);
    const noBatch = { encodeRequest: () => "", encodeNotification: () => "", decode: () => [] };
    expect(make("batch", { codec: noBatch })).toThrow(/encodeBatch/);
    const pool = own(new Pool("ws://127.0.0.1:1", { size: 1, reconnect: false, coalesce: { mode: "batch", maxCalls: 8 } }));
    expect(pool.options.coalesce).toEqual({ maxCalls: 8, maxBytes: 1_048_576 });
    expect(own(new Pool("ws://127.0.0.1:1", { size: 1, reconnect: false })).options.coalesce).toBe(false);
    const p = own(new Pool("ws://127.0.0.1:1", { size: 1, coalesce: "batch", reconnect: false }));
    return expect(p.call("add", [1, 2], { batchable: "no" as never })).rejects.toThrow(/`batchable` to be a boolean/);
  });

  it("the calls of one tick go as one batch frame; each settles with its own result", async () => {
    const { pool, sent } = await spiedPool({ coalesce: "batch" });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.call("add", [i, 100])));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i + 100));
    const frames = sent();
    expect(frames).toHaveLength(1);
    const batch = frames[0] as { id: string; method: string; params: number[] }[];
    expect(batch).toHaveLength(20);
    expect(new Set(batch.map((r) => r.id)).size).toBe(20);
    expect(batch.map((r) => r.params[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(pool.stats().calls).toMatchObject({ succeeded: 20, failed: 0, inFlight: 0 });
    expect(pool.stats().protocolErrors).toBe(0);
  });

  it("a lone call goes as a plain request, not a batch of one", async () => {
    const { pool, sent } = await spiedPool({ coalesce: "batch" });
    await expect(pool.call("add", [2, 3])).resolves.toBe(5);
    expect(sent()).toEqual([expect.objectContaining({ method: "add", params: [2, 3] })]);
  });

  it("pool.update() turns it on and off on a live pool, validated as in the constructor", async () => {
    const { pool, sent } = await spiedPool();
    const tick = (base: number) => Promise.all([1, 2, 3].map((i) => pool.call("add", [base, i])));
    await expect(tick(10)).resolves.toEqual([11, 12, 13]);
    expect(sent().filter(Array.isArray)).toHaveLength(0);
    pool.update({ coalesce: "batch" });
    await expect(tick(20)).resolves.toEqual([21, 22, 23]);
    expect(sent().filter(Array.isArray)).toHaveLength(1);
    expect(() => pool.update({ coalesce: "batches" as never })).toThrow(InvalidConfigError);
    pool.update({ coalesce: false });
    await expect(tick(30)).resolves.toEqual([31, 32, 33]);
    expect(sent()).toHaveLength(3 + 1 + 3);
  });

  it("maxCalls caps each frame", async () => {
    const { pool, sent } = await spiedPool({ coalesce: { mode: "batch", maxCalls: 8 } });
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool.call("add", [i, 0])));
    expect(sent().map((f) => (f as unknown[]).length)).toEqual([8, 8, 4]);
  });

  it("maxBytes caps each frame's UTF-8 bytes, and maxRequestSize does too", async () => {
    for (const options of [{ coalesce: { mode: "batch", maxBytes: 400 } }, { coalesce: "batch", maxRequestSize: 400 }] as PoolOptions[]) {
      const { pool, socket } = await spiedPool(options);
      const params = (i: number) => [`é-${i}-${"x".repeat(40)}`]; // é: 2 bytes in UTF-8, 1 UTF-16 unit
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => pool.call("echo", params(i))));
      expect(results).toEqual(Array.from({ length: 30 }, (_, i) => params(i)[0]));
      const sizes = socket.frames.map((f) => Buffer.byteLength(f));
      expect(Math.max(...sizes)).toBeLessThanOrEqual(400);
      expect(sizes.length).toBeGreaterThan(3);
      expect(sizes.length).toBeLessThan(30); // still batched
      const requests = socket.frames.flatMap((f) => [JSON.parse(f)].flat() as { params: string[] }[]);
      expect(requests.map((r) => r.params[0]).sort()).toEqual(results.slice().sort());
    }
  });

  it("a batchable: false call goes in a frame of its own; notifications and pool.batch() are not merged", async () => {
    const { pool, sent } = await spiedPool({ coalesce: "batch" });
    const replies = [
      pool.call("add", [1, 1]),
      pool.call("sleep", [5], { batchable: false }),
      pool.call("add", [2, 2]),
      pool.batch([{ method: "add", params: [3, 3] }]),
    ];
    pool.notify("log", ["hello"]);
    replies.push(pool.call("add", [4, 4]));
    const out = await Promise.all(replies);
    expect(out).toEqual([2, 5, 4, [{ status: "fulfilled", value: 6 }], 8]);
    const frames = sent() as ({ method: string } | { method: string; params: number[] }[])[];
    const arrays = frames.filter(Array.isArray) as { method: string; params: number[] }[][];
    // The sleep call, the pool.batch frame and the notification went at once, each alone; the three adds together.
    expect(frames.filter((f) => !Array.isArray(f)).map((f) => (f as { method: string }).method).sort()).toEqual(["log", "sleep"]);
    expect(arrays.map((a) => a.map((r) => r.params[0]))).toEqual([[3], [1, 2, 4]]);
  });

  it("pinned calls (withConnection) keep their order and are not merged", async () => {
    const { pool, sent } = await spiedPool({ coalesce: "batch" });
    const out = await pool.withConnection((c) => Promise.all([c.call("incr"), c.call("incr"), c.call("incr")]));
    expect(out).toEqual([1, 2, 3]);
    expect(sent().every((f) => !Array.isArray(f))).toBe(true);
  });

  it("replies as separate frames (in any order) and as one array both settle each call", async () => {
    let mode: "separate" | "array" = "separate";
    const frames: unknown[] = [];
    const wss = ownServer(new WebSocketServer({ host: "127.0.0.1", port: 0 }), (w) =>
      new Promise<void>((r) => {
        for (const c of w.clients) c.terminate();
        w.close(() => r());
      }));
    await new Promise((r) => wss.once("listening", r));
    wss.on("connection", (ws: WsSocket) =>
      ws.on("message", (data) => {
        const m = JSON.parse(String(data)) as { id: string; params: number[] } | { id: string; params: number[] }[];
        frames.push(m);
        const reply = (r: { id: string; params: number[] }) => ({ jsonrpc: "2.0", id: r.id, result: r.params[0]! * 10 });
        if (!Array.isArray(m)) ws.send(JSON.stringify(reply(m)));
        else if (mode === "array") ws.send(JSON.stringify(m.map(reply)));
        else for (const r of m.slice().reverse()) ws.send(JSON.stringify(reply(r)));
      }));
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const pool = own(new Pool(url, { size: 1, heartbeat: false, coalesce: "batch" }));
    await pool.ready();
    for (const m of ["separate", "array"] as const) {
      mode = m;
      frames.length = 0;
      const out = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.call("times10", [i])));
      expect(out, m).toEqual(Array.from({ length: 12 }, (_, i) => i * 10));
      expect(frames, m).toHaveLength(1);
      expect(frames[0], m).toHaveLength(12);
    }
    expect(pool.stats().protocolErrors).toBe(0);
  });

  it("one call of a batch timing out or aborted leaves the others alone; one aborted before the frame left is never sent", async () => {
    const { pool, sent, server } = await spiedPool({ coalesce: "batch" });
    const errors = collectEvents(pool, ["error"]);
    const early = new AbortController();
    const late = new AbortController();
    const calls = [
      pool.call("sleep", [150], { timeout: 40 }), // times out; the server holds the whole batch reply until it is done
      pool.call("add", [1, 1]),
      pool.call("record", ["aborted-early"], { signal: early.signal }),
      pool.call("record", ["aborted-late"], { signal: late.signal }),
      pool.call("add", [2, 2]),
    ];
    early.abort(new Error("changed my mind"));
    const settled = Promise.allSettled(calls);
    await waitFor(() => sent().length === 1, 1_000, "the batch frame");
    late.abort(new Error("too late"));
    const [timedOut, a, earlyOut, lateOut, b] = await settled;
    expect(timedOut).toMatchObject({ status: "rejected", reason: expect.any(TimeoutError) });
    expect((timedOut as PromiseRejectedResult).reason.maybeExecuted).toBe(true);
    expect(earlyOut).toMatchObject({ status: "rejected", reason: { message: "changed my mind" } });
    expect(lateOut).toMatchObject({ status: "rejected", reason: { message: "too late" } });
    expect([a, b]).toEqual([{ status: "fulfilled", value: 2 }, { status: "fulfilled", value: 4 }]);
    // The frame left without the call aborted before it: that one never reached the server.
    expect((sent()[0] as { method: string; params: unknown[] }[]).map((r) => r.params[0])).toEqual([150, 1, "aborted-late", 2]);
    expect(server.executions.get("aborted-early")).toBeUndefined();
    expect(server.executions.get("aborted-late")).toBe(1);
    // The late replies of the two calls that left the batch are reported, nothing else.
    await waitFor(() => errors.count("error") === 2, 1_000, "two late replies reported");
    expect(errors.of("error").every((e) => /unknown or already settled id/.test(e.error.message))).toBe(true);
    expect(pool.stats().calls).toMatchObject({ inFlight: 0, queued: 0, timedOut: 1, succeeded: 2 });
  });

  it("a socket killed with a batch in flight: non-idempotent calls reject (maybeExecuted) and never run twice; idempotent ones are re-sent once", async () => {
    const { pool, sent, server } = await spiedPool({
      coalesce: "batch",
      reconnect: { initialDelay: 0, maxDelay: 10, jitter: false },
    });
    server.hold();
    const tokens = Array.from({ length: 10 }, (_, i) => `kill-${i}`);
    const idempotent = (i: number) => i % 2 === 0;
    const settled = Promise.allSettled(tokens.map((t, i) => pool.call("record", [t], { idempotent: idempotent(i) })));
    await waitFor(() => tokens.every((t) => server.executions.get(t) === 1), 2_000, "the batch executed");
    expect(sent()).toHaveLength(1);
    server.killAll();
    server.release(); // to sockets already gone: these replies never arrive
    const out = await settled;
    out.forEach((o, i) => {
      if (idempotent(i)) expect(o, tokens[i]).toEqual({ status: "fulfilled", value: 2 }); // ran twice: sent, re-sent once
      else {
        expect(o, tokens[i]).toMatchObject({ status: "rejected", reason: expect.any(ConnectionLostError) });
        expect((o as PromiseRejectedResult).reason.maybeExecuted).toBe(true);
      }
    });
    await new Promise((r) => setTimeout(r, 50));
    tokens.forEach((t, i) => expect(server.executions.get(t), t).toBe(idempotent(i) ? 2 : 1));
    expect(pool.stats().calls).toMatchObject({ retried: 5, inFlight: 0, queued: 0 });
  });

  it("calls held for a frame whose socket's close began in that tick are never written there: they move, not maybe executed", async () => {
    const { server } = await setup();
    const spy = spyWebSocket();
    const pool = own(new Pool(server.url, { size: 2, heartbeat: false, coalesce: "batch", WebSocket: spy.WebSocket }));
    await waitFor(() => pool.stats().connections.open === 2, 2_000, "two sockets open");
    const replies = Array.from({ length: 10 }, (_, i) => pool.call("record", [`held-${i}`]));
    const [dying, live] = spy.instances as [typeof spy.instances[0], typeof spy.instances[0]];
    dying.terminate(); // in the same tick: its calls are still held
    await expect(Promise.all(replies)).resolves.toEqual(Array.from({ length: 10 }, () => 1));
    expect(dying.frames).toEqual([]);
    expect(live.frames.length).toBeGreaterThan(0);
    expect(pool.stats().calls).toMatchObject({ retried: 0, failed: 0, succeeded: 10 });
  });

  it("a server that refuses the batch frame (one error, id null): as for pool.batch(), its calls reject with that RemoteError, idempotent ones are sent again alone; the socket stops batching", async () => {
    const { pool, sent, server } = await spiedPool({ coalesce: "batch" });
    const errors = collectEvents(pool, ["error"]);
    const tokens = Array.from({ length: 6 }, (_, i) => `refused-${i}`);
    const idempotent = (i: number) => i % 2 === 0;
    // `refuseBatch` makes the test server answer the whole batch as a server without batch support does.
    const out = await Promise.allSettled(
      tokens.map((t, i) => pool.call("record", [t, { refuseBatch: true }], { idempotent: idempotent(i) })),
    );
    out.forEach((o, i) => {
      if (idempotent(i)) expect(o, tokens[i]).toEqual({ status: "fulfilled", value: 1 });
      else {
        expect(o, tokens[i]).toMatchObject({ status: "rejected", reason: expect.any(RemoteError) });
        expect((o as PromiseRejectedResult).reason).toMatchObject({ code: "ERR_REMOTE", remoteCode: -32600 });
      }
    });
    // The refused frame ran nothing: the idempotent calls ran once, alone; the others never.
    tokens.forEach((t, i) => expect(server.executions.get(t), t).toBe(idempotent(i) ? 1 : undefined));
    const frames = sent();
    expect(Array.isArray(frames[0])).toBe(true); // the refused batch
    expect(frames.slice(1).every((f) => !Array.isArray(f))).toBe(true); // then each idempotent call alone
    expect(frames).toHaveLength(1 + 3);
    expect(errors.of("error").map((e) => e.error.message)).toEqual([
      expect.stringMatching(
        /refused a batch frame \(Invalid Request: batches are not supported\): its 6 calls fail with it, idempotent ones are sent again; no more batches here/,
      ),
    ]);
    // From now on this socket writes every call alone.
    await Promise.all([pool.call("add", [1, 2]), pool.call("add", [3, 4])]);
    expect(sent().slice(frames.length).every((f) => !Array.isArray(f))).toBe(true);
    expect(pool.stats().calls).toMatchObject({ succeeded: 5, failed: 3, failedBy: { ERR_REMOTE: 3 }, inFlight: 0 });
  });

  it("a null-id error inside a batch's reply array (one entry the server could not read) re-sends nothing and keeps batching", async () => {
    const { pool, sent, server } = await spiedPool({ coalesce: "batch" });
    const errors = collectEvents(pool, ["error"]);
    // `null-id`: the test server answers that entry with an error of id null, in its place in the reply array.
    const out = await Promise.allSettled([
      pool.call("record", ["arr-0"]),
      pool.call("record", ["arr-1", { reply: "null-id" }], { timeout: 300 }),
      pool.call("record", ["arr-2"]),
    ]);
    expect(out[0]).toEqual({ status: "fulfilled", value: 1 });
    expect(out[2]).toEqual({ status: "fulfilled", value: 1 });
    expect(out[1]).toMatchObject({ status: "rejected", reason: expect.any(TimeoutError) });
    for (const t of ["arr-0", "arr-1", "arr-2"]) expect(server.executions.get(t), t).toBe(1);
    expect(errors.of("error").every((e) => !/refused a batch frame/.test(e.error.message))).toBe(true);
    const before = sent().length;
    await Promise.all([pool.call("add", [1, 2]), pool.call("add", [3, 4])]);
    expect(sent().slice(before)).toHaveLength(1); // still batching
  });

  it("a refusal that cannot be told apart from another waiting frame re-sends nothing: that frame's calls run once, the refused ones time out", async () => {
    const { pool, sent, server } = await spiedPool({ coalesce: "batch", timeout: 400 });
    const errors = collectEvents(pool, ["error"]);
    // Frame 1: accepted, answered after 150 ms. Frame 2 (a later tick): refused at once, while frame 1 still waits.
    const slow = ["slow-0", "slow-1"].map((t) => pool.call("record", [t, { sleep: 150 }]));
    await new Promise((r) => setTimeout(r, 20));
    const refused = ["ref-0", "ref-1"].map((t) => pool.call("record", [t, { refuseBatch: true }]).catch((e: unknown) => e));
    expect(await Promise.all(slow)).toEqual([1, 1]);
    const [a, b] = await Promise.all(refused);
    expect(a).toBeInstanceOf(TimeoutError);
    expect(b).toBeInstanceOf(TimeoutError);
    for (const t of ["slow-0", "slow-1"]) expect(server.executions.get(t), t).toBe(1);
    for (const t of ["ref-0", "ref-1"]) expect(server.executions.get(t), t).toBeUndefined();
    expect(errors.of("error").map((e) => e.error.message)).toEqual([
      expect.stringMatching(/refused a batch frame .*: nothing is sent again/),
    ]);
    const before = sent().length;
    await Promise.all([pool.call("add", [1, 2]), pool.call("add", [3, 4])]);
    expect(sent().slice(before).every((f) => !Array.isArray(f))).toBe(true);
  });
});
