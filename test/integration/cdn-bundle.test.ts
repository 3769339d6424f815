/**
 * The minified CDN file shortens internal property names (scripts/mangle.json).
 * A name on that list that is also part of the public surface would break
 * the CDN file only, silently for every Node test. This drives the same
 * scenario through the source and through dist/muxpool.js (built by `npm
 * test` before this runs) and asserts that users see the same shapes: stats,
 * snapshots, every event's fields, errors, what a strategy and a codec get,
 * the pinned handle.
 */
import { describe, expect, it } from "vitest";
import { WebSocket as WsWebSocket } from "ws";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as source from "../../src/mod.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { own, startServer } from "../fixtures/harness.ts";
import { waitFor } from "../fixtures/pool-helpers.ts";

const bundlePath = fileURLToPath(new URL("../../dist/muxpool.js", import.meta.url));

/** Own keys, deeply, as sorted paths: `calls.failedBy`, `latency.p50`, … */
function shape(value: unknown, prefix = ""): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [];
  return Object.keys(value).sort().flatMap((k) => [prefix + k, ...shape((value as Record<string, unknown>)[k], `${prefix}${k}.`)]);
}

/** The fields an event carries: own properties (events are plain `Event`s with readonly fields). */
function eventFields(event: Event): string[] {
  return Object.keys(event).sort();
}

async function scenario(lib: typeof source, server: RpcServer): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  const events: Record<string, string[]> = {};
  const strategySaw: string[][] = [];
  const codecCalls = new Set<string>();
  const base = lib.jsonRpc();
  const codec: source.Codec = {
    encodeRequest: (r) => (codecCalls.add("encodeRequest"), base.encodeRequest(r)),
    encodeNotification: (m, p) => (codecCalls.add("encodeNotification"), base.encodeNotification(m, p)),
    encodeBatch: (rs) => (codecCalls.add("encodeBatch"), base.encodeBatch!(rs)),
    decode: (d) => (codecCalls.add("decode"), base.decode(d)),
  };
  const pool = own(
    new lib.Pool(`ws://127.0.0.1:${server.port}`, {
      size: 2,
      codec,
      WebSocket: WsWebSocket as never,
      reconnect: { initialDelay: 10, maxDelay: 20 },
      strategy: (conns, call) => {
        // The documented ConnectionInfo and CallInfo fields (what else the objects hold is not public).
        const info = ["id", "url", "state", "tags", "inFlight", "queued", "sent", "received"].filter((k) =>
          (conns[0] as never)[k] !== undefined
        );
        strategySaw.push([...info, ...["method", "key", "idempotent"].filter((k) => k in call)]);
        return conns[0]!;
      },
    }),
  );
  for (
    const type of [
      "open",
      "close",
      "reconnect",
      "reroute",
      "notification",
      "error",
      "idle",
      "shutdown",
      "resize",
      "update",
      "reload",
      "reloaded",
    ] as const
  ) {
    pool.addEventListener(type, (e: Event) => {
      events[type] ??= eventFields(e);
    });
  }
  await pool.ready();
  await waitFor(() => pool.stats().connections.open === 2);
  seen.result = await pool.call("add", [1, 2], { idempotent: true });
  seen.batch = await pool.batch([{ method: "echo", params: ["a"] }, { method: "fail" }]);
  seen.batchShape = (seen.batch as unknown[]).map((r) => Object.keys(r as object).sort());
  seen.remote = await pool.call("fail").catch((e: source.RemoteError) => [e.name, e.code, ...Object.keys(e).sort()]);
  seen.handle = await pool.withConnection((conn) => [...Object.keys(conn).sort(), ...shape(conn.snapshot())]);
  pool.notify("log", { x: 1 });
  await pool.call("notifyMe", [1, "hello"]);
  server.sendRaw("not json");
  const lost = pool.call("sleep", [500]).catch((
    e: source.ConnectionLostError,
  ) => [e.name, e.code, e.maybeExecuted, ...Object.keys(e).sort()]);
  await waitFor(() => pool.stats().calls.inFlight === 1);
  server.killAll();
  seen.lost = await lost;
  await waitFor(
    () =>
      pool.stats().connections.open === 2 && events.reconnect !== undefined && events.error !== undefined &&
      events.notification !== undefined,
    5_000,
  );
  // A live pool: grow, update, reload; then calls waiting on a socket that an exclusive session checks out move (reroute).
  await pool.resize(3);
  pool.update({ maxInFlight: 1, ttl: 0 });
  await pool.reload();
  server.hold();
  const waiting = Array.from({ length: 6 }, (_, i) => pool.call("echo", [i], { idempotent: true }));
  await waitFor(() => pool.stats().calls.queued >= 3, 2_000, "calls queued behind held replies");
  await pool.withConnection(() => waitFor(() => events.reroute !== undefined, 2_000, "a reroute"), { exclusive: true });
  server.release();
  seen.waiting = await Promise.all(waiting);
  await pool.resize(2);
  seen.stats = shape(pool.stats());
  seen.snapshot = shape(pool.connections()[0]);
  await pool.close();
  seen.events = events;
  seen.strategySaw = [...new Set(strategySaw.map((s) => s.join(",")))];
  seen.codec = [...codecCalls].sort();
  seen.closed = await pool.call("add", [1, 1]).catch((e: source.PoolClosedError) => [e.name, e.code]);
  return seen;
}

describe("the CDN bundle (property names mangled) shows users the same shapes as the source", () => {
  it("stats, snapshots, events, errors, strategy and codec views, pinned handle", async () => {
    expect(existsSync(bundlePath), "dist/muxpool.js: run `node scripts/build.mjs` first").toBe(true);
    const bundle = (await import(bundlePath)) as typeof source;
    const fromSource = await scenario(source, await startServer());
    const fromBundle = await scenario(bundle, await startServer());
    expect(fromSource.result).toBe(3);
    expect(Object.keys(fromSource.events as object).sort()).toEqual(
      ["close", "error", "idle", "notification", "open", "reconnect", "reload", "reloaded", "reroute", "resize", "shutdown", "update"],
    );
    const fields = fromSource.events as Record<string, string[]>;
    expect(fields.reroute).toEqual(["count", "from", "to"]);
    expect(fields.reloaded).toEqual(["changes", "count", "duration", "from", "previous", "size"]);
    expect(fromBundle).toEqual(fromSource);
  });
});
