// The images exporter alone, with a fake blob writer: the keys it builds, when it looks first
// (s3.checkExisting), and that only a retryable failure marks the store down.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../errors/gateway-error.js";
import type { ProcessedImage } from "../../model/outcome.js";
import type { ValidEvent } from "../../model/valid-event.js";
import { GatewayMetrics } from "../../telemetry/metrics.js";
import type { PutBlobInput, PutBlobResult } from "./blob-store.js";
import { ImageExporter, type CheckExisting } from "./image-exporter.js";

const image = (view: string): ProcessedImage => ({ view, cameraPrimPath: `/cam/${view}`, bytes: Buffer.from(view), contentType: "image/webp", extension: "webp", width: 4, height: 3, sha256: `sha-${view}` });
const event = (eventId: string, attempt = 0): ValidEvent => ({ eventId, runId: "run-1", sequence: 1, eventType: "parking.entry", simTimeSeconds: 0, captureTimeUnixMs: 0, carId: "", text: "", coordinates: null, images: [], attributes: {}, attempt });

function exporter(checkExisting: CheckExisting, fail?: GatewayError, remembered = 10) {
  const puts: PutBlobInput[] = [];
  const failures: string[] = [];
  const writer = {
    put: async (input: PutBlobInput): Promise<PutBlobResult> => {
      puts.push(input);
      if (fail) throw fail;
      return { uri: `s3://bucket/${input.key}`, uploaded: true, requests: { put: 1, head: input.headFirst ? 1 : 0 } };
    },
  };
  const x = new ImageExporter(writer, { keyPrefix: "pre/", checkExisting, rememberedEventIds: remembered }, { reportFailure: (d, e) => void failures.push(`${d}: ${e}`) }, new GatewayMetrics());
  return { x, puts, failures };
}

describe("ImageExporter", () => {
  it("stores each image under <prefix>runs/<run>/events/<event>/<view>.<ext> with its metadata, and describes it for the record", async () => {
    const { x, puts } = exporter("conditional");
    const stored = await x.store(event("run-1-5"), [image("entry"), image("plate")]);
    expect(puts.map((p) => p.key)).toEqual(["pre/runs/run-1/events/run-1-5/entry.webp", "pre/runs/run-1/events/run-1-5/plate.webp"]);
    expect(puts[0]).toMatchObject({ contentType: "image/webp", sha256: "sha-entry", headFirst: false, metadata: { width: "4", height: "3", "run-id": "run-1", "event-id": "run-1-5", view: "entry" } });
    expect(stored[1]).toEqual({ view: "plate", cameraPrimPath: "/cam/plate", uri: "s3://bucket/pre/runs/run-1/events/run-1-5/plate.webp", sha256: "sha-plate", sizeBytes: 5, contentType: "image/webp", width: 4, height: 3 });
  });

  it("refuses an unsafe key segment instead of writing elsewhere", async () => {
    const { x, puts } = exporter("conditional");
    await expect(x.store(event("../../etc"), [image("entry")])).rejects.toThrow(/unsafe event id/);
    expect(puts).toEqual([]);
  });

  it.each([
    ["conditional", [false, false, true]],
    ["always", [true, true, true]],
    ["on-retry", [false, true, true]],
  ] as const)("checkExisting %s: looks first for [first send, second send, a send marked attempt > 0] = %j", async (mode, expected) => {
    const { x, puts } = exporter(mode);
    await x.store(event("e1"), [image("v")]);
    await x.store(event("e1"), [image("v")]);
    await x.store(event("e2", 1), [image("v")]);
    expect(puts.map((p) => p.headFirst)).toEqual(expected);
  });

  it("on-retry remembers a bounded number of event ids, the oldest forgotten first", async () => {
    const { x, puts } = exporter("on-retry", undefined, 2);
    for (const id of ["a", "b", "c", "a"]) await x.store(event(id), [image("v")]);
    // "a" was forgotten when "c" came: its second send does not look first.
    expect(puts.map((p) => p.headFirst)).toEqual([false, false, false, false]);
  });

  it("marks the store down on a retryable failure only", async () => {
    const retryable = exporter("conditional", new GatewayError("GW_ERR_STORAGE_UNAVAILABLE", "connection reset"));
    await expect(retryable.x.store(event("e"), [image("v")])).rejects.toMatchObject({ code: "GW_ERR_STORAGE_UNAVAILABLE" });
    expect(retryable.failures).toEqual(["s3: connection reset"]);
    for (const code of ["GW_ERR_STORAGE_REJECTED", "GW_ERR_EVENT_ID_CONFLICT"] as const) {
      const permanent = exporter("conditional", new GatewayError(code, "no"));
      await expect(permanent.x.store(event("e"), [image("v")])).rejects.toMatchObject({ code });
      expect(permanent.failures).toEqual([]);
    }
  });
});
