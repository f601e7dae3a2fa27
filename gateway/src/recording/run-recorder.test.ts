import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecordingReader } from "./reader.js";
import { RunRecorder, recordingPathFor } from "./run-recorder.js";

async function bodies(path: string): Promise<string[]> {
  const reader = await RecordingReader.open(path);
  const out: string[] = [];
  for await (const item of reader.frames()) {
    if (item.kind !== "frame") throw new Error(item.error.describe());
    const f = item.frame;
    out.push(f.event ? `event:${f.event.sequence}` : (f.body ?? ""));
  }
  await reader.close();
  return out;
}

describe("RunRecorder", () => {
  it("writes one recording per run, in order, and uploads it at run end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "run-recorder-"));
    const uploaded: string[] = [];
    const recorder = new RunRecorder({ directory: dir, writer: "test-gateway/1", upload: async (runId) => void uploaded.push(runId), maxOpenFiles: 1 });
    await recorder.runStarted({ runId: "run-a", startedUnixMs: 1 });
    await recorder.runStarted({ runId: "run-b", startedUnixMs: 2 });
    // Interleaved runs with one open file: each switch closes the other file and reopens it for append.
    await Promise.all([1, 2, 3].flatMap((seq) => [
      recorder.eventAccepted({ eventId: `a-${seq}`, runId: "run-a", sequence: seq }),
      recorder.eventAccepted({ eventId: `b-${seq}`, runId: "run-b", sequence: seq }),
    ]));
    await recorder.runEnded({ runId: "run-a", eventsSent: 3 });
    expect(uploaded).toEqual(["run-a"]);
    await recorder.close();
    await recorder.close();
    expect(await bodies(recordingPathFor(dir, "run-a"))).toEqual(["runStart", "event:1", "event:2", "event:3", "runEnd"]);
    expect(await bodies(recordingPathFor(dir, "run-b"))).toEqual(["runStart", "event:1", "event:2", "event:3"]);
    const reader = await RecordingReader.open(recordingPathFor(dir, "run-a"));
    expect(reader.header.writer).toBe("test-gateway/1");
    expect(reader.header.run?.runId).toBe("run-a");
    await reader.close();
  });

  it("reports a run id that cannot name a file, and goes on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "run-recorder-"));
    const errors: string[] = [];
    const recorder = new RunRecorder({ directory: dir, writer: "w", onError: (err, runId) => void errors.push(`${runId}: ${String(err)}`) });
    await recorder.eventAccepted({ eventId: "x", runId: "../escape", sequence: 1 });
    await recorder.eventAccepted({ eventId: "y", runId: "fine", sequence: 1 });
    await recorder.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("cannot name a recording file");
    expect(await bodies(recordingPathFor(dir, "fine"))).toEqual(["event:1"]);
  });
});
