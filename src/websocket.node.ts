/**
 * Node twin of `websocket.ts`: on Node, `ws` (via `isomorphic-ws`) is the
 * default, also where Node has a global WebSocket (22+): with its writes
 * corked per tick it made 1.3 to 1.9 times the calls per second of Node
 * 22's own at 16 and 256 in flight, at about half the CPU per call, and it
 * can send protocol pings (docs/decisions.md). Bun and Deno, which may load
 * this build, keep their own WebSocket.
 *
 * On `ws`, frames written in one tick leave in a few TCP writes: {@link sendFrame}
 * corks the `net.Socket` under the WebSocket on the tick's first frame, lets
 * the first 512 bytes go at once and then as many bytes as already left, and
 * uncorks the rest once the tick's microtasks have run. The frames on the
 * wire are the same; what changes is about log2(n / 512) `writev` syscalls
 * for a tick of n bytes instead of one per frame, while the peer starts on
 * the first frames before the tick ends (one write per tick made client and
 * server take turns: docs/decisions.md).
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

/**
 * The bytes a tick's frames on one socket may reach before they leave, at
 * first: enough to carry several small frames per write, few enough that
 * the peer starts on them while this process still writes the rest.
 */
const FIRST_BYTES = 512;
/** Unsent bytes past which a corked socket is uncorked at once, so that a large burst starts to flow. */
const CORK_BYTES = 65_536;
/** The sockets written to in this tick: corked or not, and the bytes already let go in this tick. */
const ticks = new Map<Corkable, { corked: boolean; sent: number }>();
let flushing = false;

function uncorkAll(): void {
  flushing = false;
  for (const [socket, tick] of ticks) if (tick.corked) socket.uncork();
  ticks.clear();
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
 * tick corks the TCP socket, and the frames held leave together once they
 * reach {@link FIRST_BYTES} and as many bytes as left before them in this
 * tick (at most {@link CORK_BYTES}), the rest when the tick ends. So the first
 * frames of a burst leave early and the peer works on them while this process
 * writes the others, instead of the two taking turns; and a tick of n bytes
 * takes about log2(n / 512) writes. Throws what `send` throws.
 */
export function sendFrame(socket: WebSocketLike, frame: FrameData): void {
  const raw = (socket as { _socket?: Corkable | null })._socket;
  if (typeof raw?.cork !== "function" || typeof raw.uncork !== "function") return socket.send(frame);
  let tick = ticks.get(raw);
  if (tick === undefined) {
    ticks.set(raw, tick = { corked: false, sent: 0 });
    if (!flushing) {
      flushing = true;
      afterTick(uncorkAll);
    }
  }
  if (!tick.corked) {
    raw.cork();
    tick.corked = true;
  }
  try {
    socket.send(frame);
  } finally {
    const held = raw.writableLength;
    if (held >= Math.min(CORK_BYTES, Math.max(FIRST_BYTES, tick.sent))) {
      tick.corked = false;
      tick.sent += held;
      raw.uncork();
    }
  }
}
