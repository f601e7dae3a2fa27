// `simgate simulate` through the built command: same seed, same bytes; real-render sizes by default.
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { recordedEvents, runCli } from "../replay/helpers.js";

const dir = mkdtempSync(join(tmpdir(), "simulate-cli-"));

describe("simgate simulate", () => {
  it("writes byte-identical files for the same seed, different ones for another seed", async () => {
    const args = (seed: string, out: string): string[] => ["simulate", "--seed", seed, "--events", "6", "--out", join(dir, out), "--flaw-rate", "0.5"];
    for (const [seed, out] of [["1234", "a.simrec"], ["1234", "b.simrec"], ["1235", "c.simrec"]] as const) {
      const result = await runCli(args(seed, out));
      expect(result.code, result.stderr).toBe(0);
    }
    const a = readFileSync(join(dir, "a.simrec"));
    expect(a.equals(readFileSync(join(dir, "b.simrec")))).toBe(true);
    expect(a.equals(readFileSync(join(dir, "c.simrec")))).toBe(false);
    // Defaults: 1280x720 PNG with texture and noise, at least 1 MB per image.
    const events = await recordedEvents(join(dir, "a.simrec"));
    expect(events).toHaveLength(6);
    for (const e of events) {
      const image = e.images[0];
      expect([image?.width, image?.height]).toEqual([1280, 720]);
      expect(image?.data.length).toBeGreaterThan(1_000_000);
    }
    expect(statSync(join(dir, "a.simrec")).size).toBeGreaterThan(6_000_000);
  });

  it("refuses to overwrite without --overwrite, and names a bad option", async () => {
    const out = join(dir, "once.simrec");
    expect((await runCli(["simulate", "--seed", "1", "--events", "1", "--out", out, "--width", "32", "--height", "18"])).code).toBe(0);
    const again = await runCli(["simulate", "--seed", "1", "--events", "1", "--out", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("--overwrite");
    const bad = await runCli(["simulate", "--seed", "1", "--events", "1", "--out", join(dir, "x.simrec"), "--format", "gif"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("format");
  });
});
