#!/usr/bin/env node
/**
 * `npm test`: every test, in every runtime, in order, stopping at the first failure.
 *
 *   1. typecheck       tsc --noEmit
 *   2. build           scripts/build.mjs (dist/ is what the package, Node and browser tests use)
 *   3. node            vitest run (unit + integration, against real ws servers)
 *   4. deno            deno check, deno lint, deno test (sanitizers on), deno publish --dry-run
 *   5. browser         vitest run -c vitest.e2e.config.ts (real Chromium)
 *
 * Each step's output streams through. At the end: test counts per runtime, then
 * ONE last line `muxpool: N passed, M failed` (CI reads it). A skipped or todo
 * test fails the run: it is never counted as passing. A failing step that is
 * not a test run (typecheck, build, lint, …) counts as one failure, so a red
 * run never reads "0 failed".
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const at = (...p) => join(root, ...p);
const require = createRequire(import.meta.url);
const node = process.execPath;
const tsc = require.resolve("typescript/bin/tsc");
const vitest = join(dirname(require.resolve("vitest/package.json")), "vitest.mjs");
const deno = at("node_modules", ".bin", "deno");
const reports = at(".tmp", "test-reports");
rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

const env = { ...process.env, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" };
const started = performance.now();
/** runtime → { passed, failed } */
const counts = new Map();
const timings = [];
const strip = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");

/** Runs a command, streaming its output; resolves with its exit code and captured output. */
function run(label, cmd, args, extraEnv = {}) {
  console.log(`\n━━━ ${label}: ${[cmd === node ? "node" : cmd.replace(root + "/", ""), ...args.map((a) => a.replace(root + "/", ""))].join(" ")}`);
  const t0 = performance.now();
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      output += d;
      process.stderr.write(d);
    });
    child.on("error", (error) => {
      output += String(error);
      console.error(`${label}: could not start ${cmd}: ${error.message}`);
    });
    child.on("close", (code, signal) => {
      const ms = performance.now() - t0;
      timings.push([label, ms]);
      resolvePromise({ code: code ?? (signal ? 1 : 0), output: strip(output), ms });
    });
  });
}

/** Failed tests, named again in the summary so a long CI log need not be searched. */
const failures = [];

function finish(failedStep) {
  let passed = 0;
  let failed = 0;
  console.log("\n━━━ summary");
  for (const [label, ms] of timings) console.log(`  ${label.padEnd(24)} ${(ms / 1000).toFixed(1)} s`);
  for (const [runtime, c] of counts) {
    console.log(`  ${runtime.padEnd(24)} ${c.passed} passed, ${c.failed} failed`);
    passed += c.passed;
    failed += c.failed;
  }
  for (const line of failures) console.log(`  ✗ ${line}`);
  if (failedStep !== undefined) {
    console.log(`  FAILED at: ${failedStep}`);
    if (failed === 0) failed = 1;
  }
  console.log(`  total time               ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`muxpool: ${passed} passed, ${failed} failed`);
  process.exit(failedStep === undefined && failed === 0 ? 0 : 1);
}

/** A plain step: non-zero exit stops the run. */
async function step(label, cmd, args) {
  const r = await run(label, cmd, args);
  if (r.code !== 0) finish(label);
  return r;
}

/** A vitest run; counts come from its JSON report. Skipped/todo tests fail the run. */
async function vitestStep(label, runtime, configArgs) {
  const report = join(reports, `${runtime.replace(/\W+/g, "-")}.json`);
  const r = await run(label, node, [vitest, "run", ...configArgs, "--reporter=default", "--reporter=json", `--outputFile=${report}`]);
  if (!existsSync(report)) {
    counts.set(runtime, { passed: 0, failed: 0 });
    finish(`${label} (no JSON report written)`);
  }
  const json = JSON.parse(readFileSync(report, "utf8"));
  const skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
  counts.set(runtime, { passed: json.numPassedTests, failed: json.numFailedTests });
  for (const file of json.testResults ?? []) {
    const where = relative(root, file.name);
    for (const a of file.assertionResults) {
      if (a.status === "failed") failures.push(`${where} › ${a.fullName}: ${String(a.failureMessages?.[0] ?? "").split("\n")[0].slice(0, 200)}`);
    }
    if (file.status === "failed" && file.assertionResults.every((a) => a.status !== "failed")) failures.push(`${where}: ${String(file.message ?? "failed to load").split("\n")[0].slice(0, 200)}`);
  }
  // A suite that failed to load reports no failed test but is a failure.
  const brokenFiles = (json.testResults ?? []).filter((f) => f.status === "failed" && f.assertionResults.every((a) => a.status !== "failed"));
  if (r.code !== 0 || !json.success || json.numFailedTests > 0) {
    if (json.numFailedTests === 0) counts.get(runtime).failed += Math.max(1, brokenFiles.length);
    finish(label);
  }
  if (skipped > 0) {
    const names = (json.testResults ?? []).flatMap((f) => f.assertionResults.filter((a) => a.status !== "passed" && a.status !== "failed").map((a) => `${a.fullName} [${a.status}]`));
    console.error(`\n${label}: ${skipped} test(s) skipped or todo — a skipped test is not a pass:\n  ${names.join("\n  ")}`);
    counts.get(runtime).failed += skipped;
    finish(`${label} (skipped tests)`);
  }
  if (json.numPassedTests === 0) finish(`${label} (no tests ran)`);
  if (json.numTotalTests !== json.numPassedTests + json.numFailedTests + skipped) finish(`${label} (test counts do not add up)`);
}

await step("typecheck", node, [tsc, "-p", "tsconfig.json", "--noEmit"]);
await step("build", node, [at("scripts", "build.mjs")]);
await vitestStep("node: vitest", "node", []);

if (!existsSync(deno)) {
  console.error(`deno not found at ${deno}: run \`npm ci\` (deno is a devDependency)`);
  finish("deno (binary missing)");
}
await step("deno: check", deno, ["check", "src/mod.ts", "src/dashboard/mod.ts", "test/deno/"].filter((f) => f !== "src/dashboard/mod.ts" || existsSync(at(f))));
await step("deno: lint", deno, ["lint"]);
{
  // --sanitize-*: Deno >= 2.8 turns the sanitizers off by default; the tests also turn them on per test.
  const r = await run("deno: test", deno, ["test", "--allow-net=127.0.0.1", "--sanitize-ops", "--sanitize-resources", "test/deno/"]);
  const m = r.output.match(/^(ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(.*)$/m);
  if (m === null) {
    counts.set("deno", { passed: 0, failed: 0 });
    finish("deno: test (no summary line)");
  }
  counts.set("deno", { passed: Number(m[2]), failed: Number(m[4]) });
  if (r.code !== 0 || Number(m[4]) > 0) finish("deno: test");
  const ignored = m[5].match(/(\d+) ignored/);
  if (ignored !== null && Number(ignored[1]) > 0) {
    counts.get("deno").failed += Number(ignored[1]);
    finish("deno: test (ignored tests)");
  }
  if (Number(m[2]) === 0) finish("deno: test (no tests ran)");
}
await step("deno: publish --dry-run", deno, ["publish", "--dry-run", "--allow-dirty"]);

await vitestStep("browser: vitest e2e", "browser (chromium)", ["-c", "vitest.e2e.config.ts"]);

finish(undefined);
