/**
 * The one place that touches the runtime's WebSocket. Browsers and Deno
 * have a global one. The npm build for Node swaps this file for
 * `websocket.node.ts`, which falls back to `ws` through `isomorphic-ws`.
 *
 * @module
 */

import type { FrameData } from "./codec.ts";
import type { WebSocketConstructor, WebSocketLike } from "./socket.ts";

/** The WebSocket constructor to use when the user passed none. */
export function defaultWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/**
 * Calls `wake` when a browser comes back online or its tab becomes visible
 * again: moments when a socket is likely to be half-open. Returns the
 * function that removes the listeners. A no-op outside browsers.
 */
export function onWake(wake: () => void): () => void {
  const g = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
    document?: {
      visibilityState?: string;
      addEventListener(type: string, listener: () => void): void;
      removeEventListener(type: string, listener: () => void): void;
    };
  };
  const doc = g.document;
  if (typeof g.addEventListener !== "function" || doc === undefined) return () => {};
  const onVisible = (): void => {
    if (doc.visibilityState === "visible") wake();
  };
  g.addEventListener("online", wake);
  doc.addEventListener("visibilitychange", onVisible);
  return () => {
    g.removeEventListener?.("online", wake);
    doc.removeEventListener("visibilitychange", onVisible);
  };
}

/** Runs `fn` once the current tick's microtasks have run (queued after them). */
export function afterTick(fn: () => void): void {
  queueMicrotask(fn);
}

/** Sends `frame` on `socket` (Node's twin corks `ws`'s TCP socket per tick; a runtime's own WebSocket has nothing to cork). */
export function sendFrame(socket: WebSocketLike, frame: FrameData): void {
  socket.send(frame);
}
