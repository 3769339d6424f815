/**
 * Back-pressure: a socket whose link is backed up (more than `maxBuffered`
 * bytes written but not yet taken by the network) takes no new writes. Calls
 * and notifications wait in its queue, bounded by `maxQueue`, and the
 * router prefers sockets whose link is not backed up. Real ws servers on
 * loopback; the "slow link" is a server socket that stopped reading
 * (`server.stall`), so the kernel buffers fill and then `bufferedAmount` grows.
 */
import { expect, it } from "vitest";
import { own, startServer } from "../fixtures/harness.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { collectEvents, spyWebSocket, waitFor } from "../fixtures/pool-helpers.ts";
import { Pool, PoolExhaustedError, type PoolOptions } from "../../src/mod.ts";

let server: RpcServer;

async function setup(options: PoolOptions): Promise<{ pool: Pool; spy: ReturnType<typeof spyWebSocket> }> {
  server = await startServer();
  const spy = spyWebSocket({ keepFrames: false });
  const pool = own(new Pool(server.url, { heartbeat: false, WebSocket: spy.WebSocket, ...options }));
  await waitFor(() => pool.stats().connections.open === (options.size ?? 4));
  return { pool, spy };
}

const FRAME = 64 * 1024;
const payload = "x".repeat(FRAME);

it("a backed-up link takes no more writes: notifications wait up to maxQueue, then notify throws; all arrive once it drains", async () => {
  const maxBuffered = 256 * 1024;
  const { pool } = await setup({ size: 1, maxQueue: 50, maxBuffered });
  const errors = collectEvents(pool, ["error"]);
  server.stall();
  let accepted = 0;
  let refused: unknown;
  // Bounded: without back-pressure every one of these would be buffered in memory (128 MB).
  for (let i = 0; i < 2_000; i++) {
    try {
      pool.notify("log", [payload]);
      accepted++;
    } catch (error) {
      refused = error;
      break;
    }
  }
  expect(refused).toBeInstanceOf(PoolExhaustedError);
  expect((refused as PoolExhaustedError).code).toBe("ERR_POOL_EXHAUSTED");
  const [socket] = pool.connections();
  expect(socket!.queued).toBe(50);
  // At most one frame (plus its header) past the mark: writing stopped there.
  expect(socket!.buffered).toBeGreaterThanOrEqual(maxBuffered);
  expect(socket!.buffered).toBeLessThan(maxBuffered + FRAME + 64);
  expect(pool.stats().calls).toMatchObject({ queued: 50, inFlight: 0, failed: 0 });
  server.unstall();
  await waitFor(() => server.stats.notificationsReceived === accepted, 10_000, "every accepted notification delivered");
  expect(pool.stats().calls.queued).toBe(0);
  expect(pool.connections()[0]!.buffered).toBe(0);
  expect(errors.count("error")).toBe(0);
});

it("calls go around a socket whose link is backed up; a call that must use it waits and is sent once it drains", async () => {
  const maxBuffered = 64 * 1024;
  const { pool, spy } = await setup({ size: 2, maxBuffered, strategy: "round-robin" });
  // A fresh pool's sockets are built in slot order: socket id n is spy instance n - 1.
  const socketOf = (id: number) => spy.instances[id - 1] as unknown as { _socket: { localPort: number }; bufferedAmount: number };
  let slowId = 0;
  await pool.withConnection((conn) => {
    slowId = conn.id;
    const slow = socketOf(conn.id);
    const serverSide = server.connections().find((c) => c.remoteAddress.endsWith(`:${slow._socket.localPort}`));
    expect(serverSide).toBeDefined();
    server.stall(serverSide!.id); // its server stops reading: the link backs up
    for (let i = 0; i < 2_000 && slow.bufferedAmount < maxBuffered; i++) conn.notify("log", [payload]);
    expect(slow.bufferedAmount).toBeGreaterThanOrEqual(maxBuffered);
  });
  const slowBefore = pool.connections().find((c) => c.id === slowId)!;
  expect(slowBefore.queued).toBe(0);
  // Round-robin would send every other call to the slow socket; none goes there.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.call("echo", [i], { timeout: 5_000 })));
  expect(results).toEqual(Array.from({ length: 40 }, (_, i) => i));
  const slowAfter = pool.connections().find((c) => c.id === slowId)!;
  expect(slowAfter.sent).toBe(slowBefore.sent);
  expect(slowAfter.queued).toBe(0);
  // A call that may only use the slow socket waits in its queue, unsent, until the link drains.
  const stuck = pool.call("echo", ["after the drain"], { filter: (c) => c.id === slowId, timeout: 10_000 });
  expect(pool.connections().find((c) => c.id === slowId)!).toMatchObject({ queued: 1, inFlight: 0, sent: slowBefore.sent });
  server.unstall();
  expect(await stuck).toBe("after the drain");
  expect(pool.stats().calls).toMatchObject({ succeeded: 41, failed: 0, queued: 0, inFlight: 0 });
});

it("calls waiting on a backed-up socket that turns out dead go out once on its replacement, none twice", async () => {
  const maxBuffered = 64 * 1024;
  const { pool } = await setup({
    size: 1,
    maxBuffered,
    heartbeat: { interval: 100, timeout: 100 },
    reconnect: { initialDelay: 5, maxDelay: 20 },
  });
  const log = collectEvents(pool, ["reconnect", "error"]);
  server.stall(); // half-open: the server neither reads nor answers
  for (let i = 0; i < 2_000 && pool.connections()[0]!.buffered < maxBuffered; i++) pool.notify("log", [payload]);
  expect(pool.connections()[0]!.buffered).toBeGreaterThanOrEqual(maxBuffered);
  // These wait, unsent, in the backed-up socket's queue. The odd ones are not
  // idempotent: had they been written to the dead socket, they would fail.
  const calls = Array.from({ length: 10 }, (_, i) => pool.call("record", [`bp-${i}`], { idempotent: i % 2 === 0, timeout: 10_000 }));
  expect(pool.connections()[0]!).toMatchObject({ queued: 10, inFlight: 0 });
  const counts = await Promise.all(calls); // the heartbeat drops the socket; the replacement sends them
  expect(counts).toEqual(Array.from({ length: 10 }, () => 1));
  for (let i = 0; i < 10; i++) expect(server.executions.get(`bp-${i}`)).toBe(1);
  expect(log.of("reconnect")[0]!.reason).toContain("heartbeat");
  expect(pool.stats().calls).toMatchObject({ succeeded: 10, failed: 0, queued: 0, inFlight: 0 });
});
