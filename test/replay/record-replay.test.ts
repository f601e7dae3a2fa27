// Record → replay → the same events in Kafka and the same objects in the object store, over gRPC and
// over WebSocket, against a real gateway on the local stack.
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { readObject, s3Client } from "../support/stack.js";
import { recordedEvents, runCli, runRecords, summaryOf } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "replay-it-"));
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ token: "replay-test-token-0123456789" });
});
afterAll(async () => {
  if (gw) expect(await gw.stop()).toBe(0);
});

describe("record → replay", () => {
  const recording = join(dir, "run.simrec");

  beforeAll(async () => {
    const sim = await runCli(["simulate", "--seed", "7", "--events", "30", "--out", recording, "--flaw-rate", "0.3",
      "--width", "320", "--height", "180", "--format", "png", "--run-id", uniqueId("rec")]);
    expect(sim.code, sim.stderr).toBe(0);
  });

  for (const transport of ["grpc", "ws"] as const) {
    it(`puts every recorded event in Kafka and every image in the object store (${transport})`, async () => {
      const runId = uniqueId(`replay-${transport}`);
      const summaryPath = join(dir, `${runId}.json`);
      const gateway = transport === "grpc" ? gw.grpcAddress : gw.wsUrl;
      const result = await runCli(["replay", recording, "--max", "--transport", transport, "--gateway", gateway,
        "--token", gw.token ?? "", "--as-run", runId, "--summary-json", summaryPath]);
      // The simulator's duplicate_event_id flaws re-use an earlier event's id with another image: the
      // gateway refuses them (never overwriting the first), so the replay reports them and exits 1.
      expect(result.code, result.stderr + result.stdout).toBe(1);
      // Not a terminal: plain progress lines on stderr instead of a bar.
      expect(result.stderr).toMatch(/replay: 100% .* sent 30 /);
      const summary = await summaryOf(summaryPath);

      const events = await recordedEvents(recording);
      const duplicates = events.filter((e) => e.attributes["sim.flaw"] === "duplicate_event_id");
      expect(duplicates.length).toBeGreaterThan(0);
      expect(summary["accepted"]).toBe(events.length - duplicates.length);
      expect(summary["duplicate"]).toBe(0);
      expect(summary["rejectedByCode"]).toEqual({ GW_ERR_EVENT_ID_CONFLICT: duplicates.length });
      expect(result.stdout).toContain(`rejected ${duplicates.length} (GW_ERR_EVENT_ID_CONFLICT=${duplicates.length})`);
      expect(summary["runStart"]).toBe("accepted");
      expect(summary["runEnd"]).toBe("accepted");

      const records = await runRecords([gw.topics.entries, gw.topics.exits], runId);
      const byId = new Map(records.map((r) => [r.body.eventId, r]));
      expect(records).toHaveLength(events.length - duplicates.length);
      expect(byId.size).toBe(records.length);
      const s3 = s3Client();
      for (const event of events.filter((e) => e.attributes["sim.flaw"] !== "duplicate_event_id")) {
        const eventId = event.eventId.replace(/^[^]*?-(\d{6})$/, `${runId}-$1`);
        const stored = byId.get(eventId);
        expect(stored, eventId).toBeDefined();
        if (!stored) continue;
        const b = stored.body;
        expect(stored.record.topic).toBe(event.eventType === "parking.entry" ? gw.topics.entries : gw.topics.exits);
        expect([b.sequence, b.eventType, b.carId ?? "", b.simTimeSeconds]).toEqual([event.sequence, event.eventType, event.carId, event.simTimeSeconds]);
        expect(b.coordinates?.slotId).toBe(event.coordinates?.slotId);
        expect(b.coordinates?.x).toBe(event.coordinates?.x);
        expect(b.attributes).toEqual(event.attributes);
        // The same object: the stored bytes are the recorded image bytes.
        const image = event.images[0];
        expect(b.images).toHaveLength(1);
        const ref = b.images[0];
        if (!image || !ref) continue;
        const recordedSha = createHash("sha256").update(image.data).digest("hex");
        expect(ref.sha256).toBe(recordedSha);
        const object = await readObject(s3, ref.uri);
        expect(object.sha256).toBe(recordedSha);
        expect(object.bytes.length).toBe(image.data.length);
      }
    });
  }

  it("answers a second replay of the same run with duplicates and adds no record", async () => {
    const runId = uniqueId("replay-twice");
    const first = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--token", gw.token ?? "", "--as-run", runId]);
    expect(first.code, first.stderr).toBe(1); // the duplicate_event_id flaws are refused as conflicts
    const before = await runRecords([gw.topics.entries, gw.topics.exits], runId);
    const summaryPath = join(dir, `${runId}-2.json`);
    const second = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--token", gw.token ?? "", "--as-run", runId, "--summary-json", summaryPath]);
    expect(second.code, second.stderr).toBe(1);
    const summary = await summaryOf(summaryPath);
    const events = await recordedEvents(recording);
    const conflicts = events.filter((e) => e.attributes["sim.flaw"] === "duplicate_event_id").length;
    expect(summary["accepted"]).toBe(0);
    expect(summary["duplicate"]).toBe(events.length - conflicts);
    expect(summary["rejectedByCode"]).toEqual({ GW_ERR_EVENT_ID_CONFLICT: conflicts });
    const after = await runRecords([gw.topics.entries, gw.topics.exits], runId);
    expect(after.length).toBe(before.length);
  });

  it("fails without the token, with the reason", async () => {
    const result = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--as-run", uniqueId("no-token"), "--give-up-after", "2000"]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/UNAUTHENTICATED/);
  });
});
