/**
 * Reconnect delays: exponential backoff with optional "full jitter" (a delay
 * drawn uniformly from zero to the exponential cap), so that many clients
 * that lost the same server do not come back in lock-step.
 *
 * @module
 */

/** The shape of `options.reconnect` that the delay depends on. */
export interface BackoffOptions {
  initialDelay: number;
  maxDelay: number;
  factor: number;
  jitter: boolean;
}

/**
 * The delay in ms before reconnect attempt `attempt` (1 for the first retry).
 * `random` returns a number in [0, 1); it is a parameter so tests can pin it.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  // factor ** exponent overflows to Infinity for large attempts; min() caps it.
  const cap = Math.min(options.maxDelay, options.initialDelay * options.factor ** exponent);
  return options.jitter ? Math.floor(random() * cap) : cap;
}
