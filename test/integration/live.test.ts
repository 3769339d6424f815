/**
 * Issue 13: changing a live pool. resize() up and down under load, update()
 * of each live option with its effect observed, reload() under load with the
 * chaos invariants (no call lost, no non-idempotent call twice, the open
 * count never below the size), and invalid updates refused by name.
 * Against a real ws server.
 */
import { describe, expect, it } from "vitest";
import { setup } from "../fixtures/harness.ts";
import { collectEvents, sleep, track, waitFor } from "../fixtures/pool-helpers.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { type ConnectionInfo, InvalidConfigError, type Pool, PoolClosedError } from "../../src/mod.ts";

/**
 * Keeps `width` non-idempotent `record` calls going (each with its own
 * token) until stopped; the server counts executions per token.
 */
function load(pool: Pool, width: number) {
  let n = 0;
  let stopped = false;
  const failures: unknown[] = [];
  const tokens: string[] = [];
  const run = async (): Promise<void> => {
    while (!stopped) {
      const token = `t${n++}`;
      tokens.push(token);
      try {
        await pool.call("record", [token], { timeout: 5_000 });
      } catch (error) {
        failures.push(error);
      }
    }
  };
  const workers = Array.from({ length: width }, run);
  return {
    failures,
    tokens,
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

/** Every call ran once on the server: none lost, none twice. */
function expectOnce(server: RpcServer, tokens: string[]): void {
  const counts = tokens.map((t) => server.executions.get(t) ?? 0);
  expect(counts.filter((c) => c !== 1), `of ${tokens.length} calls`).toEqual([]);
}

/** Samples the pool's open count every 5 ms until stopped. */
function sampleOpen(pool: Pool) {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(pool.stats().connections.open), 5);
  return { samples, stop: () => clearInterval(timer) };
}

describe("resize", () => {
  it("grows under load: opens sockets at once, resolves when they are open; no call fails or runs twice", async () => {
    const { server, pool } = await setup({ pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const events = collectEvents(pool, ["resize"]);
    const work = load(pool, 20);
    await sleep(50);
    await pool.resize(5);
    expect(pool.stats().connections).toMatchObject({ total: 5, open: 5 });
    expect(pool.options.size).toBe(5);
    expect(server.connections()).toHaveLength(5);
    await sleep(100);
    await work.stop();
    expect(work.failures).toEqual([]);
    expectOnce(server, work.tokens);
    const e = events.of("resize")[0]!;
    expect([e.type, e.from, e.size]).toEqual(["resize", 2, 5]);
    // The new sockets take calls (least-pending spreads them).
    expect(pool.connections().every((c) => c.sent > 0)).toBe(true);
  });

  it('shrinks under load: the removed sockets drain and close with 1000 "resize"; no call fails or runs twice', async () => {
    const { server, pool } = await setup({ pool: { size: 4 } });
    await waitFor(() => pool.stats().connections.open === 4);
    const closes = collectEvents(pool, ["close"]);
    const work = load(pool, 40);
    await sleep(50);
    await pool.resize(1);
    expect(pool.stats().connections).toMatchObject({ total: 1, open: 1, draining: 0 });
    await waitFor(() => server.connections().length === 1, 2_000, "server sees 1 socket");
    await sleep(100);
    await work.stop();
    expect(work.failures).toEqual([]);
    expectOnce(server, work.tokens);
    expect(closes.of("close").map((e) => [e.code, e.reason])).toEqual([[1000, "resize"], [1000, "resize"], [1000, "resize"]]);
    expect(pool.stats().calls.failed).toBe(0);
  });

  it("refuses a size out of range, naming it, and a closed pool", async () => {
    const { pool } = await setup({ pool: { size: 1 } });
    for (const bad of [0, 1.5, 1025, "2"]) {
      const e = await pool.resize(bad as number).catch((error: unknown) => error);
      expect(e).toBeInstanceOf(InvalidConfigError);
      expect((e as InvalidConfigError).option).toBe("size");
    }
    await pool.close();
    expect(await pool.resize(2).catch((error: unknown) => error)).toBeInstanceOf(PoolClosedError);
  });
});

describe("update", () => {
  it("a shorter ttl applies to sockets already open: they expire and are replaced, make-before-break", async () => {
    const { pool } = await setup({ pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    const log = collectEvents(pool, ["expire", "update"]);
    await sleep(300); // the sockets are 300 ms old: a ttl of 200 is already past
    pool.update({ ttl: 200 });
    await waitFor(() => log.count("expire") >= 2, 2_000, "both expired");
    const update = log.of("update")[0];
    expect([update?.changes, update?.previous]).toEqual([{ ttl: 200 }, { ttl: 0 }]);
    await waitFor(() => pool.stats().connections.open === 2 && pool.stats().connections.total === 2, 2_000, "replaced");
    const updates = log.count("update");
    pool.update({ ttl: 200, revive: true }); // the same values: no change, no event
    expect(log.count("update")).toBe(updates);
    pool.update({ ttl: 0 }); // off again: no more expiries
    const before = log.count("expire");
    await sleep(400);
    expect(log.count("expire")).toBe(before);
  });

  it("a larger maxInFlight sends queued calls at once; a larger maxQueue admits more", async () => {
    const { server, pool } = await setup({ pool: { size: 1, maxInFlight: 1, maxQueue: 2 } });
    await pool.ready();
    server.hold();
    const calls = [1, 2, 3].map((i) => track(pool.call("echo", [i], { timeout: 5_000 })));
    expect(pool.stats().calls).toMatchObject({ inFlight: 1, queued: 2 });
    await expect(pool.call("echo", [4])).rejects.toMatchObject({ code: "ERR_POOL_EXHAUSTED" });
    pool.update({ maxInFlight: 8, maxQueue: 100 });
    expect(pool.stats().calls).toMatchObject({ inFlight: 3, queued: 0 });
    const more = track(pool.call("echo", [5]));
    server.release();
    await Promise.all([...calls, more].map((c) => c.promise));
    expect([...calls, more].map((c) => c.outcome!.ok)).toEqual([true, true, true, true]);
  });

  it("a new strategy takes over; a new timeout applies to calls made after", async () => {
    const { server, pool } = await setup({ pool: { size: 3, strategy: "round-robin" } });
    await waitFor(() => pool.stats().connections.open === 3);
    const firstId = pool.connections()[0]!.id;
    pool.update({ strategy: (conns) => conns.find((c: ConnectionInfo) => c.id === firstId) ?? conns[0]! });
    const sentBefore = pool.connections().map((c) => c.sent);
    await Promise.all(Array.from({ length: 30 }, (_, i) => pool.call("echo", [i])));
    const sent = pool.connections().map((c, i) => c.sent - sentBefore[i]!);
    expect(sent).toEqual([30, 0, 0]);
    server.hold();
    pool.update({ timeout: 100 });
    const t0 = performance.now();
    await expect(pool.call("echo", [1])).rejects.toMatchObject({ code: "ERR_TIMEOUT" });
    expect(performance.now() - t0).toBeLessThan(2_000);
    server.release();
  });

  it("turning the heartbeat on finds a stalled socket; reconnect: false makes a lost socket drop", async () => {
    const { server, pool } = await setup({ pool: { size: 1, heartbeat: false, reconnect: { initialDelay: 10, maxDelay: 20 } } });
    await pool.ready();
    const log = collectEvents(pool, ["close", "reconnect"]);
    pool.update({ heartbeat: { interval: 100, timeout: 100 } });
    server.stall();
    await waitFor(() => log.count("close") === 1, 2_000, "heartbeat found the stall");
    expect(log.of("close")[0]!.reason).toMatch(/heartbeat/);
    server.unstall();
    await waitFor(() => pool.stats().connections.open === 1, 2_000, "back");
    pool.update({ reconnect: false });
    server.killAll();
    await waitFor(() => pool.stats().connections.total === 0, 2_000, "dropped, not reconnected");
    expect(log.count("reconnect")).toBe(1);
  });

  it("refuses bad values by name, as the constructor does, and options that cannot change live, saying what to do", async () => {
    const { pool } = await setup({ pool: { size: 1 } });
    const refused = (options: unknown): InvalidConfigError => {
      try {
        pool.update(options as never);
      } catch (error) {
        return error as InvalidConfigError;
      }
      throw new Error("not refused");
    };
    expect(refused({ ttl: -1 }).option).toBe("ttl");
    expect(refused({ maxInFlight: 0 }).message).toBe("Expected `maxInFlight` to be an integer from 1 and up, got `0` (number)");
    expect(refused({ reconnect: { maxDelay: -5 } }).option).toBe("reconnect.maxDelay");
    expect(refused({ heartbeat: { intervall: 5 } }).message).toMatch(/did you mean `heartbeat.interval`/);
    expect(refused({ tll: 5 }).message).toMatch(/did you mean `ttl`/);
    expect(refused({ size: 3 }).message).toBe("`size` cannot change on a live pool: use `pool.resize(size)`");
    expect(refused({ codec: {} }).option).toBe("codec");
    expect(refused({ WebSocket: class {} }).option).toBe("WebSocket");
    expect(refused(null).option).toBe("options");
    expect(pool.options).toMatchObject({ ttl: 0, maxInFlight: 256 }); // nothing changed
  });
});

describe("reload", () => {
  it("replaces every socket under load, make-before-break: no call lost or run twice, the open count never below the size", async () => {
    const { server, pool } = await setup({ pool: { size: 3 } });
    await waitFor(() => pool.stats().connections.open === 3);
    const before = pool.connections().map((c) => c.id);
    const log = collectEvents(pool, ["reload", "reloaded", "close"]);
    const work = load(pool, 30);
    await sleep(50);
    const open = sampleOpen(pool);
    const t0 = performance.now();
    await pool.reload();
    const ms = performance.now() - t0;
    await sleep(100);
    open.stop();
    await work.stop();
    const after = pool.connections().map((c) => c.id);
    expect(after.filter((id) => before.includes(id))).toEqual([]);
    expect(pool.stats().connections).toMatchObject({ total: 3, open: 3 });
    expect(work.failures).toEqual([]);
    expectOnce(server, work.tokens);
    expect(Math.min(...open.samples)).toBeGreaterThanOrEqual(3);
    const reload = log.of("reload")[0];
    const reloaded = log.of("reloaded")[0];
    expect([reload?.count, reloaded?.count]).toEqual([3, 3]);
    expect(reloaded?.duration).toBeGreaterThanOrEqual(0);
    await waitFor(() => log.count("close") === 3, 3_000, "the old sockets closed");
    expect(log.of("close").map((e) => [e.code, e.reason])).toEqual([[1000, "reload"], [1000, "reload"], [1000, "reload"]]);
    console.log(
      `[reload] ${work.tokens.length} calls, ${work.failures.length} failed, lowest open ${Math.min(...open.samples)}, ${
        Math.round(ms)
      } ms`,
    );
  });
});

describe("changing a pool that a listener closes", () => {
  it("destroy() inside the resize listener: resize rejects with PoolClosedError and no socket is left open on the server", async () => {
    const { server, pool } = await setup({ pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    pool.addEventListener("resize", () => void pool.destroy());
    const e = await pool.resize(5).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(PoolClosedError);
    await waitFor(() => server.connections().length === 0, 2_000, "every socket closed");
    await sleep(100);
    expect(server.connections()).toHaveLength(0); // none opened after
  });

  it("destroy() inside the reload listener: reload rejects with PoolClosedError; update() after close throws it", async () => {
    const { server, pool } = await setup({ pool: { size: 2 } });
    await waitFor(() => pool.stats().connections.open === 2);
    pool.addEventListener("reload", () => void pool.destroy());
    const e = await pool.reload().catch((error: unknown) => error);
    expect(e).toBeInstanceOf(PoolClosedError);
    await waitFor(() => server.connections().length === 0, 2_000, "every socket closed");
    expect(() => pool.update({ ttl: 5 })).toThrow(PoolClosedError);
  });

  it("a shrinking resize resolves once the removed sockets have closed", async () => {
    const { server, pool } = await setup({ pool: { size: 3 } });
    await waitFor(() => pool.stats().connections.open === 3 && server.connections().length === 3);
    const closes = collectEvents(pool, ["close"]);
    await pool.resize(1);
    expect(closes.count("close")).toBe(2);
    await waitFor(() => server.connections().length === 1, 1_000, "the server saw them close");
  });
});
