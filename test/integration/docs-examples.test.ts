/**
 * The examples of docs/subscriptions.md, run as written: each
 * `<!-- example: name -->` code block is written to .tmp/ (its
 * `from "muxpool"` pointed at src/mod.ts), imported, and run against a real
 * server speaking its shape (test/fixtures/chains.ts, ticker.ts) on
 * 127.0.0.1 port 0, while the test kills every socket of the server. A change to the library or to the doc that breaks an
 * example fails here.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ChainMethods, chainMethods } from "../fixtures/chains.ts";
import { type RpcServer, startRpcServer } from "../fixtures/server.ts";
import { type TickerMethods, tickerMethods } from "../fixtures/ticker.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const doc = readFileSync(join(root, "docs/subscriptions.md"), "utf8");

/** The examples of the doc, by name. */
const examples = new Map([...doc.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)].map((m) => [m[1]!, m[2]!]));

/** Writes example `name` as a module and imports it. */
async function load<T>(name: string): Promise<T> {
  const code = examples.get(name);
  if (code === undefined) throw new Error(`docs/subscriptions.md has no example "${name}"`);
  expect(code).toContain('from "muxpool"');
  const dir = join(root, ".tmp", "docs-examples");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.ts`);
  writeFileSync(file, code.replace(/from "muxpool"/g, `from ${JSON.stringify(join(root, "src/mod.ts"))}`));
  return (await import(pathToFileURL(file).href)) as T;
}

let server: RpcServer | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await server?.close();
  server = undefined;
});

/**
 * Once `ready()` holds (within 5 s, or it throws), kills every socket of the
 * server: the pool must reconnect before a subscription can move, so the
 * stream has a hole of a backoff's length (100 ms and more), many events.
 */
async function killAllWhen(ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error("not ready to kill within 5 s");
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(server!.killAll()).toBeGreaterThan(0);
}

/**
 * Once `ready()` holds, takes the server down for `downMs` (every socket
 * dies, new ones are refused): events the server makes meanwhile reach no
 * socket, so the stream has a hole whatever the pool's backoff (its full
 * jitter can retry within 1 ms after a mere kill).
 */
async function restartWhen(ready: () => boolean, downMs: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error("not ready to restart within 5 s");
    await new Promise((r) => setTimeout(r, 5));
  }
  await server!.restart(downMs);
}

const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);
const consecutive = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x === xs[i - 1]! + 1);

describe("docs/subscriptions.md examples", () => {
  it("has the three examples", () => {
    expect([...examples.keys()]).toEqual(["ethereum", "solana", "ticker"]);
  });

  it("ethereum: followHeads gets consecutive blocks when the server goes down, filling the hole with eth_getBlockByNumber", async () => {
    const chain: ChainMethods = chainMethods({ interval: 15 });
    server = await startRpcServer({ extension: chain });
    const { followHeads } = await load<{ followHeads: (url: string, n: number, f: (h: { number: string }) => void) => Promise<void> }>(
      "ethereum",
    );
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const blocks: number[] = [];
    const run = followHeads(server.url, 60, (head) => blocks.push(Number.parseInt(head.number, 16)));
    await restartWhen(() => blocks.length >= 10, 150); // 150 ms down: about 10 blocks made with no socket
    await run;
    expect(blocks).toHaveLength(60);
    expect(consecutive(blocks), blocks.join(",")).toBe(true);
    // The hole was filled by the loop, not by luck.
    expect(chain.blockQueries).toBeGreaterThan(0);
    expect(log.mock.calls.map((c) => String(c[0]))).toEqual([
      expect.stringMatching(/^newHeads moved from socket \d+ to \d+ \(lost\), \d+ ms without a head$/),
    ]);
    // break unsubscribed, close closed: nothing left on the server.
    expect(chain.live).toBe(0);
  });

  it("solana: watchAccount logs in on every socket, follows slots and an account when every socket is killed, numeric ids", async () => {
    const chain = chainMethods({ interval: 15 });
    server = await startRpcServer({ extension: chain, requireLogin: true });
    const { watchAccount } = await load<{
      watchAccount: (url: string, token: string, pubkey: string, n: number) => Promise<{ slots: number[]; balances: [number, number][] }>;
    }>("solana");
    const run = watchAccount(server.url, "s3cret", "Vote111111111111111111111111111111111111111", 60);
    const height = chain.height;
    await killAllWhen(() => chain.live === 2 && chain.height > height + 10);
    const { slots, balances } = await run;
    expect(slots).toHaveLength(60);
    // No slot twice and none out of order; Solana does not replay, so the move may skip some.
    expect(increasing(slots), slots.join(",")).toBe(true);
    expect(balances.length).toBeGreaterThan(20);
    expect(increasing(balances.map(([slot]) => slot))).toBe(true);
    expect(balances.every(([slot, lamports]) => lamports === 1_000_000_000 + slot)).toBe(true);
    // The reconnected socket logged in before anything else: the server refused nothing.
    expect(server!.beforeLogin).toEqual([]);
    expect(server!.logins).toBeGreaterThanOrEqual(3); // two sockets, then the ones that replaced them
    expect(chain.live).toBe(0);
  });

  it("ticker: followTicker resumes from the last tick with a params function, no seq missed or twice when every socket is killed", async () => {
    const ticker: TickerMethods = tickerMethods({ interval: 10 });
    server = await startRpcServer({ extension: ticker, requireLogin: true });
    const { followTicker } = await load<{ followTicker: (url: string, token: string, n: number) => Promise<number[]> }>("ticker");
    const run = followTicker(server.url, "t0ken", 80);
    const subscribes = (): number => ticker.subscribes;
    await killAllWhen(() => subscribes() === 1 && ticker.seq > 20);
    const seqs = await run;
    expect(seqs).toHaveLength(80);
    expect(consecutive(seqs), seqs.join(",")).toBe(true);
    expect(ticker.subscribes).toBe(2); // moved once
    expect(server!.beforeLogin).toEqual([]);
    expect(server!.logins).toBeGreaterThanOrEqual(3);
    expect(ticker.live).toBe(0);
  });
});
