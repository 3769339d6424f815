import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Browser tests: a real Chromium (test/e2e/browser.ts) loading the built
// dist/ files. `npm test` builds before running this config.
const nodeWebSocket = fileURLToPath(new URL("./src/websocket.node.ts", import.meta.url));

export default defineConfig({
  resolve: {
    alias: [{ find: /^\.\/websocket\.ts$/, replacement: nodeWebSocket }],
  },
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
