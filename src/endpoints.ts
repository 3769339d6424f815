/**
 * Where sockets connect: validation of the `url` argument, the weighted
 * spread of a pool's sockets over several endpoints, and redaction of
 * credentials so that no snapshot, event or error message leaks a password
 * or token. Pure: no sockets, no timers.
 *
 * @module
 */

import { checkObject, fail, onlyKnown } from "./validate.ts";

/** One endpoint of a pool spread over several servers. */
export interface Endpoint {
  url: string;
  /** Share of the pool's sockets that go to this endpoint. @default 1 */
  weight?: number;
  /** Free-form labels a call's `filter` can select on, e.g. `{ region: "eu" }`. */
  tags?: Readonly<Record<string, string>>;
}

/**
 * Where the sockets connect: one URL, a weighted list of endpoints, or a
 * function called on every (re)connect with the socket's slot index, which may
 * return a promise (e.g. to fetch a fresh token).
 */
export type UrlSource = string | readonly Endpoint[] | ((index: number) => string | Promise<string>);

/** What the pool needs to know of its endpoints, per slot index. */
export interface EndpointPlan {
  /** The URL to connect slot `index` to, asked on every (re)connect. */
  urlFor(index: number): string | Promise<string>;
  /** The endpoint of slot `index`; `undefined` when `url` is a function. */
  endpointAt(index: number): Endpoint | undefined;
}

/** Checks the `url` argument of the constructor; throws `InvalidConfigError` naming the bad part. */
export function validateUrl(url: unknown): UrlSource {
  if (typeof url === "function") return url as UrlSource;
  if (typeof url === "string") {
    checkUrlString("url", url);
    return url;
  }
  if (Array.isArray(url) && url.length > 0) {
    url.forEach((endpoint: unknown, i) => {
      const name = `url[${i}]`;
      const e = checkObject(name, endpoint);
      onlyKnown(e, ["url", "weight", "tags"], `${name}.`);
      if (typeof e.url !== "string") fail(`${name}.url`, "an absolute ws:// or wss:// URL", e.url);
      checkUrlString(`${name}.url`, e.url);
      if (e.weight !== undefined && (typeof e.weight !== "number" || !(e.weight > 0) || !Number.isFinite(e.weight))) {
        fail(`${name}.weight`, "a positive number", e.weight);
      }
      if (e.tags !== undefined) checkObject(`${name}.tags`, e.tags);
    });
    return url as readonly Endpoint[];
  }
  return fail("url", "a ws:// or wss:// URL, a non-empty list of endpoints or a function", url);
}

/** Throws unless `value` is an absolute ws:, wss:, http: or https: URL. */
function checkUrlString(option: string, value: string): void {
  let protocol = "";
  try {
    protocol = new URL(value).protocol;
  } catch {
    // stays "": reported below
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(protocol)) {
    fail(
      option,
      /^[\w.-]+(:\d+)?(\/|$)/.test(value) ? `a ws:// or wss:// URL (did you mean "ws://${value}"?)` : "an absolute ws:// or wss:// URL",
      value,
    );
  }
}

/** The plan for a validated `url` over `size` sockets. */
export function planEndpoints(source: UrlSource, size: number): EndpointPlan {
  if (typeof source === "function") return { urlFor: source, endpointAt: () => undefined };
  const plan = typeof source === "string" ? [{ url: source }] : spreadByWeight(source, size);
  const endpointAt = (i: number): Endpoint => plan[i % plan.length]!;
  return { urlFor: (i) => endpointAt(i).url, endpointAt };
}

/**
 * Asks `urlFor(index)` for the URL of a connect attempt and hands it to
 * `open`, or its error (a throw or a rejection) to `failed`. A URL that comes
 * late (a promise) is used only while `current()` says the attempt still
 * stands: after a timeout or a newer attempt it is dropped.
 */
export function resolveUrl(
  urlFor: (index: number) => string | Promise<string>,
  index: number,
  current: () => boolean,
  open: (url: string) => void,
  failed: (error: unknown) => void,
): void {
  let url: string | Promise<string>;
  try {
    url = urlFor(index);
  } catch (error) {
    return failed(error);
  }
  if (typeof url === "string") return open(url);
  url.then((u) => current() && open(u), (error: unknown) => current() && failed(error));
}

/** Smooth weighted round-robin: which endpoint each of `size` slots uses. */
export function spreadByWeight(endpoints: readonly Endpoint[], size: number): Endpoint[] {
  const weights = endpoints.map((e) => e.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const plan: Endpoint[] = [];
  for (let n = 0; n < Math.max(size, endpoints.length); n++) {
    let best = 0;
    for (let i = 0; i < endpoints.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    plan.push(endpoints[best]!);
  }
  return plan;
}

const SECRET_PARAMS =
  /^(token|access_token|id_token|refresh_token|key|api_key|apikey|api-key|auth|authorization|password|passwd|pwd|secret|client_secret|jwt|session|sig|signature|credential|credentials)$/i;

/** `url` with user info and secret-looking query values replaced by `***`. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/[^/@]*@/, "//***@");
  }
  if (parsed.username !== "" || parsed.password !== "") {
    parsed.username = parsed.username === "" ? "" : "***";
    parsed.password = parsed.password === "" ? "" : "***";
  }
  const names = [...new Set(parsed.searchParams.keys())];
  for (const name of names) {
    if (SECRET_PARAMS.test(name)) parsed.searchParams.set(name, "***");
  }
  // URLSearchParams encodes "*" as "%2A"; keep the marker readable.
  return parsed.toString().replace(/%2A%2A%2A/g, "***");
}
