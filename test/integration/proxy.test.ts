import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect, createServer } from "node:net";
import { own, setup, startProxy } from "../fixtures/harness.ts";

// deno-lint-ignore no-explicit-any -- a raw JSON-RPC frame; tests read whichever fields it has
type Msg = any;

interface Conn {
  ws: WebSocket;
  closed: Promise<number>;
  call(method: string, params?: unknown, ms?: number): Promise<Msg>;
}

let nextId = 1;

/** A raw ws client, terminated (no close handshake) after the test. */
function open(url: string): Promise<Conn> {
  const ws = own(new WebSocket(url), (ws) => ws.terminate());
  ws.on("error", () => {});
  const pending = new Map<number, (m: Msg) => void>();
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString());
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  const conn: Conn = {
    ws,
    closed,
    call(method, params, ms = 2000) {
      const id = nextId++;
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`no reply to ${method} within ${ms} ms`));
        }, ms);
        pending.set(id, (m) => {
          clearTimeout(t);
          resolve(m);
        });
      });
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(conn));
    ws.once("close", () => reject(new Error("closed before open")));
  });
}

/** Resolves true when a pong arrives within ms. */
function pinged(ws: WebSocket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onPong = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    const t = setTimeout(() => {
      ws.off("pong", onPong);
      resolve(false);
    }, ms);
    ws.once("pong", onPong);
    ws.ping();
  });
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });
}

describe("fault proxy", () => {
  it("forwards WebSocket traffic and lists pairs in open order", async () => {
    const { server, proxy } = await setup({ proxy: true });
    expect(proxy.port).toBeGreaterThan(0);
    expect(proxy.port).not.toBe(server.port);
    expect(proxy.url("/x")).toBe(`ws://127.0.0.1:${proxy.port}/x`);
    const a = await open(proxy.url());
    const b = await open(proxy.url());
    expect((await a.call("add", [2, 3])).result).toBe(5);
    expect((await b.call("echo", ["hi"])).result).toBe("hi");
    const list = proxy.connections();
    expect(list).toHaveLength(2);
    expect(list[0]!.id).toBeLessThan(list[1]!.id);
    expect(list[0]!.bytesUp).toBeGreaterThan(0);
    expect(list[0]!.bytesDown).toBeGreaterThan(0);
    expect(server.connections()).toHaveLength(2);
    // the admin path goes through too
    const admin = await open(proxy.url("/admin"));
    expect(admin.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("cut gives the client a 1006 close and the server loses the socket", async () => {
    const { server, proxy } = await setup({ proxy: true });
    const a = await open(proxy.url());
    const b = await open(proxy.url());
    await until(() => server.connections().length === 2);
    expect(proxy.cut()).toBe(true); // the oldest: a
    expect(await a.closed).toBe(1006);
    await until(() => server.connections().length === 1);
    expect(proxy.connections()).toHaveLength(1);
    expect((await b.call("ping")).result).toBe("pong");
    expect(proxy.cut(9999)).toBe(false);
    const c = await open(proxy.url());
    expect(proxy.cutAll()).toBe(2);
    expect(await b.closed).toBe(1006);
    expect(await c.closed).toBe(1006);
    await until(() => server.connections().length === 0);
  });

  it("cut with a TCP reset also gives 1006", async () => {
    const { proxy } = await setup({ proxy: true });
    const a = await open(proxy.url());
    expect(proxy.cut(undefined, "rst")).toBe(true);
    expect(await a.closed).toBe(1006);
  });

  it("stall: ping unanswered and calls hang while TCP stays open; unstall forwards new bytes", async () => {
    const { server, proxy } = await setup({ proxy: true });
    const a = await open(proxy.url());
    const b = await open(proxy.url());
    expect(await pinged(a.ws, 500)).toBe(true);
    const [first] = proxy.connections();
    expect(first).toBeDefined();
    const id = first!.id;
    expect(proxy.stall(id)).toBe(true);
    expect(proxy.connections()[0]?.stalled).toBe(true);
    expect(await pinged(a.ws, 250)).toBe(false);
    await expect(a.call("ping", undefined, 150)).rejects.toThrow(/no reply/);
    // server → client direction is stalled as well
    server.notifyAll("hello");
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    expect(server.connections()).toHaveLength(2);
    expect(proxy.connections()[0]?.bytesDropped).toBeGreaterThan(0);
    // the other pair is unaffected
    expect((await b.call("ping")).result).toBe("pong");
    expect(proxy.unstall()).toBe(1);
    // bytes sent during the stall were discarded, new traffic flows
    expect((await a.call("echo", ["after"])).result).toBe("after");
    expect(await pinged(a.ws, 500)).toBe(true);
    // stallAll + cut of a stalled pair
    expect(proxy.stallAll()).toBe(2);
    expect(await pinged(b.ws, 150)).toBe(false);
    proxy.cut(id);
    expect(await a.closed).toBe(1006);
  });

  it("a side closing during a stall is hidden until unstall", async () => {
    const { server, proxy } = await setup({ proxy: true });
    const a = await open(proxy.url());
    proxy.stall();
    server.killAll();
    let closed = false;
    void a.closed.then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 150));
    expect(closed).toBe(false);
    expect(proxy.connections()).toHaveLength(1);
    proxy.unstall();
    expect(await a.closed).toBe(1006);
    expect(proxy.connections()).toHaveLength(0);
  });

  it("delay adds latency both ways and keeps order", async () => {
    const { proxy } = await setup({ proxy: true });
    const a = await open(proxy.url());
    let t0 = Date.now();
    await a.call("ping");
    const base = Date.now() - t0;
    expect(base).toBeLessThan(100);
    proxy.delay(80);
    t0 = Date.now();
    await a.call("ping");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(155);
    const order: number[] = [];
    a.ws.on("message", (d) => order.push(JSON.parse(d.toString()).result));
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.call("echo", [i])));
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    proxy.delay(0);
    t0 = Date.now();
    await a.call("ping");
    expect(Date.now() - t0).toBeLessThan(155); // below the 2 x 80 ms the delay added
  });

  it("refuse destroys new connections while on", async () => {
    const { server, proxy } = await setup({ proxy: true });
    proxy.refuse(true);
    await expect(open(proxy.url())).rejects.toThrow();
    expect(proxy.connections()).toHaveLength(0);
    expect(server.stats.connectionsAccepted).toBe(0);
    proxy.refuse(false);
    const a = await open(proxy.url());
    expect((await a.call("ping")).result).toBe("pong");
  });

  it("a dead target closes the client side", async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", () => r()));
    const addr = tmp.address();
    const deadPort = addr && typeof addr === "object" ? addr.port : 0;
    await new Promise<void>((r) => tmp.close(() => r()));
    const proxy = await startProxy(deadPort);
    await expect(open(proxy.url())).rejects.toThrow();
    await until(() => proxy.connections().length === 0);
  });

  it("close releases the port and cuts live pairs", async () => {
    const { proxy } = await setup({ proxy: true });
    const a = await open(proxy.url());
    proxy.stall();
    await proxy.close();
    await proxy.close(); // idempotent
    expect(await a.closed).toBe(1006);
    expect(await tcpConnect(proxy.port)).toBe("ECONNREFUSED");
  });
});
