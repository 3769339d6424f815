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
      [new errors.ConnectionLostError("m", { maybeExecuted: true }), "ERR_CONNECTION_LOST"],
      [new errors.RemoteError("m", -32000, { x: 1 }), "ERR_REMOTE"],
      [new errors.ProtocolError("m"), "ERR_PROTOCOL"],
      [new errors.ConnectError("m", { url: "ws://h/", attempt: 1 }), "ERR_CONNECT"],
    ];
    for (const [e, code] of cases) {
      expect((e as errors.MuxPoolError).code).toBe(code);
      expect(e).toBeInstanceOf(errors.MuxPoolError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(e.constructor.name);
    }
    expect(new errors.TimeoutError("m")).not.toBeInstanceOf(errors.RemoteError);
    const lost = new errors.ConnectionLostError("m", { maybeExecuted: true, code: 1009, reason: "too big" });
    expect([lost.maybeExecuted, lost.closeCode, lost.reason]).toEqual([true, 1009, "too big"]);
    expect(new errors.TimeoutError("m").maybeExecuted).toBe(false);
    expect(new errors.TimeoutError("m", { maybeExecuted: true }).maybeExecuted).toBe(true);
    const remote = new errors.RemoteError("m", -32601, "d");
    expect([remote.remoteCode, remote.data]).toEqual([-32601, "d"]);
    expect(new errors.InvalidConfigError("size", "m").option).toBe("size");
  });

  it("every constructor takes { cause }", () => {
    const cause = new Error("root");
    const all: Error[] = [
      new errors.InvalidConfigError("size", "m", { cause }),
      new errors.TimeoutError("m", { cause }),
      new errors.PoolExhaustedError("m", { cause }),
      new errors.PoolClosedError("m", { cause }),
      new errors.NoConnectionError("m", { cause }),
      new errors.ConnectionLostError("m", { maybeExecuted: false, cause }),
      new errors.RemoteError("m", 1, undefined, { cause }),
      new errors.ProtocolError("m", { cause }),
      new errors.ConnectError("m", { url: "ws://h/", attempt: 2, cause }),
    ];
    for (const e of all) expect(e.cause).toBe(cause);
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
