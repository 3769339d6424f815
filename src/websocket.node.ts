/**
 * Node twin of `websocket.ts`: Node 20 has no global WebSocket, so `ws` (via
 * `isomorphic-ws`) is the default there. Where the runtime has its own (Node
 * 22+), that one is used, as in browsers and Deno.
 *
 * @module
 */

import WebSocket from "isomorphic-ws";
import type { WebSocketConstructor } from "./socket.ts";

/** The WebSocket constructor to use when the user passed none. */
export function defaultWebSocket(): WebSocketConstructor {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? (WebSocket as unknown as WebSocketConstructor);
}

/** Node has no `online` or `visibilitychange` events: nothing to listen to. */
export function onWake(_wake: () => void): () => void {
  return () => {};
}
