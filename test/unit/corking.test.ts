/**
 * sendFrame (src/websocket.node.ts): corks the net.Socket under a `ws`
 * WebSocket for one tick, and is a plain send() on a WebSocket without one
 * (Node 22's global WebSocket, Bun's, Deno's, ws before it opened).
 */
import { describe, expect, it } from "vitest";
import { sendFrame } from "../../src/websocket.node.ts";
import type { WebSocketLike } from "../../src/socket.ts";

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function fakeSocket(raw: unknown): WebSocketLike & { sent: unknown[] } {
  const sent: unknown[] = [];
  return { sent, send: (frame: unknown) => void sent.push(frame), _socket: raw } as never;
}

function fakeTcp(bytesPerFrame = 10) {
  const log: string[] = [];
  const tcp = {
    corked: 0,
    writableLength: 0,
    cork: () => void (log.push("cork"), tcp.corked++),
    uncork: () => void (log.push("uncork"), tcp.corked--, (tcp.writableLength = 0)),
  };
  const socket = fakeSocket(tcp);
  const send = socket.send;
  socket.send = (frame) => {
    tcp.writableLength += bytesPerFrame;
    send(frame);
  };
  return { tcp, socket, log };
}

describe("sendFrame", () => {
  it("is a plain send on a WebSocket with no TCP socket to cork", () => {
    for (const raw of [undefined, null, {}, { cork: "no" }]) {
      const socket = fakeSocket(raw);
      sendFrame(socket, "a");
      sendFrame(socket, "b");
      expect(socket.sent).toEqual(["a", "b"]);
    }
  });

  it("corks on the first frame of a tick and uncorks once after it", async () => {
    const { tcp, socket, log } = fakeTcp();
    for (const frame of ["a", "b", "c"]) sendFrame(socket, frame);
    expect(socket.sent).toEqual(["a", "b", "c"]);
    expect(log).toEqual(["cork"]);
    await tick();
    expect(log).toEqual(["cork", "uncork"]);
    expect(tcp.corked).toBe(0);
    sendFrame(socket, "d"); // the next tick corks again
    await tick();
    expect(log).toEqual(["cork", "uncork", "cork", "uncork"]);
  });

  it("lets a tick's first 512 bytes go at once, then as many as already left", async () => {
    const { tcp, socket, log } = fakeTcp(200);
    for (const frame of ["a", "b"]) sendFrame(socket, frame);
    expect(log).toEqual(["cork"]); // 400 bytes held
    sendFrame(socket, "c"); // 600: they leave, so the peer starts on them
    expect(log).toEqual(["cork", "uncork"]);
    for (const frame of ["d", "e"]) sendFrame(socket, frame);
    expect(log).toEqual(["cork", "uncork", "cork"]); // 400 held, under the 600 that left
    sendFrame(socket, "f"); // 600
    expect(log).toEqual(["cork", "uncork", "cork", "uncork"]);
    sendFrame(socket, "g");
    await tick();
    expect(log).toEqual(["cork", "uncork", "cork", "uncork", "cork", "uncork"]);
    expect(tcp.corked).toBe(0);
    expect(socket.sent).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
  });

  it("holds no more than 64 KiB, so a large burst flows", async () => {
    const { tcp, socket, log } = fakeTcp(40_000);
    sendFrame(socket, "a");
    sendFrame(socket, "b"); // 40 000 held, as many as left
    expect(log).toEqual(["cork", "uncork", "cork", "uncork"]);
    sendFrame(socket, "c"); // 80 000 left: held up to 64 KiB
    expect(log).toEqual(["cork", "uncork", "cork", "uncork", "cork"]);
    sendFrame(socket, "d"); // 80 000 held
    expect(log).toEqual(["cork", "uncork", "cork", "uncork", "cork", "uncork"]);
    await tick();
    expect(log).toHaveLength(6);
    expect(tcp.corked).toBe(0);
  });

  it("uncorks even when send throws", async () => {
    const { tcp, socket } = fakeTcp();
    socket.send = () => {
      throw new Error("socket closing");
    };
    expect(() => sendFrame(socket, "a")).toThrow("socket closing");
    await tick();
    expect(tcp.corked).toBe(0);
  });
});
