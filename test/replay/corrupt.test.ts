// Damaged recordings: --check reports the damage at its frame; a replay stops there (non-zero exit)
// unless --skip-corrupt, which replays every intact frame around it.
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingReader } from "../../gateway/src/recording/reader.js";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { runCli, runRecords, summaryOf } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "replay-corrupt-"));
let gw: TestGateway;
const original = join(dir, "good.simrec");
const offsets: number[] = [];

beforeAll(async () => {
  gw = await startGateway();
  const sim = await runCli(["simulate", "--seed", "21", "--events", "12", "--out", original, "--width", "64", "--height", "36", "--format", "jpeg"]);
  expect(sim.code, sim.stderr).toBe(0);
  const reader = await RecordingReader.open(original);
  for await (const item of reader.frames()) if (item.kind === "frame") offsets.push(item.offset);
  await reader.close();
  expect(offsets).toHaveLength(14); // run start, 12 events, run end
});
afterAll(async () => {
  if (gw) expect(await gw.stop()).toBe(0);
});

function damagedCopy(name: string, damage: (bytes: Buffer) => Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, damage(Buffer.from(readFileSync(original))));
  return path;
}

describe("damaged recordings", () => {
  it("--check reports a flipped byte at its frame and exits non-zero", async () => {
    const path = damagedCopy("flipped.simrec", (b) => {
      b[(offsets[5] ?? 0) + 40] ^= 0xff;
      return b;
    });
    const result = await runCli(["replay", path, "--check"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`REC_ERR_BAD_CHECKSUM at frame 5 (byte offset ${offsets[5]})`);
    expect(result.stdout).toContain("13 intact frames");
  });

  it("--check reports a truncated tail at its frame", async () => {
    const path = join(dir, "truncated.simrec");
    writeFileSync(path, readFileSync(original));
    truncateSync(path, (offsets[9] ?? 0) + 30);
    const result = await runCli(["replay", path, "--check"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`REC_ERR_TRUNCATED at frame 9 \\(byte offset ${offsets[9]}\\)`));
    expect(result.stdout).toContain("no run end frame");
  });

  it("a replay stops at the damage without --skip-corrupt, and replays the rest with it", async () => {
    const path = damagedCopy("flipped-2.simrec", (b) => {
      b[(offsets[7] ?? 0) + 100] ^= 0x01;
      return b;
    });
    const stopRun = uniqueId("corrupt-stop");
    const stopped = await runCli(["replay", path, "--max", "--gateway", gw.grpcAddress, "--as-run", stopRun]);
    expect(stopped.code).toBe(1);
    expect(stopped.stdout + stopped.stderr).toContain("REC_ERR_BAD_CHECKSUM at frame 7");
    // Frames 1..6 (events 1..6) went out before the damage was reached; nothing after it.
    const stoppedRecords = await runRecords([gw.topics.entries, gw.topics.exits], stopRun);
    expect(stoppedRecords.map((r) => r.body.sequence).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);

    const skipRun = uniqueId("corrupt-skip");
    const summaryPath = join(dir, "skip.json");
    const skipped = await runCli(["replay", path, "--max", "--skip-corrupt", "--gateway", gw.grpcAddress, "--as-run", skipRun, "--summary-json", summaryPath]);
    expect(skipped.code, skipped.stderr).toBe(0);
    const summary = await summaryOf(summaryPath);
    expect(summary["accepted"]).toBe(11);
    expect((summary["corrupt"] as { frameIndex: number; code: string }[]).map((c) => [c.frameIndex, c.code])).toEqual([[7, "REC_ERR_BAD_CHECKSUM"]]);
    expect(summary["runEnd"]).toBe("accepted");
    const records = await runRecords([gw.topics.entries, gw.topics.exits], skipRun);
    expect(records.map((r) => r.body.sequence).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]);
  });

  it("refuses a file that is not a recording", async () => {
    const path = join(dir, "not.simrec");
    writeFileSync(path, "hello, I am text");
    const result = await runCli(["replay", path, "--check"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("REC_ERR_BAD_MAGIC at header");
  });
});
