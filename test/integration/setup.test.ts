/**
 * Issue 12, item 3: the `setup` step every new socket runs before it takes
 * calls (first connect, reconnect, TTL replacement, reload). A small ws
 * JSON-RPC server records, per connection, the order of what it received,
 * so the test can check that `login` came first and nothing else was sent
 * before its reply.
 */
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocket as WsWebSocket, WebSocketServer } from "ws";
import { own, ownServer } from "../fixtures/harness.ts";
import { collectEvents, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import { ConnectError, Pool, type PoolErrorEvent, type PoolOptions, RemoteError, TimeoutError } from "../../src/mod.ts";

interface Conn {
  socket: WsWebSocket;
  /** methods in the order they arrived */
  methods: string[];
  /** methods that arrived before `login` was answered */
  beforeLogin: string[];
  loggedIn: boolean;
}

/** A JSON-RPC server whose `login` answers after `loginDelay` ms, with an error while `refuseLogins` > 0. */
async function loginServer(options: { loginDelay?: number } = {}) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const state = { conns: [] as Conn[], refuseLogins: 0, loginDelay: options.loginDelay ?? 20 };
  wss.on("connection", (socket) => {
    const conn: Conn = { socket, methods: [], beforeLogin: [], loggedIn: false };
    state.conns.push(conn);
    socket.on("message", (data) => {
      const m = JSON.parse(String(data)) as { id?: string; method: string; params?: unknown[] };
      conn.methods.push(m.method);
      if (!conn.loggedIn && m.method !== "login") conn.beforeLogin.push(m.method);
      const reply = (body: object): void => socket.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, ...body }));
      if (m.method === "login") {
        setTimeout(() => {
          if (state.refuseLogins > 0) {
            state.refuseLogins--;
            return reply({ error: { code: 4001, message: "bad token" } });
          }
          conn.loggedIn = true;
          reply({ result: true });
        }, state.loginDelay);
      } else if (m.id !== undefined) {
        reply(conn.loggedIn ? { result: m.params?.[0] ?? null } : { error: { code: 4003, message: "log in first" } });
      }
    });
  });
  const port = (wss.address() as AddressInfo).port;
  ownServer(wss, (s) =>
    new Promise<void>((resolve) => {
      for (const c of s.clients) c.terminate();
      s.close(() => resolve());
    }));
  return { url: `ws://127.0.0.1:${port}`, state };
}

function pool(url: string, options: PoolOptions): Pool {
  return own(
    new Pool(url, { heartbeat: false, reconnect: { initialDelay: 5, maxDelay: 20 }, WebSocket: WsWebSocket as never, ...options }),
  );
}

const login: PoolOptions["setup"] = async (connection) => {
  await connection.call("login", ["token"]);
};

describe("setup", () => {
  it("runs before any other frame on every new socket: first connect, reconnect, TTL replacement and reload", async () => {
    const { url, state } = await loginServer();
    const p = pool(url, { size: 2, setup: login, ttl: 400 });
    // Calls made at once wait for setup, as for a socket still connecting.
    const early = await Promise.all(Array.from({ length: 20 }, (_, i) => p.call("echo", [i])));
    expect(early).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const c of state.conns.slice()) c.socket.terminate(); // reconnects
    await waitFor(() => p.stats().connections.open === 2 && state.conns.length >= 4, 2_000, "reconnected");
    await waitFor(() => p.stats().expired >= 2, 2_000, "TTL replacements");
    p.update({ ttl: 0 });
    await waitFor(() => p.stats().connections.open === 2 && p.stats().connections.total === 2, 2_000, "replacements set up");
    await p.reload();
    expect(await Promise.all([1, 2, 3].map((i) => p.call("echo", [i])))).toEqual([1, 2, 3]);
    expect(state.conns.length).toBeGreaterThanOrEqual(8); // 2 + 2 reconnects + 2 replacements + 2 reloaded
    for (const c of state.conns) {
      expect(c.methods[0], "login first").toBe("login");
      expect(c.beforeLogin, "nothing else before login was answered").toEqual([]);
    }
  });

  it("the socket's open event comes after setup, and its calls go through the handle before the calls waiting", async () => {
    const { url, state } = await loginServer({ loginDelay: 60 });
    const seen: string[] = [];
    const p = pool(url, {
      size: 1,
      setup: async (connection) => {
        seen.push(`setup on socket ${connection.id}`);
        await connection.call("login", ["token"]);
        seen.push(`whoami: ${await connection.call("echo", ["me"])}`);
      },
    });
    p.addEventListener("open", (e) => seen.push(`open ${e.connection.id}`));
    const waiting = p.call("echo", ["waiting"]);
    expect(await waiting).toBe("waiting");
    expect(seen).toEqual(["setup on socket 1", "whoami: me", "open 1"]);
    expect(state.conns[0]!.methods).toEqual(["login", "echo", "echo"]);
  });

  it("a setup that fails is a failed connect attempt: a ConnectError event with the cause, backoff, and calls wait for a setup that works", async () => {
    const { url, state } = await loginServer();
    state.refuseLogins = 2;
    const p = pool(url, { size: 1, setup: login });
    const errors: PoolErrorEvent[] = [];
    p.addEventListener("error", (e) => errors.push(e));
    const log = collectEvents(p, ["reconnect", "open"]);
    expect(await p.call("echo", ["after two refusals"], { timeout: 3_000 })).toBe("after two refusals");
    expect(errors.map((e) => e.error.constructor.name)).toEqual(["ConnectError", "ConnectError"]);
    const e = errors[0]!.error as ConnectError;
    expect(e).toBeInstanceOf(ConnectError);
    expect(e.message).toMatch(/socket 1: setup failed: bad token/);
    expect(e.cause).toBeInstanceOf(RemoteError);
    expect(log.of("reconnect").map((r) => r.attempt)).toEqual([1, 2]);
    // The reason says why, so that "last: …" in a NoConnectionError or ready()'s TimeoutError does too.
    for (const r of log.of("reconnect")) {
      expect(r.reason).toMatch(/^setup failed: bad token \(remote error 4001, call \d+ \("login"\) on socket 1\)$/);
    }
    expect(log.count("open")).toBe(1);
    expect(state.conns.length).toBe(3);
    for (const c of state.conns) expect(c.beforeLogin).toEqual([]);
  });

  it("a setup that outlasts connectTimeout is a failed attempt too; a handle used after setup ended is refused", async () => {
    const { url } = await loginServer();
    let calls = 0;
    let kept: Parameters<NonNullable<PoolOptions["setup"]>>[0] | undefined;
    const p = pool(url, {
      size: 1,
      connectTimeout: 200,
      setup: async (connection) => {
        kept = connection;
        if (++calls === 1) await sleep(400); // too slow the first time
        await connection.call("login", ["token"]);
      },
    });
    const log = collectEvents(p, ["reconnect", "error"]);
    expect(await p.call("echo", [1], { timeout: 3_000 })).toBe(1);
    expect(log.of("reconnect")[0]!.reason).toBe("setup not done within connectTimeout (200 ms)");
    // As for a setup that throws: a ConnectError event, its cause a TimeoutError.
    const [e] = log.of("error").map((x) => x.error as ConnectError);
    expect(e).toBeInstanceOf(ConnectError);
    expect(e!.message).toBe("socket 1: setup failed: setup not done within connectTimeout (200 ms)");
    expect(e!.cause).toBeInstanceOf(TimeoutError);
    expect(log.count("error")).toBe(1);
    await expect(kept!.call("echo", [2])).rejects.toMatchObject({ code: "ERR_NO_CONNECTION" });
  });

  it("refuses a setup that is not a function, naming it; update({ setup }) applies to sockets opened after", async () => {
    const { url, state } = await loginServer();
    expect(() => new Pool(url, { setup: "login" as never, WebSocket: WsWebSocket as never })).toThrow(/Expected `setup` to be a function/);
    const p = pool(url, { size: 1 });
    await expect(p.call("echo", [1])).rejects.toMatchObject({ code: "ERR_REMOTE", remoteCode: 4003 }); // not logged in
    p.update({ setup: login });
    const log = collectEvents(p, ["open"]);
    state.conns[0]!.socket.terminate(); // the next socket runs the new setup
    await waitFor(() => log.count("open") === 1, 2_000, "reopened");
    expect(await p.call("echo", [2])).toBe(2);
    expect(state.conns[1]!.methods[0]).toBe("login");
  });
});
