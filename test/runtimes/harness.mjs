/**
 * What the runtime smoke test needs around the pool, in plain JavaScript that
 * Node 20, Node 22 and Bun all run as is:
 *
 * - `runtime`: which runtime this is, and which WebSocket the pool must use.
 * - `runtimeSockets`: every WebSocket the runtime's own constructor made,
 *   with its close code (runtimes with a global WebSocket only: it is
 *   wrapped in a recording subclass before any pool exists).
 * - `liveLibraryTimers()`: timers that muxpool's own code set and that have
 *   neither fired nor been cleared (globalThis.setTimeout & co. wrapped; a
 *   timer counts as muxpool's when its code is on the stack that set it).
 * - `openHandles()`: Node's active TCP handles; Bun reports none, and relies
 *   on the two above.
 * - `startServer()`: the RPC server in its own Node process (server-process.mjs).
 * - `until()`, `sleep()`: bounded polling on the real clock.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

// ── timers: captured before anything can wrap them ───────────────────────────
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;

/** Resolves after `ms` on a timer the ledger below does not see. */
export const sleep = (ms) => new Promise((resolve) => realSetTimeout(resolve, ms));

/**
 * Polls `cond` (sync or async) every 10 ms until it holds; throws after `ms`
 * or 2,000 polls, naming `what` and, if given, `detail()` at that moment.
 */
export async function until(cond, ms, what, detail) {
  const deadline = Date.now() + ms;
  for (let polls = 0; polls < 2_000; polls++) {
    if (await cond()) return;
    if (Date.now() > deadline) break;
    await sleep(10);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `: ${JSON.stringify(await detail())}` : ""}`);
}

// ── which runtime, which WebSocket ───────────────────────────────────────────
const isBun = typeof globalThis.Bun !== "undefined";
const nodeMajor = Number(process.versions.node.split(".")[0]);
/** @type {{ id: string, label: string, globalWebSocket: boolean }} */
export const runtime = isBun
  ? { id: "bun", label: `Bun ${globalThis.Bun.version}`, globalWebSocket: typeof globalThis.WebSocket === "function" }
  : { id: `node${nodeMajor}`, label: `Node ${process.versions.node}`, globalWebSocket: typeof globalThis.WebSocket === "function" };

/** @type {{ url: string, closeCode: number | undefined, wasClean: boolean | undefined, socket: WebSocket }[]} */
export const runtimeSockets = [];
if (runtime.globalWebSocket) {
  const NativeWebSocket = globalThis.WebSocket;
  globalThis.WebSocket = class RecordingWebSocket extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      const record = { url: String(args[0]), closeCode: undefined, wasClean: undefined, socket: this };
      this.addEventListener("close", (event) => {
        record.closeCode = event.code;
        record.wasClean = event.wasClean;
      });
      runtimeSockets.push(record);
    }
  };
}

// ── timer ledger ─────────────────────────────────────────────────────────────
/** timer handle → where it was set (muxpool's timers only) */
const libraryTimers = new Map();
// Node names dist/index.js in stacks; Bun applies its source map and names src/*.ts.
const libraryDirs = ["../../dist/", "../../src/"].map((dir) => fileURLToPath(new URL(dir, import.meta.url)));
const fromLibrary = () => {
  const stack = new Error().stack ?? "";
  return libraryDirs.some((dir) => stack.includes(dir));
};
globalThis.setTimeout = function setTimeout(fn, ms, ...args) {
  if (!fromLibrary() || typeof fn !== "function") return realSetTimeout(fn, ms, ...args);
  const handle = realSetTimeout(
    (...a) => {
      libraryTimers.delete(handle);
      fn(...a);
    },
    ms,
    ...args,
  );
  libraryTimers.set(handle, `setTimeout(${ms})`);
  return handle;
};
globalThis.setInterval = function setInterval(fn, ms, ...args) {
  const handle = realSetInterval(fn, ms, ...args);
  if (fromLibrary()) libraryTimers.set(handle, `setInterval(${ms})`);
  return handle;
};
globalThis.clearTimeout = function clearTimeout(handle) {
  libraryTimers.delete(handle);
  return realClearTimeout(handle);
};
globalThis.clearInterval = function clearInterval(handle) {
  libraryTimers.delete(handle);
  return realClearInterval(handle);
};

/** muxpool's timers that are still pending, e.g. `["setTimeout(30000)"]`. */
export const liveLibraryTimers = () => [...libraryTimers.values()];

/** Node: active TCP handles by type (sockets, listeners). Bun: always empty. */
export function openHandles() {
  const all = typeof process.getActiveResourcesInfo === "function" ? process.getActiveResourcesInfo() : [];
  return all.filter((r) => /^TCP/.test(r)).sort();
}

// ── the server process ───────────────────────────────────────────────────────
/** The Node that runs the server: $MUXPOOL_SERVER_NODE, else this Node, else `node` from PATH. */
const serverNode = process.env.MUXPOOL_SERVER_NODE || (isBun ? "node" : process.execPath);

/**
 * Starts server-process.mjs and waits (at most 20 s) for its URL.
 * `op(name)` asks it something (at most 5 s); `close()` ends it.
 */
export function startServer() {
  const child = spawn(serverNode, [`${here}server-process.mjs`], { stdio: ["pipe", "pipe", "inherit"] });
  const waiting = new Map();
  let nextId = 1;
  let buffered = "";
  let onReady;
  let onFail;
  const ready = new Promise((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.once(
    "error",
    (error) =>
      onFail(new Error(`could not start the server with ${serverNode}: ${error.message} (set MUXPOOL_SERVER_NODE to a Node 20+ binary)`)),
  );
  void exited.then(({ code, signal }) => {
    const error = new Error(`the server process exited (code ${code}, signal ${signal})`);
    onFail(error);
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
  });
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        process.stderr.write(`server: ${line}\n`); // not a message: something the server printed
        continue;
      }
      if (message.ready) {
        onReady(message.url);
        continue;
      }
      const w = waiting.get(message.id);
      waiting.delete(message.id);
      if (w === undefined) continue;
      realClearTimeout(w.timer);
      if ("error" in message) w.reject(new Error(`server op ${w.op}: ${message.error}`));
      else w.resolve(message.value);
    }
  });
  const startTimer = realSetTimeout(() => onFail(new Error("the server process did not report its URL within 20 s")), 20_000);

  return ready.then(
    (url) => {
      realClearTimeout(startTimer);
      return {
        url,
        op(name) {
          const id = nextId++;
          return new Promise((resolve, reject) => {
            const timer = realSetTimeout(() => {
              waiting.delete(id);
              reject(new Error(`server op ${name}: no answer within 5 s`));
            }, 5_000);
            waiting.set(id, { op: name, resolve, reject, timer });
            child.stdin.write(`${JSON.stringify({ id, op: name })}\n`);
          });
        },
        /** Ends the server process: stdin closes, it closes the server and exits (killed after 5 s). */
        async close() {
          child.stdin.end();
          const kill = realSetTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          realClearTimeout(kill);
        },
      };
    },
    (error) => {
      realClearTimeout(startTimer);
      child.kill("SIGKILL");
      throw error;
    },
  );
}
