/**
 * Issue 10's "Also": errors that answer the caller's next question, the
 * close-code policy end to end with `reconnect.shouldRetry`, and stats that
 * add up, refusals on entry included. Against a real ws server.
 */
import { describe, expect, it } from "vitest";
import { own, setup, startServer } from "../fixtures/harness.ts";
import { collectEvents, sleep, track, waitFor } from "../fixtures/pool-helpers.ts";
import {
  ConnectError,
  ConnectionLostError,
  InvalidConfigError,
  NoConnectionError,
  Pool,
  type PoolErrorEvent,
  TimeoutError,
} from "../../src/mod.ts";

function expectStatsAddUp(pool: Pool, settled: number): void {
  const c = pool.stats().calls;
  expect(c.succeeded + c.failed, "succeeded + failed = calls settled").toBe(settled);
  expect(Object.values(c.failedBy).reduce((a, b) => a + b, 0), "failedBy sums to failed").toBe(c.failed);
}

describe("TimeoutError says whether the call was written", () => {
  it("maybeExecuted: true for a call in flight, false for one that waited in a queue", async () => {
    const { server, pool } = await setup({ pool: { size: 1, maxInFlight: 1 } });
    await pool.ready();
    server.hold(); // replies are held: the first call stays in flight, the second waits
    // The queued call's deadline comes first, so it expires in the queue whatever the machine's load.
    const sent = track(pool.call("echo", ["sent"], { timeout: 600 }));
    const waiting = track(pool.call("echo", ["waiting"], { timeout: 150 }));
    await Promise.all([sent.promise, waiting.promise]);
    const [a, b] = [sent.outcome, waiting.outcome].map((o) => (o as { error: TimeoutError }).error);
    expect(a).toBeInstanceOf(TimeoutError);
    expect(b).toBeInstanceOf(TimeoutError);
    expect([a!.maybeExecuted, b!.maybeExecuted]).toEqual([true, false]);
    expect(a!.message).toMatch(/sent on socket/);
    expect(b!.message).toMatch(/queued on socket/);
    server.release();
    expectStatsAddUp(pool, 2);
  });
});

describe("ConnectError", () => {
  it("a url function that throws: an error event with the function's own error as cause, the redacted URL and the attempt", async () => {
    const server = await startServer();
    const boom = new Error("vault unreachable");
    let calls = 0;
    const pool = own(
      new Pool(() => {
        calls++;
        if (calls === 1) throw boom;
        return `${server.url}?token=s3cret`;
      }, { size: 1, heartbeat: false, reconnect: { initialDelay: 5, maxDelay: 10 } }),
    );
    const errors: PoolErrorEvent[] = [];
    pool.addEventListener("error", (e) => errors.push(e));
    await pool.ready();
    expect(errors).toHaveLength(1);
    const e = errors[0]!.error as ConnectError;
    expect(e).toBeInstanceOf(ConnectError);
    expect(e.code).toBe("ERR_CONNECT");
    expect(e.cause).toBe(boom);
    expect(e.attempt).toBe(1);
    expect(e.message).toMatch(/url function failed: vault unreachable/);
    expect(pool.connections()[0]!.url).toMatch(/token=\*\*\*/);
    expect(await pool.call("add", [1, 2])).toBe(3);
  });

  it("ready() that times out on a refused port carries the ConnectError of the last attempt as its cause", async () => {
    const server = await startServer();
    const port = server.port;
    await server.close(); // nothing listens there now
    const pool = own(
      new Pool(`ws://user:pw@127.0.0.1:${port}/`, { size: 1, heartbeat: false, reconnect: { initialDelay: 5, maxDelay: 20 } }),
    );
    const e = await pool.ready({ timeout: 300 }).then(() => undefined, (error: TimeoutError) => error);
    expect(e).toBeInstanceOf(TimeoutError);
    const cause = e!.cause as ConnectError;
    expect(cause).toBeInstanceOf(ConnectError);
    expect(cause.url).toBe(`ws://***:***@127.0.0.1:${port}/`);
    expect(cause.attempt).toBeGreaterThanOrEqual(1);
    expect(cause.message).toMatch(/could not connect/);
    expect(String((cause.cause as Error | undefined)?.message)).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify([e!.message, cause.message])).not.toMatch(/pw/);
  });
});

describe("the close-code policy, end to end", () => {
  it("reconnect.shouldRetry stops on an application code: the socket is dropped, waiting calls fail NoConnectionError saying why", async () => {
    const seen: { code: number; reason: string }[] = [];
    const { server, pool } = await setup({
      pool: { size: 1, reconnect: { initialDelay: 5, maxDelay: 10, shouldRetry: (c) => (seen.push(c), c.code !== 4401) } },
    });
    await pool.ready();
    const log = collectEvents(pool, ["close", "reconnect"]);
    // A normal close first: it reconnects.
    server.closeSocket(server.connections()[0]!.id, 1001, "deploy");
    await waitFor(() => log.count("reconnect") === 1 && pool.stats().connections.open === 1, 2_000, "reconnected after 1001");
    // Then "credentials expired": it stops.
    server.hold();
    const inFlight = track(pool.call("echo", ["x"], { idempotent: true, timeout: 3_000 }));
    await waitFor(() => pool.stats().calls.inFlight === 1, 2_000, "in flight");
    server.closeSocket(server.connections()[0]!.id, 4401, "token expired");
    await inFlight.promise;
    expect(seen.map((c) => [c.code, c.reason])).toEqual([[1001, "deploy"], [4401, "token expired"]]);
    expect(log.count("reconnect")).toBe(1);
    expect(pool.stats().connections.total).toBe(0);
    const e = (inFlight.outcome as { error: NoConnectionError }).error;
    expect(e).toBeInstanceOf(NoConnectionError);
    expect(e.message).toMatch(/reconnect\.shouldRetry declined \(code 4401: token expired\)/);
    expect(e.cause).toBeInstanceOf(ConnectError);
    const later = await pool.call("echo", [1]).catch((error: unknown) => error);
    expect(later).toBeInstanceOf(NoConnectionError);
    expectStatsAddUp(pool, 2);
  });

  it("a reconnect.shouldRetry that throws: an error event naming it, and the pool goes on as without it (the calls in flight settle at once, the socket reconnects)", async () => {
    const { server, pool } = await setup({
      pool: {
        size: 1,
        timeout: 3_000,
        reconnect: {
          initialDelay: 5,
          maxDelay: 10,
          shouldRetry: () => {
            throw new Error("app bug in shouldRetry");
          },
        },
      },
    });
    await pool.ready();
    const log = collectEvents(pool, ["error", "reconnect"]);
    const inFlight = track(pool.call("record", ["w0", { sleep: 100 }]));
    await waitFor(() => server.executions.size === 1, 2_000, "executed");
    server.closeSocket(server.connections()[0]!.id, 4001, "app close");
    await inFlight.promise;
    const e = (inFlight.outcome as { error: ConnectionLostError }).error;
    expect(e).toBeInstanceOf(ConnectionLostError);
    expect(e.maybeExecuted).toBe(true);
    const [event] = log.of("error");
    expect(event!.error).toBeInstanceOf(InvalidConfigError);
    expect(event!.error).toMatchObject({ option: "reconnect.shouldRetry" });
    expect((event!.error.cause as Error).message).toBe("app bug in shouldRetry");
    await waitFor(() => log.count("reconnect") === 1 && pool.stats().connections.open === 1, 2_000, "reconnected");
    expect(await pool.call("echo", [1])).toBe(1);
  });

  it("a non-idempotent call in flight on a socket closed with 1011 rejects carrying the code and the reason", async () => {
    const { server, pool } = await setup({ pool: { size: 1, reconnect: { initialDelay: 5, maxDelay: 10 } } });
    await pool.ready();
    server.hold();
    const call = track(pool.call("echo", ["x"], { timeout: 3_000 }));
    await waitFor(() => pool.stats().calls.inFlight === 1, 2_000, "in flight");
    server.closeSocket(server.connections()[0]!.id, 1011, "oops");
    await call.promise;
    const e = (call.outcome as { error: ConnectionLostError }).error;
    expect(e).toBeInstanceOf(ConnectionLostError);
    expect([e.maybeExecuted, e.closeCode, e.reason]).toEqual([true, 1011, "oops"]);
    server.release();
  });
});

describe("stats add up", () => {
  it("calls refused on entry count in failed, by code: bad options, an aborted signal, a closed pool", async () => {
    const { pool } = await setup({ pool: { size: 1 } });
    await pool.ready();
    expect(await pool.call("add", [1, 1])).toBe(2);
    const refused = await Promise.all([
      pool.call("echo", [1], { timeout: -1 }).catch((e: unknown) => e),
      pool.call("", []).catch((e: unknown) => e),
      pool.batch([]).catch((e: unknown) => e),
      pool.call("echo", [1], { signal: AbortSignal.abort(new Error("no")) }).catch((e: unknown) => e),
    ]);
    expect(refused.slice(0, 3).every((e) => e instanceof InvalidConfigError)).toBe(true);
    expect((refused[3] as Error).message).toBe("no");
    await pool.close();
    await pool.call("echo", [1]).catch(() => {});
    expect(() => pool.notify("n")).toThrow(); // a notification is not a call: it throws, and is not counted
    await sleep(10);
    expect(pool.stats().calls.failedBy).toEqual({ ERR_INVALID_CONFIG: 3, ABORTED: 1, ERR_POOL_CLOSED: 1 });
    expectStatsAddUp(pool, 6);
  });
});

describe("arguments checked like options", () => {
  it("a batch entry with a misspelt key or no method is refused, naming the entry; callAll's concurrency is an integer", async () => {
    const { pool } = await setup({ pool: { size: 1 } });
    const typo = (await pool.batch([{ method: "echo", parms: [1] } as never]).catch((e: unknown) => e)) as InvalidConfigError;
    expect(typo).toBeInstanceOf(InvalidConfigError);
    expect([typo.option, typo.message]).toEqual(["requests[0].parms", expect.stringMatching(/did you mean `requests\[0\]\.params`/)]);
    const noMethod = (await pool.batch([{ method: "a" }, {} as never]).catch((e: unknown) => e)) as InvalidConfigError;
    expect(noMethod.option).toBe("requests[1].method");
    expect(((await pool.batch([]).catch((e: unknown) => e)) as InvalidConfigError).message).toBe(
      "Expected `requests` to be a non-empty list of `{ method, params? }`, got an array",
    );
    await expect(pool.callAll([], { concurrency: 1.5 })).rejects.toMatchObject({ option: "concurrency" });
  });
});
