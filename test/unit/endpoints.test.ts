import { describe, expect, it } from "vitest";
import { redactUrl } from "../../src/endpoints.ts";

describe("redactUrl", () => {
  it("hides user info and secret query parameters, keeps the rest", () => {
    expect(redactUrl("wss://alice:s3cret@api.example.com/rpc")).toBe("wss://***:***@api.example.com/rpc");
    const r = redactUrl("wss://api.example.com/rpc?token=abc&region=eu&API_KEY=k&password=p&auth=x");
    expect(r).not.toMatch(/abc|=k\b|=p\b|=x\b/);
    expect(r).toContain("region=eu");
    expect(r).toContain("token=***");
  });
  it("leaves plain URLs untouched", () => {
    expect(redactUrl("ws://127.0.0.1:8080/")).toBe("ws://127.0.0.1:8080/");
  });
});
