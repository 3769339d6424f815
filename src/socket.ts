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
}

/** `readyState` of an open socket (WHATWG `WebSocket.OPEN`). */
const OPEN = 1;

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
