// The sequencer alone, with fake stages (model/stages.ts): the order of the stages, what each outcome
// is answered with, the dead-letter path, the same event id in flight twice, and a RunEnd that waits
// for its run's events. Keys, topics and health are the exporters' (their own unit tests).
import { createHash } from "node:crypto";
import { getHeapSnapshot } from "node:v8";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { simgate } from "../generated/simgate.js";
import type { HealthView } from "../model/ingest.js";
import type { DeadLetterInput, ProcessedImage, RecordLocation, StoredImage } from "../model/outcome.js";
import type { BlobExporter, DeadLetterExporter, ImageStage, PipelineEvents, RecordExporter } from "../model/stages.js";
import type { ValidEvent, ValidImage } from "../model/valid-event.js";
import { EventValidator } from "../processors/validate/validator.js";
import { GatewayMetrics } from "../telemetry/metrics.js";
import { EventPipeline } from "./event-pipeline.js";

/** A promise with its resolver, to hold a fake stage until the test lets it go. */
function gate(): { opened: Promise<void>; open: () => void; reached: Promise<void>; reach: () => void } {
  let open = (): void => undefined;
  let reach = (): void => undefined;
  const opened = new Promise<void>((r) => (open = r));
  const reached = new Promise<void>((r) => (reach = r));
  return { opened, open, reached, reach };
}

interface Fakes {
  log: string[];
  deadLetters: DeadLetterInput[];
  runsEnded: string[];
  ready: boolean;
  imageError?: GatewayError;
  recordError?: GatewayError;
  deadLetterError?: GatewayError;
  /** Records of this kind wait at the gate. */
  hold?: { kind: "event" | "run.end"; gate: ReturnType<typeof gate> };
  metrics: GatewayMetrics;
}

function pipeline(f: Fakes, dedupeEntries = 100): EventPipeline {
  let offset = 0;
  const images: ImageStage = {
    process: async (img: ValidImage): Promise<ProcessedImage> => {
      f.log.push(`image ${img.view}`);
      if (f.imageError) throw f.imageError;
      const bytes = Buffer.from(img.data);
      return { view: img.view, cameraPrimPath: img.cameraPrimPath, bytes, contentType: "image/png", extension: "png", width: img.width, height: img.height, sha256: createHash("sha256").update(bytes).digest("hex") };
    },
  };
  const blobs: BlobExporter = {
    store: async (event: ValidEvent, processed: readonly ProcessedImage[]): Promise<StoredImage[]> => {
      f.log.push(`store ${event.eventId} ${processed.length}`);
      return processed.map((p) => ({ view: p.view, cameraPrimPath: p.cameraPrimPath, uri: `s3://b/${event.eventId}/${p.view}`, sha256: p.sha256, sizeBytes: p.bytes.length, contentType: p.contentType, width: p.width, height: p.height }));
    },
  };
  const record = async (kind: "event" | "run.start" | "run.end", topic: string): Promise<RecordLocation> => {
    if (f.hold?.kind === kind) {
      f.hold.gate.reach();
      await f.hold.gate.opened;
    }
    if (f.recordError) throw f.recordError;
    f.log.push(`record ${kind}`);
    return { topic, partition: 0, offset: offset++ };
  };
  const records: RecordExporter = {
    checkRoutable: (eventType) => {
      if (eventType !== "parking.entry") throw new GatewayError("GW_ERR_UNKNOWN_EVENT_TYPE", eventType);
    },
    publishEvent: () => record("event", "entries"),
    publishRunStart: () => record("run.start", "runs"),
    publishRunEnd: () => record("run.end", "runs"),
  };
  const deadLetter: DeadLetterExporter = {
    write: async (input) => {
      if (f.deadLetterError) return f.deadLetterError;
      f.deadLetters.push(input);
      return true;
    },
  };
  const health: HealthView = {
    get ready() {
      return f.ready;
    },
    status: () => ({ kafka: { up: f.ready }, s3: { up: true } }),
  };
  const events: PipelineEvents = { onRunEnded: (runId) => f.runsEnded.push(runId) };
  const validator = new EventValidator({ knownEventTypes: new Set(["parking.entry", "parking.unrouted"]), maxImages: 4, maxAttributes: 8, maxAttributeChars: 64, maxCarIdChars: 16, maxTextChars: 64, maxClockSkewMs: 60_000 });
  return new EventPipeline({ validator, images, blobs, records, deadLetter, health, events }, { maxMessageBytes: 1 << 20, dedupeEntries, maxRuns: 100 }, f.metrics, pino({ level: "silent" }));
}

const fakes = (): Fakes => ({ log: [], deadLetters: [], runsEnded: [], ready: true, metrics: new GatewayMetrics() });
const NOW = Date.now();
const event = (n: number, data = new Uint8Array([n])): simgate.v1.IEvent => ({
  eventId: `run-1-${n}`,
  runId: "run-1",
  sequence: n,
  eventType: "parking.entry",
  simTimeSeconds: n,
  captureTimeUnixMs: NOW,
  images: [{ view: "entry", cameraPrimPath: "/c", encoding: 1, width: 2, height: 2, data }],
});
const raw = Buffer.from([1, 2, 3]);
const send = (p: EventPipeline, e: simgate.v1.IEvent) => p.handleEvent({ transport: "grpc", connectionId: "c1", raw, event: e });
const from = { transport: "grpc" as const, connectionId: "c1", raw };

/** Live objects on this isolate's JS heap: a heap snapshot collects the garbage first, and its header
 *  (read before the rest of the snapshot) gives their count. */
async function liveHeapObjects(): Promise<number> {
  const snapshot = getHeapSnapshot();
  let head = "";
  for await (const chunk of snapshot) {
    head += String(chunk);
    const count = /"node_count":(\d+)/.exec(head);
    if (count) {
      snapshot.destroy();
      return Number(count[1]);
    }
  }
  throw new Error("heap snapshot without node_count");
}

async function counter(f: Fakes, name: string): Promise<Record<string, number>> {
  const metric = (await f.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const out: Record<string, number> = {};
  for (const v of (metric?.values ?? []) as Array<{ labels: Record<string, string>; value: number }>) {
    const key = Object.values(v.labels).join(" ");
    out[key] = (out[key] ?? 0) + v.value;
  }
  return out;
}

describe("EventPipeline with fake stages", () => {
  it("runs images → blobs → record, then answers accepted with the blobs and the record's location", async () => {
    const f = fakes();
    const ack = await send(pipeline(f), event(1));
    expect(f.log).toEqual(["image entry", "store run-1-1 1", "record event"]);
    expect(ack.accepted?.record).toEqual({ topic: "entries", partition: 0, offset: 0 });
    expect(ack.accepted?.blobs?.map((b) => b.uri)).toEqual(["s3://b/run-1-1/entry"]);
    expect(await counter(f, "simgate_gateway_events_total")).toEqual({ "grpc accepted ": 1 });
  });

  it("remembers an accepted event as one flat entry: at most 4 live heap objects per event in the dedupe window", async () => {
    // Every full garbage collection walks what the window holds, and the image path brings one every
    // few dozen events (each event's buffers are external memory); a window of objects made that
    // walk the gateway's largest cost once it had been running a while (test/bench/RESULTS.md). Two
    // are the id and the entry; the rest of the bound is what else a run of this test leaves (compiled
    // code): about 0.7 per event. The window as objects held ~17.
    const f = fakes();
    const p = pipeline(f, 10_000);
    const twoImages = (n: number): simgate.v1.IEvent => {
      const e = event(n);
      const image = e.images?.[0] as simgate.v1.IImage;
      return { ...e, images: [image, { ...image, view: "overview", data: new Uint8Array([n, 1]) }] };
    };
    expect((await send(p, twoImages(0))).accepted).toBeTruthy();
    f.log.length = 0;
    const before = await liveHeapObjects();
    const events = 3000;
    for (let n = 1; n <= events; n++) expect((await send(p, twoImages(n))).accepted).toBeTruthy();
    f.log.length = 0;
    const perEvent = ((await liveHeapObjects()) - before) / events;
    expect(perEvent).toBeLessThanOrEqual(4);
    // ... and a resend still gets its locations back from it.
    const again = await send(p, twoImages(7));
    expect(again.duplicate?.blobs?.map((b) => [b.view, b.uri, b.sizeBytes])).toEqual([["entry", "s3://b/run-1-7/entry", 1], ["overview", "s3://b/run-1-7/overview", 2]]);
    expect(again.duplicate?.record).toEqual({ topic: "entries", partition: 0, offset: 7 });
  });

  it("asks the record exporter for a route before any image work", async () => {
    const f = fakes();
    const ack = await send(pipeline(f), { ...event(1), eventType: "parking.unrouted" });
    expect(ack.rejected?.code).toBe("GW_ERR_UNKNOWN_EVENT_TYPE");
    expect(f.log).toEqual([]);
    expect(f.deadLetters.map((d) => d.err.code)).toEqual(["GW_ERR_UNKNOWN_EVENT_TYPE"]);
  });

  it("dead-letters a permanent error with the bytes as received before answering rejected", async () => {
    const f = fakes();
    f.imageError = new GatewayError("GW_ERR_IMAGE_TRUNCATED", "cut");
    const ack = await send(pipeline(f), event(1));
    expect(ack.rejected?.code).toBe("GW_ERR_IMAGE_TRUNCATED");
    expect(f.deadLetters).toHaveLength(1);
    expect(f.deadLetters[0]).toMatchObject({ raw, transport: "grpc", payloadType: "simgate.v1.Event", connectionId: "c1", eventId: "run-1-1", runId: "run-1" });
    expect(f.log).toEqual(["image entry"]);
  });

  it("answers retry-later, never rejected, when the dead letter cannot be written", async () => {
    const f = fakes();
    f.imageError = new GatewayError("GW_ERR_IMAGE_TRUNCATED", "cut");
    f.deadLetterError = new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "down");
    const ack = await send(pipeline(f), event(1));
    expect(ack.rejected).toBeFalsy();
    expect(ack.retryLater?.code).toBe("GW_ERR_DEAD_LETTER_UNAVAILABLE");
    expect(ack.retryLater?.message).toContain("GW_ERR_IMAGE_TRUNCATED");
  });

  it("answers a retryable export error retry-later without a dead letter", async () => {
    const f = fakes();
    f.recordError = new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "timeout");
    const ack = await send(pipeline(f), event(1));
    expect(ack.retryLater?.code).toBe("GW_ERR_KAFKA_UNAVAILABLE");
    expect(ack.retryLater?.retryAfterMs).toBeGreaterThan(0);
    expect(f.deadLetters).toEqual([]);
  });

  it("a resend of an accepted event is a duplicate with the same locations; other content is a conflict, dead-lettered", async () => {
    const f = fakes();
    const p = pipeline(f);
    const first = await send(p, event(1));
    const again = await send(p, event(1));
    expect(again.duplicate?.record).toEqual(first.accepted?.record);
    expect(f.log.filter((l) => l.startsWith("record"))).toHaveLength(1);
    const other = await send(p, event(1, new Uint8Array([9])));
    expect(other.rejected?.code).toBe("GW_ERR_EVENT_ID_CONFLICT");
    expect(f.deadLetters.map((d) => d.err.code)).toEqual(["GW_ERR_EVENT_ID_CONFLICT"]);
  });

  it("the same event id twice in flight: identical content shares the first's verdict, other content is checked on its own", async () => {
    const f = fakes();
    f.hold = { kind: "event", gate: gate() };
    const p = pipeline(f);
    const first = send(p, event(1));
    await f.hold.gate.reached;
    const same = send(p, event(1));
    const other = send(p, event(1, new Uint8Array([9])));
    f.hold.gate.open();
    expect((await first).accepted).toBeTruthy();
    expect((await same).duplicate).toBeTruthy();
    expect((await other).rejected?.code).toBe("GW_ERR_EVENT_ID_CONFLICT");
    expect(f.log.filter((l) => l === "record event")).toHaveLength(1);
    expect(await counter(f, "simgate_gateway_events_total")).toEqual({ "grpc accepted ": 1, "grpc duplicate ": 1, "grpc rejected GW_ERR_EVENT_ID_CONFLICT": 1 });
  });

  it("answers retry-later while a dependency is down, naming it, and while draining", async () => {
    const f = fakes();
    const p = pipeline(f);
    f.ready = false;
    expect((await send(p, event(1))).retryLater?.code).toBe("GW_ERR_KAFKA_UNAVAILABLE");
    f.ready = true;
    p.startDraining();
    expect((await send(p, event(2))).retryLater?.code).toBe("GW_ERR_DRAINING");
    expect(f.log).toEqual([]);
  });

  it("dead-letters bytes that did not decode and empty frames, with what they were sent as", async () => {
    const f = fakes();
    const p = pipeline(f);
    expect((await p.handleUndecodable(raw, "grpc", "c1", "bad wire type")).code).toBe("GW_ERR_DECODE");
    expect((await p.handleEmptyFrame(Buffer.from("hi"), "ws", "c2", "text frame", true)).code).toBe("GW_ERR_EMPTY_FRAME");
    expect(f.deadLetters.map((d) => [d.err.code, d.payloadType, d.transport, d.raw.toString("hex")])).toEqual([
      ["GW_ERR_DECODE", "simgate.v1.Event", "grpc", "010203"],
      ["GW_ERR_EMPTY_FRAME", "text", "ws", Buffer.from("hi").toString("hex")],
    ]);
    f.deadLetterError = new GatewayError("GW_ERR_STORAGE_UNAVAILABLE", "down");
    expect((await p.handleUndecodable(raw, "grpc", "c1", "again")).code).toBe("GW_ERR_DEAD_LETTER_UNAVAILABLE");
  });

  it("publishes run.end only after the run's event in flight, then tells the listeners", async () => {
    const f = fakes();
    f.hold = { kind: "event", gate: gate() };
    const p = pipeline(f);
    expect((await p.startRun({ runId: "run-1", startedUnixMs: 1 }, from)).accepted).toBeTruthy();
    const acked = send(p, event(1));
    await f.hold.gate.reached;
    const ended = p.endRun({ runId: "run-1", endedUnixMs: 1, eventsSent: 1 }, from);
    // The RunEnd is queued behind the event: the event's ack must come first.
    const order: string[] = [];
    await Promise.all([acked.then(() => order.push("event")), ended.then(() => order.push("run.end")), Promise.resolve().then(() => f.hold?.gate.open())]);
    expect(order).toEqual(["event", "run.end"]);
    expect(f.log.filter((l) => l.startsWith("record"))).toEqual(["record run.start", "record event", "record run.end"]);
    expect(f.runsEnded).toEqual(["run-1"]);
    // After the end: a new event is refused, the same RunEnd is answered as the first.
    expect((await send(p, event(2))).rejected?.code).toBe("GW_ERR_RUN_ENDED");
    expect((await p.endRun({ runId: "run-1", endedUnixMs: 1, eventsSent: 1 }, from)).accepted).toEqual((await ended).accepted);
  });

  it("refuses a RunStart with other content for a started run (GW_ERR_RUN_CONFLICT), dead-lettered", async () => {
    const f = fakes();
    const p = pipeline(f);
    const first = await p.startRun({ runId: "run-1", startedUnixMs: 1 }, from);
    expect((await p.startRun({ runId: "run-1", startedUnixMs: 1 }, from)).accepted).toEqual(first.accepted);
    expect((await p.startRun({ runId: "run-1", startedUnixMs: 2 }, from)).rejected?.code).toBe("GW_ERR_RUN_CONFLICT");
    expect(f.deadLetters.map((d) => [d.err.code, d.payloadType, d.runId])).toEqual([["GW_ERR_RUN_CONFLICT", "simgate.v1.RunStart", "run-1"]]);
  });
});
