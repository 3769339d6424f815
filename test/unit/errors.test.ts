import { describe, expect, it } from "vitest";
import * as errors from "../../src/errors.ts";

describe("errors", () => {
  it("every class has its stable code and extends MuxPoolError and Error", () => {
    const cases: [Error, string][] = [
      [new errors.InvalidConfigError("size", "m"), "ERR_INVALID_CONFIG"],
      [new errors.TimeoutError("m"), "ERR_TIMEOUT"],
      [new errors.PoolExhaustedError("m"), "ERR_POOL_EXHAUSTED"],
      [new errors.PoolClosedError("m"), "ERR_POOL_CLOSED"],
      [new errors.NoConnectionError("m"), "ERR_NO_CONNECTION"],
      [new errors.ConnectionLostError("m", true), "ERR_CONNECTION_LOST"],
      [new errors.RemoteError("m", -32000, { x: 1 }), "ERR_REMOTE"],
      [new errors.ProtocolError("m"), "ERR_PROTOCOL"],
    ];
    for (const [e, code] of cases) {
      expect((e as errors.MuxPoolError).code).toBe(code);
      expect(e).toBeInstanceOf(errors.MuxPoolError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(e.constructor.name);
    }
    expect(new errors.TimeoutError("m")).not.toBeInstanceOf(errors.RemoteError);
    expect(new errors.ConnectionLostError("m", true).maybeExecuted).toBe(true);
    const remote = new errors.RemoteError("m", -32601, "d");
    expect([remote.remoteCode, remote.data]).toEqual([-32601, "d"]);
    expect(new errors.InvalidConfigError("size", "m").option).toBe("size");
  });

  it("instanceof holds across two loaded copies of the library", async () => {
    const path = "../../src/errors.ts?second-copy";
    const copy = (await import(/* @vite-ignore */ path)) as typeof errors;
    expect(copy.TimeoutError).not.toBe(errors.TimeoutError);
    const foreign = new copy.TimeoutError("from the other copy");
    expect(foreign).toBeInstanceOf(errors.TimeoutError);
    expect(foreign).toBeInstanceOf(errors.MuxPoolError);
    expect(foreign).not.toBeInstanceOf(errors.PoolClosedError);
    expect({ code: "ERR_TIMEOUT" }).not.toBeInstanceOf(errors.TimeoutError);
  });

  it("passes cause through", () => {
    const cause = new Error("root");
    expect(new errors.PoolClosedError("m", { cause }).cause).toBe(cause);
  });
});
