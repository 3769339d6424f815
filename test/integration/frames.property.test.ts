/**
 * Property-based (fast-check): random garbage frames — strings, random JSON,
 * JSON-RPC-shaped objects with wrong ids and types, batches of them, binary
 * frames, replays of already-settled ids — pushed by a real server to a pool
 * while real calls are in flight. Nothing throws, every real call settles
 * once with its own result, and each bad message is counted exactly once as a
 * protocol error (an oracle below classifies every message as the JSON-RPC
 * 2.0 spec does; valid notifications are events, not errors). Each message of
 * a frame counts on its own: an unreadable one spoils nothing else in its
 * frame (issue 10).
 *
 * It needs sockets, hence integration/. Runs are bounded: FRAMES_RUNS
 * (default 50) runs of up to 25 frames each.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { own, startServer } from "../fixtures/harness.ts";
import type { RpcServer } from "../fixtures/server.ts";
import { collectEvents, type EventLog, sleep, spyWebSocket, waitFor } from "../fixtures/pool-helpers.ts";
import { Pool, ProtocolError } from "../../src/mod.ts";

const RUNS = Number(process.env.FRAMES_RUNS ?? 50);

let server: RpcServer;
let pool: Pool;
let log: EventLog;
let spy: ReturnType<typeof spyWebSocket>;
/** ids of real calls that have settled: replies to them are late/duplicates */
const settledIds: string[] = [];
let unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => {
  unhandled.push(e);
};

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUnhandled);
  // Made outside a test: the harness disposes of them after the file's last test.
  server = await startServer();
  spy = spyWebSocket();
  pool = own(new Pool(server.url, { size: 2, heartbeat: false, WebSocket: spy.WebSocket, timeout: 10_000 }));
  log = collectEvents(pool, ["error", "notification", "close"]);
  await waitFor(() => pool.stats().connections.open === 2, 2_000, "2 open");
  await waitFor(() => server.connections().length === 2, 2_000, "server sees 2");
  await realCalls(4, "warmup");
});

afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
  process.off("uncaughtException", onUnhandled);
});

/** Runs `n` real echo calls and checks their results; records their wire ids as settled. */
async function realCalls(n: number, label: string, during?: () => Promise<void>): Promise<void> {
  const values = Array.from({ length: n }, (_, i) => ({ label, i, r: Math.random() }));
  const promises = values.map((v) => pool.call("echo", [v]));
  const settles = values.map(() => 0);
  const outcomes = promises.map((p, i) =>
    p.then(
      (value) => {
        settles[i]!++;
        return { ok: true as const, value };
      },
      (error: unknown) => {
        settles[i]!++;
        return { ok: false as const, error };
      },
    )
  );
  if (during !== undefined) await during();
  const results = await Promise.all(outcomes);
  results.forEach((r, i) => {
    expect(r, `real call ${i} of ${label}`).toEqual({ ok: true, value: values[i] });
    expect(settles[i]).toBe(1);
  });
  // their ids, from the frames the pool wrote
  const wanted = new Set(values.map((v) => JSON.stringify(v)));
  for (const s of spy.instances) {
    for (const f of s.frames.splice(0)) {
      const m = JSON.parse(f) as { id?: string; params?: unknown[] };
      if (m.id !== undefined && m.params !== undefined && wanted.has(JSON.stringify(m.params[0]))) settledIds.push(m.id);
    }
  }
}

// ------------------------------------------------------------------ generators

const SETTLED = "\u0000settled";
const NEAR = "\u0000near";

const jsonValue = fc.jsonValue({ maxDepth: 2 });
const idArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, 0, "", true, false, -0),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.constant(SETTLED), // an id whose call settled already: a late or duplicate reply
  fc.constant(NEAR), // a near miss of a real id
);
const rpcShaped = fc.record(
  {
    jsonrpc: fc.constantFrom("2.0", "2.0", "2.0", "1.0", 2, null),
    id: idArb,
    result: jsonValue,
    error: fc.oneof(
      fc.record({ code: fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), message: fc.string({ maxLength: 8 }), data: jsonValue }, {
        requiredKeys: [],
      }),
      jsonValue,
    ),
    method: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    params: jsonValue,
  },
  { requiredKeys: [] },
);

/** Well-formed messages, so that valid notifications and late/duplicate/near-miss replies are common too. */
const notification = fc.record({ jsonrpc: fc.constant("2.0"), method: fc.string({ maxLength: 8 }), params: jsonValue }, {
  requiredKeys: ["jsonrpc", "method"],
});
const lateReply = fc.oneof(
  fc.record({ jsonrpc: fc.constant("2.0"), id: fc.constantFrom(SETTLED, NEAR), result: jsonValue }),
  fc.record({
    jsonrpc: fc.constant("2.0"),
    id: fc.constantFrom(SETTLED, NEAR),
    error: fc.record({ code: fc.integer(), message: fc.string({ maxLength: 8 }) }),
  }),
);
const wellFormed = fc.oneof(notification, lateReply);

type Frame = { kind: "text"; data: string } | { kind: "binary"; data: Uint8Array } | { kind: "shaped"; data: unknown };
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.string({ maxLength: 40 }).map((data): Frame => ({ kind: "text", data })),
  fc.json({ maxDepth: 3 }).map((data): Frame => ({ kind: "text", data })),
  fc.uint8Array({ maxLength: 40 }).map((data): Frame => ({ kind: "binary", data })),
  rpcShaped.map((data): Frame => ({ kind: "shaped", data })),
  wellFormed.map((data): Frame => ({ kind: "shaped", data })),
  fc.array(fc.oneof(rpcShaped, wellFormed, jsonValue), { maxLength: 4 }).map((data): Frame => ({ kind: "shaped", data })),
  fc.array(wellFormed, { minLength: 1, maxLength: 4 }).map((data): Frame => ({ kind: "shaped", data })),
);

/** Replaces the id placeholders by real ids (settled ones, or near misses of them). */
function realize(frame: Frame, pick: () => number): string | Uint8Array {
  if (frame.kind === "binary") return frame.data;
  if (frame.kind === "text") return frame.data;
  const fix = (m: unknown): unknown => {
    if (typeof m !== "object" || m === null || Array.isArray(m) || !("id" in m)) return m;
    const o = { ...(m as Record<string, unknown>) };
    const real = settledIds[pick() % settledIds.length]!;
    // "~" never occurs in a generated id (base64url prefix + base36 counter)
    if (o.id === SETTLED) o.id = real;
    else if (o.id === NEAR) {
      o.id = [`${real}~`, `~${real}`, `${real} `, real.toUpperCase() === real ? `${real}~` : real.toUpperCase()][pick() % 4];
    }
    return o;
  };
  return JSON.stringify(Array.isArray(frame.data) ? frame.data.map(fix) : fix(frame.data));
}

// ------------------------------------------------------------------ oracle (JSON-RPC 2.0, as the spec reads)

interface Expect {
  errors: number;
  notifications: number;
}

function isId(v: unknown): boolean {
  return (typeof v === "string" && v !== "") || (typeof v === "number" && v !== 0 && Number.isFinite(v));
}

/** One message: "notification", "reply" (an unknown id here: an error) or "invalid". */
function classify(m: unknown): "notification" | "reply" | "invalid" {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return "invalid";
  const o = m as Record<string, unknown>;
  if (o.jsonrpc !== "2.0") return "invalid";
  if ("id" in o && o.id !== null) {
    if (!isId(o.id)) return "invalid";
    if ("error" in o) return typeof o.error === "object" && o.error !== null ? "reply" : "invalid";
    return "result" in o ? "reply" : "invalid";
  }
  if ("error" in o) return typeof o.error === "object" && o.error !== null ? "reply" : "invalid"; // error without id: reported
  return typeof o.method === "string" ? "notification" : "invalid";
}

function oracle(wire: string | Uint8Array): Expect {
  const text = typeof wire === "string" ? wire : new TextDecoder().decode(wire);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { errors: 1, notifications: 0 };
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) return { errors: 1, notifications: 0 };
    const kinds = parsed.map(classify);
    return { errors: kinds.filter((k) => k !== "notification").length, notifications: kinds.filter((k) => k === "notification").length };
  }
  const k = classify(parsed);
  return k === "notification" ? { errors: 0, notifications: 1 } : { errors: 1, notifications: 0 };
}

// ------------------------------------------------------------------ the property

describe("random malformed frames (fast-check)", () => {
  it("never throw, never settle a real call wrongly, and are each counted once", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 25 }), fc.infiniteStream(fc.nat()), async (frames, nats) => {
        run++;
        unhandled = [];
        const it = nats[Symbol.iterator]();
        const pick = (): number => it.next().value as number;
        server.setFaults({ latency: 2, jitter: 8 }); // real replies arrive among the garbage
        const sockets = server.connections().length;
        expect(sockets).toBe(2);
        const before = { errors: pool.stats().protocolErrors, events: log.count("error"), notifications: log.count("notification") };
        const expected: Expect = { errors: 0, notifications: 0 };
        await realCalls(12, `run ${run}`, async () => {
          for (const frame of frames) {
            const wire = realize(frame, pick);
            const e = oracle(wire);
            expected.errors += e.errors * sockets;
            expected.notifications += e.notifications * sockets;
            server.sendRaw(typeof wire === "string" ? wire : Buffer.from(wire));
            if (pick() % 4 === 0) await sleep(1);
          }
        });
        await waitFor(
          () =>
            pool.stats().protocolErrors - before.errors >= expected.errors &&
            log.count("notification") - before.notifications >= expected.notifications,
          2_000,
          "frames processed",
        ).catch(() => {});
        await sleep(5);
        expect(pool.stats().protocolErrors - before.errors).toBe(expected.errors);
        expect(log.count("error") - before.events).toBe(expected.errors);
        expect(log.count("notification") - before.notifications).toBe(expected.notifications);
        expect(log.of("error").every((e) => e.error instanceof ProtocolError && (e.error as ProtocolError).code === "ERR_PROTOCOL")).toBe(
          true,
        );
        expect(unhandled).toEqual([]);
        expect(pool.stats().calls.inFlight).toBe(0);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    // the pool is unharmed: no socket was dropped, stats add up, more calls work
    expect(log.count("close")).toBe(0);
    const s = pool.stats();
    expect(s.calls.failed).toBe(0);
    expect(s.calls.succeeded).toBe(4 + 12 * run);
    expect(await pool.call("add", [1, 1])).toBe(2);
    console.log(
      `[frames] ${run} runs: ${s.protocolErrors} protocol errors counted, ${
        log.count("notification")
      } notifications, ${s.calls.succeeded} real calls all correct`,
    );
  });
});
