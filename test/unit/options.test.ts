import { describe, expect, it } from "vitest";
import { InvalidConfigError } from "../../src/errors.ts";
import WS from "ws";
import { validateUrl } from "../../src/endpoints.ts";
import { resolveOptions } from "../../src/options.ts";
import type { WebSocketConstructor } from "../../src/socket.ts";

// Compile-time checks (tsc runs on the tests): the WebSocket classes users
// really pass are accepted by the option's type as they are.
export const acceptsWs: WebSocketConstructor = WS;
export const acceptsDom: WebSocketConstructor = globalThis.WebSocket;

function configError(fn: () => unknown): InvalidConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).code).toBe("ERR_INVALID_CONFIG");
    return error as InvalidConfigError;
  }
  throw new Error("expected an InvalidConfigError");
}

describe("resolveOptions", () => {
  it("fills every default", () => {
    const o = resolveOptions(undefined);
    expect(o).toMatchObject({
      size: 4,
      maxInFlight: 256,
      maxQueue: 10_000,
      maxBuffered: 1024 * 1024,
      strategy: "least-pending",
      timeout: 30_000,
      ttl: 0,
      revive: true,
      retry: "idempotent",
      reconnect: { initialDelay: 100, maxDelay: 10_000, factor: 2, jitter: true, maxAttempts: Infinity, resetAfter: 5_000 },
      heartbeat: { interval: 15_000, timeout: 5_000, method: "ping" },
    });
    expect(typeof o.codec.encodeRequest).toBe("function");
  });

  it.each([
    [{ size: 0 }, "size", "Expected `size` to be an integer from 1 to 1024, got `0` (number)"],
    [{ size: 2.5 }, "size", "got `2.5` (number)"],
    [{ size: "4" }, "size", 'got `"4"` (string)'],
    [{ maxInFlight: -1 }, "maxInFlight", "Expected `maxInFlight` to be an integer from 1 and up, got `-1` (number)"],
    [{ maxQueue: -1 }, "maxQueue", "integer from 0"],
    [{ strategy: "fastest" }, "strategy", '"round-robin", "least-pending", "random" or a function'],
    [{ timeout: 0 }, "timeout", "number of ms from 1"],
    [{ timeout: Number.NaN }, "timeout", "NaN"],
    [{ timeout: 2 ** 31 }, "timeout", "2147483647"],
    [{ ttl: -5 }, "ttl", "got `-5`"],
    [{ revive: "yes" }, "revive", "a boolean"],
    [{ retry: "sometimes" }, "retry", '"idempotent", "always" or "never"'],
    [{ reconnect: { maxDelay: 10, initialDelay: 100 } }, "reconnect.maxDelay", "not below reconnect.initialDelay (100)"],
    [{ reconnect: { factor: 0.5 } }, "reconnect.factor", "from 1 and up"],
    [{ reconnect: { maxAttempts: -1 } }, "reconnect.maxAttempts", "or Infinity"],
    [{ reconnect: 5 }, "reconnect", "an object, `true` or `false`"],
    [{ heartbeat: { interval: 0 } }, "heartbeat.interval", "from 1"],
    [{ heartbeat: { method: "" } }, "heartbeat.method", "non-empty string"],
    [{ codec: {} }, "codec", "encodeRequest, encodeNotification and decode"],
    [{ generateId: 5 }, "generateId", "a function"],
    [{ WebSocket: "ws" }, "WebSocket", "constructor"],
    [{ maxMessageSize: 0 }, "maxMessageSize", "from 1"],
    [{ maxBuffered: 0 }, "maxBuffered", "an integer from 1 and up"],
    [{ sise: 4 }, "sise", "Unknown option `sise` (did you mean `size`?)"],
    [{ colour: "red" }, "colour", "Unknown option `colour`; known: size, maxInFlight"],
    [{ timeOut: 5 }, "timeOut", "Unknown option `timeOut` (did you mean `timeout`?)"],
    // Misspelt nested options were ignored without a word, and the default used.
    [
      { reconnect: { maxAttempt: 3 } },
      "reconnect.maxAttempt",
      "Unknown option `reconnect.maxAttempt` (did you mean `reconnect.maxAttempts`?)",
    ],
    [{ reconnect: { delay: 5 } }, "reconnect.delay", "known: factor, jitter, maxAttempts, initialDelay, maxDelay, resetAfter"],
    [{ heartbeat: { intervall: 5 } }, "heartbeat.intervall", "(did you mean `heartbeat.interval`?)"],
  ])("%j → InvalidConfigError naming %s", (input, option, message) => {
    const error = configError(() => resolveOptions(input));
    expect(error.option).toBe(option);
    expect(error.message).toContain(message);
  });

  it("accepts false (off) and true (the defaults) for reconnect and heartbeat", () => {
    const o = resolveOptions({ reconnect: false, heartbeat: false });
    expect(o.reconnect).toBe(false);
    expect(o.heartbeat).toBe(false);
    const on = resolveOptions({ reconnect: true, heartbeat: true });
    expect(on.reconnect).toEqual(resolveOptions({}).reconnect);
    expect(on.heartbeat).toEqual(resolveOptions({}).heartbeat);
  });

  it("suggests the scheme for a URL written without one", () => {
    expect(configError(() => validateUrl("localhost:8080/rpc")).message).toContain('did you mean "ws://localhost:8080/rpc"?');
    expect(configError(() => validateUrl([{ url: "ws://a", weigth: 2 }])).message).toContain("(did you mean `url[0].weight`?)");
  });
});

describe("validateUrl", () => {
  it("accepts ws(s) URLs, endpoint lists and functions", () => {
    expect(validateUrl("wss://a.example/rpc")).toBe("wss://a.example/rpc");
    const endpoints = [{ url: "ws://a", weight: 2, tags: { region: "eu" } }];
    expect(validateUrl(endpoints)).toBe(endpoints);
    const f = () => "ws://x";
    expect(validateUrl(f)).toBe(f);
  });

  it.each([
    ["not a url", "url"],
    ["ftp://x", "url"],
    [[], "url"],
    [[{ url: "ws://a", weight: 0 }], "url[0].weight"],
    [[{ url: 5 }], "url[0].url"],
    [[{ url: "ws://a", weigth: 2 }], "url[0].weigth"],
    [undefined, "url"],
  ])("%j → InvalidConfigError naming %s", (input, option) => {
    expect(configError(() => validateUrl(input)).option).toBe(option);
  });
});
