/**
 * The WebSocket as muxpool sees it: the part of the WHATWG interface it uses
 * (browsers, Deno, Node 22+, Bun and `ws` all have it), and the few helpers
 * that act on one socket. Finding the runtime's constructor is `websocket.ts`'s
 * job.
 *
 * @module
 */

/** A WebSocket constructor as in the WHATWG spec (browsers, Deno, `ws`). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

/**
 * The part of the WebSocket interface muxpool uses. Handler parameters are
 * `any` on purpose: the DOM's, Deno's and `ws`'s WebSocket classes each type
 * their events differently, and all of them must be accepted as they are.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  readonly bufferedAmount: number;
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  // deno-lint-ignore no-explicit-any
  onopen: ((event: any) => void) | null;
  // deno-lint-ignore no-explicit-any
  onclose: ((event: any) => void) | null;
  // deno-lint-ignore no-explicit-any
  onerror: ((event: any) => void) | null;
  // deno-lint-ignore no-explicit-any
  onmessage: ((event: any) => void) | null;
  /** `ws` only (Node): sends a WebSocket protocol ping (RFC 6455 §5.5.2), which the peer's WebSocket layer answers whatever its application is doing. */
  ping?(): void;
  /** `ws` only: its EventEmitter side, for the `pong` event. */
  on?(event: "pong", listener: () => void): unknown;
}

/** Close code used when the client gives up on a socket (heartbeat, connect timeout). */
export const CODE_ABANDONED = 4000;

/** Ms a socket whose close has begun may take to finish the handshake before it is terminated. */
export const CLOSE_GRACE_MS = 1_000;

/** `readyState` of an open socket (WHATWG `WebSocket.OPEN`). */
export const OPEN = 1;

/** Ms between checks of a backed-up socket's `bufferedAmount` (no runtime has a "drain" event). */
export const BUFFER_POLL_MS = 10;

/**
 * Drops a socket at once, without waiting for a close handshake that a dead
 * link would never finish: `terminate()` where the implementation has it
 * (`ws`), else `close()`.
 */
export function terminateSocket(socket: WebSocketLike, code: number, reason: string): void {
  const s = socket as WebSocketLike & { terminate?: () => void };
  try {
    if (typeof s.terminate === "function") s.terminate();
    else s.close(code, reason);
  } catch {
    // close() on a socket still connecting throws in some runtimes; it is gone for us either way.
  }
}

/**
 * Closes `socket` with `code` (RFC 6455 §7.4) and resolves when the close
 * handshake finished, or after `graceMs` ms, when it is terminated instead.
 * A socket that is not open is terminated at once. Its handlers must already
 * be detached: this sets its `onclose`.
 */
export function closeSocket(socket: WebSocketLike, code: number, reason: string, graceMs: number): Promise<void> {
  if (socket.readyState !== OPEN) {
    terminateSocket(socket, code, reason);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      terminateSocket(socket, code, reason);
      resolve();
    }, graceMs);
    socket.onclose = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      socket.close(code, reason);
    } catch {
      clearTimeout(timer);
      terminateSocket(socket, code, reason);
      resolve();
    }
  });
}

/**
 * Sends a WebSocket protocol ping (RFC 6455 §5.5.2) where the implementation
 * can (`ws`: `ping()`, answered by a `pong` event); `false` where it cannot
 * (browsers, Deno, Bun, Node's global WebSocket).
 */
export function protocolPing(socket: WebSocketLike | undefined): boolean {
  if (typeof socket?.ping !== "function" || typeof socket.on !== "function") return false;
  try {
    socket.ping();
  } catch {
    // The socket is going away: its close event follows.
  }
  return true;
}
