import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect } from "node:net";
import { own, startServer } from "../fixtures/harness.ts";
import type { AdminState } from "../fixtures/server.ts";
import { waitFor } from "../fixtures/pool-helpers.ts";

// ───────────────────────────── raw ws client helper ─────────────────────────────

// deno-lint-ignore no-explicit-any -- a raw JSON-RPC frame; tests read whichever fields it has
type Msg = any;

class Client {
  readonly ws: WebSocket;
  readonly messages: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  private nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on("error", () => {});
    ws.on("message", (data) => {
      const text = data.toString();
      let m: Msg;
      try {
        m = JSON.parse(text);
      } catch {
        m = { raw: text };
      }
      const w = this.waiters.find((x) => x.pred(m));
      if (w !== undefined) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      } else {
        this.messages.push(m);
      }
    });
  }

  static open(url: string): Promise<Client> {
    const ws = new WebSocket(url);
    const c = new Client(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(c));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(x: unknown): void {
    this.ws.send(typeof x === "string" ? x : JSON.stringify(x));
  }

  /** First buffered or future message matching pred; rejects after ms. */
  next(pred: (m: Msg) => boolean = () => true, ms = 2000): Promise<Msg> {
    const i = this.messages.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.messages.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (m: Msg) => {
          clearTimeout(t);
          resolve(m);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no matching message within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Resolves true if no matching message arrives within ms. */
  async silent(pred: (m: Msg) => boolean = () => true, ms = 150): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Send a request and resolve with the whole response object. */
  call(method: string, params?: unknown, ms = 2000): Promise<Msg> {
    const id = this.nextId++;
    const req: Record<string, unknown> = { jsonrpc: "2.0", id, method };
    if (params !== undefined) req.params = params;
    this.send(req);
    return this.next((m) => m && !Array.isArray(m) && m.id === id, ms);
  }

  close(): void {
    this.ws.terminate();
  }
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function connectFails(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("open", () => {
      ws.terminate();
      reject(new Error("connected but should have failed"));
    });
    ws.on("unexpected-response", (_req, res) => {
      resolve(`HTTP ${res.statusCode}`);
      res.destroy();
      ws.terminate();
    });
    ws.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

// ───────────────────────────── fixtures ─────────────────────────────

/** A raw client, terminated after the test. */
async function client(url: string): Promise<Client> {
  return own(await Client.open(url));
}

// ───────────────────────────── tests ─────────────────────────────

describe("demo RPC server: methods", () => {
  it("listens on 127.0.0.1 with url/adminUrl on an ephemeral port", async () => {
    const s = await startServer();
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`ws://127.0.0.1:${s.port}`);
    expect(s.adminUrl).toBe(`ws://127.0.0.1:${s.port}/admin`);
  });

  it("echo, add, ping, fail, unknown method", async () => {
    const s = await startServer();
    const c = await client(s.url);
    expect((await c.call("echo", ["hi"])).result).toBe("hi");
    expect((await c.call("echo", { a: [1, 2] })).result).toEqual({ a: [1, 2] });
    expect((await c.call("add", [1, 2])).result).toBe(3);
    expect((await c.call("add", { a: 2, b: 5 })).result).toBe(7);
    const bad = await c.call("add", ["x", 1]);
    expect(bad.error.code).toBe(-32602);
    expect(bad.result).toBeUndefined();
    expect((await c.call("ping")).result).toBe("pong");
    const f0 = await c.call("fail");
    expect(f0.error.code).toBe(1234);
    expect(typeof f0.error.message).toBe("string");
    const f1 = await c.call("fail", [42, "boom", { k: 1 }]);
    expect(f1.error).toEqual({ code: 42, message: "boom", data: { k: 1 } });
    const nf = await c.call("nope");
    expect(nf.error.code).toBe(-32601);
    expect(nf.error.message).toBe("Method not found");
    expect(nf.jsonrpc).toBe("2.0");
  });

  it("sleep replies after the given ms", async () => {
    const s = await startServer();
    const c = await client(s.url);
    const t0 = Date.now();
    const r = await c.call("sleep", [80]);
    expect(r.result).toBe(80);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
    expect((await c.call("sleep", ["x"])).error.code).toBe(-32602);
  });

  it("incr is server-wide and record counts executions per token", async () => {
    const s = await startServer();
    const a = await client(s.url);
    const b = await client(s.url);
    expect((await a.call("incr")).result).toBe(1);
    expect((await b.call("incr")).result).toBe(2);
    expect((await a.call("record", ["tok"])).result).toBe(1);
    expect((await b.call("record", ["tok"])).result).toBe(2);
    expect((await b.call("record", ["other"])).result).toBe(1);
    expect(s.executions.get("tok")).toBe(2);
    expect(s.executions.get("other")).toBe(1);
  });

  it("notifyMe sends n notifications before its reply", async () => {
    const s = await startServer();
    const c = await client(s.url);
    const order: Msg[] = [];
    c.ws.on("message", (d) => order.push(JSON.parse(d.toString())));
    const r = await c.call("notifyMe", [3]);
    expect(r.result).toBe(3);
    expect(order.slice(0, 3)).toEqual([0, 1, 2].map((i) => ({ jsonrpc: "2.0", method: "tick", params: { i } })));
    expect(order[3].id).toBe(r.id);
    await c.call("notifyMe", [2, "evt"]);
    expect(order.filter((m) => m.method === "evt").map((m) => m.params.i)).toEqual([0, 1]);
  });

  it("notifications are executed, counted and never answered", async () => {
    const s = await startServer();
    const c = await client(s.url);
    c.send({ jsonrpc: "2.0", method: "record", params: ["n1"] });
    c.send({ jsonrpc: "2.0", method: "nope" });
    expect((await c.call("ping")).result).toBe("pong");
    expect(await c.silent(() => true, 100)).toBe(true);
    expect(c.messages).toEqual([]);
    expect(s.executions.get("n1")).toBe(1);
    expect(s.stats.notificationsReceived).toBe(2);
    expect(s.stats.requests).toBe(1);
  });
});

describe("demo RPC server: protocol errors and batches", () => {
  it("parse error, invalid request", async () => {
    const s = await startServer();
    const c = await client(s.url);
    c.send("{not json");
    const pe = await c.next();
    expect(pe.id).toBeNull();
    expect(pe.error.code).toBe(-32700);
    c.send({ id: 7, method: "echo" });
    const ir = await c.next((m) => m.id === 7);
    expect(ir.error.code).toBe(-32600);
    c.send({ jsonrpc: "2.0", id: 8 });
    expect((await c.next((m) => m.id === 8)).error.code).toBe(-32600);
    c.send("42");
    const nonObj = await c.next();
    expect(nonObj.error.code).toBe(-32600);
    expect(nonObj.id).toBeNull();
  });

  it("batch: one array reply, notifications omitted, per-item errors", async () => {
    const s = await startServer();
    const c = await client(s.url);
    c.send([
      { jsonrpc: "2.0", id: 1, method: "add", params: [2, 3] },
      { jsonrpc: "2.0", method: "record", params: ["batch-n"] },
      { jsonrpc: "2.0", id: 2, method: "nope" },
      { jsonrpc: "2.0", id: 3, method: "sleep", params: [30] },
      5,
    ]);
    const r = await c.next((m) => Array.isArray(m));
    expect(r).toHaveLength(4);
    const byId = new Map<unknown, Msg>(r.map((x: Msg) => [x.id, x]));
    expect(byId.get(1).result).toBe(5);
    expect(byId.get(2).error.code).toBe(-32601);
    expect(byId.get(3).result).toBe(30);
    expect(byId.get(null).error.code).toBe(-32600);
    expect(s.executions.get("batch-n")).toBe(1);
    expect(c.messages).toEqual([]);
  });

  it("empty batch → one invalid-request error; notification-only batch → no reply", async () => {
    const s = await startServer();
    const c = await client(s.url);
    c.send([]);
    const e = await c.next();
    expect(Array.isArray(e)).toBe(false);
    expect(e.error.code).toBe(-32600);
    expect(e.id).toBeNull();
    c.send([{ jsonrpc: "2.0", method: "ping" }, { jsonrpc: "2.0", method: "incr" }]);
    expect(await c.silent(() => true, 120)).toBe(true);
    expect((await c.call("incr")).result).toBe(2);
  });
});

describe("demo RPC server: reply faults", () => {
  it("hold/release delivers buffered replies fifo, reverse and shuffled", async () => {
    const s = await startServer();
    const c = await client(s.url);
    const order: number[] = [];
    c.ws.on("message", (d) => order.push(JSON.parse(d.toString()).id));
    const run = async (mode: "fifo" | "reverse" | "shuffle", n: number): Promise<number[]> => {
      order.length = 0;
      s.hold();
      const ps = Array.from({ length: n }, (_, i) => c.call("echo", [i], 3000));
      await until(() => s.heldCount() === n);
      expect(order).toEqual([]);
      expect(s.release(mode)).toBe(n);
      const replies = await Promise.all(ps);
      replies.forEach((r, i) => expect(r.result).toBe(i));
      return order.slice();
    };
    const fifo = await run("fifo", 5);
    expect(fifo).toEqual([...fifo].sort((a, b) => a - b));
    const rev = await run("reverse", 5);
    expect(rev).toEqual([...rev].sort((a, b) => b - a));
    const shuf = await run("shuffle", 30);
    const sorted = [...shuf].sort((a, b) => a - b);
    expect(shuf).not.toEqual(sorted); // 1/30! chance of a false failure
    expect(new Set(shuf).size).toBe(30);
    // holding stopped after release
    expect((await c.call("ping")).result).toBe("pong");
  });

  it("errorRate=1 answers -32000 without executing", async () => {
    const s = await startServer();
    const c = await client(s.url);
    s.setFaults({ errorRate: 1 });
    const r = await c.call("record", ["e"]);
    expect(r.error).toEqual({ code: -32000, message: "injected error" });
    expect(s.executions.has("e")).toBe(false);
    expect(s.stats.errorsInjected).toBe(1);
    s.setFaults({ errorRate: 0 });
    expect((await c.call("record", ["e"])).result).toBe(1);
  });

  it("dropRate=1 executes but never answers", async () => {
    const s = await startServer();
    const c = await client(s.url);
    s.setFaults({ dropRate: 1 });
    c.send({ jsonrpc: "2.0", id: 99, method: "record", params: ["d"] });
    expect(await c.silent((m) => m.id === 99, 200)).toBe(true);
    expect(s.executions.get("d")).toBe(1);
    expect(s.stats.repliesDropped).toBe(1);
    expect(s.stats.replies).toBe(0);
    s.setFaults({ dropRate: 0 });
    expect((await c.call("ping")).result).toBe("pong");
    expect(s.stats.replies).toBe(1);
  });

  it("latency and jitter delay replies; setFaults clamps; reset clears", async () => {
    const s = await startServer();
    const c = await client(s.url);
    expect(s.setFaults({ latency: 60, jitter: 20, errorRate: 7, dropRate: -1 })).toEqual({
      latency: 60,
      jitter: 20,
      errorRate: 1,
      dropRate: 0,
    });
    s.setFaults({ errorRate: 0 });
    const t0 = Date.now();
    await c.call("ping");
    const dt = Date.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(55);
    expect(dt).toBeLessThan(500);
    await c.call("incr");
    s.reset();
    expect(s.faults).toEqual({ latency: 0, jitter: 0, errorRate: 0, dropRate: 0 });
    expect(s.stats).toEqual({
      requests: 0,
      replies: 0,
      notificationsReceived: 0,
      connectionsAccepted: 0,
      errorsInjected: 0,
      repliesDropped: 0,
    });
    expect((await c.call("incr")).result).toBe(1);
  });

  it("sendRaw and notifyAll reach the sockets", async () => {
    const s = await startServer();
    const a = await client(s.url);
    const b = await client(s.url);
    const [ida, idb] = s.connections().map((x) => x.id);
    expect(s.sendRaw("{garbage", idb)).toBe(1);
    expect((await b.next()).raw).toBe("{garbage");
    expect(await a.silent(() => true, 50)).toBe(true);
    expect(s.notifyAll("news", { x: 1 })).toBe(2);
    expect(await a.next()).toEqual({ jsonrpc: "2.0", method: "news", params: { x: 1 } });
    expect(await b.next()).toEqual({ jsonrpc: "2.0", method: "news", params: { x: 1 } });
    expect(s.connections().find((x) => x.id === ida)?.sent).toBe(1);
    expect(s.connections().find((x) => x.id === idb)?.sent).toBe(2);
  });

  it("eth_subscribe / eth_subscription / eth_unsubscribe: one sequence per server, counted live subscriptions", async () => {
    const s = await startServer({ subscriptionInterval: 10 });
    const a = await client(s.url);
    const b = await client(s.url);
    const ida = (await a.call("eth_subscribe", ["newHeads"])).result;
    const idb = (await b.call("eth_subscribe", ["newHeads"])).result;
    expect(typeof ida).toBe("string");
    expect(ida).not.toBe(idb);
    expect(s.liveSubscriptions()).toBe(2);
    const na = await a.next((m) => m.method === "eth_subscription");
    expect(na.params.subscription).toBe(ida);
    const nb = await b.next((m) => m.method === "eth_subscription" && m.params.result.number === na.params.result.number + 1);
    expect(nb.params.subscription).toBe(idb);
    expect((await b.call("eth_unsubscribe", [ida])).result).toBe(false); // not its socket's
    expect((await a.call("eth_unsubscribe", [ida])).result).toBe(true);
    expect(s.liveSubscriptions()).toBe(1);
    expect(s.unsubscribes).toBe(1);
    s.refuseSubscriptions = true;
    expect((await a.call("eth_subscribe", ["newHeads"])).error.code).toBe(-32005);
    expect((await a.call("eth_subscribe", ["pendingTransactions"])).error.code).toBe(-32602);
    b.ws.terminate();
    await waitFor(() => s.liveSubscriptions() === 0);
    expect(s.subscribeParams).toHaveLength(4);
  });

  it("ticker pushes notifications at the interval", async () => {
    const s = await startServer({ tickerInterval: 20 });
    const c = await client(s.url);
    const t1 = await c.next((m) => m.method === "ticker");
    const t2 = await c.next((m) => m.method === "ticker");
    expect(t2.params.n).toBeGreaterThan(t1.params.n);
    expect(typeof t1.params.t).toBe("number");
  });
});

describe("demo RPC server: socket faults", () => {
  it("connections() lists sockets in open order with counters; kill terminates without a close frame", async () => {
    const s = await startServer();
    const a = await client(s.url);
    const b = await client(s.url);
    await a.call("ping");
    const conns = s.connections();
    expect(conns).toHaveLength(2);
    expect(conns[0]!.id).toBeLessThan(conns[1]!.id);
    expect(conns[0]).toMatchObject({ received: 1, sent: 1, stalled: false });
    expect(conns[0]!.remoteAddress).toContain("127.0.0.1");
    expect(s.stats.connectionsAccepted).toBe(2);
    expect(s.kill()).toBe(true); // the oldest: a
    expect((await a.closed).code).toBe(1006);
    expect(s.connections().map((x) => x.id)).toEqual([conns[1]!.id]);
    expect((await b.call("ping")).result).toBe("pong");
    expect(s.kill(12345)).toBe(false);
  });

  it("closeSocket sends a clean close; killAll drops everything", async () => {
    const s = await startServer();
    const a = await client(s.url);
    const b = await client(s.url);
    const c = await client(s.url);
    const [first] = s.connections();
    expect(first).toBeDefined();
    expect(s.closeSocket(first!.id, 4001, "bye")).toBe(true);
    expect(await a.closed).toEqual({ code: 4001, reason: "bye" });
    expect(s.killAll()).toBe(2);
    expect((await b.closed).code).toBe(1006);
    expect((await c.closed).code).toBe(1006);
    expect(s.connections()).toEqual([]);
  });

  it("stall: TCP stays open, pings and calls go unanswered; unstall resumes", async () => {
    const s = await startServer();
    const c = await client(s.url);
    const other = await client(s.url);
    const [first] = s.connections();
    expect(first).toBeDefined();
    const id = first!.id;
    expect(s.stall(id)).toBe(true);
    expect(s.connections()[0]?.stalled).toBe(true);
    let pong = false;
    c.ws.on("pong", () => (pong = true));
    c.ws.ping();
    c.send({ jsonrpc: "2.0", id: 1, method: "ping" });
    expect(await c.silent(() => true, 250)).toBe(true);
    expect(pong).toBe(false);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(s.connections()).toHaveLength(2);
    // other sockets are unaffected
    expect((await other.call("ping")).result).toBe("pong");
    // notifications produced meanwhile are held too
    s.notifyAll("while-stalled");
    expect(await c.silent(() => true, 50)).toBe(true);
    expect(s.unstall()).toBe(1);
    const m = await c.next((x) => x.id === 1);
    expect(m.result).toBe("pong");
    await c.next((x) => x.method === "while-stalled");
    await until(() => pong);
  });

  it("kill() with no id passes over a stalled socket, and takes it when it is the only one", async () => {
    const s = await startServer();
    const stalled = await client(s.url);
    const live = await client(s.url);
    const [first] = s.connections().map((x) => x.id);
    expect(s.stall(first)).toBe(true);
    expect(s.kill()).toBe(true); // not the stalled oldest: a client may have dropped it already
    expect((await live.closed).code).toBe(1006);
    expect(s.connections().map((x) => x.id)).toEqual([first]);
    expect(s.kill()).toBe(true);
    expect((await stalled.closed).code).toBe(1006);
    expect(s.connections()).toEqual([]);
  });

  it("refuse rejects new RPC upgrades but not admin", async () => {
    const s = await startServer();
    s.refuse(true);
    expect(await connectFails(s.url)).toBe("HTTP 503");
    const admin = await client(s.adminUrl);
    expect((await admin.next()).type).toBe("state");
    s.refuse(false);
    const c = await client(s.url);
    expect((await c.call("ping")).result).toBe("pong");
    expect(s.stats.connectionsAccepted).toBe(1);
  });

  it("restart drops sockets and listens again on the same port", async () => {
    const s = await startServer();
    const port = s.port;
    const c = await client(s.url);
    const t0 = Date.now();
    const restarting = s.restart(150);
    expect((await c.closed).code).toBe(1006);
    expect(await connectFails(s.url)).toBe("ECONNREFUSED");
    await restarting;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(s.port).toBe(port);
    const c2 = await client(`ws://127.0.0.1:${port}`);
    expect((await c2.call("add", [1, 1])).result).toBe(2);
    expect(s.connections()).toHaveLength(1);
  });

  it("close releases the port and leaves no handle behind", async () => {
    const kinds = (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const k of process.getActiveResourcesInfo()) out[k] = (out[k] ?? 0) + 1;
      return out;
    };
    const before = kinds();
    const s = await startServer({ tickerInterval: 25 });
    const c = await Client.open(s.url);
    const admin = await Client.open(s.adminUrl);
    c.send({ jsonrpc: "2.0", id: 1, method: "sleep", params: [10_000] });
    s.setFaults({ latency: 5000 });
    c.send({ jsonrpc: "2.0", id: 2, method: "ping" });
    await until(() => s.stats.requests === 2);
    await s.close();
    await s.close(); // idempotent
    await Promise.all([c.closed, admin.closed]);
    // The probe's own handle is released only at its "close": wait for it, or
    // it is counted below (run alone, nothing else masks it).
    expect(
      await new Promise((resolve) => {
        const sock = connect(s.port, "127.0.0.1");
        let outcome: string | undefined;
        sock.on("connect", () => {
          outcome = "connected";
          sock.destroy();
        });
        sock.on("error", (e: NodeJS.ErrnoException) => (outcome = e.code));
        sock.on("close", () => resolve(outcome));
      }),
    ).toBe("ECONNREFUSED");
    await new Promise((r) => setImmediate(r));
    const after = kinds();
    for (const k of ["TCPServerWrap", "TCPSocketWrap", "Timeout"]) {
      expect(after[k] ?? 0, k).toBeLessThanOrEqual(before[k] ?? 0);
    }
  });
});

describe("demo RPC server: admin channel", () => {
  function isState(m: Msg): boolean {
    return m && m.type === "state";
  }

  it("pushes state on connect, after every op and periodically", async () => {
    const s = await startServer();
    const rpc = await client(s.url);
    const admin = await client(s.adminUrl);
    const first: AdminState = await admin.next(isState);
    expect(first.faults).toEqual({ latency: 0, jitter: 0, errorRate: 0, dropRate: 0 });
    expect(first.connections).toHaveLength(1);
    expect(first.stats.connectionsAccepted).toBe(1);
    // admin sockets are not RPC connections
    expect(s.connections()).toHaveLength(1);

    admin.send({ op: "setFaults", faults: { errorRate: 1, latency: 0 } });
    const st: AdminState = await admin.next((m) => isState(m) && m.faults.errorRate === 1);
    expect(st.faults.errorRate).toBe(1);
    expect(s.faults.errorRate).toBe(1);
    expect((await rpc.call("ping")).error.code).toBe(-32000);

    // periodic pushes with no op
    admin.messages.length = 0;
    const t0 = Date.now();
    await admin.next(isState, 1500);
    await admin.next(isState, 1500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  });

  it("ignores bad messages and applies kill / stall / unstall / refuse / killAll", async () => {
    const s = await startServer();
    const a = await client(s.url);
    const b = await client(s.url);
    const admin = await client(s.adminUrl);
    await admin.next(isState);
    admin.send("garbage{");
    admin.send({ op: "nope" });
    admin.send({ op: "setFaults", faults: "x" });
    admin.send({ op: "setFaults", faults: { latency: "slow", errorRate: null } });
    admin.send([1, 2]);
    admin.send("null");
    admin.send({ op: "setFaults", faults: { jitter: 3 } });
    const st: AdminState = await admin.next((m) => isState(m) && m.faults.jitter === 3);
    expect(st.faults).toEqual({ latency: 0, jitter: 3, errorRate: 0, dropRate: 0 });

    const [ida, idb] = s.connections().map((x) => x.id);
    admin.send({ op: "stall", id: idb });
    await admin.next((m) => isState(m) && m.connections.some((x: Msg) => x.id === idb && x.stalled));
    expect(await b.silent(() => true, 10)).toBe(true);
    b.send({ jsonrpc: "2.0", id: 5, method: "ping" });
    expect(await b.silent(() => true, 150)).toBe(true);
    admin.send({ op: "unstall" });
    expect((await b.next((m) => m.id === 5)).result).toBe("pong");

    admin.send({ op: "kill", id: ida });
    expect((await a.closed).code).toBe(1006);

    admin.send({ op: "refuse", on: true });
    await admin.next((m) => isState(m) && m.refusing === true);
    expect(await connectFails(s.url)).toBe("HTTP 503");
    admin.send({ op: "refuse", on: false });
    await admin.next((m) => isState(m) && m.refusing === false);
    const c = await client(s.url);

    admin.send({ op: "killAll" });
    expect((await b.closed).code).toBe(1006);
    expect((await c.closed).code).toBe(1006);
    await admin.next((m) => isState(m) && m.connections.length === 0);
    expect(admin.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("restart op keeps the admin socket and reports restarting", async () => {
    const s = await startServer();
    const port = s.port;
    const rpc = await client(s.url);
    const admin = await client(s.adminUrl);
    await admin.next(isState);
    admin.send({ op: "restart", downMs: 100 });
    await admin.next((m) => isState(m) && m.restarting === true);
    expect((await rpc.closed).code).toBe(1006);
    await admin.next((m) => isState(m) && m.restarting === false);
    expect(admin.ws.readyState).toBe(WebSocket.OPEN);
    expect(s.port).toBe(port);
    const again = await client(s.url);
    expect((await again.call("ping")).result).toBe("pong");
  });

  it("stops its push timer when the last admin client leaves", async () => {
    const s = await startServer();
    const admin = await Client.open(s.adminUrl);
    await admin.next(isState);
    expect(s["adminTimer"]).not.toBeNull();
    admin.ws.close();
    await admin.closed;
    await until(() => s["adminTimer"] === null);
  });
});

describe("demo RPC server: field faults (chaos-field)", () => {
  it("record [token, { reply }] executes, then answers malformed or with a null-id error", async () => {
    const s = await startServer();
    const c = await client(s.url);
    expect(await c.call("record", ["m1", { reply: "no-result" }])).toEqual({ jsonrpc: "2.0", id: 1 });
    const both = await c.call("record", ["m2", { reply: "both" }]);
    expect(both.result).toBe(1);
    expect(both.error.code).toBe(-32000);
    expect((await c.call("record", ["m3", { reply: "error-not-object" }])).error).toBe("boom");
    c.send({ jsonrpc: "2.0", id: 9, method: "record", params: ["m4", { reply: "null-id" }] });
    expect(await c.next((m) => m.id === null)).toMatchObject({ id: null, error: { code: -32600 } });
    expect([..."1234"].map((i) => s.executions.get(`m${i}`))).toEqual([1, 1, 1, 1]);
    // in a batch, the misbehaving entry takes the place of its response; the others are normal
    c.send([{ jsonrpc: "2.0", id: 20, method: "record", params: ["b1"] }, {
      jsonrpc: "2.0",
      id: 21,
      method: "record",
      params: ["b2", { reply: "no-result" }],
    }]);
    expect(await c.next((m) => Array.isArray(m))).toEqual([{ jsonrpc: "2.0", id: 20, result: 1 }, { jsonrpc: "2.0", id: 21 }]);
    // refuseBatch: one null-id error for the whole batch, nothing executed
    c.send([{ jsonrpc: "2.0", id: 30, method: "record", params: ["r1"] }, {
      jsonrpc: "2.0",
      id: 31,
      method: "record",
      params: ["r2", { refuseBatch: true }],
    }]);
    expect(await c.next((m) => m.id === null)).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32600 } });
    expect([s.executions.has("r1"), s.executions.has("r2")]).toEqual([false, false]);
  });

  it("maxPayload: an oversized message closes the socket with 1009 and never executes", async () => {
    const s = await startServer({ maxPayload: 1024 });
    const c = await client(s.url);
    c.send({ jsonrpc: "2.0", id: 1, method: "record", params: ["big", "x".repeat(2000)] });
    expect((await c.closed).code).toBe(1009);
    expect(s.executions.has("big")).toBe(false);
    await until(() => s.oversizeCloses === 1);
  });

  it("closeAndStopReading: a close frame goes out, nothing more is read, the close never completes", async () => {
    const s = await startServer();
    const c = await client(s.url);
    await c.call("ping");
    const [info] = s.connections();
    expect(s.closeAndStopReading(info!.id, 4001, "bye")).toBe(true);
    await until(() => c.ws.readyState === WebSocket.CLOSING);
    expect(() => c.send({ jsonrpc: "2.0", id: 2, method: "record", params: ["after"] })).not.toThrow();
    expect(await Promise.race([c.closed.then(() => "closed"), new Promise((r) => setTimeout(() => r("still closing"), 200))])).toBe(
      "still closing",
    );
    expect(s.executions.has("after")).toBe(false);
    expect(s.closesSent.get(4001)).toBe(1);
    expect(s.connections()).toEqual([]);
    // close() terminates the socket whose close never completed
    await s.close();
    expect((await c.closed).code).toBe(4001); // the code it had received
  });

  it("inOrder: one connection's messages are handled one after another; ws pings are still answered", async () => {
    const s = await startServer({ inOrder: true });
    const c = await client(s.url);
    let pong = 0;
    c.ws.on("pong", () => pong++);
    const t0 = Date.now();
    c.send({ jsonrpc: "2.0", id: 1, method: "record", params: ["slow", { sleep: 150 }] });
    c.send({ jsonrpc: "2.0", id: 2, method: "ping" });
    c.ws.ping();
    await until(() => pong === 1, 100);
    expect(s.executions.get("slow")).toBe(1);
    const second = await c.next((m) => m.id === 2);
    expect(second.result).toBe("pong");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(c.messages.map((m) => m.id)).toEqual([1]); // the slow reply came first
  });
});
