/**
 * Argument checks shared by the constructor, `update()`, call options and the
 * other entry points: one message shape for every bad value ("Expected `size`
 * to be an integer from 1 to 1024, got `0` (number)") and a did-you-mean for
 * misspelt option names. Pure: no sockets, no timers.
 *
 * @module
 */

import { InvalidConfigError } from "./errors.ts";

/** The largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
export const MAX_DELAY = 2_147_483_647;

/** `value` the way a message shows it: `` `0` (number) ``, `` `"4"` (string) ``, "an object"… */
function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "object") return value === null ? "`null`" : Array.isArray(value) ? "an array" : "an object";
  return `\`${typeof value === "string" ? JSON.stringify(value) : String(value)}\` (${typeof value})`;
}

/** Throws the one shape of message every bad argument gets: "Expected `size` to be …, got `0` (number)". */
export function fail(option: string, expected: string, value: unknown): never {
  throw new InvalidConfigError(option, `Expected \`${option}\` to be ${expected}, got ${describe(value)}`);
}

/**
 * Returns `value` if it is a number from `min` to `max`; `kind` says what
 * else it must be and how the message names it ("an integer" is checked
 * for being whole; "a number of ms" and "a number" need not be).
 */
export function checkNumber(
  option: string,
  value: unknown,
  min: number,
  max: number,
  kind: "an integer" | "a number of ms" | "a number",
): number {
  if (typeof value !== "number" || !(value >= min && value <= max) || (kind === "an integer" && !Number.isInteger(value))) {
    fail(option, `${kind} from ${min}${max === Infinity ? " and up" : ` to ${max}`}`, value);
  }
  return value;
}

/** `value` if it is a boolean, `fallback` if it is undefined; throws otherwise. */
export function checkBoolean(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") fail(option, "a boolean", value);
  return value;
}

/** `value` if it is a plain object (not null, not an array); throws otherwise. */
export function checkObject(option: string, value: unknown, expected = "an object"): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(option, expected, value);
  return value as Record<string, unknown>;
}

/** Levenshtein distance: the fewest one-letter edits from `a` to `b`. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * Throws `InvalidConfigError` for a key of `value` that is not in `known`: a
 * misspelt option (`maxAttempt`, `idempotant`) would otherwise be ignored
 * without a word, and the default used instead.
 */
export function onlyKnown(value: object, known: readonly string[], prefix = ""): void {
  for (const key in value) {
    if (known.includes(key)) continue;
    // The closest known name, if only a slip away (`timeOut`, `maxAttempt`, `exclusve`, `weigth`).
    let near: string | undefined;
    let best = key.length < 5 ? 2 : 3;
    for (const k of known) {
      const d = distance(key.toLowerCase(), k.toLowerCase());
      if (d < best) [near, best] = [k, d];
    }
    throw new InvalidConfigError(
      prefix + key,
      `Unknown option \`${prefix}${key}\`${near ? ` (did you mean \`${prefix}${near}\`?)` : ""}; known: ${known.join(", ")}`,
    );
  }
}

/** The `timeout` of an options object that has no other key (`ready()`, `close()`): ms from `min`, or `undefined`. */
export function timeoutOption(options: { timeout?: number }, min: number): number | undefined {
  onlyKnown(options, ["timeout"]);
  return options.timeout === undefined
    ? undefined
    : checkNumber("timeout", options.timeout, min, min === 0 ? Infinity : MAX_DELAY, "a number of ms");
}
