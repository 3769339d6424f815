/**
 * Routing strategies: pure functions that pick one socket out of a list of
 * candidates. The pool only ever passes sockets that can take the call, so a
 * strategy never sees an empty list.
 *
 * @module
 */

/** Socket lifecycle states. */
export type ConnectionState = "connecting" | "open" | "draining" | "closed";

/** The live, read-only view of a socket that strategies and filters get. */
export interface ConnectionInfo {
  readonly id: number;
  /** The URL in use, credentials redacted. */
  readonly url: string;
  readonly state: ConnectionState;
  readonly tags: Readonly<Record<string, string>>;
  readonly inFlight: number;
  readonly queued: number;
  readonly sent: number;
  readonly received: number;
}

/** A call as strategies and filters see it. */
export interface CallInfo {
  readonly method: string;
  readonly key: string | undefined;
  readonly idempotent: boolean;
}

/** Picks the socket for a call among the candidates (never empty). */
export type StrategyFunction = (connections: readonly ConnectionInfo[], call: CallInfo) => ConnectionInfo;

/** Built-in strategy names. */
export type StrategyName = "round-robin" | "least-pending" | "random";

/** Cycles through the candidates in order. */
export function roundRobin(): StrategyFunction {
  let next = 0;
  return (connections) => {
    const pick = connections[next % connections.length]!;
    next = (next + 1) % 1_000_000_007;
    return pick;
  };
}

/**
 * The candidate with the fewest calls in flight plus queued. Ties are broken
 * by starting the scan at a rotating offset, so that an idle pool still
 * spreads calls instead of always choosing the first socket.
 */
export function leastPending(): StrategyFunction {
  let offset = 0;
  return (connections) => {
    const n = connections.length;
    offset = (offset + 1) % n;
    let best = connections[offset]!;
    let bestLoad = best.inFlight + best.queued;
    for (let i = 1; i < n && bestLoad > 0; i++) {
      const c = connections[(offset + i) % n]!;
      const load = c.inFlight + c.queued;
      if (load < bestLoad) {
        best = c;
        bestLoad = load;
      }
    }
    return best;
  };
}

/** A uniformly random candidate. */
export function random(rand: () => number = Math.random): StrategyFunction {
  return (connections) => connections[Math.floor(rand() * connections.length)]!;
}

/** A fresh strategy function (with its own state) for a name or a user function. */
export function createStrategy(strategy: StrategyName | StrategyFunction): StrategyFunction {
  switch (strategy) {
    case "round-robin":
      return roundRobin();
    case "least-pending":
      return leastPending();
    case "random":
      return random();
    default:
      return strategy;
  }
}
