/**
 * Subscriptions in Deno, for real: the Pool from the TypeScript source on
 * Deno's own WebSocket, against a `Deno.serve` JSON-RPC server on 127.0.0.1
 * (port 0) that speaks Ethereum's `eth_subscribe(newHeads)` /
 * `eth_subscription` / `eth_unsubscribe` like the Node test server
 * (test/fixtures/server.ts): one block number per tick to every live
 * subscription, the subscriptions live on it counted, sockets killed and the
 * server restarted on demand, replies delayed, and a `login` each socket
 * must call first.
 * Sanitizers on, as in pool_test.ts.
 *
 * Run: deno test --allow-net=127.0.0.1 test/deno/
 */
import { ConnectError, Pool, PoolClosedError, type PoolErrorEvent, RemoteError, type Subscription } from "../../src/mod.ts";
import { assert, assertEquals, test, until } from "./helpers.ts";

const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

interface Head {
  number: number;
}

interface SubServer {
  url: string;
  /** Subscriptions live now, and the ids of the sockets (in accept order, from 1) that carry them. */
  live(): number;
  carriers(): number[];
  /** `eth_unsubscribe` calls that ended a live subscription. */
  unsubscribes: number;
  /** The params of every `eth_subscribe`, in order. */
  readonly subscribeParams: unknown[];
  /** ms every reply waits. */
  latency: number;
  /** Sockets must `login` first; methods received before it are listed here (and refused). */
  requireLogin: boolean;
  readonly beforeLogin: string[];
  logins: number;
  /** The next `login` calls fail, one less each. */
  refuseLogins: number;
  accepted: number;
  /** Closes one server-side socket (1012) and waits until it is closed. */
  kill(id: number): Promise<void>;
  /** Closes every socket (1012) and stops listening; listens again on the same port after `downMs`. */
  restart(downMs: number): Promise<void>;
  close(): Promise<void>;
}

interface Socket {
  id: number;
  ws: WebSocket;
  loggedIn: boolean;
  closed: Promise<void>;
}

function startServer(tickMs = 10): SubServer {
  const sockets = new Map<number, Socket>();
  const subs = new Map<string, Socket>();
  const timers = new Set<number>();
  let ticker: number | undefined;
  let seq = 0;
  let nextSub = 1;
  let nextSocket = 1;

  const later = (ms: number, fn: () => void): void => {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const send = (s: Socket, message: unknown): void => {
    if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify(message));
  };
  const checkTicker = (): void => {
    if (subs.size === 0 && ticker !== undefined) {
      clearInterval(ticker);
      ticker = undefined;
    } else if (subs.size > 0 && ticker === undefined) {
      ticker = setInterval(() => {
        const n = ++seq;
        for (const [subscription, s] of subs) {
          send(s, { jsonrpc: "2.0", method: "eth_subscription", params: { subscription, result: { number: n } } });
        }
      }, tickMs);
    }
  };

  const handle = (s: Socket, req: { id?: number | string; method: string; params?: unknown[] }): void => {
    const params = Array.isArray(req.params) ? req.params : [];
    const reply = (body: object): void => later(state.latency, () => send(s, { jsonrpc: "2.0", id: req.id, ...body }));
    if (state.requireLogin && !s.loggedIn && req.method !== "login") {
      state.beforeLogin.push(req.method);
      return reply({ error: { code: -32001, message: "log in first" } });
    }
    switch (req.method) {
      case "login":
        if (state.refuseLogins > 0) {
          state.refuseLogins--;
          return reply({ error: { code: -32002, message: "bad token" } });
        }
        return later(20, () => {
          s.loggedIn = true;
          state.logins++;
          reply({ result: true });
        });
      case "eth_subscribe": {
        state.subscribeParams.push(req.params);
        const id = `0x${(nextSub++).toString(16)}`;
        subs.set(id, s);
        checkTicker();
        return reply({ result: id });
      }
      case "eth_unsubscribe": {
        const live = subs.get(String(params[0])) === s;
        if (live) {
          subs.delete(String(params[0]));
          state.unsubscribes++;
        }
        checkTicker();
        return reply({ result: live });
      }
      default:
        return reply({ error: { code: -32601, message: `Method not found: ${req.method}` } });
    }
  };

  const handler = (req: Request): Response => {
    if (req.headers.get("upgrade") !== "websocket") return new Response("websocket only", { status: 426 });
    const { socket: ws, response } = Deno.upgradeWebSocket(req);
    const s: Socket = { id: nextSocket++, ws, loggedIn: false, closed: Promise.resolve() };
    state.accepted++;
    sockets.set(s.id, s);
    s.closed = new Promise<void>((resolve) => {
      ws.onclose = () => {
        sockets.delete(s.id);
        for (const [id, c] of subs) if (c === s) subs.delete(id);
        checkTicker();
        resolve();
      };
    });
    ws.onerror = () => {};
    ws.onmessage = (event) => handle(s, JSON.parse(String(event.data)));
    return response;
  };
  const listen = (port: number) => Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, handler);
  let server = listen(0);
  const port = server.addr.port;
  const closeAll = (code: number): Promise<unknown> =>
    Promise.all([...sockets.values()].map((s) => {
      s.ws.close(code);
      return s.closed;
    }));

  const state: SubServer = {
    url: `ws://127.0.0.1:${port}/rpc`,
    live: () => subs.size,
    carriers: () => [...new Set([...subs.values()].map((s) => s.id))],
    unsubscribes: 0,
    subscribeParams: [],
    latency: 0,
    requireLogin: false,
    beforeLogin: [],
    logins: 0,
    refuseLogins: 0,
    accepted: 0,
    async kill(id) {
      const s = sockets.get(id);
      assert(s !== undefined, `socket ${id} is open on the server`);
      s.ws.close(1012, "killed by test");
      await s.closed;
    },
    async restart(downMs) {
      await closeAll(1012);
      await server.shutdown();
      await new Promise((r) => setTimeout(r, downMs));
      server = listen(port);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await closeAll(1001);
      subs.clear();
      checkTicker();
      await server.shutdown();
    },
  };
  return state;
}

const ETH = { unsubscribe: "eth_unsubscribe", notification: "eth_subscription" };

/** Reads `sub` in a for-await loop into `got`; `stop()` breaks out after the next event. */
function read(sub: Subscription<Head>): { got: number[]; stop(): Promise<unknown> } {
  const got: number[] = [];
  let stopping = false;
  const done = (async () => {
    try {
      for await (const head of sub) {
        got.push(head.number);
        if (stopping) break;
      }
      return "done";
    } catch (error) {
      return error;
    }
  })();
  return {
    got,
    stop: () => {
      stopping = true;
      return done;
    },
  };
}

test("subscriptions: kill the carrying socket → resubscribed, events keep increasing, params sees the last event; break → 0 live", async () => {
  const server = startServer();
  const pool = new Pool(server.url, { size: 2, heartbeat: false, timeout: 5_000, reconnect: { initialDelay: 10, maxDelay: 50 } });
  try {
    await until(() => pool.stats().connections.open === 2, 3_000, "2 open sockets");
    const seen: (Head | undefined)[] = [];
    let lastRead: number | undefined;
    let reader = { got: [] as number[] } as ReturnType<typeof read>;
    const sub = await pool.subscribe<Head>("eth_subscribe", (last?: Head) => {
      seen.push(last);
      lastRead = reader.got.at(-1);
      return ["newHeads", last?.number ?? null];
    }, { ...ETH, key: (h) => h.number });
    const moves: { from: number; to: number; gap: number }[] = [];
    sub.addEventListener("resubscribe", (e) => moves.push({ from: e.from, to: e.to, gap: e.gap }));
    reader = read(sub);
    await until(() => reader.got.length >= 5, 3_000, "5 events");
    assertEquals(server.live(), 1, "live on the server");
    await server.kill(server.carriers()[0]!);
    const at = reader.got.length;
    await until(() => moves.length === 1 && reader.got.length >= at + 5, 3_000, "the move and 5 more events");
    assert(moves[0]!.from !== moves[0]!.to, `moved to another socket: ${JSON.stringify(moves)}`);
    assert(increasing(reader.got), `increasing: ${reader.got.join(",")}`);
    assertEquals(server.live(), 1, "live on the server after the move");
    assertEquals(seen.length, 2, "params called at the subscribe and at the move");
    assertEquals(seen[0], undefined, "nothing delivered before the first subscribe");
    assertEquals(seen[1]?.number, lastRead, "the last event delivered before the move");
    assertEquals(server.subscribeParams, [["newHeads", null], ["newHeads", lastRead]], "the server got them");
    assertEquals(pool.stats().subscriptions.resubscribed, 1, "resubscribed");

    assertEquals(await reader.stop(), "done", "break ends the loop");
    await until(() => server.live() === 0, 2_000, "the server to have none live");
    assertEquals(server.unsubscribes, 1, "unsubscribed once");
    const s = pool.stats();
    assertEquals(s.subscriptions.active, 0, "active");
    assertEquals(s.subscriptions.unsubscribeFailed, 0, "unsubscribeFailed");
    assertEquals(pool.connections().reduce((n, c) => n + c.subscriptions, 0), 0, "no socket carries one");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("subscriptions: the server restarts: the subscription comes back once the pool reconnects, events keep increasing", async () => {
  const server = startServer();
  const pool = new Pool(server.url, { size: 2, heartbeat: false, timeout: 5_000, reconnect: { initialDelay: 20, maxDelay: 100 } });
  try {
    await until(() => pool.stats().connections.open === 2, 3_000, "2 open sockets");
    const sub = await pool.subscribe<Head>("eth_subscribe", ["newHeads"], { ...ETH, key: (h) => h.number });
    const gaps: number[] = [];
    sub.addEventListener("resubscribe", (e) => gaps.push(e.gap));
    const reader = read(sub);
    await until(() => reader.got.length >= 5, 3_000, "5 events");
    const accepted = server.accepted;
    await server.restart(150);
    const at = reader.got.length;
    await until(() => gaps.length === 1 && reader.got.length >= at + 5, 5_000, "the move and 5 more events");
    // The subscription may move to the first socket back before the second reconnects: wait for both.
    await until(() => server.accepted >= accepted + 2 && pool.stats().connections.open === 2, 3_000, "both sockets back");
    assert(gaps[0]! >= 100, `the gap covers the time the server was down: ${gaps[0]} ms`);
    assert(increasing(reader.got), `increasing: ${reader.got.join(",")}`);
    assertEquals(server.live(), 1, "live on the server");
    assertEquals(pool.stats().subscriptions.resubscribed, 1, "resubscribed");
    await pool.close();
    assertEquals(await reader.stop(), "done", "close ends the loop");
    assertEquals(server.live(), 0, "none live after close()");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("subscriptions: TTL rotation is make-before-break, no block missed or delivered twice (key); close() → 0 live", async () => {
  const server = startServer();
  const pool = new Pool(server.url, { size: 2, ttl: 300, heartbeat: false, timeout: 5_000 });
  try {
    server.latency = 30; // replies take 3 ticks: around each move both subscriptions deliver for a while
    const sub = await pool.subscribe<Head>("eth_subscribe", ["newHeads"], { ...ETH, key: (h) => h.number });
    const reader = read(sub);
    await until(() => reader.got.length >= 1, 2_000, "the first event");
    let minLive = Infinity;
    while (sub.stats().resubscribed < 3) {
      minLive = Math.min(minLive, server.live());
      await new Promise((r) => setTimeout(r, 3));
    }
    assertEquals(minLive, 1, "the server had it all along");
    const first = reader.got[0]!;
    assertEquals(reader.got, reader.got.map((_, i) => first + i), "every block number once, in order");
    assert(sub.stats().duplicatesDropped > 0, "the overlap of a move came twice and the key dropped it");
    await pool.close();
    assertEquals(await reader.stop(), "done", "close ends the loop");
    assertEquals(server.live(), 0, "none live after close()");
    assertEquals(pool.stats().subscriptions.unsubscribeFailed, 0, "unsubscribeFailed");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("subscriptions: close() while a subscribe is unconfirmed rejects it with PoolClosedError and unsubscribes it once confirmed", async () => {
  const server = startServer();
  const pool = new Pool(server.url, { size: 1, heartbeat: false, timeout: 5_000 });
  try {
    await pool.ready();
    server.latency = 100;
    const pending = pool.subscribe<Head>("eth_subscribe", ["newHeads"], ETH).then(() => "confirmed", (e: unknown) => e);
    await until(() => server.subscribeParams.length === 1, 2_000, "the subscribe to reach the server");
    await pool.close();
    const error = await pending;
    assert(error instanceof PoolClosedError, `PoolClosedError, got ${String(error)}`);
    assertEquals(error.code, "ERR_POOL_CLOSED", "code");
    assertEquals(server.unsubscribes, 1, "unsubscribed while its socket was open");
    assertEquals(server.live(), 0, "none live");
    assertEquals(pool.stats().subscriptions.unsubscribeFailed, 0, "unsubscribeFailed");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("subscriptions: setup (login) runs first on every new socket; a failing setup is a ConnectError with backoff", async () => {
  const server = startServer();
  server.requireLogin = true;
  const errors: PoolErrorEvent[] = [];
  const attempts: number[] = [];
  const pool = new Pool(server.url, {
    size: 1,
    heartbeat: false,
    timeout: 5_000,
    reconnect: { initialDelay: 20, maxDelay: 100 },
    setup: async (connection) => {
      await connection.call("login", ["token"]);
    },
  });
  pool.addEventListener("error", (e) => errors.push(e));
  pool.addEventListener("reconnect", (e) => attempts.push(e.attempt ?? 0));
  try {
    const sub = await pool.subscribe<Head>("eth_subscribe", ["newHeads"], { ...ETH, key: (h) => h.number });
    const reader = read(sub);
    await until(() => reader.got.length >= 3, 2_000, "3 events");
    server.refuseLogins = 2;
    await server.kill(server.carriers()[0]!);
    const at = reader.got.length;
    await until(() => sub.stats().resubscribed === 1 && reader.got.length >= at + 3, 5_000, "the move and 3 more events");
    assertEquals(server.beforeLogin, [], "nothing before login on any socket");
    assertEquals(server.logins, 2, "the first socket and the one after two refused logins");
    assertEquals(server.accepted, 4, "1 + 3 attempts after the kill");
    assertEquals(attempts, [1, 2, 3], "each failed setup one more attempt");
    assertEquals(errors.length, 2, "one error event per failed setup");
    for (const { error } of errors) {
      assert(error instanceof ConnectError, `ConnectError, got ${String(error)}`);
      assertEquals(error.code, "ERR_CONNECT", "code");
      assert(error.cause instanceof RemoteError, "its cause: the server's answer");
      assertEquals((error.cause as RemoteError).remoteCode, -32002, "remoteCode");
    }
    assert(increasing(reader.got), `increasing: ${reader.got.join(",")}`);
  } finally {
    await pool.close();
    await server.close();
  }
});
