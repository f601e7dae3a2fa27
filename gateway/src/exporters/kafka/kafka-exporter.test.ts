// The Kafka exporter alone, with a fake producer: it chooses the topic, builds the record as
// docs/records.md describes it, and only a retryable failure marks Kafka down.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../errors/gateway-error.js";
import type { RecordKind, RecordLocation } from "../../model/outcome.js";
import type { ValidEvent } from "../../model/valid-event.js";
import { GatewayMetrics } from "../../telemetry/metrics.js";
import { KafkaExporter } from "./kafka-exporter.js";
import type { OutgoingRecord } from "./record-producer.js";

const event: ValidEvent = {
  eventId: "run-7-1",
  runId: "run-7",
  sequence: 1,
  eventType: "parking.exit",
  simTimeSeconds: 1.5,
  captureTimeUnixMs: Date.UTC(2026, 0, 2, 3, 4, 5),
  carId: "car-9",
  text: "",
  coordinates: null,
  images: [],
  attributes: Object.fromEntries([["__proto__", "p"], ["constructor", "c"]].map(([k, v]) => [k, v])) as Record<string, string>,
  attempt: 0,
};

function exporter(fail?: GatewayError) {
  const sent: OutgoingRecord[] = [];
  const failures: string[] = [];
  const produced: Array<[string, RecordLocation, RecordKind]> = [];
  const producer = {
    send: async (r: OutgoingRecord): Promise<RecordLocation> => {
      if (fail) throw fail;
      sent.push(r);
      return { topic: r.topic, partition: 1, offset: sent.length };
    },
  };
  const health = { reportFailure: (d: string, e: string) => void failures.push(`${d}: ${e}`) };
  const metrics = new GatewayMetrics();
  const x = new KafkaExporter(producer, { gatewayId: "gw-t", topicMap: { "parking.entry": "entries", "parking.exit": "exits" }, runsTopic: "runs" }, health, metrics, (t, l, k) => void produced.push([t, l, k]));
  return { x, sent, failures, produced, metrics };
}

describe("KafkaExporter", () => {
  it("chooses the event type's topic and builds value, key and headers", async () => {
    const { x, sent, produced } = exporter();
    const image = { view: "exit", cameraPrimPath: "/c", uri: "s3://b/k", sha256: "ab", sizeBytes: 3, contentType: "image/png", width: 2, height: 1 };
    const location = await x.publishEvent(event, [image], Date.UTC(2026, 0, 2, 3, 4, 6));
    expect(location).toEqual({ topic: "exits", partition: 1, offset: 1 });
    const record = sent[0] as OutgoingRecord;
    expect(record.topic).toBe("exits");
    expect(record.key).toBe("run-7/car-9");
    expect(record.headers).toEqual({ "schema-version": "1", "content-type": "application/json", "run-id": "run-7", "event-id": "run-7-1" });
    const value = JSON.parse(String(record.value)) as Record<string, unknown>;
    expect(value).toMatchObject({ schemaVersion: 1, eventId: "run-7-1", eventType: "parking.exit", timeStamp: "2026-01-02T03:04:05.000Z", carId: "car-9", text: null, images: [image], ingest: { receivedAt: "2026-01-02T03:04:06.000Z", gatewayId: "gw-t" } });
    // Attribute keys that are Object.prototype's names are data like any other.
    expect(String(record.value)).toContain('"attributes":{"__proto__":"p","constructor":"c"}');
    expect(produced).toEqual([["exits", location, "event"]]);
  });

  it("refuses an event type without a topic before any record (GW_ERR_UNKNOWN_EVENT_TYPE), prototype names included", () => {
    const { x } = exporter();
    for (const type of ["parking.teleport", "constructor", "__proto__", "toString"]) {
      expect(() => x.checkRoutable(type)).toThrow(expect.objectContaining({ code: "GW_ERR_UNKNOWN_EVENT_TYPE" }));
    }
    expect(() => x.checkRoutable("parking.entry")).not.toThrow();
  });

  it("puts run start and run end into the runs topic, keyed by run id", async () => {
    const { x, sent, produced } = exporter();
    await x.publishRunStart({ runId: "run-7", startedUnixMs: 0, lineage: null }, 1000);
    await x.publishRunEnd({ runId: "run-7", endedUnixMs: 2000, eventsSent: 3, eventsByType: { "parking.exit": 3 }, reason: "done" }, 3000);
    expect(sent.map((r) => [r.topic, r.key, JSON.parse(String(r.value)).kind])).toEqual([
      ["runs", "run-7", "run.start"],
      ["runs", "run-7", "run.end"],
    ]);
    expect(produced.map(([, , kind]) => kind)).toEqual(["run", "run"]);
  });

  it("marks Kafka down on a retryable failure only, and counts nothing it did not deliver", async () => {
    const permanent = exporter(new GatewayError("GW_ERR_RECORD_REJECTED", "too large"));
    await expect(permanent.x.publishEvent(event, [], 0)).rejects.toMatchObject({ code: "GW_ERR_RECORD_REJECTED" });
    expect(permanent.failures).toEqual([]);
    const retryable = exporter(new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "timeout"));
    await expect(retryable.x.publishRunEnd({ runId: "r", endedUnixMs: 0, eventsSent: 0, eventsByType: {}, reason: "" }, 0)).rejects.toMatchObject({ code: "GW_ERR_KAFKA_UNAVAILABLE" });
    expect(retryable.failures).toEqual(["kafka: timeout"]);
    expect(retryable.produced).toEqual([]);
    expect((await retryable.metrics.registry.getSingleMetricAsString("simgate_gateway_records_total")).match(/^simgate_gateway_records_total\{/m)).toBeNull();
  });
});
