#!/usr/bin/env node
/**
 * Build: esbuild for the JavaScript, tsc for the declarations.
 *
 *   dist/index.js            npm entry for Node (src/websocket.ts → src/websocket.node.ts; isomorphic-ws, ws external)
 *   dist/muxpool.js          one minified ESM file for browsers / CDNs: no bare imports left
 *   dist/stress.js           npm entry of muxpool/stress (stressTest), kept out of the core
 *   dist/muxpool-stress.js   minified CDN file of stressTest
 *   dist/dashboard.js        npm entry of muxpool/dashboard          (when src/dashboard/mod.ts exists)
 *   dist/muxpool-dashboard.js  minified CDN file of the dashboard      (when src/dashboard/mod.ts exists)
 *   dist/*.d.ts              declarations (emitted to dist/types, re-exported by dist/index.d.ts)
 *   dist-demo/main.mjs       the demo launcher for `npm run demo`     (when demo/main.ts exists)
 *   dist-demo/public/app.js  the demo page's script, importing the CDN files from /dist/ (when demo/public/app.ts exists)
 *
 * Usage: node scripts/build.mjs [--no-types]
 */
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { minify } from "terser";
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const at = (...p) => join(root, ...p);
const started = performance.now();
const withTypes = !process.argv.includes("--no-types");

/** Resolves `./websocket.ts` (from src/) to its Node twin, as vitest.config.ts does. */
const nodeWebSocket = {
  name: "node-websocket",
  setup(b) {
    const twin = at("src", "websocket.node.ts");
    b.onResolve({ filter: /^\.\/websocket\.ts$/ }, (args) =>
      resolve(args.resolveDir) === at("src") ? { path: twin } : undefined,
    );
  },
};

/** Leaves the page's "muxpool" / "muxpool/dashboard" imports as URLs of the CDN files. */
const cdnImports = {
  name: "cdn-imports",
  setup(b) {
    const map = { muxpool: "/dist/muxpool.js", "muxpool/dashboard": "/dist/muxpool-dashboard.js" };
    b.onResolve({ filter: /^muxpool(\/dashboard)?$/ }, (args) => ({ path: map[args.path], external: true }));
  },
};

// Internal property names the CDN files shorten (see scripts/mangle.json): 0.4 KB gzip.
const mangled = JSON.parse(readFileSync(at("scripts", "mangle.json"), "utf8")).props;
const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning", legalComments: "none", absWorkingDir: root };
const npm = { ...common, platform: "node", minify: false, external: ["isomorphic-ws", "ws"] };
const cdn = { ...common, platform: "browser", minify: true, external: [] };
// Only the core's files: the dashboard talks to the DOM, whose method names (remove, …) must stay.
const core = { ...cdn, mangleProps: new RegExp(`^(${mangled.join("|")})$`) };

// The core's class fields as assignments in the constructor, not `Object.defineProperty`:
// the bare `code;reason;…` declarations go (-0.1 KB gzip). Every declared field of
// muxpool's classes is assigned in its constructor or has an initializer, so each
// object has the same own properties (test/integration/cdn-bundle.test.ts compares
// them with the source's). Not for muxpool-stress.js: its static fields would become
// assignments after each class, which tree shaking must keep (+0.2 KB there).
const fieldsAssigned = { compilerOptions: { useDefineForClassFields: false, verbatimModuleSyntax: true } };

// Files are overwritten in place (no wipe of dist/ first), so a build running
// while tests read dist/ never leaves them without a file.
mkdirSync(at("dist"), { recursive: true });

const hasDashboard = existsSync(at("src", "dashboard", "mod.ts"));
/**
 * A CDN file: esbuild bundles and minifies, then terser renames the variables and
 * private fields again, picking each name by how often its letters occur in the
 * file, which gzip rewards (-0.5 KB gzip on the core, no code changed); the source
 * map is carried through. Written once, at the end.
 */
async function cdnBuild(options) {
  const { outputFiles } = await build({ ...options, write: false });
  const js = outputFiles.find((f) => f.path.endsWith(".js"));
  const map = outputFiles.find((f) => f.path.endsWith(".map"));
  const name = options.outfile.split(/[\\/]/).pop();
  const out = await minify(js.text, { module: true, ecma: 2020, sourceMap: { content: map.text, url: `${name}.map` } });
  writeFileSync(options.outfile + ".map", out.map);
  writeFileSync(options.outfile, out.code);
}

const jobs = [
  build({ ...npm, entryPoints: [at("src", "mod.ts")], outfile: at("dist", "index.js"), plugins: [nodeWebSocket] }),
  cdnBuild({ ...core, entryPoints: [at("src", "mod.ts")], outfile: at("dist", "muxpool.js"), tsconfigRaw: fieldsAssigned }),
  build({ ...npm, entryPoints: [at("src", "stress.ts")], outfile: at("dist", "stress.js") }),
  cdnBuild({ ...core, entryPoints: [at("src", "stress.ts")], outfile: at("dist", "muxpool-stress.js") }),
];
if (hasDashboard) {
  jobs.push(
    build({ ...npm, entryPoints: [at("src", "dashboard", "mod.ts")], outfile: at("dist", "dashboard.js"), plugins: [nodeWebSocket] }),
    cdnBuild({ ...cdn, entryPoints: [at("src", "dashboard", "mod.ts")], outfile: at("dist", "muxpool-dashboard.js") }),
  );
}
if (existsSync(at("demo", "main.ts"))) {
  jobs.push(build({ ...npm, entryPoints: [at("demo", "main.ts")], outfile: at("dist-demo", "main.mjs"), plugins: [nodeWebSocket] }));
}
if (existsSync(at("demo", "public", "app.ts"))) {
  jobs.push(
    build({ ...common, platform: "browser", minify: false, entryPoints: [at("demo", "public", "app.ts")], outfile: at("dist-demo", "public", "app.js"), plugins: [cdnImports] }),
  );
}
await Promise.all(jobs);

// Declarations: tsc writes dist/types/**; dist/index.d.ts (and dashboard.d.ts) re-export it.
if (withTypes) {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const typesTmp = at("dist", `.types-${process.pid}`);
  try {
    execFileSync(process.execPath, [tsc, "-p", at("tsconfig.build.json"), "--outDir", typesTmp], { cwd: root, stdio: "inherit" });
  } catch {
    rmSync(typesTmp, { recursive: true, force: true });
    console.error("build: tsc (declarations) failed");
    process.exit(1);
  }
  // TS 5.9's rewriteRelativeImportExtensions rewrites emitted JavaScript only; declaration
  // files keep "./pool.ts". Point them at the .js specifiers a published package uses.
  for (const file of listFiles(typesTmp)) {
    if (!file.endsWith(".d.ts")) continue;
    const text = readFileSync(file, "utf8");
    const fixed = text.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g, "$1$2$3.js$2");
    if (fixed !== text) writeFileSync(file, fixed);
  }
  // Swap the fresh declarations in (stale ones from removed files go with the old dir).
  rmSync(at("dist", "types"), { recursive: true, force: true });
  renameSync(typesTmp, at("dist", "types"));
  writeFileSync(at("dist", "index.d.ts"), 'export * from "./types/mod.js";\n');
  writeFileSync(at("dist", "stress.d.ts"), 'export * from "./types/stress.js";\n');
  if (hasDashboard) writeFileSync(at("dist", "dashboard.d.ts"), 'export * from "./types/dashboard/mod.js";\n');
}

function listFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path, d.name));
}

const kb = (n) => `${(n / 1024).toFixed(2)} KB`;
const sizes = {};
for (const file of ["muxpool.js", "muxpool-stress.js", ...(hasDashboard ? ["muxpool-dashboard.js"] : [])]) {
  const code = readFileSync(at("dist", file));
  const gz = gzipSync(code, { level: 9 }).length;
  // gzip -9 is the measure (the size test, issue 11); brotli, which CDNs serve where they can, for reference.
  const br = brotliCompressSync(code, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length;
  sizes[file] = { minified: code.length, gzip: gz, brotli: br };
  console.log(`build: dist/${file}  ${kb(code.length)} minified, ${kb(gz)} gzip (${gz} bytes), ${kb(br)} brotli`);
}
writeFileSync(at("dist", "sizes.json"), JSON.stringify(sizes, null, 2) + "\n");
console.log(`build: done in ${Math.round(performance.now() - started)} ms`);
