/**
 * The pool does not depend on JSON-RPC: a custom text codec ({ ref, op, args })
 * and a binary codec talk to servers that know nothing of JSON-RPC.
 */
import { describe, expect, it } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import { own, ownServer } from "../fixtures/harness.ts";
import { type Codec, type Incoming, Pool, RemoteError } from "../../src/mod.ts";

async function server(onMessage: (ws: WebSocket, data: Buffer, isBinary: boolean) => void): Promise<string> {
  const wss = ownServer(
    new WebSocketServer({ host: "127.0.0.1", port: 0 }),
    (wss) =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  await new Promise((r) => wss.once("listening", r));
  wss.on("connection", (ws) => ws.on("message", (data, isBinary) => onMessage(ws, data as Buffer, isBinary)));
  return `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
}

/** A protocol of our own: requests `{ref, op, args}`, replies `{ref, ok}` or `{ref, err}`, pushes `{event, body}`. */
const refCodec: Codec = {
  encodeRequest: ({ id, method, params }) => JSON.stringify({ ref: id, op: method, args: params ?? [] }),
  encodeNotification: (method, params) => JSON.stringify({ op: method, args: params ?? [] }),
  decode(data): Incoming {
    const m = JSON.parse(String(data)) as { ref?: number; ok?: unknown; err?: string; event?: string; body?: unknown };
    if (m.event !== undefined) return { kind: "notification", method: m.event, params: m.body };
    if (m.err !== undefined) return { kind: "error", id: m.ref!, error: { code: "E_OP", message: m.err } };
    return { kind: "result", id: m.ref!, result: m.ok };
  },
};

describe("custom codecs", () => {
  it("a non-JSON-RPC text protocol: results, errors, pushes, numeric ids from generateId", async () => {
    const seen: unknown[] = [];
    const url = await server((ws, data) => {
      const m = JSON.parse(String(data)) as { ref?: number; op: string; args: number[] };
      seen.push(m);
      if (m.ref === undefined) return ws.send(JSON.stringify({ event: "ack", body: m.op }));
      if (m.op === "get") ws.send(JSON.stringify({ ref: m.ref, ok: m.args.reduce((a, b) => a + b, 0) }));
      else ws.send(JSON.stringify({ ref: m.ref, err: `unknown op ${m.op}` }));
    });
    let next = 0;
    const pool = own(new Pool(url, { size: 2, codec: refCodec, generateId: () => ++next, heartbeat: false }));
    const pushes: unknown[] = [];
    pool.addEventListener("notification", (e) => pushes.push([e.method, e.params]));
    const sums = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.call("get", [i, 1])));
    sums.forEach((s, i) => expect(s).toBe(i + 1));
    const error = await pool.call("put", [1]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).remoteCode).toBe("E_OP");
    pool.notify("hello", [1]);
    await new Promise((r) => setTimeout(r, 50));
    expect(pushes).toEqual([["ack", "hello"]]);
    expect(seen[0]).toMatchObject({ ref: expect.any(Number), op: "get" });
    expect(seen.every((m) => !("jsonrpc" in (m as object)))).toBe(true);
  });

  it("binary frames: 4-byte id + payload, both ways", async () => {
    const url = await server((ws, data, isBinary) => {
      expect(isBinary).toBe(true);
      const id = data.readUInt32BE(0);
      const n = data.readUInt32BE(4);
      const out = Buffer.alloc(8);
      out.writeUInt32BE(id, 0);
      out.writeUInt32BE(n * 2, 4);
      ws.send(out);
    });
    let next = 0;
    const binary: Codec = {
      binaryType: "binary",
      encodeRequest({ id, params }) {
        const out = new Uint8Array(8);
        const view = new DataView(out.buffer);
        view.setUint32(0, id as number);
        view.setUint32(4, (params as number[])[0]!);
        return out;
      },
      encodeNotification: () => new Uint8Array(0),
      decode(data) {
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        return { kind: "result", id: view.getUint32(0), result: view.getUint32(4) };
      },
    };
    const pool = own(new Pool(url, { size: 2, codec: binary, generateId: () => ++next, heartbeat: false }));
    const out = await Promise.all(Array.from({ length: 500 }, (_, i) => pool.call("double", [i])));
    out.forEach((v, i) => expect(v).toBe(i * 2));
  });
});
