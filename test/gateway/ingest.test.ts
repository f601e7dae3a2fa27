// N events with real PNG and JPEG images over gRPC and over WebSocket land as the right objects (sha256
// read back) and as N records in the right topics with the right keys; resends get duplicate acks and
// no new records.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest, WsIngest } from "../support/clients.js";
import { makeEvent, type EventImage } from "../support/events.js";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makeJpeg, makePng } from "../support/images.js";
import { readObject, readTopic, s3Client } from "../support/stack.js";

const N = 12;
const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

let gw: TestGateway;
let png: Buffer;
let jpeg: Buffer;
const s3 = s3Client();

beforeAll(async () => {
  [png, jpeg] = await Promise.all([makePng(320, 240, 1), makeJpeg(640, 360, 2)]);
  gw = await startGateway();
});
afterAll(async () => {
  expect(await gw.stop()).toBe(0);
  s3.destroy();
});

function images(): EventImage[] {
  return [
    { view: "entry", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG, width: 320, height: 240, data: png },
    { view: "plate", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_JPEG, width: 640, height: 360, data: jpeg },
  ];
}

async function checkLanded(events: simgate.v1.IEvent[], acks: simgate.v1.Ack[]): Promise<void> {
  expect(acks).toHaveLength(events.length);
  for (const [i, ack] of acks.entries()) {
    const event = events[i] as simgate.v1.IEvent;
    expect(ack.eventId).toBe(event.eventId);
    expect(ack.accepted, JSON.stringify(ack.toJSON())).toBeTruthy();
    const accepted = ack.accepted as simgate.v1.Accepted;
    const expectedTopic = event.eventType === "parking.entry" ? gw.topics.entries : gw.topics.exits;
    expect(accepted.record?.topic).toBe(expectedTopic);
    expect(accepted.blobs.map((b) => b.view)).toEqual(["entry", "plate"]);
    for (const blob of accepted.blobs) {
      expect(blob.uri).toBe(`s3://simgate-blobs/runs/${event.runId}/events/${event.eventId}/${blob.view}.${blob.view === "entry" ? "png" : "jpg"}`);
      const stored = await readObject(s3, blob.uri ?? "");
      const original = blob.view === "entry" ? png : jpeg;
      expect(stored.sha256).toBe(sha(original));
      expect(blob.sha256).toBe(stored.sha256);
      expect(stored.metadata["sha256"]).toBe(stored.sha256);
      expect(stored.contentType).toBe(blob.view === "entry" ? "image/png" : "image/jpeg");
      expect(Number(stored.metadata["width"])).toBe(blob.view === "entry" ? 320 : 640);
    }
  }
  const runId = events[0]?.runId as string;
  const records = [...(await readTopic(gw.topics.entries)), ...(await readTopic(gw.topics.exits))].filter((r) => r.headers["run-id"] === runId);
  expect(records).toHaveLength(events.length);
  for (const event of events) {
    const ack = acks.find((a) => a.eventId === event.eventId) as simgate.v1.Ack;
    const record = records.find((r) => r.headers["event-id"] === event.eventId);
    expect(record).toBeDefined();
    if (!record) continue;
    expect(record.key).toBe(`${event.runId}/${event.carId}`);
    expect(record.topic).toBe(ack.accepted?.record?.topic);
    expect(record.partition).toBe(ack.accepted?.record?.partition);
    expect(record.offset).toBe(Number(ack.accepted?.record?.offset));
    expect(record.headers["schema-version"]).toBe("1");
    expect(record.headers["content-type"]).toBe("application/json");
    const value = JSON.parse(record.value ?? "{}") as Record<string, unknown>;
    expect(value).toMatchObject({
      schemaVersion: 1,
      eventId: event.eventId,
      runId: event.runId,
      sequence: event.sequence,
      eventType: event.eventType,
      timeStamp: new Date(Number(event.captureTimeUnixMs)).toISOString(),
      carId: event.carId,
      coordinates: { slotId: event.coordinates?.slotId, x: event.coordinates?.x, y: 0, z: -4, yawDeg: 90 },
      attributes: { gate: "north" },
      ingest: { gatewayId: "gw-1" },
    });
    const imgs = value["images"] as Array<Record<string, unknown>>;
    expect(imgs.map((i) => i["uri"])).toEqual(ack.accepted?.blobs?.map((b) => b.uri));
    expect(imgs[0]).toMatchObject({ view: "entry", cameraPrimPath: "/World/Gates/entry/Camera", sha256: sha(png), sizeBytes: png.length, contentType: "image/png", width: 320, height: 240 });
  }
}

async function recordCount(runId: string): Promise<number> {
  const records = [...(await readTopic(gw.topics.entries)), ...(await readTopic(gw.topics.exits))];
  return records.filter((r) => r.headers["run-id"] === runId).length;
}

describe("gRPC", () => {
  const runId = uniqueId("grpc-run");
  let events: simgate.v1.IEvent[];

  it("stores N events over StreamEvents, acked accepted with their locations", async () => {
    const client = new GrpcIngest(gw.grpcAddress);
    const start = await client.startRun({ runId, startedUnixMs: Date.now(), lineage: { source: "test", scenario: "ingest" } });
    expect(start.accepted?.topic).toBe(gw.topics.runs);
    events = Array.from({ length: N }, (_, i) => makeEvent(runId, i + 1, images()));
    const acks = await client.streamEvents(events, 4);
    await checkLanded(events, acks);
    const unary = makeEvent(runId, N + 1, images());
    const ack = await client.sendEvent(unary);
    expect(ack.accepted?.record?.topic).toBe(gw.topics.entries);
    events.push(unary);
    const end = await client.endRun({ runId, endedUnixMs: Date.now(), eventsSent: events.length, reason: "completed" });
    expect(end.accepted?.topic).toBe(gw.topics.runs);
    const runRecords = (await readTopic(gw.topics.runs)).filter((r) => r.key === runId);
    expect(runRecords.map((r) => (JSON.parse(r.value ?? "{}") as { kind: string }).kind)).toEqual(["run.start", "run.end"]);
    client.close();
  });

  it("answers resends with duplicate acks and the same locations, without new records", async () => {
    const client = new GrpcIngest(gw.grpcAddress);
    const before = await recordCount(runId);
    expect(before).toBe(N + 1);
    const first = await client.streamEvents(events.slice(0, N), 4);
    for (const ack of first) {
      expect(ack.duplicate, JSON.stringify(ack.toJSON())).toBeTruthy();
      expect(ack.duplicate?.record?.topic).toMatch(/^parking-(entries|exits)-/);
    }
    const again = await client.sendEvent(events[N] as simgate.v1.IEvent);
    expect(again.duplicate?.blobs).toHaveLength(2);
    expect(await recordCount(runId)).toBe(before);
    client.close();
  });
});

describe("WebSocket", () => {
  const runId = uniqueId("ws-run");
  let events: simgate.v1.IEvent[];
  let firstAcks: simgate.v1.Ack[];

  it("stores N events sent as ClientFrames, acked accepted with their locations", async () => {
    const ws = await WsIngest.connect(gw.wsUrl);
    const start = await ws.startRun({ runId, startedUnixMs: Date.now() });
    expect(start.accepted?.topic).toBe(gw.topics.runs);
    events = Array.from({ length: N }, (_, i) => makeEvent(runId, i + 1, images()));
    const acks = await ws.sendAll(events, 4);
    firstAcks = acks;
    await checkLanded(events, acks);
    const end = await ws.endRun({ runId, endedUnixMs: Date.now(), eventsSent: N, reason: "completed" });
    expect(end.accepted?.topic).toBe(gw.topics.runs);
    await ws.close();
  });

  it("answers resends with duplicate acks, without new records", async () => {
    const ws = await WsIngest.connect(gw.wsUrl);
    const acks = await ws.sendAll(events, 4);
    expect(acks.every((a) => a.duplicate !== null && a.duplicate !== undefined)).toBe(true);
    const where = (r: simgate.v1.IRecordLocation | null | undefined): string => `${r?.topic}/${r?.partition}/${Number(r?.offset)}`;
    expect(acks.map((a) => where(a.duplicate?.record))).toEqual(firstAcks.map((a) => where(a.accepted?.record)));
    expect(acks.map((a) => a.duplicate?.blobs?.map((b) => b.sha256))).toEqual(firstAcks.map((a) => a.accepted?.blobs?.map((b) => b.sha256)));
    expect(await recordCount(runId)).toBe(N);
    await ws.close();
  });
});

describe("form only, not meaning", () => {
  it("accepts an empty car id and coordinates far outside the lot, and publishes them as they are", async () => {
    const runId = uniqueId("meaning-run");
    const client = new GrpcIngest(gw.grpcAddress);
    const event = makeEvent(runId, 1, images(), { carId: "", text: "", coordinates: { slotId: "", x: 1e6, y: -250.5, z: 9999, yawDeg: 725 } });
    const ack = await client.sendEvent(event);
    client.close();
    expect(ack.accepted, JSON.stringify(ack.toJSON())).toBeTruthy();
    const record = (await readTopic(gw.topics.entries)).find((r) => r.headers["event-id"] === event.eventId);
    expect(record?.key).toBe(`${runId}/`);
    const value = JSON.parse(record?.value ?? "{}") as Record<string, unknown>;
    expect(value["carId"]).toBeNull();
    expect(value["text"]).toBeNull();
    expect(value["coordinates"]).toEqual({ slotId: "", x: 1e6, y: -250.5, z: 9999, yawDeg: 725 });
  });
});

describe("an event id resent with different content within the dedupe window", () => {
  it("is rejected GW_ERR_EVENT_ID_CONFLICT and dead-lettered; the same content stays a duplicate", async () => {
    const runId = uniqueId("conflict-run");
    const client = new GrpcIngest(gw.grpcAddress);
    const event = makeEvent(runId, 1, images());
    expect((await client.sendEvent(event)).accepted).toBeTruthy();
    const otherPng = await makePng(320, 240, 77);
    const variants: simgate.v1.IEvent[] = [
      { ...event, carId: "OTHER1" },
      { ...event, eventType: "parking.exit" },
      { ...event, eventType: "not a valid type!" },
      { ...event, images: [{ ...(event.images?.[0] ?? {}), data: otherPng }, ...(event.images ?? []).slice(1)] },
      { ...event, attributes: { gate: "south" } },
    ];
    for (const variant of variants) {
      const ack = await client.sendEvent(variant);
      expect(ack.rejected?.code, JSON.stringify({ variant: { ...variant, images: undefined }, ack: ack.toJSON() })).toBe("GW_ERR_EVENT_ID_CONFLICT");
    }
    // Attribute order does not matter; identical content is a duplicate.
    const same = await client.sendEvent({ ...event, attributes: { ...event.attributes } });
    expect(same.duplicate, JSON.stringify(same.toJSON())).toBeTruthy();
    client.close();
    const dead = (await readTopic(gw.topics.deadLetter)).map((r) => JSON.parse(r.value ?? "{}") as { code?: string; eventId?: string });
    expect(dead.filter((d) => d.eventId === event.eventId).map((d) => d.code)).toEqual(variants.map(() => "GW_ERR_EVENT_ID_CONFLICT"));
    expect(await recordCount(runId)).toBe(1);
  });
});
