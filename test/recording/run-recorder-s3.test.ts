// The gateway-side run recorder writes a recording per run and uploads it to the object store at run
// end; the uploaded file reads back as the same run.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecordingReader } from "../../gateway/src/recording/reader.js";
import { RunRecorder, recordingPathFor } from "../../gateway/src/recording/run-recorder.js";
import { recordingKey, s3RecordingUploader } from "../../gateway/src/recording/s3-upload.js";
import { STACK, uniqueId } from "../support/gateway.js";
import { readObject, s3Client } from "../support/stack.js";

describe("RunRecorder with the object store", () => {
  it("uploads the run's recording at run end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "run-recorder-s3-"));
    const prefix = `${uniqueId("test-recorder")}/`;
    const runId = uniqueId("recorded-run");
    const s3 = s3Client();
    const recorder = new RunRecorder({ directory: dir, writer: "test/1", upload: s3RecordingUploader(s3, STACK.blobBucket, prefix) });
    await recorder.runStarted({ runId, startedUnixMs: 1_767_254_400_000 });
    for (let seq = 1; seq <= 3; seq++) {
      await recorder.eventAccepted({ eventId: `${runId}-${seq}`, runId, sequence: seq, eventType: "parking.entry", images: [{ view: "entry", data: Buffer.alloc(200_000, seq) }] });
    }
    await recorder.runEnded({ runId, eventsSent: 3, reason: "completed" });
    await recorder.close();

    const local = readFileSync(recordingPathFor(dir, runId));
    const object = await readObject(s3, `s3://${STACK.blobBucket}/${recordingKey(prefix, runId)}`);
    expect(object.bytes.equals(local)).toBe(true);
    const reader = await RecordingReader.fromBytes(object.bytes);
    const kinds: string[] = [];
    for await (const item of reader.frames()) kinds.push(item.kind === "frame" ? (item.frame.body ?? "") : item.error.code);
    expect(kinds).toEqual(["runStart", "event", "event", "event", "runEnd"]);
    expect(reader.header.run?.runId).toBe(runId);
  });
});
