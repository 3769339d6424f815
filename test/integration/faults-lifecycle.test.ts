/**
 * SPEC §4 (sockets): the state machine, connectTimeout, reconnect with
 * backoff and jitter capped at maxDelay, the attempt count that resets only
 * after `resetAfter` of uptime (no reconnect storm), maxAttempts →
 * NoConnectionError, and `url` as a function called on every (re)connect.
 */
import { describe, expect, it } from "vitest";
import { own, setup, startBlackhole, startFlapper, startServer } from "../fixtures/harness.ts";
import { collectEvents, sleep, spyWebSocket, track, waitFor } from "../fixtures/pool-helpers.ts";
import { NoConnectionError, Pool, type PoolOptions, TimeoutError } from "../../src/mod.ts";

function pool(url: ConstructorParameters<typeof Pool>[0], options: PoolOptions): Pool {
  return own(new Pool(url, { heartbeat: false, ...options }));
}

describe("socket state machine", () => {
  it("goes connecting → open → draining → closed, and closes with 1000 after its calls finish", async () => {
    const { server } = await setup({ proxy: true });
    const spy = spyWebSocket();
    const p = pool(server.url, { size: 1, ttl: 300, revive: false, drainTimeout: 5_000, WebSocket: spy.WebSocket });
    const log = collectEvents(p, ["open", "expire", "close", "reconnect"]);
    const states: string[] = [];
    const record = (): void => {
      const s = p.connections()[0]?.state ?? "gone";
      if (states.at(-1) !== s) states.push(s);
    };
    record();
    const sample = setInterval(record, 1);
    try {
      expect(p.connections()[0]!.state).toBe("connecting");
      expect(p.stats().connections).toEqual({ total: 1, open: 0, connecting: 1, draining: 0 });
      await p.ready();
      expect(p.connections()[0]!.state).toBe("open");
      expect(log.of("open")[0]!.connection.state).toBe("open");
      server.hold();
      const held = track(p.call("echo", ["in flight across expiry"], { timeout: 5_000 }));
      await waitFor(() => p.stats().expired === 1, 2_000, "expiry");
      // draining: no new calls are taken (revive: false, no socket left to take them) but the one in flight is kept
      expect(p.connections()[0]!.state).toBe("draining");
      expect(p.stats().connections).toEqual({ total: 1, open: 0, connecting: 0, draining: 1 });
      expect(log.of("expire")).toHaveLength(1);
      expect(log.of("expire")[0]!.connection.inFlight).toBe(1);
      expect(spy.instances[0]!.closeCalls).toEqual([]);
      await sleep(30);
      expect(held.outcome).toBeUndefined();
      server.release();
      expect(await held.promise).toMatchObject({ ok: true, value: "in flight across expiry" });
      await waitFor(() => log.count("close") === 1, 2_000, "close event");
      const close = log.of("close")[0]!;
      expect(close.code).toBe(1000);
      expect(close.connection.state).toBe("closed");
      // on the wire: a close frame with 1000, not a terminate
      // (ws calls close() again itself when the server's close frame comes back)
      expect(spy.instances[0]!.closeCalls[0]!.code).toBe(1000);
      expect(spy.instances[0]!.closeCalls.every((c) => c.code === 1000)).toBe(true);
      expect(spy.instances[0]!.terminatedAt).toBeUndefined();
      expect(log.count("reconnect")).toBe(0);
      expect(p.connections()).toEqual([]);
    } finally {
      clearInterval(sample);
    }
    expect(states).toEqual(["connecting", "open", "draining", "gone"]);
  });

  it("connectTimeout: an upgrade that never completes is a failed attempt, then a reconnect", async () => {
    const hole = await startBlackhole();
    const p = pool(hole.url, { size: 1, connectTimeout: 150, reconnect: { initialDelay: 10, maxDelay: 20 } });
    const log = collectEvents(p, ["open", "reconnect", "close"]);
    const t0 = performance.now();
    const call = track(p.call("echo", [1], { timeout: 600 }));
    await waitFor(() => log.count("reconnect") >= 2, 3_000, "two reconnects");
    const first = log.of("reconnect")[0]!;
    expect(first.reason).toMatch(/connectTimeout \(150 ms\)/);
    expect(first.attempt).toBe(1);
    expect(log.of("reconnect")[1]!.attempt).toBe(2);
    // not before connectTimeout elapsed
    expect(log.timesOf("reconnect")[0]!).toBeGreaterThanOrEqual(140);
    expect(p.stats().reconnects).toBeGreaterThanOrEqual(2);
    expect(p.stats().connections.open).toBe(0);
    expect(log.count("open")).toBe(0);
    // a failed connect is not a "close" of an open socket
    expect(log.count("close")).toBe(0);
    expect(hole.accepted).toBeGreaterThanOrEqual(2);
    // the call waited for a socket and hit its own deadline
    const out = await call.promise;
    expect(out.ok).toBe(false);
    expect(out.ok || out.error).toBeInstanceOf(TimeoutError);
    expect(out.ok || out.error.code).toBe("ERR_TIMEOUT");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(590);
    expect(p.stats().calls).toMatchObject({ failed: 1, timedOut: 1, succeeded: 0, inFlight: 0, queued: 0 });
  });

  it("a failed connect says why, in the reconnect event and in NoConnectionError", async () => {
    const { server } = await setup({ proxy: true });
    server.refuse(true); // HTTP 503 to every upgrade
    const p = pool(server.url, { size: 1, reconnect: { initialDelay: 5, maxDelay: 10, maxAttempts: 1 } });
    const log = collectEvents(p, ["reconnect"]);
    const call = track(p.call("echo", [1], { timeout: 5_000 }));
    const out = await call.promise;
    expect(log.of("reconnect").map((e) => e.reason)).toEqual(["could not connect: Unexpected server response: 503"]);
    expect(out.ok || out.error).toBeInstanceOf(NoConnectionError);
    expect(out.ok || out.error.message).toContain("2 failed attempts: could not connect: Unexpected server response: 503");
  });

  it("a refused connection is a failed attempt; queued calls go out once the server accepts again", async () => {
    const { proxy } = await setup({ proxy: true });
    proxy.refuse(true);
    const p = pool(proxy.url(), { size: 2, reconnect: { initialDelay: 5, maxDelay: 20 } });
    const log = collectEvents(p, ["open", "reconnect"]);
    const calls = Array.from({ length: 10 }, (_, i) => track(p.call("add", [i, 1], { timeout: 5_000 })));
    await waitFor(() => p.stats().reconnects >= 6, 3_000, "reconnect attempts");
    // The proxy closes refused sockets at once: the runtime's own words follow.
    expect(log.of("reconnect").every((e) => e.reason?.startsWith("could not connect"))).toBe(true);
    expect(p.stats().calls.queued).toBe(10);
    expect(calls.every((c) => c.outcome === undefined)).toBe(true);
    proxy.refuse(false);
    const outs = await Promise.all(calls.map((c) => c.promise));
    expect(outs.map((o) => (o.ok ? o.value : o.error))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(log.count("open")).toBeGreaterThanOrEqual(1);
    expect(p.stats().calls).toMatchObject({ succeeded: 10, failed: 0, inFlight: 0, queued: 0 });
  });
});

describe("reconnect backoff", () => {
  it("delays grow by factor, with full jitter, capped at maxDelay, and attempts are spaced by them", async () => {
    const { proxy } = await setup({ proxy: true });
    proxy.refuse(true);
    const opts = { initialDelay: 8, maxDelay: 60, factor: 2 };
    const p = pool(proxy.url(), { size: 2, reconnect: { ...opts, jitter: true } });
    const log = collectEvents(p, ["reconnect"]);
    await waitFor(() => log.count("reconnect") >= 40, 8_000, "40 reconnect events");
    log.stop();
    const byConn = new Map<number, { attempt: number; delay: number; at: number }[]>();
    for (const r of log.all) {
      const e = r.event as import("../../src/mod.ts").ConnectionEvent;
      const list = byConn.get(e.connection.id) ?? [];
      list.push({ attempt: e.attempt!, delay: e.delay!, at: r.at });
      byConn.set(e.connection.id, list);
    }
    expect(byConn.size).toBe(2);
    const atCap: number[] = [];
    for (const list of byConn.values()) {
      list.forEach((r, i) => {
        expect(r.attempt).toBe(i + 1); // never reset: the socket never opened
        const cap = Math.min(opts.maxDelay, opts.initialDelay * opts.factor ** (r.attempt - 1));
        expect(r.delay).toBeGreaterThanOrEqual(0);
        expect(r.delay).toBeLessThan(cap); // full jitter: uniform in [0, cap)
        if (cap === opts.maxDelay) atCap.push(r.delay);
        // The next attempt does not start before the delay (its failure is the next event). Node times a timer from
        // the event loop's clock, read when the loop turn began: on a busy machine a turn runs several ms, so the
        // timer fires that much "early" against a clock read inside the turn. Hence 10 ms of slack: an attempt
        // that ignored its delay would follow in about 1 ms, and most delays here are 30-60 ms.
        if (i > 0) expect(r.at - list[i - 1]!.at).toBeGreaterThanOrEqual(list[i - 1]!.delay - 10);
      });
    }
    // jitter: delays at the cap are spread, not all the same
    expect(atCap.length).toBeGreaterThan(10);
    expect(new Set(atCap).size).toBeGreaterThan(5);
    expect(Math.max(...atCap)).toBeLessThan(opts.maxDelay);
    expect(p.stats().reconnects).toBeGreaterThanOrEqual(40);
  });

  it("without jitter the delays are exactly initialDelay·factor^(attempt-1), capped", async () => {
    const { proxy } = await setup({ proxy: true });
    proxy.refuse(true);
    const p = pool(proxy.url(), { size: 1, reconnect: { initialDelay: 5, maxDelay: 40, factor: 3, jitter: false } });
    const log = collectEvents(p, ["reconnect"]);
    await waitFor(() => log.count("reconnect") >= 6, 3_000, "6 reconnect events");
    expect(log.of("reconnect").slice(0, 6).map((e) => [e.attempt, e.delay])).toEqual([
      [1, 5],
      [2, 15],
      [3, 40],
      [4, 40],
      [5, 40],
      [6, 40],
    ]);
  });

  it("a server that accepts and closes at once causes no reconnect storm: attempts keep growing", async () => {
    const flapper = await startFlapper();
    const p = pool(flapper.url, { size: 2, reconnect: { initialDelay: 10, maxDelay: 100, factor: 2, jitter: false, resetAfter: 1_000 } });
    const log = collectEvents(p, ["open", "reconnect", "close"]);
    await sleep(1_000);
    log.stop();
    const accepted = flapper.acceptedAt.length;
    // per socket: 1 + attempts fitting in 1000 ms with delays 10, 20, 40, 80, 100, 100, … → at most 13
    expect(accepted).toBeLessThanOrEqual(2 * 13);
    expect(accepted).toBeGreaterThanOrEqual(2 * 5);
    for (const id of new Set(log.of("reconnect").map((e) => e.connection.id))) {
      const attempts = log.of("reconnect").filter((e) => e.connection.id === id).map((e) => e.attempt);
      expect(attempts).toEqual(attempts.map((_, i) => i + 1));
    }
    expect(log.count("open")).toBeGreaterThanOrEqual(accepted - 2);
    expect(log.of("close").every((e) => e.code === 1011)).toBe(true);
    console.log(`[storm] accept-and-close server: ${accepted} connections accepted in 1000 ms by a pool of 2`);
  });

  it("…whereas resetAfter: 0 resets the count after every open (the storm this option prevents)", async () => {
    const flapper = await startFlapper();
    const p = pool(flapper.url, { size: 1, reconnect: { initialDelay: 10, maxDelay: 100, jitter: false, resetAfter: 0 } });
    const log = collectEvents(p, ["reconnect"]);
    await waitFor(() => log.count("reconnect") >= 5, 2_000, "5 reconnects");
    expect(new Set(log.of("reconnect").map((e) => e.attempt))).toEqual(new Set([1]));
    expect(new Set(log.of("reconnect").map((e) => e.delay))).toEqual(new Set([10]));
  });

  it("the attempt count resets only after the socket stayed open for resetAfter", async () => {
    const { proxy } = await setup({ proxy: true });
    const p = pool(proxy.url(), { size: 1, reconnect: { initialDelay: 5, maxDelay: 50, jitter: false, resetAfter: 300 } });
    const log = collectEvents(p, ["open", "reconnect"]);
    await p.ready();
    for (let n = 1; n <= 3; n++) {
      proxy.cutAll(); // after a short uptime
      await waitFor(() => log.count("open") === n + 1, 2_000, `reopen #${n}`);
      await sleep(20);
    }
    expect(log.of("reconnect").map((e) => e.attempt)).toEqual([1, 2, 3]);
    await sleep(350); // longer than resetAfter
    proxy.cutAll();
    await waitFor(() => log.count("open") === 5, 2_000, "reopen after long uptime");
    expect(log.of("reconnect").map((e) => e.attempt)).toEqual([1, 2, 3, 1]);
    expect(log.of("reconnect").map((e) => e.delay)).toEqual([5, 10, 20, 5]);
    expect(p.stats().reconnects).toBe(4);
    expect(await p.call("add", [2, 2])).toBe(4);
  });
});

describe("maxAttempts", () => {
  it("spent on every socket → the sockets are dropped and waiting calls reject with NoConnectionError at once", async () => {
    const { proxy } = await setup({ proxy: true });
    const p = pool(proxy.url(), { size: 2, reconnect: { initialDelay: 10, maxDelay: 20, maxAttempts: 3 } });
    const log = collectEvents(p, ["close", "reconnect"]);
    await waitFor(() => p.stats().connections.open === 2, 2_000, "2 open");
    proxy.refuse(true);
    proxy.cutAll();
    await waitFor(() => p.stats().connections.open === 0, 2_000, "0 open");
    const t0 = performance.now();
    const calls = Array.from({ length: 6 }, (_, i) => track(p.call("echo", [i], { timeout: 5_000 })));
    const outs = await Promise.all(calls.map((c) => c.promise));
    const elapsed = performance.now() - t0;
    for (const o of outs) {
      expect(o.ok).toBe(false);
      if (o.ok) continue;
      expect(o.error).toBeInstanceOf(NoConnectionError);
      expect(o.error.code).toBe("ERR_NO_CONNECTION");
      expect(o.error.message).toMatch(/no socket left/);
    }
    // promptly: a few backoff delays, far from the 5 s deadline
    expect(elapsed).toBeLessThan(2_000);
    // each socket: attempts 1..3 scheduled, the 4th failure drops it
    for (const id of new Set(log.of("reconnect").map((e) => e.connection.id))) {
      expect(log.of("reconnect").filter((e) => e.connection.id === id).map((e) => e.attempt)).toEqual([1, 2, 3]);
    }
    expect(p.stats().reconnects).toBe(6);
    expect(p.connections()).toEqual([]);
    expect(p.stats().connections.total).toBe(0);
    expect(p.stats().calls).toMatchObject({ failed: 6, timedOut: 0, inFlight: 0, queued: 0 });
    // 2 closes when the open sockets were cut, 2 when each was dropped for good
    expect(log.count("close")).toBe(4);
    // afterwards: new calls and ready() fail at once
    await expect(p.call("echo", [1])).rejects.toMatchObject({ code: "ERR_NO_CONNECTION" });
    await expect(p.ready()).rejects.toBeInstanceOf(NoConnectionError);
  });

  it("a call queued on a socket whose last attempt fails moves to a live socket instead", async () => {
    const { server, proxy } = await setup({ proxy: true });
    // socket index 0 goes through the proxy (which will refuse), index 1 straight to the server
    const p = pool((i: number) => (i === 0 ? proxy.url() : server.url), {
      size: 2,
      strategy: "round-robin",
      reconnect: { initialDelay: 30, maxDelay: 30, jitter: false, maxAttempts: 1 },
    });
    await waitFor(() => p.stats().connections.open === 2, 2_000, "2 open");
    proxy.refuse(true);
    proxy.cutAll();
    await waitFor(() => p.stats().connections.open === 1, 2_000, "1 open");
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => p.call("add", [i, i], { timeout: 5_000 })));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i));
    await waitFor(() => p.stats().connections.total === 1, 2_000, "dropped socket");
    expect(p.stats().calls.failed).toBe(0);
  });
});

describe("url as a function", () => {
  it("is called on every (re)connect with the slot index, and may be async", async () => {
    const { proxy } = await setup({ proxy: true });
    const calls: number[] = [];
    let n = 0;
    const p = pool(
      async (index: number) => {
        calls.push(index);
        await sleep(1);
        return proxy.url(`/rpc?slot=${index}&n=${++n}&token=secret${n}`);
      },
      { size: 3, reconnect: { initialDelay: 5, maxDelay: 10 } },
    );
    const log = collectEvents(p, ["open"]);
    await waitFor(() => p.stats().connections.open === 3, 2_000, "3 open");
    expect([...calls].sort()).toEqual([0, 1, 2]);
    // the snapshot shows the URL actually used, its credentials redacted
    expect(p.connections().map((c) => c.url).every((u) => /\/rpc\?slot=\d&n=\d&token=\*\*\*$/.test(u))).toBe(true);
    proxy.cutAll();
    await waitFor(() => log.count("open") === 6, 2_000, "3 reopened");
    expect(calls).toHaveLength(6);
    expect([...calls.slice(3)].sort()).toEqual([0, 1, 2]);
    // each socket shows the URL of its latest connect (fresh token)
    const tokens = p.connections().map((c) => Number(/n=(\d+)/.exec(c.url)![1]));
    expect(tokens.every((t) => t >= 4)).toBe(true);
    // a url function that throws is a failed attempt, reported as an error event, then retried
    let fail = true;
    const q = pool(
      (i: number) => {
        if (fail) throw new Error(`no token for ${i}`);
        return proxy.url();
      },
      { size: 1, reconnect: { initialDelay: 5, maxDelay: 10 } },
    );
    const qlog = collectEvents(q, ["error", "reconnect", "open"]);
    await waitFor(() => qlog.count("reconnect") >= 2, 2_000, "retries after url failure");
    expect(qlog.of("error")[0]!.error.message).toMatch(/url function failed: no token for 0/);
    fail = false;
    await q.ready();
    expect(await q.call("echo", ["ok"])).toBe("ok");
  });

  it("an async url slower than connectTimeout: the stale URL is not used later (no socket opened during backoff)", async () => {
    const server = await startServer();
    let n = 0;
    const p = pool(
      async () => {
        if (++n === 1) await sleep(250); // the first lookup outlives connectTimeout
        return server.url;
      },
      { size: 1, connectTimeout: 100, reconnect: { initialDelay: 300, maxDelay: 300, jitter: false } },
    );
    const log = collectEvents(p, ["open", "reconnect", "close"]);
    await waitFor(() => log.count("open") === 1, 2_000, "open");
    await sleep(300);
    expect(log.of("reconnect").map((e) => [e.attempt, e.reason])).toEqual([[1, "no open within connectTimeout (100 ms)"]]);
    expect(n).toBe(2);
    expect(log.count("open")).toBe(1);
    expect(log.count("close")).toBe(0);
    // one socket on the server, the one the pool uses
    expect(server.connections()).toHaveLength(1);
    expect(server.stats.connectionsAccepted).toBe(1);
    expect(await p.call("echo", ["fine"])).toBe("fine");
  });

  it("an async url that rejects after connectTimeout counts as one failed attempt, not two", async () => {
    const server = await startServer();
    let n = 0;
    const p = pool(
      async () => {
        if (++n === 1) {
          await sleep(200);
          throw new Error("token service down");
        }
        return server.url;
      },
      { size: 1, connectTimeout: 100, reconnect: { initialDelay: 300, maxDelay: 300, jitter: false } },
    );
    const log = collectEvents(p, ["open", "reconnect", "error"]);
    await waitFor(() => log.count("open") === 1, 2_000, "open");
    await sleep(100);
    expect(log.of("reconnect").map((e) => e.attempt)).toEqual([1]);
    expect(p.stats().reconnects).toBe(1);
    expect(n).toBe(2);
    expect(server.stats.connectionsAccepted).toBe(1);
  });
});
