// Two events with the same event id in flight at once (sent back to back, no wait for the first ack),
// on one stream and on two streams: each gets its own verdict. An identical one shares the first's
// outcome; one with other content is checked on its own (accepted when the first was refused, else
// GW_ERR_EVENT_ID_CONFLICT, dead-lettered). Every event counts in events_total and errors_total.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest, WsIngest } from "../support/clients.js";
import { makeEvent, type EventImage } from "../support/events.js";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makePng } from "../support/images.js";
import { metricSum } from "../support/metrics.js";
import { readTopic } from "../support/stack.js";

const PNG = simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG;
let gw: TestGateway;
let png: Buffer;
let otherPng: Buffer;

beforeAll(async () => {
  // Large images keep the first event in flight while the second arrives.
  [png, otherPng] = await Promise.all([makePng(1600, 1200, 11), makePng(1600, 1200, 12)]);
  gw = await startGateway();
}, 120_000);
afterAll(async () => {
  expect(await gw.stop()).toBe(0);
});

const image = (data: Uint8Array): EventImage => ({ view: "entry", encoding: PNG, width: 1600, height: 1200, data });
const truncated = (): Uint8Array => png.subarray(0, png.length - 5000);

/** Writes both events on one gRPC stream without waiting, and returns their acks by sequence. */
async function oneStream(a: simgate.v1.IEvent, b: simgate.v1.IEvent): Promise<simgate.v1.Ack[]> {
  const client = new GrpcIngest(gw.grpcAddress);
  const stream = client.openStream();
  const acks = await Promise.all([stream.send(a), stream.send(b)]);
  stream.end();
  client.close();
  return acks;
}

/** One event on a gRPC stream, the other on a WebSocket, at the same moment. */
async function twoStreams(a: simgate.v1.IEvent, b: simgate.v1.IEvent): Promise<simgate.v1.Ack[]> {
  const client = new GrpcIngest(gw.grpcAddress);
  const ws = await WsIngest.connect(gw.wsUrl);
  const stream = client.openStream();
  const acks = await Promise.all([stream.send(a), ws.sendEvent(b)]);
  stream.end();
  client.close();
  await ws.close();
  return acks;
}

function bySequence(acks: simgate.v1.Ack[], a: simgate.v1.IEvent, b: simgate.v1.IEvent): [simgate.v1.Ack, simgate.v1.Ack] {
  const find = (e: simgate.v1.IEvent): simgate.v1.Ack => {
    const ack = acks.find((x) => Number(x.sequence) === Number(e.sequence));
    if (!ack) throw new Error(`no ack for sequence ${String(e.sequence)}: ${JSON.stringify(acks.map((x) => x.toJSON()))}`);
    return ack;
  };
  return [find(a), find(b)];
}

async function records(eventId: string): Promise<number> {
  return [...(await readTopic(gw.topics.entries)), ...(await readTopic(gw.topics.exits))].filter((r) => r.headers["event-id"] === eventId).length;
}
async function deadLetterCodes(eventId: string): Promise<string[]> {
  return (await readTopic(gw.topics.deadLetter))
    .map((r) => JSON.parse(r.value ?? "{}") as { code: string; eventId: string | null })
    .filter((d) => d.eventId === eventId)
    .map((d) => d.code)
    .sort();
}
async function metrics(): Promise<string> {
  return (await gw.get("/metrics")).body;
}

for (const [where, send] of [
  ["on one stream", oneStream],
  ["on two streams (gRPC and WebSocket)", twoStreams],
] as const) {
  describe(`the same event id twice in flight ${where}`, () => {
    it("a refused first event does not refuse a valid one with other content: it is checked on its own", async () => {
      const runId = uniqueId("same-id");
      const bad = makeEvent(runId, 1, [image(truncated())], { eventType: "parking.entry" });
      const good = { ...makeEvent(runId, 1, [image(png)], { eventType: "parking.entry" }), sequence: 2 };
      const before = await metrics();
      const [first, second] = bySequence(await send(bad, good), bad, good);
      // On one stream the refused event is first; across two streams either may be: the later one is then
      // a conflict with the accepted one.
      const code = first.rejected?.code ?? "";
      expect(where === "on one stream" ? ["GW_ERR_IMAGE_TRUNCATED"] : ["GW_ERR_IMAGE_TRUNCATED", "GW_ERR_EVENT_ID_CONFLICT"], JSON.stringify(first.toJSON())).toContain(code);
      // Checked on its own: accepted (the refused first never took the id).
      expect(second.accepted, JSON.stringify(second.toJSON())).toBeTruthy();
      expect(await records(good.eventId as string)).toBe(1);
      expect(await deadLetterCodes(bad.eventId as string)).toEqual([code]);
      const after = await metrics();
      const events = (m: string): number => metricSum(m, "simgate_gateway_events_total");
      expect(events(after) - events(before)).toBe(2);
      const errors = (m: string): number => metricSum(m, "simgate_gateway_errors_total", { code });
      expect(errors(after) - errors(before)).toBe(1);
    });

    it("two refused identical events: both refused with the same code, both counted", async () => {
      const runId = uniqueId("same-id");
      const bad = makeEvent(runId, 1, [image(truncated())], { eventType: "parking.entry" });
      const before = await metrics();
      const second = { ...bad, sequence: 2 };
      const [first, again] = bySequence(await send(bad, second), bad, second);
      expect(first.rejected?.code).toBe("GW_ERR_IMAGE_TRUNCATED");
      expect(again.rejected?.code).toBe("GW_ERR_IMAGE_TRUNCATED");
      const after = await metrics();
      expect(metricSum(after, "simgate_gateway_events_total", { outcome: "rejected", code: "GW_ERR_IMAGE_TRUNCATED" }) - metricSum(before, "simgate_gateway_events_total", { outcome: "rejected", code: "GW_ERR_IMAGE_TRUNCATED" })).toBe(2);
      expect(metricSum(after, "simgate_gateway_errors_total", { code: "GW_ERR_IMAGE_TRUNCATED" }) - metricSum(before, "simgate_gateway_errors_total", { code: "GW_ERR_IMAGE_TRUNCATED" })).toBe(2);
    });

    it("identical content: one accepted, the other a duplicate of it, one record", async () => {
      const runId = uniqueId("same-id");
      const event = makeEvent(runId, 1, [image(png)], { eventType: "parking.entry" });
      const acks = await send(event, { ...event });
      expect(acks.filter((a) => a.accepted).length, JSON.stringify(acks.map((a) => a.toJSON()))).toBe(1);
      expect(acks.filter((a) => a.duplicate).length).toBe(1);
      expect(await records(event.eventId as string)).toBe(1);
    });

    it("two valid events with other content: one accepted, the other GW_ERR_EVENT_ID_CONFLICT and dead-lettered", async () => {
      const runId = uniqueId("same-id");
      const a = makeEvent(runId, 1, [image(png)], { eventType: "parking.entry" });
      const b = { ...makeEvent(runId, 1, [image(otherPng)], { eventType: "parking.entry" }), sequence: 2 };
      const before = await metrics();
      const acks = await send(a, b);
      expect(acks.filter((x) => x.accepted).length, JSON.stringify(acks.map((x) => x.toJSON()))).toBe(1);
      expect(acks.filter((x) => x.rejected?.code === "GW_ERR_EVENT_ID_CONFLICT").length).toBe(1);
      expect(await records(a.eventId as string)).toBe(1);
      expect(await deadLetterCodes(a.eventId as string)).toEqual(["GW_ERR_EVENT_ID_CONFLICT"]);
      const after = await metrics();
      expect(metricSum(after, "simgate_gateway_errors_total", { code: "GW_ERR_EVENT_ID_CONFLICT" }) - metricSum(before, "simgate_gateway_errors_total", { code: "GW_ERR_EVENT_ID_CONFLICT" })).toBe(1);
    });
  });
}
