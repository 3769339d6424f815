#!/usr/bin/env node
/**
 * Re-adds the other platforms' builds of deno's and bun's binaries
 * (@deno/*, @oven/bun-*) to package-lock.json.
 *
 * `npm ci` refuses a lock that misses any optional dependency, even one for
 * another OS. A registry mirror that has only the linux-x64 builds (as the
 * one this project was first developed against had for deno) makes
 * `npm install` write a lock without the others. Each gets an entry with its version and platform (and no integrity,
 * which npm fills in where the package can be fetched); npm skips it on every
 * other platform, as it would with a full lock.
 *
 * Usage: node scripts/lock-platforms.mjs   (idempotent; prints what it added)
 */
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));

/** The platform a binary package is built for, from its name; `undefined` for any other package. */
function platformOf(name) {
  const deno = /^@deno\/(darwin|linux|win32)-(x64|arm64)(?:-(glibc|musl))?$/.exec(name);
  if (deno !== null) return { os: deno[1], cpu: deno[2], libc: deno[3] };
  // bun-linux-x64 is glibc; -musl is musl; -android is os "android"; windows is win32; aarch64 is arm64.
  const bun = /^@oven\/bun-(darwin|linux|freebsd|windows)-(x64|aarch64)(?:-(musl|android))?$/.exec(name);
  if (bun === null) return undefined;
  const [, system, arch, variant] = bun;
  const os = system === "windows" ? "win32" : variant === "android" ? "android" : system;
  return { os, cpu: arch === "aarch64" ? "arm64" : arch, libc: os === "linux" ? (variant === "musl" ? "musl" : "glibc") : undefined };
}

const added = [];
for (const entry of Object.values(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const platform = platformOf(name);
    if (lock.packages[key] !== undefined || platform === undefined) continue;
    const { os, cpu, libc } = platform;
    lock.packages[key] = { version, cpu: [cpu], dev: entry.dev, ...(libc ? { libc: [libc] } : {}), license: entry.license, optional: true, os: [os] };
    added.push(`${name}@${version}`);
  }
}
// npm keeps the root ("") first, then the paths in order.
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
console.log(added.length === 0 ? "package-lock.json already lists every platform" : `added ${added.join(", ")}`);
