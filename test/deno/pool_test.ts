/**
 * muxpool in Deno, for real: a `Deno.serve` + `Deno.upgradeWebSocket` JSON-RPC
 * server on 127.0.0.1 (port 0) and a Pool from the TypeScript source using
 * Deno's own WebSocket. Deno's resource and op sanitizers are ON for every
 * test, so a timer or socket the pool leaves behind after `close()` fails it.
 * (Since Deno 2.8 they are off by default: `test()` below turns them on per
 * test, which no CLI flag or config can override.)
 *
 * Covers the subset every runtime runs (test/runtimes/smoke.test.mjs for
 * Node 20, Node 22 and Bun): concurrent calls, a RemoteError, a socket the
 * server closes (idempotent call re-sent, the other ConnectionLostError with
 * maybeExecuted), reconnect events, close() with code 1000 and nothing left.
 *
 * The last test stops reading on a raw TCP socket (after a hand-made
 * handshake) to check back-pressure against Deno's own `bufferedAmount`.
 *
 * Run: deno test --allow-net test/deno/
 */
import { ConnectionLostError, PoolClosedError, PoolExhaustedError, RemoteError, TimeoutError } from "../../src/mod.ts";
import { Pool } from "../../src/mod.ts";
import { assert, assertEquals, assertRejects, test, until } from "./helpers.ts";

interface RpcRequest {
  jsonrpc: "2.0";
  id?: string | number;
  method: string;
  params?: unknown;
}

interface TestServer {
  url: string;
  /** Sockets currently open on the server side. */
  readonly sockets: Set<WebSocket>;
  /** Requests (with an id) received so far. */
  requests: number;
  accepted: number;
  /** Close code of every server-side socket that closed, in order. */
  readonly closeCodes: number[];
  /** Closes every server-side socket (code 1012) and waits until they are closed. */
  killAll(): Promise<void>;
  close(): Promise<void>;
}

/** A JSON-RPC 2.0 server: echo, add, fail, sleep; everything else is -32601. */
function startServer(): Promise<TestServer> {
  const sockets = new Set<WebSocket>();
  const closeCodes: number[] = [];
  const closed = new Map<WebSocket, Promise<void>>();
  const timers = new Set<{ id: ReturnType<typeof setTimeout> | undefined; done: () => void }>();

  const reply = (ws: WebSocket, message: unknown): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  };

  const handle = (ws: WebSocket, req: RpcRequest): void => {
    if (req.id === undefined) return;
    const id = req.id;
    const params = Array.isArray(req.params) ? req.params : [];
    switch (req.method) {
      case "echo":
        return reply(ws, { jsonrpc: "2.0", id, result: params[0] ?? null });
      case "add":
        if (typeof params[0] !== "number" || typeof params[1] !== "number") {
          return reply(ws, { jsonrpc: "2.0", id, error: { code: -32602, message: "add expects two numbers" } });
        }
        return reply(ws, { jsonrpc: "2.0", id, result: params[0] + params[1] });
      case "fail":
        return reply(ws, {
          jsonrpc: "2.0",
          id,
          error: { code: params[0] ?? 1234, message: params[1] ?? "requested failure", data: { from: "deno" } },
        });
      case "sleep": {
        const ms = typeof params[0] === "number" ? params[0] : 0;
        const t = {
          id: undefined as ReturnType<typeof setTimeout> | undefined,
          done: () => {
            timers.delete(t);
            reply(ws, { jsonrpc: "2.0", id, result: ms });
          },
        };
        t.id = setTimeout(t.done, ms);
        timers.add(t);
        return;
      }
      default:
        return reply(ws, { jsonrpc: "2.0", id, error: { code: -32601, message: `Method not found: ${req.method}` } });
    }
  };

  const state: TestServer = {
    url: "",
    sockets,
    requests: 0,
    accepted: 0,
    closeCodes,
    async killAll() {
      const waits = [...sockets].map((ws) => {
        ws.close(1012, "killed by test");
        return closed.get(ws);
      });
      await Promise.all(waits);
    },
    async close() {
      for (const t of timers) clearTimeout(t.id);
      timers.clear();
      await state.killAll();
      await server.shutdown();
    },
  };

  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    if (req.headers.get("upgrade") !== "websocket") return new Response("websocket only", { status: 426 });
    const { socket: ws, response } = Deno.upgradeWebSocket(req);
    state.accepted++;
    sockets.add(ws);
    closed.set(
      ws,
      new Promise<void>((resolve) => {
        ws.onclose = (event) => {
          closeCodes.push(event.code);
          sockets.delete(ws);
          closed.delete(ws);
          resolve();
        };
      }),
    );
    ws.onerror = () => {};
    ws.onmessage = (event) => {
      const data = JSON.parse(String(event.data)) as RpcRequest | RpcRequest[];
      for (const req of Array.isArray(data) ? data : [data]) {
        if (req.id !== undefined) state.requests++;
        handle(ws, req);
      }
    };
    return response;
  });
  state.url = `ws://127.0.0.1:${server.addr.port}/rpc`;
  return Promise.resolve(state);
}

test("uses Deno's own WebSocket (no WebSocket option, nothing from npm)", async () => {
  assert(typeof WebSocket === "function", "Deno has a global WebSocket");
  const server = await startServer();
  const pool = new Pool(server.url, { size: 2 });
  try {
    await pool.ready();
    assertEquals(await pool.call("echo", ["deno"]), "deno", "echo over Deno's WebSocket");
    assertEquals(server.accepted, 2, "one server socket per pool slot");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("1,000 concurrent calls over 4 sockets all get their own answer", async () => {
  const server = await startServer();
  const pool = new Pool(server.url, { size: 4, timeout: 10_000 });
  try {
    const n = 1_000;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      calls.push(i % 2 === 0 ? pool.call("add", [i, i * 3]) : pool.call("echo", [{ i, s: `v${i}` }]));
    }
    const results = await Promise.all(calls);
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) assertEquals(results[i], i * 4, `add #${i}`);
      else assertEquals(results[i], { i, s: `v${i}` }, `echo #${i}`);
    }
    assertEquals(server.requests, n, "the server saw each call once");
    const stats = pool.stats();
    assertEquals(stats.calls.succeeded, n, "succeeded");
    assertEquals(stats.calls.failed, 0, "failed");
    assertEquals(stats.connections.total, 4, "sockets");
    // Calls were spread over more than one socket.
    const used = pool.connections().filter((c) => c.sent > 0).length;
    assert(used > 1, `calls spread over several sockets (used ${used})`);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("server-side socket close: the pool reconnects and later calls succeed", async () => {
  const server = await startServer();
  const pool = new Pool(server.url, { size: 3, timeout: 5_000, connectTimeout: 2_000, reconnect: { initialDelay: 10, maxDelay: 50 } });
  let reconnectEvents = 0;
  pool.addEventListener("reconnect", () => reconnectEvents++);
  try {
    await until(() => pool.stats().connections.open === 3, 3_000, "3 open sockets");
    assertEquals(await pool.call("add", [1, 2]), 3, "before the kill");

    // An idempotent call in flight when its socket dies is re-sent on a new one.
    const slow = pool.call("sleep", [30], { idempotent: true });
    await until(() => server.requests === 2, 2_000, "the sleep call to reach the server");
    await server.killAll();
    assertEquals(server.sockets.size, 0, "every server-side socket closed");

    await until(() => pool.stats().reconnects >= 3 && pool.stats().connections.open === 3, 5_000, "the pool to reconnect all 3 sockets");
    assert(reconnectEvents >= 3, `a reconnect event per socket (saw ${reconnectEvents})`);
    assertEquals(await slow, 30, "the idempotent call survived the kill");
    assert(pool.stats().calls.retried >= 1, "the idempotent call was re-sent");
    assertEquals(server.accepted, 6, "3 first sockets + 3 reconnected");

    const after = await Promise.all(Array.from({ length: 100 }, (_, i) => pool.call("add", [i, 1])));
    after.forEach((v, i) => assertEquals(v, i + 1, `add after reconnect #${i}`));
    assertEquals(pool.stats().calls.failed, 0, "no call failed");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a socket closed by the server: the idempotent call in flight is re-sent, the other rejects with ConnectionLostError (maybeExecuted)", async () => {
  const server = await startServer();
  const pool = new Pool(server.url, {
    size: 1,
    timeout: 5_000,
    connectTimeout: 2_000,
    heartbeat: false,
    reconnect: { initialDelay: 10, maxDelay: 50 },
  });
  try {
    await pool.ready();
    const idempotent = pool.call("sleep", [500], { idempotent: true });
    // Its handler goes on now: the call rejects while the test still waits for the kill.
    const plain = assertRejects(
      pool.call("sleep", [500]),
      (e) => e instanceof ConnectionLostError,
      "the non-idempotent call → ConnectionLostError",
    );
    await until(() => server.requests === 2, 2_000, "both calls to reach the server");
    await server.killAll();

    const lost = (await plain) as ConnectionLostError;
    assertEquals(lost.code, "ERR_CONNECTION_LOST", "code");
    assertEquals(lost.maybeExecuted, true, "it was written: the server may have run it");
    assertEquals(await idempotent, 500, "the idempotent call was re-sent and answered");
    assertEquals(server.requests, 3, "2 calls + 1 re-sent");
    const s = pool.stats();
    assertEquals(s.calls.retried, 1, "retried");
    assertEquals(s.calls.succeeded, 1, "succeeded");
    assertEquals(s.calls.failedBy, { ERR_CONNECTION_LOST: 1 }, "failedBy");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("errors: RemoteError carries the server's code; timeouts are TimeoutError", async () => {
  const server = await startServer();
  const pool = new Pool(server.url, { size: 1, timeout: 5_000 });
  try {
    const remote = await assertRejects(pool.call("fail", [4242, "nope"]), (e) => e instanceof RemoteError, "fail → RemoteError");
    assertEquals((remote as RemoteError).remoteCode, 4242, "remoteCode");
    assertEquals((remote as RemoteError).data, { from: "deno" }, "error data");
    assert((remote as RemoteError).message.includes("nope"), "message carries the server's message");

    const missing = await assertRejects(pool.call("noSuchMethod"), (e) => e instanceof RemoteError, "unknown method → RemoteError");
    assertEquals((missing as RemoteError).remoteCode, -32601, "method not found code");

    await assertRejects(pool.call("sleep", [300], { timeout: 40 }), (e) => e instanceof TimeoutError, "slow call → TimeoutError");

    // The socket is still good after errors.
    assertEquals(await pool.call("add", [20, 22]), 42, "call after errors");
    const s = pool.stats();
    assertEquals(s.calls.failed, 3, "failed counts the 3 rejected calls");
    assertEquals(s.calls.timedOut, 1, "timedOut");
    assertEquals(s.calls.succeeded, 1, "succeeded");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("stats() counts add up", async () => {
  const server = await startServer();
  const pool = new Pool(server.url, { size: 3, timeout: 5_000 });
  try {
    await until(() => pool.stats().connections.open === 3, 3_000, "3 open sockets");
    const ok = 250;
    const bad = 50;
    const settled = await Promise.allSettled([
      ...Array.from({ length: ok }, (_, i) => pool.call("echo", [i])),
      ...Array.from({ length: bad }, (_, i) => pool.call("fail", [1000 + i])),
    ]);
    assertEquals(settled.filter((r) => r.status === "fulfilled").length, ok, "fulfilled");
    assertEquals(settled.filter((r) => r.status === "rejected").length, bad, "rejected");

    const s = pool.stats();
    assertEquals(s.calls.succeeded, ok, "succeeded");
    assertEquals(s.calls.failed, bad, "failed");
    assertEquals(s.calls.succeeded + s.calls.failed, ok + bad, "succeeded + failed = calls made");
    assertEquals(s.calls.inFlight, 0, "nothing in flight");
    assertEquals(s.calls.queued, 0, "nothing queued");
    assertEquals(s.connections, { total: 3, open: 3, connecting: 0, draining: 0 }, "connections");
    assertEquals(s.available, 3, "all sockets available");
    assertEquals(s.reconnects, 0, "no reconnects");
    const conns = pool.connections();
    const sent = conns.reduce((a, c) => a + c.sent, 0);
    const received = conns.reduce((a, c) => a + c.received, 0);
    assertEquals(sent, ok + bad, "frames sent across sockets = calls");
    assertEquals(received, ok + bad, "frames received across sockets = replies");
    assert(s.latency.p50 >= 0 && s.latency.p99 >= s.latency.p50 && s.latency.max >= s.latency.p99, "latency percentiles are ordered");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("close(): waits for calls in flight, then refuses new ones; nothing leaks", async () => {
  const server = await startServer();
  const pool = new Pool(server.url, { size: 2, timeout: 5_000, reconnect: { initialDelay: 10, maxDelay: 50 } });
  await pool.ready();
  const inFlight = pool.call("sleep", [40]);
  const closing = pool.close();
  assertEquals(pool.state, "closing", "state while closing");
  await assertRejects(pool.call("echo", [1]), (e) => e instanceof PoolClosedError, "a call after close() → PoolClosedError");
  assertEquals(await inFlight, 40, "the call in flight finished");
  await closing;
  assertEquals(pool.state, "closed", "state after close");
  await until(() => server.sockets.size === 0, 2_000, "the server to see every socket closed");
  assertEquals(server.closeCodes, [1000, 1000], "the server saw each socket close with 1000");
  assertEquals(pool.stats().connections.total, 0, "no socket left in the pool");
  await server.close();
  // The sanitizers now check that no timer, socket or pending op is left.
});

/**
 * A WebSocket server that completes the handshake and then stops reading,
 * like a peer whose link is congested: what the client sends piles up in the
 * kernel buffers and then in Deno's `bufferedAmount`. `drain()` starts
 * reading (and discarding) again.
 */
function startSilentServer(): { url: string; received(): number; drain(): void; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let conn: Deno.Conn | undefined;
  let received = 0;
  let reading: Promise<void> | undefined;
  const accepted = (async () => {
    conn = await listener.accept();
    const head = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(head);
      if (n === null) return;
      text += new TextDecoder().decode(head.subarray(0, n));
    }
    const key = /sec-websocket-key:\s*(\S+)/i.exec(text)![1]!;
    const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await conn.write(
      new TextEncoder().encode(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
    );
  })();
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `ws://127.0.0.1:${port}/`,
    received: () => received,
    drain() {
      reading = (async () => {
        const buf = new Uint8Array(256 * 1024);
        try {
          for (let n = await conn!.read(buf); n !== null; n = await conn!.read(buf)) received += n;
        } catch {
          // closed under us: done
        }
      })();
    },
    async close() {
      await accepted;
      try {
        conn?.close();
      } catch {
        // already closed
      }
      await reading;
      listener.close();
    },
  };
}

test("back-pressure on Deno's bufferedAmount: a link that stops reading takes no more writes; notify throws at maxQueue", async () => {
  const server = startSilentServer();
  const maxBuffered = 256 * 1024;
  const pool = new Pool(server.url, { size: 1, heartbeat: false, maxBuffered, maxQueue: 20 });
  try {
    await pool.ready({ timeout: 5_000 });
    const payload = "x".repeat(64 * 1024);
    let accepted = 0;
    let refused: unknown;
    for (let i = 0; i < 2_000; i++) {
      try {
        pool.notify("log", [payload]);
        accepted++;
      } catch (error) {
        refused = error;
        break;
      }
    }
    assert(refused instanceof PoolExhaustedError, `notify refused with PoolExhaustedError (got ${String(refused)} after ${accepted})`);
    const [socket] = pool.connections();
    assertEquals(socket!.queued, 20, "the rest waits in the queue, up to maxQueue");
    assert(
      socket!.buffered >= maxBuffered && socket!.buffered < maxBuffered + 64 * 1024 + 64,
      `buffered ${socket!.buffered}: writing stopped at the mark`,
    );
    assert(accepted < 2_000, "the loop was stopped, not buffered in memory");
    server.drain();
    await until(
      () => pool.stats().calls.queued === 0 && pool.connections()[0]!.buffered === 0,
      10_000,
      "the queue to flush once the link drains",
    );
    await until(() => server.received() >= accepted * 64 * 1024, 10_000, "every accepted notification on the wire");
  } finally {
    const closing = pool.close({ timeout: 1_000 });
    await server.close(); // the pool's close frame gets no answer: the TCP close ends it
    await closing;
  }
});
