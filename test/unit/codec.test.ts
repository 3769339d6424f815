import { describe, expect, it } from "vitest";
import { jsonRpc } from "../../src/codec.ts";

describe("jsonRpc codec", () => {
  const codec = jsonRpc();

  it("encodes requests, notifications and batches as valid JSON-RPC 2.0", () => {
    expect(JSON.parse(codec.encodeRequest({ id: "a.1", method: "add", params: [1, 2] }) as string)).toEqual({
      jsonrpc: "2.0",
      id: "a.1",
      method: "add",
      params: [1, 2],
    });
    expect(JSON.parse(codec.encodeRequest({ id: 7, method: "now", params: undefined }) as string)).toEqual({
      jsonrpc: "2.0",
      id: 7,
      method: "now",
    });
    expect(JSON.parse(codec.encodeRequest({ id: 7, method: "echo", params: 5 }) as string).params).toEqual([5]);
    // JSON-RPC 2.0 §4.2: params is an array or an object; null is wrapped like any primitive.
    expect(JSON.parse(codec.encodeRequest({ id: 7, method: "echo", params: null }) as string).params).toEqual([null]);
    expect(JSON.parse(codec.encodeNotification("log", { level: "info" }) as string)).toEqual({
      jsonrpc: "2.0",
      method: "log",
      params: { level: "info" },
    });
    expect(JSON.parse(codec.encodeBatch!([{ id: 1, method: "a", params: undefined }, { id: 2, method: "b", params: [1] }]) as string))
      .toEqual([
        { jsonrpc: "2.0", id: 1, method: "a" },
        { jsonrpc: "2.0", id: 2, method: "b", params: [1] },
      ]);
  });

  it("escapes method names that need it", () => {
    const frame = codec.encodeRequest({ id: 1, method: 'we"ird\n', params: [] }) as string;
    expect(JSON.parse(frame).method).toBe('we"ird\n');
  });

  it("decodes results, errors, notifications and batch replies", () => {
    expect(codec.decode('{"jsonrpc":"2.0","id":"x.1","result":3}')).toEqual({ kind: "result", id: "x.1", result: 3 });
    expect(codec.decode('{"jsonrpc":"2.0","id":2,"result":null}')).toEqual({ kind: "result", id: 2, result: null });
    expect(codec.decode('{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found","data":{"m":"x"}}}')).toEqual({
      kind: "error",
      id: 2,
      error: { code: -32601, message: "Method not found", data: { m: "x" } },
    });
    expect(codec.decode('{"jsonrpc":"2.0","method":"tick","params":{"i":1}}')).toEqual({
      kind: "notification",
      method: "tick",
      params: { i: 1 },
    });
    expect(codec.decode('[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2}]')).toHaveLength(2);
    expect(codec.decode('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')).toMatchObject({
      kind: "error",
      id: null,
    });
    expect(codec.decode(new TextEncoder().encode('{"jsonrpc":"2.0","id":3,"result":"bin"}'))).toEqual({
      kind: "result",
      id: 3,
      result: "bin",
    });
  });

  it("throws only on frames it cannot read at all (the pool turns these into ProtocolError events)", () => {
    for (const bad of ["not json", "[]", "{"]) expect(() => codec.decode(bad), bad).toThrow();
  });

  it("reads each message of a frame on its own: an unreadable one is `invalid`, with the id it names (issue 10)", () => {
    const cases: [string, string | number | null, RegExp][] = [
      ["42", null, /object/],
      ["null", null, /object/],
      ['"str"', null, /object/],
      ['{"id":1,"result":1}', 1, /jsonrpc/],
      ['{"jsonrpc":"2.0","id":0,"result":1}', null, /invalid id/],
      ['{"jsonrpc":"2.0","id":{},"result":1}', null, /invalid id/],
      ['{"jsonrpc":"2.0","id":1}', 1, /neither result nor error/],
      ['{"jsonrpc":"2.0"}', null, /neither a reply nor a notification/],
      ['{"jsonrpc":"2.0","id":1,"error":"x"}', 1, /error member must be an object/],
      ['{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}', 1, /both result and error/],
      ['{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}', 1, /integer code/],
      ['{"jsonrpc":"2.0","id":1,"error":{"code":"E1","message":"m"}}', 1, /integer code/],
      ['{"jsonrpc":"2.0","id":1,"error":{"code":1}}', 1, /string message/],
      ['{"jsonrpc":"2.0","id":null,"error":{}}', null, /integer code/],
    ];
    for (const [frame, id, why] of cases) {
      const m = codec.decode(frame) as { kind: string; id: unknown; reason: string };
      expect([m.kind, m.id], frame).toEqual(["invalid", id]);
      expect(m.reason, frame).toMatch(why);
    }
    // One bad member spoils nothing else in its frame.
    expect(codec.decode('[1,{"jsonrpc":"2.0","id":2,"result":2}]')).toEqual([
      { kind: "invalid", id: null, reason: "a JSON-RPC message must be an object" },
      { kind: "result", id: 2, result: 2 },
    ]);
  });
});
