import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Node 20 has no global WebSocket: the tests run the library exactly as the
// npm Node entry does, with src/websocket.ts swapped for its Node twin (the
// build makes the same swap for dist/index.js).
const nodeWebSocket = fileURLToPath(new URL("./src/websocket.node.ts", import.meta.url));

export default defineConfig({
  resolve: {
    alias: [{ find: /^\.\/websocket\.ts$/, replacement: nodeWebSocket }],
  },
  test: {
    include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
