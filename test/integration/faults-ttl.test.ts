/**
 * SPEC §4 TTL: make-before-break rotation with revive, the expired socket's
 * queue moving to its replacement, its calls in flight finishing before a
 * 1000 close, the drain timeout (remaining calls treated as lost), and
 * revive: false shrinking the pool down to NoConnectionError.
 */
import { describe, expect, it } from "vitest";
import { own, startServer } from "../fixtures/harness.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { collectEvents, sampler, sleep, spyWebSocket, track, waitFor } from "../fixtures/pool-helpers.ts";
import { ConnectionLostError, NoConnectionError, Pool, type PoolOptions } from "../../src/mod.ts";

async function setup(
  url: (server: RpcServer) => ConstructorParameters<typeof Pool>[0],
  options: PoolOptions,
): Promise<{ server: RpcServer; pool: Pool }> {
  const server = await startServer();
  const pool = own(new Pool(url(server), { heartbeat: false, ...options }));
  return { server, pool };
}

describe("TTL with revive: true", () => {
  it("make-before-break: open sockets never drop below size across many rotations, under load", async () => {
    const spy = spyWebSocket({ keepFrames: false });
    const urlCalls: number[] = [];
    const size = 3;
    const { pool } = await setup((s) => (i: number) => (urlCalls.push(i), s.url), { size, ttl: 150, WebSocket: spy.WebSocket });
    const log = collectEvents(pool, ["open", "expire", "close", "reroute", "reconnect"]);
    await waitFor(() => pool.stats().connections.open === size, 2_000, "all open");
    const samples = sampler(() => pool.stats().connections.open, 2);
    // steady load while sockets rotate
    let stop = false;
    let ok = 0;
    const errors: unknown[] = [];
    const load = (async () => {
      let i = 0;
      while (!stop) {
        const batch = Array.from({ length: 20 }, () => i++);
        const results = await Promise.allSettled(batch.map((n) => pool.call("echo", [n], { timeout: 3_000 })));
        results.forEach((r, k) => {
          if (r.status === "fulfilled" && r.value === batch[k]) ok++;
          else errors.push(r.status === "rejected" ? r.reason : `wrong result ${String(r.value)} for ${batch[k]}`);
        });
        await sleep(1);
      }
    })();
    await waitFor(() => pool.stats().expired >= 4 * size, 5_000, `${4 * size} expiries`);
    stop = true;
    await load;
    const open = samples.stop();
    const min = Math.min(...open);
    console.log(
      `[ttl] ${pool.stats().expired} rotations, ${open.length} samples of connections.open: min ${min}, max ${
        Math.max(...open)
      }; ${ok} calls ok`,
    );
    expect(min).toBeGreaterThanOrEqual(size);
    expect(errors).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(log.count("expire")).toBe(pool.stats().expired);
    // a rotation is not a failure: no reconnect backoff
    expect(log.count("reconnect")).toBe(0);
    expect(pool.stats().reconnects).toBe(0);
    // every expired socket closed with 1000 (close frame, no terminate)
    await waitFor(() => log.of("close").length >= 4 * size, 2_000, "close events");
    expect(log.of("close").every((e) => e.code === 1000 && e.reason === "expired")).toBe(true);
    const expiredIds = new Set(log.of("expire").map((e) => e.connection.id));
    const closedIds = new Set(log.of("close").map((e) => e.connection.id));
    expect([...closedIds].every((id) => expiredIds.has(id))).toBe(true);
    const closedSockets = spy.instances.filter((s) => s.closeCalls.length > 0);
    expect(closedSockets.length).toBeGreaterThanOrEqual(4 * size);
    expect(closedSockets.every((s) => s.closeCalls[0]!.code === 1000 && s.terminatedAt === undefined)).toBe(true);
    // the replacement reuses the slot index: url(index) called with 0..size-1 only, about evenly
    expect(new Set(urlCalls)).toEqual(new Set([0, 1, 2]));
    expect(urlCalls.length).toBe(size + log.count("expire"));
    // TTLs are jittered (up to 10 % less), so sockets opened together do not expire together
    const ttls = log.of("expire").map((e) => e.connection.ttl);
    expect(ttls.every((t) => t > 134 && t <= 150)).toBe(true);
    expect(new Set(ttls).size).toBeGreaterThan(1);
    expect(pool.stats().calls).toMatchObject({ failed: 0, inFlight: 0, queued: 0 });
  });

  it("the expired socket's queue moves to its replacement; its calls in flight finish; then it closes with 1000", async () => {
    const spy = spyWebSocket();
    const { pool } = await setup((s) => s.url, { size: 1, maxInFlight: 1, ttl: 250, WebSocket: spy.WebSocket });
    const log = collectEvents(pool, ["open", "expire", "reroute", "close"]);
    await pool.ready();
    const oldId = pool.connections()[0]!.id;
    const slow = track(pool.call("sleep", [500], { timeout: 5_000 }));
    const queued = Array.from({ length: 3 }, (_, i) => track(pool.call("echo", [i], { timeout: 5_000 })));
    expect(pool.connections()[0]).toMatchObject({ inFlight: 1, queued: 3 });
    await waitFor(() => log.count("expire") === 1, 1_000, "expire");
    await waitFor(() => log.count("open") === 2, 1_000, "replacement open");
    // the expired socket is draining, the replacement has taken its queue
    const conns = pool.connections();
    const old = conns.find((c) => c.id === oldId)!;
    const fresh = conns.find((c) => c.id !== oldId)!;
    expect(old).toMatchObject({ state: "draining", inFlight: 1, queued: 0 });
    expect(fresh.state).toBe("open");
    const reroute = log.of("reroute")[0]!;
    expect(reroute).toMatchObject({ count: 3 });
    expect(reroute.from.id).toBe(oldId);
    expect(reroute.to?.id).toBe(fresh.id);
    expect(pool.stats().calls.rerouted).toBe(3);
    const outs = await Promise.all(queued.map((q) => q.promise));
    expect(outs.map((o) => o.ok && o.value)).toEqual([0, 1, 2]);
    // they finished before the slow call, which is still in flight on the old socket
    expect(slow.outcome).toBeUndefined();
    expect(spy.instances[0]!.closeCalls).toEqual([]);
    expect(await slow.promise).toMatchObject({ ok: true, value: 500 });
    await waitFor(() => log.of("close").some((e) => e.connection.id === oldId), 1_000, "close");
    expect(log.of("close").find((e) => e.connection.id === oldId)).toMatchObject({ code: 1000, reason: "expired" });
    expect(spy.instances[0]!.closeCalls[0]!.code).toBe(1000);
    expect(spy.instances[0]!.closeCalls[0]!.at).toBeGreaterThanOrEqual(spy.instances[0]!.createdAt + 500);
    // (the replacement itself expires 250 ms after it opened: count only the first)
    expect(pool.stats().expired).toBeGreaterThanOrEqual(1);
    expect(pool.stats().calls).toMatchObject({ succeeded: 4, failed: 0, retried: 0 });
  });

  it("drainTimeout exceeded: calls still in flight are lost (idempotent re-sent, others ConnectionLostError)", async () => {
    const { server, pool } = await setup((s) => s.url, { size: 1, ttl: 150, drainTimeout: 100 });
    const log = collectEvents(pool, ["open", "expire", "close"]);
    await pool.ready();
    const oldId = pool.connections()[0]!.id;
    server.hold();
    const idem = track(pool.call("record", [`drain-idem-${process.pid}`], { idempotent: true, timeout: 5_000 }));
    const once = track(pool.call("record", [`drain-once-${process.pid}`], { timeout: 5_000 }));
    await waitFor(() => server.heldCount() === 2, 1_000, "held");
    await waitFor(() => once.outcome !== undefined, 2_000, "drain timeout");
    const drainStarted = log.timesOf("open")[1]!;
    expect(log.count("expire")).toBe(1);
    const closeOld = log.of("close").find((e) => e.connection.id === oldId)!;
    expect(closeOld.reason).toMatch(/drain timeout: 2 calls still in flight after 100 ms/);
    expect(log.timesOf("close")[0]! - drainStarted).toBeGreaterThanOrEqual(95);
    const e = (once.outcome as { error: ConnectionLostError }).error;
    expect(e).toBeInstanceOf(ConnectionLostError);
    expect(e.code).toBe("ERR_CONNECTION_LOST");
    expect(e.maybeExecuted).toBe(true);
    expect(pool.stats().calls.retried).toBe(1);
    await waitFor(() => server.heldCount() === 3, 1_000, "re-sent call held");
    server.release();
    expect(await idem.promise).toMatchObject({ ok: true, value: 2 });
    expect(server.executions.get(`drain-once-${process.pid}`)).toBe(1);
    expect(pool.stats().calls).toMatchObject({ succeeded: 1, failed: 1, retried: 1, inFlight: 0, queued: 0 });
  });
});

describe("TTL with revive: false", () => {
  it("expired sockets are dropped, the pool shrinks, then calls fail with NoConnectionError", async () => {
    const { pool } = await setup((s) => s.url, { size: 2, ttl: 250, revive: false });
    const log = collectEvents(pool, ["open", "expire", "close", "reconnect"]);
    await waitFor(() => pool.stats().connections.open === 2, 1_000, "2 open");
    const slow = track(pool.call("sleep", [150], { timeout: 5_000 }));
    const sizes: number[] = [];
    const s = sampler(() => pool.stats().connections.total, 5);
    await waitFor(() => pool.stats().connections.total === 0, 2_000, "pool empty");
    sizes.push(...s.stop());
    expect(await slow.promise).toMatchObject({ ok: true, value: 150 });
    // it went 2 → 1 → 0 (never back up)
    const distinct = sizes.filter((n, i) => i === 0 || n !== sizes[i - 1]);
    expect(distinct[0]).toBe(2);
    expect(distinct.at(-1)).toBe(0);
    for (let i = 1; i < distinct.length; i++) expect(distinct[i]!).toBeLessThan(distinct[i - 1]!);
    expect(log.count("expire")).toBe(2);
    expect(pool.stats().expired).toBe(2);
    expect(log.count("open")).toBe(2);
    expect(log.count("reconnect")).toBe(0);
    await waitFor(() => log.count("close") === 2, 1_000, "2 closes");
    expect(log.of("close").every((e) => e.code === 1000)).toBe(true);
    const t0 = performance.now();
    const err = await pool.call("echo", [1], { timeout: 5_000 }).catch((e: unknown) => e);
    // At once, not after its 5 s timeout (the bound leaves room for a loaded machine's GC pauses).
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(NoConnectionError);
    expect(err).toMatchObject({ code: "ERR_NO_CONNECTION" });
    expect(pool.stats().calls).toMatchObject({ succeeded: 1, failed: 1 });
  });
});
