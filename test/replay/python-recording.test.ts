// A recording written by the Python writer (as the Omniverse extension writes them) replays through the
// TypeScript replayer; the event the gateway rejects is counted by code and makes the replay fail.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { readObject, s3Client } from "../support/stack.js";
import { PYTHON, REPO_ROOT, recordedEvents, runCli, runRecords, summaryOf } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "replay-py-"));
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  if (gw) expect(await gw.stop()).toBe(0);
});

describe("a Python-written recording", () => {
  it("replays through the TypeScript replayer; the rejected event is reported by code", async () => {
    const runId = uniqueId("python-rec");
    const recording = join(dir, "python.simrec");
    execFileSync(PYTHON, [join(REPO_ROOT, "test/replay/write_python_recording.py"), recording, runId, "8"], {
      env: { ...process.env, PYTHONPATH: join(REPO_ROOT, "omni-extension", "exts", "simgate.parking") },
    });
    const check = await runCli(["replay", recording, "--check"]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain("9 events");

    const summaryPath = join(dir, "summary.json");
    const result = await runCli(["replay", recording, "--max", "--transport", "ws", "--gateway", gw.wsUrl, "--summary-json", summaryPath]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/1 rejected \(GW_ERR_UNKNOWN_EVENT_TYPE=1\)/);
    const summary = await summaryOf(summaryPath);
    expect(summary["accepted"]).toBe(8);
    expect(summary["rejectedByCode"]).toEqual({ GW_ERR_UNKNOWN_EVENT_TYPE: 1 });

    const records = await runRecords([gw.topics.entries, gw.topics.exits], runId);
    expect(records.map((r) => r.body.sequence).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const events = await recordedEvents(recording);
    const s3 = s3Client();
    for (const r of records) {
      const event = events.find((e) => e.eventId === r.body.eventId);
      expect(r.body.carId).toBe(event?.carId);
      expect(r.body.attributes["writer"]).toBe("python");
      const object = await readObject(s3, r.body.images[0]?.uri ?? "");
      expect(object.bytes.equals(Buffer.from(event?.images[0]?.data ?? []))).toBe(true);
    }
  });
});
