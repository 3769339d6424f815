/**
 * Chaos with subscriptions (issue 12): long-lived subscriptions and a stream
 * of ordinary calls through a pool that rotates by TTL while a seeded
 * schedule kills carriers and other sockets, stalls sockets (the heartbeat
 * must find them), restarts the server on the same port, reloads and
 * resizes the pool, changes the server's latency, and subscribes and
 * unsubscribes short-lived subscriptions on the side.
 *
 *   CHAOS_CALLS    ordinary calls (default 3 000: paced at about 250/s, so the faults last about 12 s)
 *   CHAOS_SUBS     long-lived subscriptions (default 16; half resume from their last event)
 *   CHAOS_SEED     seed of the PRNG driving the calls and the fault schedule (default: random)
 *   CHAOS_VERBOSE  `1`: print one summary line (CI prints nothing)
 *
 * The seed is in every assertion message; `CHAOS_SEED=<seed>` replays the
 * call mix and the fault schedule (timing still varies).
 *
 * Ground truth is the server's ledger (fixtures/server.ts
 * `subscriptionLedger()`): every `eth_subscribe` it served, tagged with the
 * client subscription it belongs to, the sequence number it was made at,
 * which numbers it wrote to its socket (or a stalled socket's buffer), and
 * whether it ended by `eth_unsubscribe` or with its socket.
 * Every subscription has `key` (the sequence number). What must hold:
 *
 * - every long-lived subscription is still alive at the end (none of these
 *   faults is a reason to end one), carried once: the server's live count,
 *   the pool's `active` and the sockets' counts agree;
 * - per subscription, the numbers delivered strictly increase: no event
 *   twice, none out of order;
 * - a subscription whose `params` resumes from its last event (the server
 *   replays what came after it) has no hole at all;
 * - one that does not resume may miss an event only with a dead carrier:
 *   either it was written on a subscription whose socket then died (lost in
 *   transit), or nothing carried it and the subscription made last before
 *   it was sent died with its socket. A number missed while that one was
 *   unsubscribed (a make-before-break move that broke before it made), or
 *   written on a subscription that did not die, is a lost event;
 * - no buffer overflowed (the readers keep up), and every delivered event
 *   reached its reader;
 * - reload() and resize() resolve, or reject with TimeoutError when a new
 *   socket did not open within connectTimeout (killed, or the server down);
 *   short-lived subscriptions subscribe and unsubscribe without an error;
 * - calls: each settles once; idempotent ones succeed; a non-idempotent one
 *   succeeds or rejects with ConnectionLostError (maybeExecuted) and never
 *   runs twice; the pool's counts are exactly these calls (its own
 *   subscribe and unsubscribe calls are not counted), failed only as allowed;
 * - after unsubscribe() and close(): nothing live on the server, every
 *   subscription in the ledger ended, `active` 0.
 */
import { describe, expect, it } from "vitest";
import { defer, note, setup } from "../fixtures/harness.ts";
import { collectEvents, laterTimers, prng, sleep, waitFor } from "../fixtures/pool-helpers.ts";
import type { SubscriptionRecord } from "../fixtures/server.ts";
import { carried, drain, ETH, type Head, holes } from "../fixtures/subscriptions.ts";
import { ConnectionLostError, type ResubscribeEvent, type Subscription, TimeoutError } from "../../src/mod.ts";

const CALLS = Number(process.env.CHAOS_CALLS ?? 3_000);
const SUBS = Number(process.env.CHAOS_SUBS ?? 16);
const SEED = process.env.CHAOS_SEED !== undefined && process.env.CHAOS_SEED !== ""
  ? Number(process.env.CHAOS_SEED) >>> 0
  : (Math.random() * 2 ** 32) >>> 0;
const VERBOSE = process.env.CHAOS_VERBOSE === "1";
/** ms between the server's ticks: each tick is one event, with the next sequence number, to every live subscription */
const INTERVAL = 5;
/** call workers; each waits 10–60 ms between calls, so about 250 calls/s */
const WORKERS = 16;
const BUDGET_MS = Math.max(30_000, CALLS * 15);
/** a stalled socket is killed on the server this long after its stall (the heartbeat drops it on the client in ~200 ms) */
const STALL_MS = 800;

type Kind = "idem" | "once" | "echo";
interface Call {
  kind: Kind;
  token: string;
  settles: number;
  ok?: boolean;
  value?: unknown;
  error?: unknown;
}
interface Tracked {
  tag: string;
  resume: boolean;
  sub: Subscription<Head>;
  got: number[];
  ended: unknown;
  moves: ResubscribeEvent[];
}

describe("chaos with subscriptions", () => {
  it(
    `${SUBS} subscriptions and ${CALLS} calls through kills, stalls, restarts, reloads, resizes, latency and TTL: none lost, none twice, none left`,
    { timeout: BUDGET_MS + 30_000 },
    async () => {
      const tag = `[chaos-subscriptions seed=${SEED} calls=${CALLS} subscriptions=${SUBS}]`;
      note(tag);
      const rand = prng(SEED);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
      const { server, pool } = await setup({
        server: { subscriptionInterval: INTERVAL },
        pool: {
          size: 3,
          ttl: 600,
          revive: true,
          timeout: 20_000,
          drainTimeout: 2_000,
          connectTimeout: 1_000,
          heartbeat: { interval: 100, timeout: 100 },
          reconnect: { initialDelay: 5, maxDelay: 50, resetAfter: 200 },
          retry: "idempotent",
        },
      });
      const { later, clear: clearTimers } = laterTimers();
      defer(clearTimers);
      const log = collectEvents(pool, ["close", "expire", "reconnect"]);
      await waitFor(() => pool.stats().connections.open === 3, 5_000, `${tag} pool open`);

      // ------------------------------------------------------------ subscriptions
      const subscribe = (name: string, resume: boolean, timeout?: number): Promise<Subscription<Head>> =>
        pool.subscribe<Head>(
          "eth_subscribe",
          resume ? (last?: Head) => ["newHeads", { tag: name, from: last?.number ?? null }] : ["newHeads", { tag: name }],
          { ...ETH, key: (h: Head) => h.number, ...(timeout === undefined ? {} : { timeout }) },
        );
      const tracked: Tracked[] = await Promise.all(
        Array.from({ length: SUBS }, async (_, i) => {
          const resume = i % 2 === 1;
          const sub = await subscribe(`s${i}`, resume);
          const { got, done } = drain(sub);
          const t: Tracked = { tag: `s${i}`, resume, sub, got, ended: undefined, moves: [] };
          sub.addEventListener("resubscribe", (e) => t.moves.push(e));
          void done.then((error) => (t.ended = error ?? "ended"));
          return t;
        }),
      );

      // ------------------------------------------------------------ faults
      const faults = { killCarrier: 0, kill: 0, stall: 0, restart: 0, reload: 0, resize: 0, latency: 0, churn: 0 };
      const changes: Promise<string>[] = []; // reload() and resize() outcomes
      const churns: Promise<string>[] = []; // short-lived subscriptions: "ok" or what went wrong
      let calling = true;
      let restarting: Promise<void> | undefined;
      let changing = false;
      const outcome = (p: Promise<unknown>): Promise<string> => {
        changing = true;
        // A replacement socket may not open within connectTimeout (killed, or the server restarting): a TimeoutError.
        const allowed = (e: unknown): boolean => e instanceof TimeoutError && e.code === "ERR_TIMEOUT" && /connectTimeout/.test(e.message);
        return p.then(() => "ok", (e: unknown) => (allowed(e) ? "timed out" : `${(e as Error).name}: ${(e as Error).message}`))
          .finally(() => (changing = false));
      };
      const chaos = (async () => {
        while (calling) {
          await sleep(40 + rand() * 80);
          if (!calling) break;
          const r = rand();
          const open = server.connections().filter((c) => !c.stalled);
          if (r < 0.18) {
            const carriers = server.subscriptionSockets().filter((id) => open.some((c) => c.id === id));
            if (carriers.length > 0 && server.kill(pick(carriers))) faults.killCarrier++;
          } else if (r < 0.3) {
            if (open.length > 0 && server.kill(pick(open).id)) faults.kill++;
          } else if (r < 0.4) {
            const id = open.length > 0 ? pick(open).id : undefined;
            if (id !== undefined && server.stall(id)) {
              faults.stall++;
              later(STALL_MS, () => server.kill(id));
            }
          } else if (r < 0.44) {
            if (restarting === undefined) {
              faults.restart++;
              restarting = server.restart(20 + rand() * 60).finally(() => (restarting = undefined));
            }
          } else if (r < 0.53) {
            if (!changing) {
              faults.reload++;
              changes.push(outcome(pool.reload()));
            }
          } else if (r < 0.62) {
            if (!changing) {
              faults.resize++;
              changes.push(outcome(pool.resize(2 + Math.floor(rand() * 3))));
            }
          } else if (r < 0.78) {
            faults.latency++;
            server.setFaults({ latency: Math.floor(rand() * 40), jitter: Math.floor(rand() * 10) });
          } else if (r < 0.9) {
            const k = faults.churn++;
            const lifetime = 50 + rand() * 250;
            churns.push(
              subscribe(`churn${k}`, rand() < 0.5, 10_000).then(
                async (sub) => {
                  await sleep(lifetime);
                  await sub.unsubscribe();
                  return "ok";
                },
                (e: unknown) => `subscribe failed: ${String(e)}`,
              ),
            );
          }
        }
      })();

      // ------------------------------------------------------------ calls
      const calls: Call[] = [];
      const worker = async (): Promise<void> => {
        while (calls.length < CALLS) {
          const i = calls.length;
          const r = rand();
          const c: Call = { kind: r < 0.4 ? "idem" : r < 0.8 ? "once" : "echo", token: `${SEED}-${i}`, settles: 0 };
          calls.push(c);
          const promise = c.kind === "echo"
            ? pool.call("echo", [c.token], { idempotent: true })
            : pool.call("record", [c.token], { idempotent: c.kind === "idem" });
          await promise.then(
            (value) => Object.assign(c, { ok: true, value, settles: c.settles + 1 }),
            (error: unknown) => Object.assign(c, { ok: false, error, settles: c.settles + 1 }),
          );
          await sleep(10 + rand() * 50);
        }
      };
      const t0 = performance.now();
      const workers = Promise.all(Array.from({ length: WORKERS }, worker));
      const budget = new Promise<string>((resolve) => later(BUDGET_MS, () => resolve("over budget")));
      const finished = await Promise.race([workers.then(() => "done"), budget]);
      calling = false;
      await chaos;
      const wall = Math.round(performance.now() - t0);
      expect(finished, `${tag} every call settled within ${BUDGET_MS} ms`).toBe("done");

      // ------------------------------------------------------------ quiet
      clearTimers();
      for (const c of server.connections()) if (c.stalled) server.kill(c.id);
      server.setFaults({ latency: 0, jitter: 0 });
      await restarting;
      const changed = await Promise.all(changes);
      expect(changed.filter((o) => o !== "ok" && o !== "timed out"), `${tag} reload() and resize() failures`).toEqual([]);
      expect(await Promise.all(churns), `${tag} short-lived subscriptions`).toEqual(churns.map(() => "ok"));
      const live = (): string =>
        `server ${server.liveSubscriptions()}, active ${pool.stats().subscriptions.active}, carried ${carried(pool)}`;
      await waitFor(
        () => server.liveSubscriptions() === SUBS && pool.stats().subscriptions.active === SUBS && carried(pool) === SUBS,
        10_000,
        `${tag} each subscription carried once (${live()})`,
      ).catch((e: Error) => expect.fail(`${e.message}; now ${live()}`));
      const at = tracked.map((t) => t.got.length);
      await waitFor(() => tracked.every((t, i) => t.got.length > at[i]! + 2), 5_000, `${tag} every subscription flowing`);

      // ------------------------------------------------------------ subscriptions
      const ledger = server.subscriptionLedger();
      const byTag = new Map<unknown, SubscriptionRecord[]>();
      for (const rec of ledger) byTag.set(rec.tag, [...(byTag.get(rec.tag) ?? []), rec]);
      const wrote = (rec: SubscriptionRecord, n: number): boolean => rec.sent.some(([a, b]) => a <= n && n <= b);
      /** The subscription made last before the server sent `n`: the one the client subscription lived on (or was moving to) then. */
      const newestAt = (recs: SubscriptionRecord[], n: number): SubscriptionRecord | undefined =>
        [...recs].reverse().find((rec) => rec.after < n);
      const around = (t: Tracked, recs: SubscriptionRecord[], n: number): string => {
        const near = recs.filter((rec) => rec.after < n + 10 && (rec.sent.at(-1)?.[1] ?? rec.after) > n - 10);
        const i = t.got.indexOf(n);
        const got = i >= 0 ? t.got.slice(Math.max(0, i - 4), i + 5) : t.got.filter((x) => x > n - 5 && x < n + 5);
        return `delivered …${got}…; server: ${
          near.map((rec) => `${rec.id} on ${rec.conn} after ${rec.after} sent ${JSON.stringify(rec.sent)} ${rec.end ?? "live"}`).join("; ")
        }`;
      };
      const problems: string[] = [];
      let lostWithCarrier = 0;
      for (const t of tracked) {
        const recs = byTag.get(t.tag) ?? [];
        if (t.ended !== undefined) problems.push(`${t.tag} ended: ${String(t.ended)}`);
        t.got.forEach((n, i) => {
          if (i > 0 && n <= t.got[i - 1]!) problems.push(`${t.tag} delivered ${n} after ${t.got[i - 1]}: ${around(t, recs, n)}`);
        });
        if (t.sub.stats().delivered !== t.got.length) problems.push(`${t.tag} delivered ${t.sub.stats().delivered}, read ${t.got.length}`);
        for (const [a, b] of holes(t.got)) {
          for (let n = a + 1; n < b && problems.length < 30; n++) {
            const covering = recs.filter((rec) => wrote(rec, n));
            const newest = newestAt(recs, n);
            const why = covering.length > 0
              ? covering.every((rec) => rec.end === "closed")
                ? ""
                : `it was written on ${covering.map((rec) => `${rec.id} (${rec.end ?? "live"})`)}`
              : newest?.end === "closed"
              ? ""
              : `nothing carried it, and the newest subscription then, ${newest?.id}, did not die (${newest?.end ?? "live"})`;
            if (t.resume) problems.push(`${t.tag} (resumes) missed ${n}: ${why || "lost with its carrier"}; ${around(t, recs, n)}`);
            else if (why !== "") problems.push(`${t.tag} missed ${n}: ${why}; ${around(t, recs, n)}`);
            else lostWithCarrier++;
          }
        }
      }
      const subStats = pool.stats().subscriptions;
      expect(subStats.overflowed, `${tag} no buffer overflowed`).toBe(0);
      expect(problems.join("\n"), `${tag} subscription problems`).toBe("");

      // ------------------------------------------------------------ calls
      let lostOnce = 0;
      let duplicates = 0;
      const callProblems: string[] = [];
      calls.forEach((c, i) => {
        const runs = server.executions.get(c.token) ?? 0;
        const bad = (what: string): unknown => callProblems.length < 20 && callProblems.push(`call ${i} (${c.kind}): ${what}`);
        if (c.settles !== 1) bad(`settled ${c.settles} times`);
        if (c.kind === "once" && runs > 1) {
          duplicates++;
          bad(`ran ${runs} times`);
        }
        if (c.ok) {
          if (
            c.kind === "echo" ? c.value !== c.token : c.kind === "once" ? c.value !== 1 : !(Number(c.value) >= 1 && Number(c.value) <= runs)
          ) {
            bad(`returned ${JSON.stringify(c.value)}, ran ${runs} times`);
          }
        } else if (c.kind !== "once") bad(`idempotent call failed: ${String(c.error)}`);
        else if (!(c.error instanceof ConnectionLostError) || c.error.code !== "ERR_CONNECTION_LOST" || !c.error.maybeExecuted) {
          bad(`failed with ${String(c.error)}`);
        } else lostOnce++;
      });
      const s = pool.stats();
      expect(callProblems.join("\n"), `${tag} call problems`).toBe("");
      expect(duplicates, `${tag} duplicates`).toBe(0);
      // The pool's counts are the app's calls exactly (its own subscribe and unsubscribe calls are not in them).
      expect(s.calls.succeeded + s.calls.failed, `${tag} succeeded + failed = calls made`).toBe(CALLS);
      expect(s.calls.failedBy, `${tag} failedBy`).toEqual(lostOnce > 0 ? { ERR_CONNECTION_LOST: lostOnce } : {});
      // TTL still rotates the sockets, so subscribe and unsubscribe calls come and go: none may stay.
      await waitFor(() => pool.stats().calls.inFlight + pool.stats().calls.queued === 0, 3_000, `${tag} nothing in flight or queued`);

      // ------------------------------------------------------------ the run did what it says
      const heartbeatCloses = log.of("close").filter((e) => /heartbeat/.test(e.reason ?? "")).length;
      expect(s.expired, `${tag} TTL rotations`).toBeGreaterThan(0);
      expect(subStats.resubscribed, `${tag} moves`).toBeGreaterThan(SUBS);
      expect(faults.killCarrier + faults.kill, `${tag} kills`).toBeGreaterThan(0);
      if (faults.stall >= 3) expect(heartbeatCloses, `${tag} the heartbeat found stalled sockets`).toBeGreaterThan(0);

      // ------------------------------------------------------------ unsubscribe and close
      // TTL off: with no move under way, the counts below are exact.
      pool.update({ ttl: 0 });
      await waitFor(
        () =>
          pool.connections().every((c) => c.state === "open") && pool.stats().calls.inFlight === 0 &&
          server.liveSubscriptions() === SUBS && carried(pool) === SUBS,
        5_000,
        `${tag} no move under way`,
      );
      const failedBefore = subStats.unsubscribeFailed;
      const unsubscribesBefore = server.unsubscribes;
      const half = tracked.slice(0, SUBS / 2);
      await Promise.all(half.map((t) => t.sub.unsubscribe()));
      expect(server.unsubscribes - unsubscribesBefore, `${tag} unsubscribe() ended each on the server`).toBe(half.length);
      expect(server.liveSubscriptions(), `${tag} after unsubscribe()`).toBe(SUBS - half.length);
      expect(pool.stats().subscriptions.active).toBe(SUBS - half.length);
      await pool.close();
      const after = pool.stats().subscriptions;
      expect(server.liveSubscriptions(), `${tag} left on the server after close()`).toBe(0);
      expect(server.unsubscribes - unsubscribesBefore, `${tag} close() unsubscribed the rest`).toBe(SUBS);
      expect(after.active, `${tag} active after close()`).toBe(0);
      expect(after.unsubscribeFailed, `${tag} no unsubscribe failed once the faults stopped`).toBe(failedBefore);
      expect(server.subscriptionLedger().filter((rec) => rec.end === undefined), `${tag} ledger: every subscription ended`).toEqual([]);
      for (const t of tracked) expect(t.ended, `${tag} ${t.tag} ended cleanly`).toBe("ended");

      if (VERBOSE) {
        const longestGap = Math.max(0, ...tracked.flatMap((t) => t.moves.map((m) => m.gap)));
        const longestSilence = Math.max(0, ...tracked.flatMap((t) => t.moves.map((m) => m.silence)));
        const reasons: Record<string, number> = {};
        for (const m of tracked.flatMap((t) => t.moves)) reasons[m.reason] = (reasons[m.reason] ?? 0) + 1;
        const f = Object.entries(faults).map(([k, v]) => `${k} ${v}`).join(", ");
        console.log(
          `${tag} ${wall} ms; faults: ${f} (reload/resize timed out: ${
            changed.filter((o) => o === "timed out").length
          }); TTL expiries ${s.expired}, reconnects ${s.reconnects}, heartbeat closes ${heartbeatCloses}; ` +
            `subscriptions: moves ${after.resubscribed} (long-lived: ${JSON.stringify(reasons)}), longest gap ${longestGap} ms, ` +
            `longest silence ${longestSilence} ms, duplicates dropped ${after.duplicatesDropped}, ` +
            `events dropped ${after.overflowed}, lost with a dead carrier ${lostWithCarrier} (not resuming), ` +
            `unsubscribe failed ${after.unsubscribeFailed}, ledger ${server.subscriptionLedger().length}, left on the server ${server.liveSubscriptions()}; ` +
            `calls: lost 0, duplicates ${duplicates}, ConnectionLostError ${lostOnce}, rerouted ${s.calls.rerouted}, retried ${s.calls.retried}`,
        );
      }
      log.stop();
    },
  );
});
