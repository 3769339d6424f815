/**
 * Which connection takes a call. Pure: it reads the connections it is given
 * and keeps only the sticky `key` table; it opens, writes and times nothing.
 *
 * Candidates come in tiers, best first, and the strategy chooses only among
 * the best tier that has any:
 *
 * | tier | connections |
 * |---|---|
 * | 0 | open and taking calls |
 * | 1 | connecting, or open with its link backed up (over `maxBuffered`) |
 * | 2 | waiting out a reconnect backoff |
 * | — | takes no new call now: draining, closed, checked out (`exclusive`), or past its TTL with no replacement on the way |
 *
 * @module
 */

import { InvalidConfigError, messageOf, MuxPoolError } from "./errors.ts";
import type { CallInfo, ConnectionInfo, StrategyFunction } from "./strategies.ts";

/** What the router reads of a connection. */
export interface Routable extends ConnectionInfo {
  /** Waiting out a backoff before its next connect attempt. */
  readonly inBackoff: boolean;
  /** Checked out by `withConnection({ exclusive: true })`. */
  readonly exclusive: boolean;
  /** Past its TTL with no replacement opening: takes no new call. */
  readonly retiring: boolean;
  /** Its socket holds less than `maxBuffered` unsent bytes. */
  writable(): boolean;
}

/** What the router reads of a call. */
export interface RoutedCall extends CallInfo {
  readonly filter: ((connection: ConnectionInfo) => boolean) | undefined;
}

/** Tier of a connection for a new call (see the module doc); 3: none. */
function tierOf(c: Routable): number {
  if (c.state === "open") return c.exclusive || c.retiring ? 3 : c.writable() ? 0 : 1;
  return c.state === "connecting" ? (c.inBackoff ? 2 : 1) : 3;
}

/** Sticky keys remembered at most; the oldest is forgotten past it. */
const MAX_KEYS = 10_000;

export class Router<C extends Routable> {
  #strategy: StrategyFunction;
  readonly #keys = new Map<string, C>();
  /** Reused between calls: routing allocates nothing. */
  readonly #candidates: C[] = [];

  constructor(strategy: StrategyFunction) {
    this.#strategy = strategy;
  }

  /**
   * The connection for `call` among `connections`, never `from` (the one it is
   * being moved off). `null`: a match exists but none takes calls now (wait in
   * the pool queue); `undefined`: no connection matches its filter at all.
   * Throws `InvalidConfigError` when the strategy returns something it was not
   * offered; a throwing strategy or filter throws through.
   */
  route(call: RoutedCall, connections: Iterable<C>, from?: C): C | null | undefined {
    const filter = call.filter;
    const candidates = this.#candidates;
    candidates.length = 0;
    let best = 3;
    let anyMatch = false;
    for (const c of connections) {
      if (c === from || (filter !== undefined && !filter(c))) continue;
      anyMatch = true;
      const tier = tierOf(c);
      if (tier < best) {
        best = tier;
        candidates.length = 0;
      }
      if (tier === best && tier < 3) candidates.push(c);
    }
    if (candidates.length === 0) {
      // A match that takes no calls now: wait. `from` the only match: the caller decides (keep it there, or drop).
      return anyMatch || (from !== undefined && (filter === undefined || filter(from))) ? null : undefined;
    }
    if (candidates.length === 1) return candidates[0]!;
    const key = call.key;
    if (key !== undefined) {
      const sticky = this.#keys.get(key);
      if (sticky !== undefined && candidates.includes(sticky)) return sticky;
    }
    const picked = this.pick(candidates, call);
    if (key !== undefined) {
      if (this.#keys.size >= MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(key, picked);
    }
    return picked;
  }

  /** Asks the strategy to choose among `candidates` (not empty) and checks its answer. */
  pick(candidates: readonly C[], call: CallInfo): C {
    const picked = this.#strategy(candidates, call) as C;
    if (!candidates.includes(picked)) {
      throw new InvalidConfigError(
        "strategy",
        `Expected the strategy to return one of the ${candidates.length} connections it was given, got ${
          picked === undefined ? "undefined" : `socket ${String((picked as ConnectionInfo).id)}`
        }`,
      );
    }
    return picked;
  }

  /** Picks with `strategy` from now on. */
  setStrategy(strategy: StrategyFunction): void {
    this.#strategy = strategy;
  }

  /** Forgets the sticky keys that point at `conn` (it left the pool). */
  forget(conn: C): void {
    for (const [key, c] of this.#keys) if (c === conn) this.#keys.delete(key);
  }

  clear(): void {
    this.#keys.clear();
  }
}

/** What a call rejects with when the user's strategy or filter threw. */
export function strategyError(error: unknown): MuxPoolError {
  return error instanceof MuxPoolError ? error : new InvalidConfigError("strategy", `the strategy or filter threw: ${messageOf(error)}`);
}
