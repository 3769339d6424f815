// The Chromium side of the benchmark: a page served from 127.0.0.1 that
// imports the CDN file (dist/muxpool.js) as a CDN user would, and runs the
// same cells (bench/agent.mjs) for muxpool and for a bare client on the
// browser's own WebSocket. Driven through playwright-core.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"];

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>muxpool bench</title>
<script type="module">
import { Pool } from "/dist/muxpool.js";
import { runCell } from "/bench/agent.mjs";
import { openWebSocketClient } from "/bench/loop.mjs";
const clients = {
  "raw WebSocket": { open: (url) => openWebSocketClient(url) },
  muxpool: {
    open: async (url) => {
      const pool = new Pool(url, { size: 1 });
      await pool.ready();
      return { call: (method, params) => pool.call(method, params), close: () => pool.close() };
    },
  },
};
// window.benchCpuUsage is put there by the harness (renderer CPU over CDP).
window.benchRun = (cell) => runCell(clients, cell, { cpuUsage: () => window.benchCpuUsage() }).then(
  (r) => ({ ok: true, ...r }),
  (e) => ({ ok: false, error: String(e?.message ?? e) }),
);
window.benchReady = true;
</script>`;

/** Only these files are served; anything else is a 404. */
const FILES = { "/dist/muxpool.js": "dist/muxpool.js", "/bench/agent.mjs": "bench/agent.mjs", "/bench/loop.mjs": "bench/loop.mjs" };

/**
 * Starts the page server and Chromium. Resolves to `{ version, run(cell), close() }`,
 * or throws an Error whose message says how to get Chromium.
 */
export async function openBrowser(root) {
  const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch {
    throw new Error("playwright-core is not installed: run `npm ci`");
  }
  const http = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    const file = FILES[path];
    if (file === undefined) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(join(root, file)));
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  let browser;
  try {
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30_000 });
  } catch (error) {
    http.close();
    throw new Error(
      `could not start Chromium at ${executablePath} (${String(error.message).split("\n")[0]}). ` +
        "Install it with `apt-get install -y chromium` (Debian/Ubuntu), or set CHROMIUM_PATH to a Chromium or Chrome binary.",
    );
  }
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    // Renderer-process CPU time from the DevTools protocol; the browser's
    // network service, which does the socket I/O, is another process and is not in it.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable", { timeDomain: "threadTicks" });
    await page.exposeFunction("benchCpuUsage", async () => {
      const { metrics } = await cdp.send("Performance.getMetrics");
      const processTime = metrics.find((m) => m.name === "ProcessTime")?.value;
      return processTime === undefined ? null : { user: processTime * 1e6, system: 0 };
    });
    await page.goto(`http://127.0.0.1:${http.address().port}/`);
    await page.waitForFunction(() => globalThis.benchReady === true, null, { timeout: 15_000 }).catch(() => {
      throw new Error(`the bench page did not load: ${errors.join("; ") || "no error reported"}`);
    });
    return {
      version: browser.version(),
      run: (cell) => page.evaluate((c) => globalThis.benchRun(c), cell),
      close: async () => {
        await browser.close();
        http.close();
      },
    };
  } catch (error) {
    await browser.close();
    http.close();
    throw error;
  }
}
