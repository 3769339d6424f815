/**
 * `npm run demo`: starts the demo JSON-RPC server (with its admin channel for
 * fault injection) and a static HTTP server for the dashboard page, both on
 * 127.0.0.1, and prints the URL to open.
 *
 * The HTTP server serves:
 * - `/`            demo/public/index.html
 * - `/app.js`      the compiled page script (dist-demo/public/app.js)
 * - `/dist/*.js`   the CDN bundles (dist/muxpool.js, dist/muxpool-dashboard.js)
 * - `/config.json` `{ rpcUrl, adminUrl, token }` of the demo RPC server
 *
 * The RPC server is the test server (test/fixtures/server.ts) with its
 * login gate on (`requireLogin`: a socket must call `login` before anything
 * else; the page's pool does it in its `setup`) and the ticker subscription
 * added (test/fixtures/ticker.ts).
 *
 * `startDemo()` is exported so tests can run the same thing in-process on
 * port 0. Run as a program (`node dist-demo/main.mjs [--port N]`, port also
 * from `PORT`, default 8080) it prints the URL and stops on Ctrl-C / SIGTERM.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type RpcServer, startRpcServer } from "../test/fixtures/server.ts";
import { type TickerMethods, tickerMethods } from "../test/fixtures/ticker.ts";

/** The token the page sends in `login` (from /config.json); the demo server takes any. */
export const DEMO_TOKEN = "demo-token";

export interface DemoOptions {
  /** Port of the page's HTTP server; 0 picks a free one. @default 8080 */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Repository root holding demo/public, dist and dist-demo. @default the parent of this file's folder */
  root?: string;
  /** ms between the server's `ticker` notifications; 0 = off. @default 1000 */
  tickerInterval?: number;
  /** ms between ticks of the ticker subscription (`ticker_subscribe`). @default 250 */
  subscriptionTicker?: number;
}

export interface Demo {
  /** The page, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  readonly port: number;
  /** The demo JSON-RPC server (its `url` and `adminUrl`). */
  readonly rpc: RpcServer;
  /** Its ticker subscription, with its counts (`live`, `seq`, `carriers()`, …); the login counts are `rpc.logins` and `rpc.beforeLogin`. */
  readonly ticker: TickerMethods;
  /** Stops both servers. Idempotent. */
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** Files the page needs, relative to the root, and what builds them. */
const REQUIRED = ["demo/public/index.html", "dist-demo/public/app.js", "dist/muxpool.js", "dist/muxpool-dashboard.js"];

/** Starts the RPC server and the page's HTTP server. Rejects (with `code: "EADDRINUSE"`) when the port is taken. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 8080;
  const root = resolve(options.root ?? fileURLToPath(new URL("..", import.meta.url)));
  const missing = REQUIRED.filter((f) => !existsSync(join(root, f)));
  if (missing.length > 0) {
    throw new Error(`muxpool demo: missing ${missing.join(", ")} under ${root}: run \`npm run build\` first (\`npm run demo\` does it)`);
  }

  let config = "{}";
  const http = createServer((req, res) => handle(req, res, root, config));
  http.on("clientError", (_error, socket) => socket.destroy());
  await new Promise<void>((resolveListen, rejectListen) => {
    const onError = (error: Error): void => {
      http.off("listening", onListening);
      rejectListen(error);
    };
    const onListening = (): void => {
      http.off("error", onError);
      resolveListen();
    };
    http.once("error", onError);
    http.once("listening", onListening);
    http.listen(port, host);
  });
  const actualPort = (http.address() as { port: number }).port;

  const ticker = tickerMethods({ interval: options.subscriptionTicker ?? 250 });
  let rpc: RpcServer;
  try {
    rpc = await startRpcServer({ host, port: 0, tickerInterval: options.tickerInterval ?? 1000, requireLogin: true, extension: ticker });
  } catch (error) {
    ticker.close?.();
    http.close();
    throw error;
  }
  config = JSON.stringify({ rpcUrl: rpc.url, adminUrl: rpc.adminUrl, token: DEMO_TOKEN });

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${actualPort}/`,
    port: actualPort,
    rpc,
    ticker,
    close(): Promise<void> {
      closing ??= Promise.all([
        rpc.close(),
        new Promise<void>((done) => {
          http.closeAllConnections();
          http.close(() => done());
        }),
      ]).then(() => undefined);
      return closing;
    },
  };
}

function handle(req: IncomingMessage, res: ServerResponse, root: string, config: string): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? "/", "http://demo").pathname);
  } catch {
    res.writeHead(400).end("bad request");
    return;
  }
  if (path === "/config.json") {
    send(res, 200, TYPES[".json"]!, config);
    return;
  }
  let file: string | undefined;
  if (path === "/" || path === "/index.html") file = join(root, "demo/public/index.html");
  else if (path === "/app.js" || path === "/app.js.map") file = join(root, "dist-demo/public", path.slice(1));
  else if (path.startsWith("/dist/")) {
    const dist = join(root, "dist");
    const candidate = normalize(join(dist, path.slice("/dist/".length)));
    if (candidate.startsWith(dist + "/") && [".js", ".map"].includes(extname(candidate))) file = candidate;
  }
  if (file === undefined || !existsSync(file)) {
    send(res, 404, "text/plain; charset=utf-8", "not found");
    return;
  }
  send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", readFileSync(file));
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

// ---------------------------------------------------------------- CLI

/** `--port N`, `--port=N`, then `PORT`, then 8080. Returns an error message for a bad value. */
export function parsePort(argv: readonly string[], env: Record<string, string | undefined>): number | string {
  let raw: string | undefined;
  let from = "PORT";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--port" || a === "-p") {
      raw = argv[i + 1] ?? "";
      from = "--port";
      i++;
    } else if (a.startsWith("--port=")) {
      raw = a.slice("--port=".length);
      from = "--port";
    }
  }
  if (raw === undefined) {
    raw = env.PORT;
    if (raw === undefined || raw === "") return 8080;
  }
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    return `muxpool demo: ${from} must be a port number from 0 to 65535, got "${raw}"`;
  }
  return n;
}

async function cli(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write("Usage: npm run demo [-- --port N]   (or PORT=N npm run demo; default 8080, 0 = any free port)\n");
    return;
  }
  const port = parsePort(argv, process.env);
  if (typeof port === "string") {
    process.stderr.write(`${port}\n`);
    process.exit(1);
  }
  let demo: Demo;
  try {
    demo = await startDemo({ port });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE") {
      process.stderr.write(`Port ${port} is in use: run with PORT=${port + 1} npm run demo (or --port ${port + 1})\n`);
    } else if (e.code === "EACCES") {
      process.stderr.write(`Port ${port} needs privileges: run with PORT=8080 npm run demo (or --port 8080)\n`);
    } else {
      process.stderr.write(`${e.message ?? String(e)}\n`);
    }
    process.exit(1);
  }
  process.stdout.write(`muxpool demo: open ${demo.url}\n`);
  process.stdout.write(`  demo RPC server ${demo.rpc.url} (admin ${demo.rpc.adminUrl}); Ctrl-C to stop\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(130); // a second Ctrl-C does not wait
    stopping = true;
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    void demo.close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) void cli();
