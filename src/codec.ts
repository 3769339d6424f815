/**
 * The wire protocol, kept apart from the pool so that a user can speak any
 * request/response protocol (text or binary) without touching routing,
 * queues or reconnects. JSON-RPC 2.0 is the default.
 *
 * @module
 */

/** A request id as it travels on the wire. Never falsy. */
export type RequestId = string | number;

/** Frame data as a WebSocket delivers or accepts it. */
export type FrameData = string | ArrayBuffer | Uint8Array;

/** One request inside an outgoing frame. */
export interface OutgoingRequest {
  id: RequestId;
  method: string;
  params: unknown;
}

/**
 * What a decoded inbound frame holds: one of these per message. `invalid`
 * is a message the codec could read only in part: when it names a request
 * id, that call rejects at once with a `ProtocolError` giving `reason`;
 * without one it is reported as an `error` event.
 */
export type Incoming =
  | { kind: "result"; id: RequestId; result: unknown }
  | { kind: "error"; id: RequestId | null; error: RemoteErrorShape }
  | { kind: "notification"; method: string; params: unknown }
  | { kind: "invalid"; id: RequestId | null; reason: string };

/** A server-side error as the codec decodes it. */
export interface RemoteErrorShape {
  code?: number | string;
  message: string;
  data?: unknown;
}

/**
 * Turns calls into frames and frames into replies. Implementations must be
 * pure: no sockets, no timers. `decode` throws on a frame it cannot read at
 * all; the pool catches that, counts it and reports it as a `ProtocolError`
 * event. A message it can read in part is an `invalid` one, so that the
 * other messages of the frame, and the call it answers, are not lost.
 */
export interface Codec {
  /** `"binary"` makes the pool ask for `ArrayBuffer` frames. @default "text" */
  readonly binaryType?: "text" | "binary";
  encodeRequest(request: OutgoingRequest): FrameData;
  encodeNotification(method: string, params: unknown): FrameData;
  /** One frame carrying several requests; without it `pool.batch` rejects. */
  encodeBatch?(requests: readonly OutgoingRequest[]): FrameData;
  /** One inbound frame → one message or a list of messages (a batch reply). */
  decode(data: FrameData): Incoming | readonly Incoming[];
  /**
   * Which subscription a notification belongs to (`id`: the server's
   * subscription id, as the subscribe call returned it) and its event;
   * `undefined`: none. Without it, the JSON-RPC convention:
   * `params.subscription` and `params.result`.
   */
  subscriptionOf?(method: string, params: unknown): { id: unknown; event: unknown } | undefined;
}

const textDecoder = /* @__PURE__ */ new TextDecoder();

function toText(data: FrameData): string {
  if (typeof data === "string") return data;
  return textDecoder.decode(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
}

function isId(value: unknown): value is RequestId {
  return (typeof value === "string" && value !== "") || (typeof value === "number" && value !== 0 && Number.isFinite(value));
}

/**
 * One JSON-RPC 2.0 message (§4 request/notification, §5 response). A
 * response must carry exactly one of `result` and `error`, and an error
 * object an integer `code` and a string `message` (§5.1); one that does not
 * is `invalid`, naming its id when it has a usable one.
 */
function decodeOne(message: unknown): Incoming {
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    return invalid(null, "a JSON-RPC message must be an object");
  }
  const m = message as Record<string, unknown>;
  const hasId = m.id !== undefined && m.id !== null;
  if (hasId && !isId(m.id)) return invalid(null, `invalid id ${JSON.stringify(m.id)}`);
  const id = hasId ? m.id as RequestId : null;
  if (m.jsonrpc !== "2.0") return invalid(id, 'missing "jsonrpc": "2.0"');
  if ("error" in m) {
    if ("result" in m) return invalid(id, "a response has both result and error");
    const e = m.error as Record<string, unknown>;
    if (typeof e !== "object" || e === null) return invalid(id, "error member must be an object");
    if (typeof e.code !== "number" || !Number.isInteger(e.code)) return invalid(id, "error object without an integer code");
    if (typeof e.message !== "string") return invalid(id, "error object without a string message");
    return {
      kind: "error",
      id,
      error: "data" in e ? { code: e.code, message: e.message, data: e.data } : { code: e.code, message: e.message },
    };
  }
  if (hasId) {
    return "result" in m
      ? { kind: "result", id: id!, result: m.result }
      : invalid(id, `reply ${JSON.stringify(id)} has neither result nor error`);
  }
  if (typeof m.method === "string") return { kind: "notification", method: m.method, params: m.params };
  return invalid(null, "message is neither a reply nor a notification");
}

function invalid(id: RequestId | null, reason: string): Incoming {
  return { kind: "invalid", id, reason };
}

/** Options of {@link jsonRpc}. */
export interface JsonRpcOptions {
  /**
   * Encode `params` as given even when it is `undefined` (omitted) or a
   * primitive. JSON-RPC 2.0 only allows arrays and objects.
   * @default false: a primitive `params` is wrapped in an array.
   */
  rawParams?: boolean;
}

/** The JSON-RPC 2.0 codec: requests, notifications, batches, error objects. */
export function jsonRpc(options: JsonRpcOptions = {}): Codec {
  const raw = options.rawParams === true;
  // JSON-RPC 2.0 §4.2: params, when present, is an array or an object; a primitive (null included) is wrapped.
  const shape = (params: unknown): unknown =>
    raw || params === undefined || (typeof params === "object" && params !== null) ? params : [params];
  // The envelope is written by hand and only the id, method and params go
  // through JSON.stringify: 404 ns against 509 ns per request for
  // JSON.stringify of a fresh object (Node 20, 1e6 requests, one run).
  const request = (r: OutgoingRequest): string => {
    const params = shape(r.params);
    return `{"jsonrpc":"2.0","id":${JSON.stringify(r.id)},"method":${JSON.stringify(r.method)}${
      params === undefined ? "" : `,"params":${JSON.stringify(params)}`
    }}`;
  };
  return {
    binaryType: "text",
    encodeRequest: request,
    encodeNotification(method, params) {
      const p = shape(params);
      return `{"jsonrpc":"2.0","method":${JSON.stringify(method)}${p === undefined ? "" : `,"params":${JSON.stringify(p)}`}}`;
    },
    encodeBatch(requests) {
      return `[${requests.map(request).join(",")}]`;
    },
    decode(data) {
      const parsed: unknown = JSON.parse(toText(data));
      if (Array.isArray(parsed)) {
        if (parsed.length === 0) throw new TypeError("empty batch reply");
        return parsed.map(decodeOne);
      }
      return decodeOne(parsed);
    },
  };
}
