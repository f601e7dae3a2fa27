// Run lifecycle (docs/records.md, "Run lifecycle"): a RunEnd that follows its events closely waits for
// them (the recording holds start, every accepted event, then end; run.end reaches Kafka after them);
// resent run messages are idempotent, conflicting ones refused; events after the end are refused.
import { mkdtempSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { RecordingReader } from "../../gateway/src/recording/reader.js";
import { recordingKey } from "../../gateway/src/recording/s3-upload.js";
import { runCli } from "../replay/helpers.js";
import { GrpcIngest, WsIngest } from "../support/clients.js";
import { makeEvent, type EventImage } from "../support/events.js";
import { pollUntil, STACK, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makePng } from "../support/images.js";
import { readObject, readTopic, s3Client } from "../support/stack.js";

const PNG = simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG;
let png: Buffer;
beforeAll(async () => {
  png = await makePng(1600, 1200, 21);
});
const image = (): EventImage => ({ view: "entry", encoding: PNG, width: 1600, height: 1200, data: png });

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

/** Over one WebSocket: RunStart (acked), then three events and the RunEnd back to back. */
async function runWithCloseEnd(gw: TestGateway, runId: string): Promise<{ acks: simgate.v1.Ack[]; end: simgate.v1.RunAck }> {
  const ws = await WsIngest.connect(gw.wsUrl);
  try {
    const start = await ws.startRun({ runId, startedUnixMs: Date.now() });
    expect(start.accepted, JSON.stringify(start.toJSON())).toBeTruthy();
    const events = [1, 2, 3].map((n) => makeEvent(runId, n, [image()], { eventType: "parking.entry" }));
    const acks = Promise.all(events.map((e) => ws.sendEvent(e)));
    const end = ws.endRun({ runId, endedUnixMs: Date.now(), eventsSent: 3, eventsByType: { "parking.entry": 3 }, reason: "completed" });
    return { acks: await acks, end: await end };
  } finally {
    await ws.close();
  }
}

describe("a RunEnd right behind its events", () => {
  for (const mode of ["local", "s3"] as const) {
    it(`waits for them: the recording (${mode}) holds start, the 3 events, end; run.end is in Kafka after them`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "gw-lifecycle-"));
      const prefix = `${uniqueId("test-lifecycle")}/`;
      const gw = await startGateway({ env: { SIMGATE_RECORDING: mode, SIMGATE_RECORDING_DIR: dir, SIMGATE_RECORDING_PREFIX: prefix } });
      const s3 = s3Client();
      try {
        const runId = uniqueId("close-end");
        const { acks, end } = await runWithCloseEnd(gw, runId);
        expect(acks.every((a) => a.accepted), JSON.stringify(acks.map((a) => a.toJSON()))).toBe(true);
        expect(end.accepted, JSON.stringify(end.toJSON())).toBeTruthy();

        const files = [join(dir, `${runId}.simrec`)];
        if (mode === "s3") {
          const uploaded = await pollUntil("the uploaded recording", () => readObject(s3, `s3://${STACK.blobBucket}/${recordingKey(prefix, runId)}`), 30_000, 200);
          files.push(join(dir, "downloaded.simrec"));
          await writeFile(files[1] as string, uploaded.bytes);
        }
        for (const file of files) {
          expect(await pollUntil("the recording's run end", async () => ((await frameKinds(file)).at(-1) === "runEnd" ? frameKinds(file) : undefined), 10_000)).toEqual(["runStart", "event", "event", "event", "runEnd"]);
          const check = await runCli(["replay", file, "--check"]);
          expect(check.code, check.stdout + check.stderr).toBe(0);
        }

        const events = (await readTopic(gw.topics.entries)).filter((r) => r.headers["run-id"] === runId);
        const runs = (await readTopic(gw.topics.runs)).filter((r) => r.headers["run-id"] === runId);
        expect(events).toHaveLength(3);
        const runEnd = runs.find((r) => (JSON.parse(r.value ?? "{}") as { kind: string }).kind === "run.end");
        expect(runEnd).toBeDefined();
        expect(runEnd?.timestamp).toBeGreaterThanOrEqual(Math.max(...events.map((e) => e.timestamp)));
      } finally {
        s3.destroy();
        expect(await gw.stop()).toBe(0);
      }
    }, 120_000);
  }
});

describe("run lifecycle", () => {
  let gw: TestGateway;
  let client: GrpcIngest;
  beforeAll(async () => {
    gw = await startGateway();
    client = new GrpcIngest(gw.grpcAddress);
  }, 120_000);
  afterAll(async () => {
    client.close();
    expect(await gw.stop()).toBe(0);
  });

  const runRecords = async (runId: string): Promise<string[]> =>
    (await readTopic(gw.topics.runs)).filter((r) => r.headers["run-id"] === runId).map((r) => (JSON.parse(r.value ?? "{}") as { kind: string }).kind);
  const deadLetterCodes = async (runId: string): Promise<string[]> =>
    (await readTopic(gw.topics.deadLetter)).map((r) => JSON.parse(r.value ?? "{}") as { code: string; runId: string | null }).filter((d) => d.runId === runId).map((d) => d.code);

  it("a RunStart resent with the same content gets the first location and adds no record; other content is GW_ERR_RUN_CONFLICT", async () => {
    const runId = uniqueId("restart");
    const start = { runId, startedUnixMs: 1_700_000_000_000, lineage: { source: "test", scenario: "a", seed: 1 } };
    const first = await client.startRun(start);
    const again = await client.startRun({ ...start });
    expect(first.accepted).toBeTruthy();
    expect(again.accepted?.toJSON()).toEqual(first.accepted?.toJSON());
    const other = await client.startRun({ ...start, lineage: { ...start.lineage, seed: 2 } });
    expect(other.rejected?.code).toBe("GW_ERR_RUN_CONFLICT");
    expect(await runRecords(runId)).toEqual(["run.start"]);
    expect(await deadLetterCodes(runId)).toEqual(["GW_ERR_RUN_CONFLICT"]);
  });

  it("new events after the RunEnd are GW_ERR_RUN_ENDED (dead-lettered); resends of the accepted event, RunStart and RunEnd are answered as the first", async () => {
    const runId = uniqueId("ended");
    const start = { runId, startedUnixMs: Date.now() };
    const started = await client.startRun(start);
    expect(started.accepted).toBeTruthy();
    const before = makeEvent(runId, 1, [image()]);
    expect((await client.sendEvent(before)).accepted).toBeTruthy();
    const runEnd = { runId, endedUnixMs: 1_700_000_000_000, eventsSent: 1, reason: "completed" };
    const end = await client.endRun(runEnd);
    expect(end.accepted).toBeTruthy();
    expect((await client.sendEvent(before)).duplicate).toBeTruthy();
    const late = await client.sendEvent(makeEvent(runId, 2, [image()]));
    expect(late.rejected?.code, JSON.stringify(late.toJSON())).toBe("GW_ERR_RUN_ENDED");
    // The RunStart resent as it was is answered as the first (a replay of the whole run); another is refused.
    expect((await client.startRun({ ...start })).accepted?.toJSON()).toEqual(started.accepted?.toJSON());
    expect((await client.startRun({ runId, startedUnixMs: 1 })).rejected?.code).toBe("GW_ERR_RUN_CONFLICT");
    expect((await client.endRun({ ...runEnd })).accepted?.toJSON()).toEqual(end.accepted?.toJSON());
    expect((await client.endRun({ ...runEnd, reason: "aborted" })).rejected?.code).toBe("GW_ERR_RUN_CONFLICT");
    expect(await runRecords(runId)).toEqual(["run.start", "run.end"]);
    expect((await deadLetterCodes(runId)).sort()).toEqual(["GW_ERR_RUN_CONFLICT", "GW_ERR_RUN_CONFLICT", "GW_ERR_RUN_ENDED"]);
  });

  it("events and a RunEnd of a run this gateway never saw start are accepted (it may have started before a restart)", async () => {
    const runId = uniqueId("unstarted");
    expect((await client.sendEvent(makeEvent(runId, 1, [image()]))).accepted).toBeTruthy();
    expect((await client.endRun({ runId, endedUnixMs: Date.now(), eventsSent: 1, reason: "completed" })).accepted).toBeTruthy();
    expect(await runRecords(runId)).toEqual(["run.end"]);
  });
});
