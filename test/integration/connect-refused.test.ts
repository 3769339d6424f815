/**
 * A refused connect must be retried after its backoff, not after
 * connectTimeout, whatever the runtime's WebSocket does after the error.
 * Node 22's own WebSocket (undici) fires `error` on a refused connect and
 * then nothing: no `close`, and `readyState` stays CONNECTING.
 */
import { expect, it } from "vitest";
import { WebSocket as WsWebSocket } from "ws";
import { own, startServer } from "../fixtures/harness.ts";
import { collectEvents, sleep } from "../fixtures/pool-helpers.ts";
import { Pool } from "../../src/mod.ts";

const wsReadyState = Object.getOwnPropertyDescriptor(WsWebSocket.prototype, "readyState")!.get!;

/** `ws`, behaving like Node 22's own WebSocket after a failed connect: an error, then no close, still CONNECTING. */
class SilentAfterFailedConnect extends WsWebSocket {
  #opened = false;
  #failed = false;
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    Object.defineProperty(this, "readyState", { get: () => (this.#failed ? WsWebSocket.CONNECTING : wsReadyState.call(this)) });
  }
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === "open") this.#opened = true;
    if (event === "error" && !this.#opened) this.#failed = true;
    if (event === "close" && this.#failed) return false;
    return super.emit(event, ...args);
  }
}

it("a refused connect is retried after its backoff even when the runtime fires no close after the error (Node 22's WebSocket)", async () => {
  const server = await startServer();
  const url = server.url;
  await server.close(); // nothing listens there now: every connect is refused
  const pool = own(
    new Pool(url, {
      size: 1,
      heartbeat: false,
      connectTimeout: 5_000,
      reconnect: { initialDelay: 10, maxDelay: 10 },
      WebSocket: SilentAfterFailedConnect as never,
    }),
  );
  const log = collectEvents(pool, ["reconnect"]);
  await sleep(500);
  expect(log.count("reconnect")).toBeGreaterThanOrEqual(3); // not one attempt per connectTimeout (5 s)
  expect(log.of("reconnect")[0]!.reason).toMatch(/could not connect.*ECONNREFUSED/);
  expect(pool.stats().connections).toMatchObject({ total: 1, open: 0 });
});
