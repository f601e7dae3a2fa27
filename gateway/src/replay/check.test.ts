import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { simgate } from "../generated/simgate.js";
import { RecordingWriter } from "../recording/writer.js";
import { checkRecording, formatCheck } from "./check.js";

const event = (n: number): simgate.v1.IEvent => ({ eventId: `run-1-${n}`, runId: "run-1", sequence: n, eventType: "parking.entry", simTimeSeconds: n });

async function write(frames: simgate.v1.IClientFrame[]): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), "check-")), "r.simrec");
  const writer = await RecordingWriter.create(path, { createdUnixMs: 1, writer: "test", run: { runId: "run-1" } });
  for (const f of frames) await writer.append(f);
  await writer.close();
  return path;
}

describe("replay --check: the run's order", () => {
  it("accepts start, events, end", async () => {
    const report = await checkRecording(await write([{ runStart: { runId: "run-1" } }, { event: event(1) }, { event: event(2) }, { runEnd: { runId: "run-1" } }]));
    expect(report.problems).toEqual([]);
    expect(formatCheck(report).join("\n")).toContain("OK");
  });

  it("rejects events after the run end, at their frame", async () => {
    const report = await checkRecording(await write([{ runStart: { runId: "run-1" } }, { event: event(1) }, { runEnd: { runId: "run-1" } }, { event: event(2) }, { event: event(3) }]));
    expect(report.problems.map((p) => [p.code, p.frameIndex])).toEqual([
      ["REC_ERR_OUT_OF_ORDER", 3],
      ["REC_ERR_OUT_OF_ORDER", 4],
    ]);
    expect(formatCheck(report).join("\n")).toContain("REC_ERR_OUT_OF_ORDER at frame 3");
    expect(formatCheck(report).join("\n")).not.toContain("OK");
  });

  it("rejects a second run start or end, and a start after events", async () => {
    const report = await checkRecording(await write([{ event: event(1) }, { runStart: { runId: "run-1" } }, { runStart: { runId: "run-1" } }, { runEnd: { runId: "run-1" } }, { runEnd: { runId: "run-1" } }]));
    expect(report.problems.map((p) => p.message)).toEqual(["a run start after 1 events", "a second run start", "a second run end"]);
  });
});
