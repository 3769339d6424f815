/**
 * SPEC §4 heartbeat: a half-open socket (the proxy stalls it: TCP stays open,
 * no byte passes) is detected within interval + timeout, dropped at once
 * without a close handshake, its calls handled as lost (§3.4), and the pool
 * reconnects. A ping the server does not know ("method not found") is life.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { own, startProxy, startServer } from "../fixtures/harness.ts";
import { collectEvents, sleep, spyWebSocket, track, waitFor, withoutProtocolPing } from "../fixtures/pool-helpers.ts";
import { ConnectionLostError, Pool } from "../../src/mod.ts";

const INTERVAL = 150;
const TIMEOUT = 100;
const SLACK = 250; // timer lateness on a loaded 2-core machine (measured: ~5 ms when idle)

describe("heartbeat", () => {
  it("detects a stalled (half-open) socket within interval + timeout, drops it at once, handles its calls as lost, reconnects", async () => {
    const server = await startServer();
    const a = await startProxy(server);
    const b = await startProxy(server);
    const spy = spyWebSocket();
    const pool = own(
      new Pool((i: number) => (i === 0 ? a.url("/a") : b.url("/b")), {
        size: 2,
        strategy: "round-robin",
        heartbeat: { interval: INTERVAL, timeout: TIMEOUT },
        reconnect: { initialDelay: 10, maxDelay: 20 },
        WebSocket: spy.WebSocket,
      }),
    );
    await waitFor(() => pool.stats().connections.open === 2, 2_000, "2 open");
    const idA = pool.connections().find((c) => c.url.includes("/a"))!.id;
    const sockA = spy.instances.find((s) => s.spyUrl.includes("/a"))!;
    const log = collectEvents(pool, ["close", "reconnect", "open", "error"]);
    const detections: number[] = [];
    for (let round = 0; round < 3; round++) {
      // traffic on both sockets, then the stall: the last inbound data on A is "now"
      expect(await Promise.all([pool.call("echo", [1]), pool.call("echo", [2])])).toEqual([1, 2]);
      const closesBefore = log.count("close");
      const stalledAt = performance.now();
      expect(a.stallAll()).toBe(1);
      // calls sent on A after the stall never reach the server
      const tag = `${process.pid}-${round}`;
      const calls = Array.from({ length: 6 }, (_, i) => ({
        tok: `hb-${tag}-${i}`,
        idempotent: i % 4 < 2, // A (even calls) gets 2 idempotent and 1 not
      })).map((p) => ({ ...p, t: track(pool.call<number>("record", [p.tok], { idempotent: p.idempotent, timeout: 5_000 })) }));
      await waitFor(() => log.count("close") > closesBefore, 2_000, "stall detected");
      const detected = performance.now() - stalledAt;
      detections.push(detected);
      const close = log.of("close").at(-1)!;
      expect(close.connection.id).toBe(idA);
      expect(close.reason).toBe(`heartbeat: no data for ${TIMEOUT} ms after a ping`);
      expect(detected, `round ${round}: detected after ${detected} ms`).toBeGreaterThanOrEqual(INTERVAL + TIMEOUT - 10);
      expect(detected, `round ${round}: detected after ${detected} ms`).toBeLessThanOrEqual(INTERVAL + TIMEOUT + SLACK);
      const outs = await Promise.all(calls.map((c) => c.t.promise));
      calls.forEach((c, i) => {
        const o = outs[i]!;
        const onA = i % 2 === 0; // round-robin: even calls went to A
        if (c.idempotent || !onA) {
          expect(o, `round ${round} call ${i}`).toMatchObject({ ok: true, value: 1 });
        } else {
          expect(o.ok, `round ${round} call ${i}`).toBe(false);
          const e = (o as { error: ConnectionLostError }).error;
          expect(e).toBeInstanceOf(ConnectionLostError);
          expect(e).toMatchObject({ code: "ERR_CONNECTION_LOST", maybeExecuted: true });
          // the stall swallowed it: it never ran (maybeExecuted is the honest "we cannot know")
          expect(server.executions.get(c.tok)).toBeUndefined();
        }
      });
      // the pool reconnects A
      await waitFor(() => pool.stats().connections.open === 2, 2_000, "A reconnected");
      a.unstall(); // let the proxy tear the dead pair down
    }
    // dropped without a close handshake: terminate(), never close()
    expect(sockA.terminatedAt).toBeDefined();
    expect(sockA.closeCalls).toEqual([]);
    // three rounds: 3 closes, 3 reconnects, 3 re-opens; nothing else went wrong
    expect(log.count("close")).toBe(3);
    // (each socket lived less than resetAfter, 5 s by default: the attempt count keeps growing)
    expect(log.of("reconnect").map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(log.count("open")).toBe(3);
    expect(log.count("error")).toBe(0);
    const s = pool.stats();
    expect(s.reconnects).toBe(3);
    expect(s.calls).toMatchObject({ retried: 3 * 2, failed: 3 * 1, inFlight: 0, queued: 0 });
    expect(s.calls.succeeded).toBe(3 * 2 + 3 * 5);
    console.log(
      `[heartbeat] interval ${INTERVAL} ms + timeout ${TIMEOUT} ms: stall → detection ${
        detections.map((d) => `${Math.round(d)} ms`).join(", ")
      }`,
    );
  });

  // Where the runtime cannot send protocol pings (browsers, Deno, Bun, Node's global WebSocket), the ping is a codec request.
  it("a codec ping the server answers with 'method not found' counts as life; long calls are not mistaken for a dead link", async () => {
    const server = await startServer();
    const spy = spyWebSocket();
    const pool = own(
      new Pool(server.url, {
        size: 1,
        heartbeat: { interval: 50, timeout: 50, method: "no.such.method" },
        WebSocket: withoutProtocolPing(spy.WebSocket),
      }),
    );
    const log = collectEvents(pool, ["close", "reconnect", "error"]);
    await pool.ready();
    // nothing inbound for 800 ms except the ping replies (which are errors)
    const long = track(pool.call("sleep", [800], { timeout: 5_000 }));
    await sleep(300);
    expect(await long.promise).toMatchObject({ ok: true, value: 800 });
    const pings = spy.instances[0]!.frames.map((f) => JSON.parse(f) as { method: string; id: string }).filter((m) =>
      m.method === "no.such.method"
    );
    expect(pings.length).toBeGreaterThanOrEqual(5);
    // ping ids are real request ids (unique, truthy), never reused
    expect(new Set(pings.map((p) => p.id)).size).toBe(pings.length);
    expect(log.count("close")).toBe(0);
    expect(log.count("reconnect")).toBe(0);
    // a "method not found" reply to a ping is not a protocol error
    expect(log.count("error")).toBe(0);
    expect(pool.stats().protocolErrors).toBe(0);
    expect(pool.connections()[0]!.state).toBe("open");
    expect(await pool.call("echo", ["still alive"])).toBe("still alive");
  });

  it("a server that stops reading (server-side stall) is detected the same way", async () => {
    const server = await startServer();
    const pool = own(
      new Pool(server.url, { size: 1, heartbeat: { interval: 100, timeout: 100 }, reconnect: { initialDelay: 10, maxDelay: 20 } }),
    );
    const log = collectEvents(pool, ["close", "open"]);
    await pool.ready();
    await pool.call("ping");
    const t0 = performance.now();
    server.stall();
    await waitFor(() => log.count("close") === 1, 2_000, "detected");
    const detected = performance.now() - t0;
    expect(detected).toBeLessThanOrEqual(200 + SLACK);
    expect(log.of("close")[0]!.reason).toMatch(/heartbeat/);
    await waitFor(() => log.count("open") >= 1, 2_000, "reopened");
    expect(await pool.call("add", [1, 2])).toBe(3);
  });

  it("a blocked event loop is not a dead link when the reply to a codec ping is already waiting in the socket", async () => {
    // The server runs in another process, so it answers while this process is blocked.
    const script = `
      const { WebSocketServer } = require("ws");
      const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" }, () => console.log(wss.address().port));
      wss.on("connection", (ws) => ws.on("message", (d) => {
        const m = JSON.parse(String(d));
        if (m.id !== undefined) ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: "pong" }));
      }));`;
    const child = spawn(process.execPath, ["-e", script], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const port = await new Promise<string>((resolve, reject) => {
        child.stdout.once("data", (d) => resolve(String(d).trim()));
        child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
      });
      const spy = spyWebSocket();
      let blockNextPing = false;
      class Blocking extends spy.WebSocket {
        override send(data: unknown, ...rest: unknown[]): void {
          (super.send as (...a: unknown[]) => void)(data, ...rest);
          if (blockNextPing && String(data).includes('"method":"ping"')) {
            blockNextPing = false;
            // right after the ping leaves, the process is busy for 3× the heartbeat timeout
            setImmediate(() => {
              const end = performance.now() + 150;
              while (performance.now() < end);
            });
          }
        }
      }
      const pool = own(
        new Pool(`ws://127.0.0.1:${port}`, { size: 1, heartbeat: { interval: 50, timeout: 50 }, WebSocket: withoutProtocolPing(Blocking) }),
      );
      const log = collectEvents(pool, ["close", "reconnect"]);
      await pool.ready();
      blockNextPing = true;
      await waitFor(() => !blockNextPing, 1_000, "ping sent");
      await sleep(300);
      expect(log.of("close").map((e) => e.reason)).toEqual([]);
      expect(log.count("reconnect")).toBe(0);
      expect(pool.connections()[0]!.state).toBe("open");
      await pool.destroy();
    } finally {
      child.kill();
    }
  });
});
