/**
 * The RPC test server the runtime smoke test talks to. Re-exported from
 * where the fixture lives, so that path is written in this one place.
 */
export { RpcServer, startRpcServer } from "../fixtures/server.ts";
