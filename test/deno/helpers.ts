/**
 * What every Deno test file here uses: small assertions (no std import, so
 * the tests need no network to start), a poll, and `test()`, which turns
 * Deno's op, resource and exit sanitizers on for each test (off by default
 * since Deno 2.8; per test, no CLI flag or config can override them).
 */

export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function assertEquals(actual: unknown, expected: unknown, message: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`assertion failed: ${message}: expected ${e}, got ${a}`);
}

export async function assertRejects(promise: Promise<unknown>, check: (error: unknown) => boolean, message: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    if (!check(error)) throw new Error(`assertion failed: ${message}: wrong error ${String(error)}`);
    return error;
  }
  throw new Error(`assertion failed: ${message}: the promise resolved`);
}

/** Polls `cond` every 5 ms until it holds, or throws after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `Deno.test` with the op, resource and exit sanitizers explicitly on. */
export function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true, sanitizeExit: true });
}
