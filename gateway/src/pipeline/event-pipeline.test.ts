// The sequencer alone, with fake stages: the order of the stages, the dead-letter path, which errors
// touch health, and a RunEnd that waits for its run's events.
import { createHash } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { BlobStore, PutBlobInput } from "../exporters/s3/blob-store.js";
import type { DeadLetterInput, DeadLetterWriter } from "../exporters/dead-letter/dead-letter-writer.js";
import type { OutgoingRecord, RecordLocation, RecordProducer } from "../exporters/kafka/record-producer.js";
import type { simgate } from "../generated/simgate.js";
import type { HealthView } from "../model/ingest.js";
import type { ValidImage } from "../model/valid-event.js";
import type { ImageProcessor, ProcessedImage } from "../processors/images/image-processor.js";
import { EventValidator } from "../processors/validate/validator.js";
import { GatewayMetrics } from "../telemetry/metrics.js";
import { EventPipeline } from "./event-pipeline.js";

interface Fakes {
  log: string[];
  failures: string[];
  deadLetters: DeadLetterInput[];
  imageError?: GatewayError;
  recordError?: GatewayError;
  deadLetterError?: GatewayError;
  /** Records of this kind wait until release() is called. */
  hold?: { kind: string; release: () => void; held: Promise<void> };
}

function pipeline(f: Fakes): EventPipeline {
  let offset = 0;
  const images = {
    process: async (img: ValidImage): Promise<ProcessedImage> => {
      f.log.push(`image ${img.view}`);
      if (f.imageError) throw f.imageError;
      const bytes = Buffer.from(img.data);
      return { view: img.view, cameraPrimPath: img.cameraPrimPath, bytes, contentType: "image/png", extension: "png", width: img.width, height: img.height, sha256: createHash("sha256").update(bytes).digest("hex") };
    },
  } as unknown as ImageProcessor;
  const blobs = {
    put: async (input: PutBlobInput) => {
      f.log.push(`put ${input.key}`);
      return { uri: `s3://b/${input.key}`, uploaded: true, requests: { put: 1, head: 0 } };
    },
  } as unknown as BlobStore;
  const records = {
    send: async (r: OutgoingRecord): Promise<RecordLocation> => {
      const kind = JSON.parse(String(r.value)).kind ?? "event";
      if (f.hold?.kind === kind) await f.hold.held;
      if (f.recordError) throw f.recordError;
      f.log.push(`record ${kind}`);
      return { topic: r.topic, partition: 0, offset: offset++ };
    },
  } as unknown as RecordProducer;
  const deadLetter = {
    write: async (input: DeadLetterInput) => {
      if (f.deadLetterError) return f.deadLetterError;
      f.deadLetters.push(input);
      return true as const;
    },
  } as unknown as DeadLetterWriter;
  const health: HealthView = { ready: true, status: () => ({}), reportFailure: (d, e) => f.failures.push(`${d}: ${e}`) };
  const validator = new EventValidator({ knownEventTypes: new Set(["parking.entry"]), maxImages: 4, maxAttributes: 8, maxAttributeChars: 64, maxCarIdChars: 16, maxTextChars: 64, maxClockSkewMs: 60_000 });
  return new EventPipeline(
    { validator, images, blobs, records, deadLetter, health },
    { gatewayId: "gw", keyPrefix: "", topicMap: { "parking.entry": "entries" }, runsTopic: "runs", maxMessageBytes: 1 << 20, dedupeEntries: 100, maxRuns: 100, checkExisting: "conditional" },
    new GatewayMetrics(),
    pino({ level: "silent" }),
  );
}

const fakes = (): Fakes => ({ log: [], failures: [], deadLetters: [] });
const event = (n: number): simgate.v1.IEvent => ({
  eventId: `run-1-${n}`,
  runId: "run-1",
  sequence: n,
  eventType: "parking.entry",
  simTimeSeconds: n,
  captureTimeUnixMs: Date.now(),
  images: [{ view: "entry", cameraPrimPath: "/c", encoding: 1, width: 2, height: 2, data: new Uint8Array([n]) }],
});
const send = (p: EventPipeline, e: simgate.v1.IEvent) => p.handleEvent({ transport: "grpc", connectionId: "c1", raw: Buffer.from([1]), event: e });

describe("EventPipeline with fake stages", () => {
  it("runs image → blob → record, then answers accepted with the record's location", async () => {
    const f = fakes();
    const ack = await send(pipeline(f), event(1));
    expect(f.log).toEqual(["image entry", "put runs/run-1/events/run-1-1/entry.png", "record event"]);
    expect(ack.accepted?.record).toEqual({ topic: "entries", partition: 0, offset: 0 });
  });

  it("dead-letters a permanent error before answering rejected; a failed dead letter is retry-later", async () => {
    const f = fakes();
    f.imageError = new GatewayError("GW_ERR_IMAGE_TRUNCATED", "cut");
    expect((await send(pipeline(f), event(1))).rejected?.code).toBe("GW_ERR_IMAGE_TRUNCATED");
    expect(f.deadLetters.map((d) => d.err.code)).toEqual(["GW_ERR_IMAGE_TRUNCATED"]);
    f.deadLetterError = new GatewayError("GW_ERR_RECORD_REJECTED", "dead-letter topic refuses");
    const ack = await send(pipeline(f), event(2));
    expect(ack.rejected).toBeFalsy();
    expect(ack.retryLater?.code).toBe("GW_ERR_DEAD_LETTER_UNAVAILABLE");
  });

  it("marks Kafka down on a retryable error only", async () => {
    const f = fakes();
    f.recordError = new GatewayError("GW_ERR_RECORD_REJECTED", "too large");
    expect((await send(pipeline(f), event(1))).rejected?.code).toBe("GW_ERR_RECORD_REJECTED");
    expect(f.failures).toEqual([]);
    f.recordError = new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "timeout");
    expect((await send(pipeline(f), event(2))).retryLater?.code).toBe("GW_ERR_KAFKA_UNAVAILABLE");
    expect(f.failures).toEqual(["kafka: timeout"]);
  });

  it("publishes run.end only after the run's event in flight", async () => {
    const f = fakes();
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    f.hold = { kind: "event", release, held };
    const p = pipeline(f);
    const from = { transport: "grpc" as const, connectionId: "c1", raw: Buffer.from([1]) };
    const acked = send(p, event(1));
    await new Promise((r) => setTimeout(r, 10));
    const ended = p.endRun({ runId: "run-1", endedUnixMs: 1, eventsSent: 1 }, from);
    await new Promise((r) => setTimeout(r, 10));
    expect(f.log).not.toContain("record run.end");
    release();
    expect((await acked).accepted).toBeTruthy();
    expect((await ended).accepted).toBeTruthy();
    expect(f.log.filter((l) => l.startsWith("record"))).toEqual(["record event", "record run.end"]);
  });
});
