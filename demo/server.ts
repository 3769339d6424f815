/**
 * Demo / test JSON-RPC 2.0 server over WebSocket, with fault injection.
 *
 * - RPC sockets connect to any path except `/admin`.
 * - `/admin` is a control channel (JSON ops in, `{ type: "state", ... }` pushes out).
 * - Only erasable TypeScript syntax is used (no enums, no parameter properties) so the
 *   file also runs under type-stripping runtimes.
 *
 * Admin sockets and `restart()`: a restart terminates every RPC socket and closes the
 * listener, but admin sockets are KEPT open (they belong to the old listener, which keeps
 * serving already-accepted connections). The admin client therefore sees the restart
 * happen in its state pushes (connections drop to zero, then come back). `close()` does
 * terminate admin sockets.
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, WebSocket } from "ws";
import type { RawData } from "ws";

export interface RpcServerOptions {
  host?: string;
  port?: number;
  /** ms between `ticker` notifications to every RPC socket; 0 = off (default). */
  tickerInterval?: number;
}

/** latency and jitter in ms; errorRate and dropRate in 0..1. */
export interface Faults {
  latency: number;
  jitter: number;
  errorRate: number;
  dropRate: number;
}

export interface ConnectionInfo {
  id: number;
  remoteAddress: string;
  /** request objects received (a batch of k counts k; notifications included) */
  received: number;
  /** frames sent (replies, notifications, ticker, raw) */
  sent: number;
  stalled: boolean;
}

export interface RpcServerStats {
  /** request objects received that carry an id (a batch of k counts k) */
  requests: number;
  /** response objects written to the wire (a batch reply of k counts k) */
  replies: number;
  /** request objects received without an id */
  notificationsReceived: number;
  /** RPC sockets accepted (admin sockets not counted) */
  connectionsAccepted: number;
  /** calls answered with -32000 "injected error" because of errorRate */
  errorsInjected: number;
  /** response objects never sent because of dropRate */
  repliesDropped: number;
}

export interface AdminState {
  type: "state";
  faults: Faults;
  connections: ConnectionInfo[];
  stats: RpcServerStats;
  holding: boolean;
  refusing: boolean;
  restarting: boolean;
}

export type ReleaseOrder = "fifo" | "reverse" | "shuffle";

type Json = unknown;

interface Outbound {
  data: string | Buffer;
  /** number of response objects in this frame (0 for notifications / raw) */
  replies: number;
}

interface Conn {
  id: number;
  ws: WebSocket;
  socket: Duplex;
  remoteAddress: string;
  received: number;
  sent: number;
  stalled: boolean;
  /** frames produced while stalled, flushed on unstall */
  stallOut: Outbound[];
  /** messages already parsed by ws while stalled, processed on unstall */
  stallIn: RawData[];
}

interface HeldReply {
  conn: Conn;
  out: Outbound;
}

interface RpcErrorObject {
  code: number;
  message: string;
  data?: Json;
}

class RpcFailure extends Error {
  readonly code: number;
  readonly data: Json;
  constructor(code: number, message: string, data?: Json) {
    super(message);
    this.code = code;
    this.data = data;
  }
  toJSON(): RpcErrorObject {
    const o: RpcErrorObject = { code: this.code, message: this.message };
    if (this.data !== undefined) o.data = this.data;
    return o;
  }
}

const ADMIN_PATH = "/admin";
const ADMIN_PUSH_MS = 500;

function noop(): void {
  /* swallow */
}

function emptyStats(): RpcServerStats {
  return {
    requests: 0,
    replies: 0,
    notificationsReceived: 0,
    connectionsAccepted: 0,
    errorsInjected: 0,
    repliesDropped: 0,
  };
}

function defaultFaults(): Faults {
  return { latency: 0, jitter: 0, errorRate: 0, dropRate: 0 };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isValidId(v: unknown): v is string | number | null {
  return v === null || typeof v === "string" || typeof v === "number";
}

function finiteNumber(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}

function errorResponse(id: Json, err: RpcErrorObject): Record<string, unknown> {
  return { jsonrpc: "2.0", id, error: err };
}

export class RpcServer {
  readonly host: string;
  /** fixed after the first listen; restart() listens on the same port again */
  port = 0;
  faults: Faults = defaultFaults();
  stats: RpcServerStats = emptyStats();
  executions: Map<string, number> = new Map();

  private readonly tickerInterval: number;
  private http: Server | null = null;
  private readonly wss: WebSocketServer;
  private readonly adminWss: WebSocketServer;
  private readonly conns = new Map<number, Conn>();
  private readonly admins = new Set<WebSocket>();
  private readonly rawSockets = new Set<Duplex>();
  private readonly adminRaw = new Set<Duplex>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private nextConnId = 1;
  private counter = 0;
  private tickN = 0;
  private holding = false;
  private held: HeldReply[] = [];
  private refusing = false;
  private restarting = false;
  private closed = false;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private adminTimer: ReturnType<typeof setInterval> | null = null;

  constructor(opts: RpcServerOptions = {}) {
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.tickerInterval = Math.max(0, opts.tickerInterval ?? 0);
    this.wss = new WebSocketServer({ noServer: true, clientTracking: false });
    this.adminWss = new WebSocketServer({ noServer: true, clientTracking: false });
    this.wss.on("error", noop);
    this.adminWss.on("error", noop);
  }

  get url(): string {
    return `ws://${this.host}:${this.port}`;
  }

  get adminUrl(): string {
    return `ws://${this.host}:${this.port}${ADMIN_PATH}`;
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /**
   * Listen (used by startRpcServer and restart). With `busyRetryMs` > 0 (restart), an
   * EADDRINUSE on the fixed port is retried every 20 ms for that long.
   */
  async listen(busyRetryMs = 0): Promise<void> {
    if (this.closed) throw new Error("RpcServer is closed");
    let lastErr: unknown;
    const attempts = 1 + Math.ceil(busyRetryMs / 20);
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        await this.listenOnce();
        this.startTicker();
        return;
      } catch (err) {
        lastErr = err;
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || this.port === 0) throw err;
        await this.sleepTracked(20);
        if (this.closed) throw new Error("RpcServer is closed");
      }
    }
    throw lastErr;
  }

  private listenOnce(): Promise<void> {
    const http = createServer((req, res) => {
      res.writeHead(426, { "content-type": "text/plain", connection: "close" });
      res.end("muxpool demo server: connect with a WebSocket\n");
    });
    http.on("connection", (socket) => {
      socket.on("error", noop);
      this.rawSockets.add(socket);
      socket.once("close", () => {
        this.rawSockets.delete(socket);
        this.adminRaw.delete(socket);
      });
    });
    http.on("clientError", (_err, socket) => {
      socket.destroy();
    });
    http.on("upgrade", (req, socket, head) => {
      try {
        this.onUpgrade(req, socket, head);
      } catch {
        socket.destroy();
      }
    });
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        http.removeListener("listening", onListening);
        http.close();
        reject(err);
      };
      const onListening = (): void => {
        http.removeListener("error", onError);
        http.on("error", noop);
        const addr = http.address();
        if (addr && typeof addr === "object") this.port = addr.port;
        this.http = http;
        resolve();
      };
      http.once("error", onError);
      http.once("listening", onListening);
      http.listen(this.port, this.host);
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    if (path === ADMIN_PATH) {
      this.adminRaw.add(socket);
      this.adminWss.handleUpgrade(req, socket, head, (ws) => this.onAdmin(ws));
      return;
    }
    if (this.refusing || this.restarting) {
      socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onRpc(ws, socket, req));
  }

  /**
   * Terminate every RPC socket, close the listener, wait `downMs`, listen again on the
   * same port. Admin sockets survive (see the file header).
   */
  async restart(downMs = 0): Promise<void> {
    if (this.closed) return;
    this.restarting = true;
    this.pushState();
    this.stopTicker();
    this.killAll();
    // destroy RPC sockets still in the middle of their handshake
    for (const s of this.rawSockets) if (!this.adminRaw.has(s)) s.destroy();
    this.held = this.held.filter((h) => h.conn.ws.readyState === WebSocket.OPEN);
    const http = this.http;
    this.http = null;
    if (http) await new Promise<void>((resolve) => {
      // the listening handle is released at once; the callback may wait for admin sockets
      http.close();
      setImmediate(resolve);
    });
    if (downMs > 0) await this.sleepTracked(downMs);
    try {
      if (!this.closed) await this.listen(2000);
    } finally {
      this.restarting = false;
      this.pushState();
    }
  }

  /** Terminate everything and release the port. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTicker();
    if (this.adminTimer) clearInterval(this.adminTimer);
    this.adminTimer = null;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.held = [];
    for (const c of this.conns.values()) c.ws.terminate();
    this.conns.clear();
    for (const a of this.admins) a.terminate();
    this.admins.clear();
    for (const s of this.rawSockets) s.destroy();
    this.rawSockets.clear();
    this.adminRaw.clear();
    const http = this.http;
    this.http = null;
    this.wss.close();
    this.adminWss.close();
    if (http) {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    }
  }

  // ───────────────────────────── RPC sockets ─────────────────────────────

  private onRpc(ws: WebSocket, socket: Duplex, req: IncomingMessage): void {
    if (this.closed || this.restarting) {
      ws.terminate();
      return;
    }
    const conn: Conn = {
      id: this.nextConnId++,
      ws,
      socket,
      remoteAddress: `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? 0}`,
      received: 0,
      sent: 0,
      stalled: false,
      stallOut: [],
      stallIn: [],
    };
    this.conns.set(conn.id, conn);
    this.stats.connectionsAccepted++;
    ws.on("error", noop);
    ws.on("close", () => {
      this.conns.delete(conn.id);
    });
    ws.on("message", (data) => {
      try {
        if (conn.stalled) {
          conn.stallIn.push(data);
          return;
        }
        this.onRpcMessage(conn, data);
      } catch {
        /* never throw out of a handler */
      }
    });
  }

  private onRpcMessage(conn: Conn, data: RawData): void {
    let msg: unknown;
    try {
      msg = JSON.parse(rawToString(data));
    } catch {
      this.stats.requests++;
      conn.received++;
      this.reply(conn, errorResponse(null, { code: -32700, message: "Parse error" }), 1);
      return;
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) {
        this.stats.requests++;
        conn.received++;
        this.reply(conn, errorResponse(null, { code: -32600, message: "Invalid Request: empty batch" }), 1);
        return;
      }
      const pending = msg.map((m) => this.handleOne(conn, m));
      void Promise.all(pending).then((results) => {
        const out = results.filter((r): r is Record<string, unknown> => r !== null);
        if (out.length > 0 && !this.closed) this.reply(conn, out, out.length);
      }, noop);
      return;
    }
    void this.handleOne(conn, msg).then((r) => {
      if (r !== null && !this.closed) this.reply(conn, r, 1);
    }, noop);
  }

  /** Handle one request object; resolves to its response, or null for a notification. */
  private async handleOne(conn: Conn, m: unknown): Promise<Record<string, unknown> | null> {
    conn.received++;
    if (!isObject(m)) {
      this.stats.requests++;
      return errorResponse(null, { code: -32600, message: "Invalid Request" });
    }
    const hasId = Object.prototype.hasOwnProperty.call(m, "id");
    if (hasId) this.stats.requests++;
    else this.stats.notificationsReceived++;
    if (m.jsonrpc !== "2.0" || typeof m.method !== "string" || (hasId && !isValidId(m.id))) {
      // an invalid request is always answered, even without an id
      if (!hasId) {
        this.stats.notificationsReceived--;
        this.stats.requests++;
      }
      return errorResponse(hasId && isValidId(m.id) ? m.id : null, {
        code: -32600,
        message: "Invalid Request",
      });
    }
    const id = hasId ? (m.id as Json) : undefined;
    if (hasId && this.faults.errorRate > 0 && Math.random() < this.faults.errorRate) {
      this.stats.errorsInjected++;
      return errorResponse(id, { code: -32000, message: "injected error" });
    }
    let result: Json;
    try {
      result = await this.execute(conn, m.method, m.params);
    } catch (err) {
      if (!hasId) return null;
      const e =
        err instanceof RpcFailure
          ? err.toJSON()
          : { code: -32603, message: "Internal error", data: String(err) };
      return errorResponse(id, e);
    }
    if (!hasId) return null;
    return { jsonrpc: "2.0", id, result: result === undefined ? null : result };
  }

  private async execute(conn: Conn, method: string, params: unknown): Promise<Json> {
    const arr = Array.isArray(params) ? params : undefined;
    switch (method) {
      case "echo":
        return arr ? arr[0] : params;
      case "ping":
        return "pong";
      case "add": {
        let a: unknown;
        let b: unknown;
        if (arr) [a, b] = arr;
        else if (isObject(params)) ({ a, b } = params);
        if (typeof a !== "number" || typeof b !== "number") {
          throw new RpcFailure(-32602, "Invalid params: add expects [a, b] or {a, b} numbers");
        }
        return a + b;
      }
      case "sleep": {
        const ms = arr ? arr[0] : isObject(params) ? params.ms : params;
        if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
          throw new RpcFailure(-32602, "Invalid params: sleep expects [ms] with ms >= 0");
        }
        await this.sleepTracked(ms);
        return ms;
      }
      case "fail": {
        const code = arr && typeof arr[0] === "number" && Number.isInteger(arr[0]) ? arr[0] : 1234;
        const message = arr && typeof arr[1] === "string" ? arr[1] : "requested failure";
        throw new RpcFailure(code, message, arr ? arr[2] : undefined);
      }
      case "incr":
        return ++this.counter;
      case "record": {
        const token = arr ? arr[0] : isObject(params) ? params.token : params;
        if (typeof token !== "string" && typeof token !== "number") {
          throw new RpcFailure(-32602, "Invalid params: record expects [token]");
        }
        const key = String(token);
        const n = (this.executions.get(key) ?? 0) + 1;
        this.executions.set(key, n);
        return n;
      }
      case "notifyMe": {
        const n = arr ? arr[0] : params;
        const name = arr && typeof arr[1] === "string" ? arr[1] : "tick";
        if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 100_000) {
          throw new RpcFailure(-32602, "Invalid params: notifyMe expects [n, method?]");
        }
        for (let i = 0; i < n; i++) {
          this.send(conn, { data: JSON.stringify({ jsonrpc: "2.0", method: name, params: { i } }), replies: 0 });
        }
        return n;
      }
      default:
        throw new RpcFailure(-32601, "Method not found", { method });
    }
  }

  /** Apply latency/jitter, then dropRate, then hold, then send (or stall-buffer). */
  private reply(conn: Conn, payload: unknown, count: number): void {
    const data = JSON.stringify(payload);
    const { latency, jitter } = this.faults;
    const delay = Math.max(0, latency) + (jitter > 0 ? Math.random() * jitter : 0);
    const finish = (): void => {
      if (this.closed) return;
      if (this.faults.dropRate > 0 && Math.random() < this.faults.dropRate) {
        this.stats.repliesDropped += count;
        return;
      }
      const out: Outbound = { data, replies: count };
      if (this.holding) {
        this.held.push({ conn, out });
        return;
      }
      this.send(conn, out);
    };
    if (delay > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        try {
          finish();
        } catch {
          /* ignore */
        }
      }, delay);
      this.timers.add(t);
    } else {
      finish();
    }
  }

  private send(conn: Conn, out: Outbound): boolean {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    if (conn.stalled) {
      conn.stallOut.push(out);
      return true;
    }
    try {
      conn.ws.send(out.data, noop);
    } catch {
      return false;
    }
    conn.sent++;
    this.stats.replies += out.replies;
    return true;
  }

  private sleepTracked(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private startTicker(): void {
    if (this.tickerInterval <= 0 || this.ticker) return;
    this.ticker = setInterval(() => {
      try {
        const n = ++this.tickN;
        const data = JSON.stringify({ jsonrpc: "2.0", method: "ticker", params: { t: Date.now(), n } });
        for (const c of this.conns.values()) this.send(c, { data, replies: 0 });
      } catch {
        /* ignore */
      }
    }, this.tickerInterval);
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  // ───────────────────────────── test hooks ─────────────────────────────

  setFaults(partial: Partial<Faults>): Faults {
    const f = { ...this.faults };
    const latency = finiteNumber(partial.latency);
    const jitter = finiteNumber(partial.jitter);
    const errorRate = finiteNumber(partial.errorRate);
    const dropRate = finiteNumber(partial.dropRate);
    if (latency !== undefined) f.latency = Math.max(0, latency);
    if (jitter !== undefined) f.jitter = Math.max(0, jitter);
    if (errorRate !== undefined) f.errorRate = clamp(errorRate, 0, 1);
    if (dropRate !== undefined) f.dropRate = clamp(dropRate, 0, 1);
    this.faults = f;
    return { ...f };
  }

  /** From now on, replies are buffered instead of sent (notifications still go out). */
  hold(): void {
    this.holding = true;
  }

  /** Send buffered replies in the given order and stop holding. Returns how many were sent. */
  release(order: ReleaseOrder = "fifo"): number {
    this.holding = false;
    const items = this.held;
    this.held = [];
    if (order === "reverse") items.reverse();
    else if (order === "shuffle") {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        const tmp = items[i];
        items[i] = items[j];
        items[j] = tmp;
      }
    }
    let n = 0;
    for (const h of items) if (this.send(h.conn, h.out)) n++;
    return n;
  }

  /** Number of replies currently held by hold(). */
  heldCount(): number {
    return this.held.length;
  }

  /** Send a raw frame to one RPC socket (by id) or to all of them. Returns sockets written. */
  sendRaw(data: string | Buffer, connIndex?: number): number {
    let n = 0;
    for (const c of this.conns.values()) {
      if (connIndex !== undefined && c.id !== connIndex) continue;
      if (this.send(c, { data, replies: 0 })) n++;
    }
    return n;
  }

  notifyAll(method: string, params?: unknown): number {
    const msg: Record<string, unknown> = { jsonrpc: "2.0", method };
    if (params !== undefined) msg.params = params;
    return this.sendRaw(JSON.stringify(msg));
  }

  /** Live RPC sockets in open order. */
  connections(): ConnectionInfo[] {
    return [...this.conns.values()].map((c) => ({
      id: c.id,
      remoteAddress: c.remoteAddress,
      received: c.received,
      sent: c.sent,
      stalled: c.stalled,
    }));
  }

  private pick(id?: number, pred?: (c: Conn) => boolean): Conn | undefined {
    if (id !== undefined) return this.conns.get(id);
    for (const c of this.conns.values()) if (!pred || pred(c)) return c;
    return undefined;
  }

  /**
   * terminate() one RPC socket (no close frame); default the oldest that is
   * not stalled. A stalled socket's client may have dropped it already: its
   * paused TCP socket never reads the FIN, so it lingers here until killed.
   */
  kill(id?: number): boolean {
    const c = this.pick(id, (x) => !x.stalled) ?? this.pick(id);
    if (!c) return false;
    this.conns.delete(c.id);
    c.ws.terminate();
    return true;
  }

  killAll(): number {
    const all = [...this.conns.values()];
    this.conns.clear();
    for (const c of all) c.ws.terminate();
    return all.length;
  }

  /** Clean close with a close frame. Throws (from ws) on an invalid close code. */
  closeSocket(id: number, code = 1000, reason = ""): boolean {
    const c = this.conns.get(id);
    if (!c) return false;
    c.ws.close(code, reason); // throws before anything changes if the code is invalid
    this.conns.delete(c.id);
    return true;
  }

  /**
   * Stop reading and answering one RPC socket (default: the oldest not yet stalled). The
   * TCP connection stays open; ws pings are not answered; replies/notifications produced
   * meanwhile are held and flushed on unstall.
   */
  stall(id?: number): boolean {
    const c = this.pick(id, (x) => !x.stalled);
    if (!c || c.stalled) return false;
    c.stalled = true;
    c.socket.pause();
    return true;
  }

  /** Resume one socket, or every stalled socket when no id is given. */
  unstall(id?: number): number {
    const targets = id !== undefined ? [this.conns.get(id)] : [...this.conns.values()];
    let n = 0;
    for (const c of targets) {
      if (!c || !c.stalled) continue;
      c.stalled = false;
      n++;
      const out = c.stallOut;
      c.stallOut = [];
      for (const o of out) this.send(c, o);
      const inbound = c.stallIn;
      c.stallIn = [];
      for (const m of inbound) {
        try {
          this.onRpcMessage(c, m);
        } catch {
          /* ignore */
        }
      }
      c.socket.resume();
    }
    return n;
  }

  /** While on, new RPC upgrade requests get HTTP 503 (admin still accepted). */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Clear counters, executions, the incr counter and faults. */
  reset(): void {
    this.stats = emptyStats();
    this.executions.clear();
    this.counter = 0;
    this.faults = defaultFaults();
  }

  // ───────────────────────────── admin channel ─────────────────────────────

  state(): AdminState {
    return {
      type: "state",
      faults: { ...this.faults },
      connections: this.connections(),
      stats: { ...this.stats },
      holding: this.holding,
      refusing: this.refusing,
      restarting: this.restarting,
    };
  }

  private onAdmin(ws: WebSocket): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    this.admins.add(ws);
    ws.on("error", noop);
    ws.on("close", () => {
      this.admins.delete(ws);
      if (this.admins.size === 0 && this.adminTimer) {
        clearInterval(this.adminTimer);
        this.adminTimer = null;
      }
    });
    ws.on("message", (data) => {
      try {
        this.onAdminMessage(data);
      } catch {
        /* a bad admin message is ignored */
      }
    });
    this.sendState(ws);
    if (!this.adminTimer) {
      this.adminTimer = setInterval(() => this.pushState(), ADMIN_PUSH_MS);
    }
  }

  private onAdminMessage(data: RawData): void {
    let msg: unknown;
    try {
      msg = JSON.parse(rawToString(data));
    } catch {
      return;
    }
    if (!isObject(msg) || typeof msg.op !== "string") return;
    const id = finiteNumber(msg.id);
    switch (msg.op) {
      case "setFaults":
        if (!isObject(msg.faults)) return;
        this.setFaults(msg.faults as Partial<Faults>);
        break;
      case "kill":
        this.kill(id);
        break;
      case "killAll":
        this.killAll();
        break;
      case "stall":
        this.stall(id);
        break;
      case "unstall":
        this.unstall(id);
        break;
      case "refuse":
        this.refuse(msg.on === true);
        break;
      case "reset":
        this.reset();
        break;
      case "restart": {
        const downMs = finiteNumber(msg.downMs);
        // restart pushes state itself when it starts and when it is listening again
        this.restart(downMs !== undefined ? clamp(downMs, 0, 60_000) : 0).catch(noop);
        return;
      }
      default:
        return;
    }
    this.pushState();
  }

  private sendState(ws: WebSocket): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    try {
      ws.send(JSON.stringify(this.state()), noop);
    } catch {
      /* ignore */
    }
  }

  private pushState(): void {
    if (this.admins.size === 0) return;
    const data = JSON.stringify(this.state());
    for (const a of this.admins) {
      if (a.readyState !== WebSocket.OPEN) continue;
      try {
        a.send(data, noop);
      } catch {
        /* ignore */
      }
    }
  }
}

/** Start a server listening on 127.0.0.1 (port 0 = ephemeral). */
export async function startRpcServer(opts: RpcServerOptions = {}): Promise<RpcServer> {
  const server = new RpcServer(opts);
  await server.listen();
  return server;
}
