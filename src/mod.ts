/**
 * muxpool: many concurrent request/response calls over a small pool of
 * WebSocket connections, with per-socket queues, reconnect with backoff,
 * TTL rotation, safe re-routing of calls off dead sockets, and stats.
 *
 * @example
 * ```ts
 * import { Pool } from "muxpool";
 *
 * const pool = new Pool("wss://api.example.com/rpc", { size: 4 });
 * const sum = await pool.call("add", [1, 2], { timeout: 5_000 });
 * console.log(sum, pool.stats().latency.p99);
 * await pool.close();
 * ```
 *
 * @module
 */

export { Pool } from "./pool.ts";
export type { CallAllResult, CallRequest } from "./callall.ts";
export type { SessionOptions } from "./session.ts";
export { jsonRpc } from "./codec.ts";
export type { Codec, FrameData, Incoming, JsonRpcOptions, OutgoingRequest, RemoteErrorShape, RequestId } from "./codec.ts";
export {
  ConnectError,
  ConnectionLostError,
  InvalidConfigError,
  MuxPoolError,
  NoConnectionError,
  PoolClosedError,
  PoolExhaustedError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "./errors.ts";
export type { ErrorCode } from "./errors.ts";
export {
  ConnectionEvent,
  NotificationEvent,
  PoolChangeEvent,
  PoolErrorEvent,
  PoolEvent,
  RerouteEvent,
  ResubscribeEvent,
} from "./events.ts";
export { Subscription } from "./subscriptions.ts";
export type { SubscribeOptions } from "./subscriptions.ts";
export type { PoolEventMap, ResubscribeReason } from "./events.ts";
export type {
  BatchRequest,
  BatchResult,
  CallOptions,
  HeartbeatOptions,
  PinnedCallOptions,
  PinnedConnection,
  PoolOptions,
  PoolUpdate,
  ReconnectOptions,
  RetryMode,
} from "./options.ts";
export type { Endpoint, UrlSource } from "./endpoints.ts";
export type { WebSocketConstructor, WebSocketLike } from "./socket.ts";
export type { ConnectionSnapshot, LatencySnapshot, PoolStats, SubscriptionStats } from "./stats.ts";
export type { CallInfo, ConnectionInfo, ConnectionState, StrategyFunction, StrategyName } from "./strategies.ts";
export { redactUrl } from "./endpoints.ts";
