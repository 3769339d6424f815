/**
 * SPEC §3.3 and §3.4: a socket dies with calls in its queue (re-routed,
 * keeping their deadline) and with calls in flight (idempotent ones re-sent,
 * the others rejected with ConnectionLostError and never run twice).
 *
 * Two proxies in front of one server: slot 0 goes through proxy A, slot 1
 * through proxy B, so a test can kill exactly one socket.
 */
import { describe, expect, it } from "vitest";
import { own, setup, startProxy, startServer } from "../fixtures/harness.ts";
import type { FaultProxy } from "../fixtures/proxy.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { collectEvents, sleep, track, type Tracked, waitFor } from "../fixtures/pool-helpers.ts";
import { ConnectionLostError, NoConnectionError, Pool, PoolExhaustedError, type PoolOptions, TimeoutError } from "../../src/mod.ts";

async function twoProxies(
  options: PoolOptions = {},
): Promise<{ server: RpcServer; a: FaultProxy; b: FaultProxy; pool: Pool; idA: number; idB: number }> {
  const server = await startServer();
  const a = await startProxy(server);
  const b = await startProxy(server);
  const pool = own(
    new Pool((i: number) => (i === 0 ? a.url("/a") : b.url("/b")), {
      size: 2,
      strategy: "round-robin",
      heartbeat: false,
      reconnect: { initialDelay: 400, maxDelay: 400, jitter: false },
      ...options,
    }),
  );
  await waitFor(() => pool.stats().connections.open === 2, 2_000, "2 open");
  const conns = pool.connections();
  const idA = conns.find((c) => c.url.includes("/a"))!.id;
  const idB = conns.find((c) => c.url.includes("/b"))!.id;
  return { server, a, b, pool, idA, idB };
}

let tokenSeq = 0;
const token = (label: string): string => `${label}-${process.pid}-${++tokenSeq}`;

// deno-lint-ignore no-explicit-any -- tests read the fields of whichever error class it is
function errorOf(t: Tracked<unknown>): any {
  expect(t.outcome, "settled").toBeDefined();
  expect(t.outcome!.ok, `expected a rejection, got ${JSON.stringify(t.outcome)}`).toBe(false);
  return (t.outcome as { error: unknown }).error;
}

describe("re-routing queued calls", () => {
  it("moves the dead socket's queue to the live socket (reroute event, stats), keeping each call's deadline", async () => {
    const { server, a, pool, idA, idB } = await twoProxies({ maxInFlight: 1 });
    const log = collectEvents(pool, ["reroute", "close", "reconnect"]);
    server.hold();
    // round-robin: even calls on A, odd on B; the first of each is in flight, the rest queue
    const t0 = performance.now(); // before call(): the deadline counts from there
    const calls = Array.from({ length: 10 }, (_, i) => track(pool.call("echo", [i], { timeout: i === 2 ? 500 : 5_000 })));
    await waitFor(() => server.heldCount() === 2, 2_000, "2 held replies");
    let conns = pool.connections();
    expect(conns.find((c) => c.id === idA)).toMatchObject({ inFlight: 1, queued: 4 });
    expect(conns.find((c) => c.id === idB)).toMatchObject({ inFlight: 1, queued: 4 });
    await sleep(200);
    a.cutAll();
    await waitFor(() => log.count("reroute") === 1, 2_000, "reroute event");
    const reroute = log.of("reroute")[0]!;
    expect(reroute.count).toBe(4);
    expect(reroute.from.id).toBe(idA);
    expect(reroute.to?.id).toBe(idB);
    expect(pool.stats().calls.rerouted).toBe(4);
    conns = pool.connections();
    expect(conns.find((c) => c.id === idB)).toMatchObject({ inFlight: 1, queued: 8 });
    expect(conns.find((c) => c.id === idA)).toMatchObject({ state: "connecting", inFlight: 0, queued: 0 });
    expect(log.of("close")[0]!.connection.id).toBe(idA);
    expect(log.of("close")[0]!.code).toBe(1006);
    expect(log.of("reconnect")[0]!.attempt).toBe(1);
    // the call in flight on A (echo is not idempotent) was lost
    await waitFor(() => calls[0]!.outcome !== undefined, 1_000, "call 0 settled");
    expect(errorOf(calls[0]!)).toBeInstanceOf(ConnectionLostError);
    // call 2 was re-routed 200 ms into its 500 ms deadline: it times out 500 ms after call(), not after the move
    await waitFor(() => calls[2]!.outcome !== undefined, 2_000, "call 2 timed out");
    const e2 = errorOf(calls[2]!);
    expect(e2).toBeInstanceOf(TimeoutError);
    expect(e2.code).toBe("ERR_TIMEOUT");
    expect(e2.message).toMatch(/queued on socket/);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(480);
    expect(elapsed).toBeLessThan(900);
    server.release();
    const outs = await Promise.all(calls.map((c) => c.promise));
    outs.forEach((o, i) => {
      if (i === 0 || i === 2) return;
      expect(o, `call ${i}`).toMatchObject({ ok: true, value: i });
    });
    expect(pool.stats().calls).toMatchObject({ succeeded: 8, failed: 2, timedOut: 1, rerouted: 4, retried: 0, inFlight: 0, queued: 0 });
  });

  it("with no live socket, queued calls wait (within deadline and maxQueue) and succeed when a socket returns", async () => {
    const { proxy, pool } = await setup({ proxy: true, pool: { size: 1, maxQueue: 6, reconnect: { initialDelay: 10, maxDelay: 30 } } });
    await pool.ready();
    const log = collectEvents(pool, ["reroute", "reconnect", "open"]);
    proxy.refuse(true);
    proxy.cutAll();
    await waitFor(() => pool.stats().connections.open === 0, 2_000, "socket lost");
    const waiting = Array.from({ length: 5 }, (_, i) => track(pool.call("add", [i, 100], { timeout: 5_000 })));
    const short = track(pool.call("echo", ["short"], { timeout: 150 }));
    // maxQueue (6) reached: one more is refused at once
    const refused = track(pool.call("echo", ["one too many"]));
    await refused.promise;
    const e = errorOf(refused);
    expect(e).toBeInstanceOf(PoolExhaustedError);
    expect(e.code).toBe("ERR_POOL_EXHAUSTED");
    expect(e.message).toMatch(/6 calls already wait \(maxQueue 6\)/);
    expect(pool.stats().calls.queued).toBe(6);
    // the short one hits its deadline while it waits
    await short.promise;
    const es = errorOf(short);
    expect(es).toBeInstanceOf(TimeoutError);
    expect(es.code).toBe("ERR_TIMEOUT");
    await waitFor(() => log.count("reconnect") >= 4, 3_000, "failed attempts");
    expect(waiting.every((w) => w.outcome === undefined)).toBe(true);
    expect(pool.stats().calls.queued).toBe(5);
    proxy.refuse(false);
    const outs = await Promise.all(waiting.map((w) => w.promise));
    expect(outs.map((o) => (o.ok ? o.value : o.error))).toEqual([100, 101, 102, 103, 104]);
    expect(log.count("open")).toBe(1);
    // the only socket kept its own queue: nothing was moved
    expect(log.count("reroute")).toBe(0);
    expect(pool.stats().calls).toMatchObject({ succeeded: 5, failed: 2, timedOut: 1, rerouted: 0, inFlight: 0, queued: 0 });
  });

  it("calls waiting on a socket that is backing off move to the first socket that opens", async () => {
    const { server, a, b, pool, idA, idB } = await twoProxies({ maxInFlight: 4 });
    a.refuse(true);
    b.refuse(true);
    a.cutAll();
    b.cutAll();
    await waitFor(() => pool.stats().connections.open === 0, 2_000, "both lost");
    const log = collectEvents(pool, ["reroute", "open"]);
    const calls = Array.from({ length: 8 }, (_, i) => track(pool.call("echo", [i], { timeout: 5_000 })));
    const queuedOn = (id: number): number => pool.connections().find((c) => c.id === id)!.queued;
    expect(queuedOn(idA) + queuedOn(idB)).toBe(8);
    expect(queuedOn(idA)).toBeGreaterThan(0);
    b.refuse(false);
    const outs = await Promise.all(calls.map((c) => c.promise));
    expect(outs.map((o) => (o.ok ? o.value : String(o.error)))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(log.of("open")[0]!.connection.id).toBe(idB);
    const reroute = log.of("reroute")[0]!;
    expect(reroute.from.id).toBe(idA);
    expect(reroute.to?.id).toBe(idB);
    expect(pool.stats().calls.rerouted).toBe(reroute.count);
    expect(server.stats.connectionsAccepted).toBe(3);
  });
});

describe("revive: false", () => {
  it("a dead socket is dropped, not reconnected: its queue moves to the survivor; the last one gone → NoConnectionError", async () => {
    const { server, a, b, pool, idA, idB } = await twoProxies({ revive: false, maxInFlight: 1 });
    const log = collectEvents(pool, ["reroute", "close", "reconnect"]);
    server.hold();
    const calls = Array.from({ length: 6 }, (_, i) => track(pool.call("echo", [i], { idempotent: true, timeout: 5_000 })));
    await waitFor(() => server.heldCount() === 2, 2_000, "2 held");
    a.cutAll();
    await waitFor(() => pool.stats().connections.total === 1, 1_000, "A dropped");
    expect(pool.connections().map((c) => c.id)).toEqual([idB]);
    expect(log.count("reconnect")).toBe(0);
    expect(log.of("close")[0]!.connection.id).toBe(idA);
    // A's queued calls (2) moved, its sent idempotent call was re-sent: all now on B
    expect(log.of("reroute")[0]).toMatchObject({ count: 2 });
    expect(pool.stats().calls).toMatchObject({ rerouted: 2, retried: 1 });
    expect(pool.connections()[0]).toMatchObject({ inFlight: 1, queued: 5 });
    server.release();
    const outs = await Promise.all(calls.map((c) => c.promise));
    expect(outs.map((o) => o.ok && o.value)).toEqual([0, 1, 2, 3, 4, 5]);
    // the last socket dies with calls waiting: they fail at once with NoConnectionError
    server.hold();
    const more = Array.from({ length: 3 }, (_, i) => track(pool.call("echo", [i], { idempotent: true, timeout: 5_000 })));
    await waitFor(() => server.heldCount() === 1, 1_000, "1 held");
    const t0 = performance.now();
    b.cutAll();
    const outs2 = await Promise.all(more.map((c) => c.promise));
    expect(performance.now() - t0).toBeLessThan(500);
    for (const o of outs2) expect((o as { error: unknown }).error).toMatchObject({ code: "ERR_NO_CONNECTION" });
    expect(pool.stats().connections.total).toBe(0);
    expect(log.count("reconnect")).toBe(0);
    await expect(pool.call("echo", [1])).rejects.toBeInstanceOf(NoConnectionError);
  });
});

describe("calls in flight when their socket dies", () => {
  it("idempotent calls are re-sent and succeed; the others reject with ConnectionLostError (maybeExecuted) and never run twice", async () => {
    const { server, a, pool, idA } = await twoProxies();
    const log = collectEvents(pool, ["reroute", "close"]);
    server.hold();
    // round-robin: even indexes on A, odd on B
    const plan = Array.from({ length: 20 }, (_, i) => ({ tok: token(i % 4 < 2 ? "idem" : "once"), idempotent: i % 4 < 2 }));
    const calls = plan.map((p) => track(pool.call<number>("record", [p.tok], { idempotent: p.idempotent, timeout: 5_000 })));
    await waitFor(() => server.heldCount() === 20, 2_000, "20 held replies");
    // every call ran once on the server already
    expect(plan.every((p) => server.executions.get(p.tok) === 1)).toBe(true);
    const onA = pool.connections().find((c) => c.id === idA)!;
    expect(onA.inFlight).toBe(10);
    a.cutAll();
    await waitFor(() => calls.filter((c) => c.outcome !== undefined).length === 5, 2_000, "5 lost");
    // A's 5 idempotent calls were re-sent on B (and run a second time there), its 5 others lost
    expect(pool.stats().calls.retried).toBe(5);
    await waitFor(() => server.heldCount() === 25, 2_000, "re-sent calls reached the server");
    server.release();
    const outs = await Promise.all(calls.map((c) => c.promise));
    plan.forEach((p, i) => {
      const o = outs[i]!;
      const onDeadSocket = i % 2 === 0;
      if (p.idempotent) {
        // the reply is the execution count: 2 if it ran on A and again on B
        expect(o, `call ${i}`).toMatchObject({ ok: true, value: onDeadSocket ? 2 : 1 });
        expect(server.executions.get(p.tok)).toBe(onDeadSocket ? 2 : 1);
      } else if (onDeadSocket) {
        expect(o.ok, `call ${i}`).toBe(false);
        const e = (o as { error: ConnectionLostError }).error;
        expect(e).toBeInstanceOf(ConnectionLostError);
        expect(e.code).toBe("ERR_CONNECTION_LOST");
        expect(e.maybeExecuted).toBe(true);
        expect(e.message).toMatch(/not re-sent: it is not idempotent/);
        expect(server.executions.get(p.tok)).toBe(1);
      } else {
        expect(o, `call ${i}`).toMatchObject({ ok: true, value: 1 });
      }
    });
    // a non-idempotent token never ran twice
    expect(plan.filter((p) => !p.idempotent).every((p) => server.executions.get(p.tok) === 1)).toBe(true);
    expect(pool.stats().calls).toMatchObject({ succeeded: 15, failed: 5, timedOut: 0, retried: 5, rerouted: 0, inFlight: 0, queued: 0 });
    // sent calls are re-sent, not re-routed: no reroute event
    expect(log.count("reroute")).toBe(0);
    expect(log.count("close")).toBe(1);
  });

  it('retry: "always" re-sends every call; retry: "never" re-sends none, even idempotent ones', async () => {
    for (const retry of ["always", "never"] as const) {
      const { server, a, pool } = await twoProxies({ retry });
      server.hold();
      const toks = Array.from({ length: 8 }, () => token(retry));
      const calls = toks.map((t, i) => track(pool.call("record", [t], { idempotent: i % 4 === 0, timeout: 5_000 })));
      await waitFor(() => server.heldCount() === 8, 2_000, "8 held");
      a.cutAll();
      await sleep(50);
      server.release();
      const outs = await Promise.all(calls.map((c) => c.promise));
      const lost = outs.filter((o) => !o.ok);
      if (retry === "always") {
        expect(lost).toEqual([]);
        expect(pool.stats().calls.retried).toBe(4);
        expect(toks.filter((_, i) => i % 2 === 0).every((t) => server.executions.get(t) === 2)).toBe(true);
      } else {
        expect(lost).toHaveLength(4);
        for (const o of lost) {
          expect((o as { error: ConnectionLostError }).error).toMatchObject({ code: "ERR_CONNECTION_LOST", maybeExecuted: true });
        }
        expect(pool.stats().calls.retried).toBe(0);
        expect(toks.every((t) => server.executions.get(t) === 1)).toBe(true);
      }
      await pool.destroy();
    }
  });

  it("an idempotent call in flight on the last socket waits for the reconnect and is re-sent", async () => {
    const { server, proxy, pool } = await setup({ proxy: true, pool: { size: 1, reconnect: { initialDelay: 20, maxDelay: 40 } } });
    await pool.ready();
    server.hold();
    const tokIdem = token("idem");
    const tokOnce = token("once");
    const idem = track(pool.call("record", [tokIdem], { idempotent: true, timeout: 5_000 }));
    const once = track(pool.call("record", [tokOnce], { timeout: 5_000 }));
    await waitFor(() => server.heldCount() === 2, 2_000, "2 held");
    proxy.cutAll();
    await once.promise;
    expect(errorOf(once)).toMatchObject({ code: "ERR_CONNECTION_LOST", maybeExecuted: true });
    expect(idem.outcome).toBeUndefined();
    // re-sent on the new socket once it opens (its reply is held again)
    await waitFor(() => server.executions.get(tokIdem) === 2, 2_000, "re-sent");
    server.release();
    const o = await idem.promise;
    expect(o).toMatchObject({ ok: true, value: 2 });
    expect(server.executions.get(tokOnce)).toBe(1);
    expect(pool.stats().calls).toMatchObject({ succeeded: 1, failed: 1, retried: 1 });
  });
});
