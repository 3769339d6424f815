import { describe, expect, it } from "vitest";
import { bytes, duration, ms } from "../../src/dashboard/format.ts";

describe("dashboard formatting", () => {
  it.each([
    [0, "0 B"],
    [900, "900 B"],
    [64 * 1024, "64 KiB"],
    [1024 * 1024 + 1, "1.0 MiB"],
    [1.5 * 1024 * 1024, "1.5 MiB"],
  ])("bytes(%d) → %s", (n, text) => {
    expect(bytes(n)).toBe(text);
  });

  it("ms and duration pick a unit by size", () => {
    expect([ms(0), ms(0.42), ms(8.12), ms(120.4), ms(2_400)]).toEqual(["–", "0.42 ms", "8.1 ms", "120 ms", "2.4 s"]);
    expect([duration(850), duration(4_200), duration(185_000), duration(7_440_000)]).toEqual(["850 ms", "4.2 s", "3 m 05 s", "2 h 04 m"]);
  });
});
