/**
 * Node twin of `websocket.ts`: on Node, `ws` (via `isomorphic-ws`) is the
 * default, also where Node has a global WebSocket (22+): with its writes
 * corked per tick it made 1.3 to 1.9 times the calls per second of Node
 * 22's own at 16 and 256 in flight, at about half the CPU per call, and it
 * can send protocol pings (docs/decisions.md). Bun and Deno, which may load
 * this build, keep their own WebSocket.
 *
 * On `ws`, frames written in one tick leave in one TCP write: {@link sendFrame}
 * corks the `net.Socket` under the WebSocket on the tick's first frame and
 * uncorks it once the tick's microtasks have run (or past {@link CORK_BYTES}).
 * The frames on the wire are the same; what changes is one `writev` syscall
 * per tick instead of one per frame. Measured (bench, 1 socket, Node 20):
 * raw ws 68k calls/s at 16 in flight, corked 101k (docs/benchmarks.md).
 *
 * @module
 */

import WebSocket from "isomorphic-ws";
import type { FrameData } from "./codec.ts";
import type { WebSocketConstructor, WebSocketLike } from "./socket.ts";

/** The WebSocket constructor to use when the user passed none. */
export function defaultWebSocket(): WebSocketConstructor {
  const own = (globalThis as { WebSocket?: WebSocketConstructor; Deno?: unknown }).WebSocket;
  const other = typeof (process.versions as { bun?: string }).bun === "string" || "Deno" in globalThis;
  return (other ? own : undefined) ?? (WebSocket as unknown as WebSocketConstructor);
}

/** Node has no `online` or `visibilitychange` events: nothing to listen to. */
export function onWake(_wake: () => void): () => void {
  return () => {};
}

/** `net.Socket`'s part that corking needs (`ws` keeps it as `_socket` once open). */
interface Corkable {
  cork(): void;
  uncork(): void;
  readonly writableLength: number;
}

/** Unsent bytes past which a corked socket is uncorked at once, so that a large burst starts to flow. */
const CORK_BYTES = 65_536;
/** The sockets corked in this tick. */
const corked = new Set<Corkable>();
let flushing = false;

function uncorkAll(): void {
  flushing = false;
  for (const socket of corked) socket.uncork();
  corked.clear();
}

/**
 * Runs `fn` once the current tick's microtasks have all run: calls that
 * promise continuations make in this tick still come before it; a lone call
 * waits for nothing else.
 */
export function afterTick(fn: () => void): void {
  queueMicrotask(() => process.nextTick(fn));
}

/**
 * Sends `frame` on `socket`. On `ws` (a `net.Socket` under it, feature-detected:
 * Node 22's global WebSocket, Bun's and Deno's have none) the first frame of a
 * tick corks the TCP socket, so the tick's frames leave in one write. Throws
 * what `send` throws.
 */
export function sendFrame(socket: WebSocketLike, frame: FrameData): void {
  const raw = (socket as { _socket?: Corkable | null })._socket;
  if (typeof raw?.cork !== "function" || typeof raw.uncork !== "function") return socket.send(frame);
  if (!corked.has(raw)) {
    raw.cork();
    corked.add(raw);
    if (!flushing) {
      flushing = true;
      afterTick(uncorkAll);
    }
  }
  try {
    socket.send(frame);
  } finally {
    if (raw.writableLength >= CORK_BYTES && corked.delete(raw)) raw.uncork();
  }
}
