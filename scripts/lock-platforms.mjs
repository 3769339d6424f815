#!/usr/bin/env node
/**
 * Re-adds the other platforms' builds of deno's binary to package-lock.json.
 *
 * `npm ci` refuses a lock that misses any optional dependency, even one for
 * another OS. The registry mirror this project is developed against has only
 * @deno/linux-x64-glibc, so `npm install` here writes a lock without the
 * others. Each gets an entry with its version and platform (and no integrity,
 * which npm fills in where the package can be fetched); npm skips it on every
 * other platform, as it would with a full lock.
 *
 * Usage: node scripts/lock-platforms.mjs   (idempotent; prints what it added)
 */
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const added = [];
for (const entry of Object.values(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const m = /^@deno\/(darwin|linux|win32)-(x64|arm64)(?:-(glibc|musl))?$/.exec(name);
    if (lock.packages[key] !== undefined || m === null) continue;
    const [, os, cpu, libc] = m;
    lock.packages[key] = { version, cpu: [cpu], dev: entry.dev, ...(libc ? { libc: [libc] } : {}), license: entry.license, optional: true, os: [os] };
    added.push(`${name}@${version}`);
  }
}
// npm keeps the root ("") first, then the paths in order.
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
console.log(added.length === 0 ? "package-lock.json already lists every platform" : `added ${added.join(", ")}`);
