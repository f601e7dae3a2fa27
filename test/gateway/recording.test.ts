// The gateway-side run recorder (recording.mode): a replayed recording goes through a gateway with
// recording on; the file it writes (and uploads at run end) passes `simgate replay --check` and holds
// exactly the accepted events, each once.
import { mkdtempSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecordingReader } from "../../gateway/src/recording/reader.js";
import { recordingKey } from "../../gateway/src/recording/s3-upload.js";
import { recordedEvents, runCli, runRecords } from "../replay/helpers.js";
import { pollUntil, REPO_ROOT, STACK, startGateway, uniqueId } from "../support/gateway.js";
import { readObject, s3Client } from "../support/stack.js";

const SAMPLE = join(REPO_ROOT, "samples/parking-lot-s42.simrec");

async function frameKinds(path: string): Promise<string[]> {
  const reader = await RecordingReader.open(path);
  const kinds: string[] = [];
  try {
    for await (const item of reader.frames()) kinds.push(item.kind === "frame" ? (item.frame.body ?? "") : `corrupt ${item.error.code}`);
  } finally {
    await reader.close();
  }
  return kinds;
}

describe("recording accepted runs", () => {
  it("records a replayed run (run start, every accepted event once, run end) and uploads it at run end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-recording-"));
    const prefix = `${uniqueId("test-gw-recording")}/`;
    const gw = await startGateway({ env: { SIMGATE_RECORDING: "s3", SIMGATE_RECORDING_DIR: dir, SIMGATE_RECORDING_PREFIX: prefix } });
    const s3 = s3Client();
    try {
      const runId = uniqueId("recorded");
      const replay = await runCli(["replay", SAMPLE, "--gateway", gw.grpcAddress, "--max", "--as-run", runId, "--progress", "none"]);
      // The sample's two duplicate_event_id flaws re-use an earlier event's id with another image and
      // time: the gateway rejects them (GW_ERR_EVENT_ID_CONFLICT), so the replay reports them.
      expect(replay.stderr).toContain("2 rejected (GW_ERR_EVENT_ID_CONFLICT=2)");
      const sample = await recordedEvents(SAMPLE);
      const sampleRun = sample[0]?.runId ?? "";
      const renamed = (id: string): string => (id.startsWith(sampleRun) ? `${runId}${id.slice(sampleRun.length)}` : id);
      const firstSent = new Map<string, (typeof sample)[number]>();
      for (const e of sample) if (!firstSent.has(renamed(e.eventId))) firstSent.set(renamed(e.eventId), e);
      expect(firstSent.size).toBe(38);

      const uri = `s3://${STACK.blobBucket}/${recordingKey(prefix, runId)}`;
      const uploaded = await pollUntil("the uploaded recording", () => readObject(s3, uri), 30_000, 200);
      const local = join(dir, `${runId}.simrec`);
      const downloaded = join(dir, "downloaded.simrec");
      await writeFile(downloaded, uploaded.bytes);

      for (const file of [local, downloaded]) {
        const check = await runCli(["replay", file, "--check"]);
        expect(check.code, check.stdout + check.stderr).toBe(0);
        expect(check.stdout).toContain("38 events");
      }
      const kinds = await frameKinds(downloaded);
      expect(kinds[0]).toBe("runStart");
      expect(kinds.at(-1)).toBe("runEnd");
      expect(kinds.filter((k) => k === "event")).toHaveLength(38);

      const recordedIds = (await recordedEvents(downloaded)).map((e) => e.eventId);
      expect(new Set(recordedIds).size).toBe(recordedIds.length);
      expect([...recordedIds].sort()).toEqual([...firstSent.keys()].sort());
      const inKafka = (await runRecords(Object.values(gw.topics.map), runId)).map((r) => r.body.eventId);
      expect([...recordedIds].sort()).toEqual([...inKafka].sort());
      // The recorded events are the accepted ones as sent, image bytes included (not the conflicting copies).
      for (const e of await recordedEvents(downloaded)) {
        expect(Buffer.from(e.images[0]?.data ?? []).equals(Buffer.from(firstSent.get(e.eventId)?.images[0]?.data ?? [1]))).toBe(true);
        expect(e.sequence).toBe(firstSent.get(e.eventId)?.sequence);
      }
    } finally {
      s3.destroy();
      expect(await gw.stop()).toBe(0);
    }
  }, 180_000);
});
