// The images exporter as the sequencer sees it: builds each image's key from run, event id and view
// (blob-keys.ts), decides whether to look for an object first (s3.checkExisting), has the blob store
// write it (always a conditional PUT) and counts what it cost. A retryable failure
// (GW_ERR_STORAGE_UNAVAILABLE) marks the store down; a permanent one or a conflict does not.
import { asGatewayError } from "../../errors/gateway-error.js";
import type { FailureReporter } from "../../model/ingest.js";
import type { ProcessedImage, StoredImage } from "../../model/outcome.js";
import type { BlobExporter } from "../../model/stages.js";
import type { ValidEvent } from "../../model/valid-event.js";
import type { GatewayMetrics } from "../../telemetry/metrics.js";
import type { PutBlobInput, PutBlobResult } from "./blob-store.js";
import { imageKey } from "./blob-keys.js";

/** When an image's key is HEADed before its (always conditional) PUT; see config/schema.ts. */
export type CheckExisting = "conditional" | "always" | "on-retry";

/** What writes one object (blob-store.ts; a fake in unit tests). */
export interface BlobWriter {
  put(input: PutBlobInput): Promise<PutBlobResult>;
}

export interface ImageExporterSettings {
  keyPrefix: string;
  checkExisting: CheckExisting;
  /** Event ids remembered for checkExisting = "on-retry" (the oldest are forgotten first). */
  rememberedEventIds: number;
}

export class ImageExporter implements BlobExporter {
  /** Event ids whose images this gateway has started to store (for checkExisting = on-retry); a Set
   *  keeps insertion order, so the first entry is the oldest. */
  private readonly attempted = new Set<string>();

  constructor(
    private readonly blobs: BlobWriter,
    private readonly settings: ImageExporterSettings,
    private readonly health: FailureReporter,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Whether to HEAD before the PUT. A resend (the sender says so: attempt > 0) looks first in every
   *  mode, so that images a first send already stored (before a restart, beyond the dedupe window) are
   *  not uploaded again. */
  private headFirst(event: ValidEvent): boolean {
    const mode = this.settings.checkExisting;
    if (mode !== "on-retry") return mode === "always" || event.attempt > 0;
    const tried = this.attempted.has(event.eventId);
    this.attempted.delete(event.eventId);
    this.attempted.add(event.eventId);
    for (const oldest of this.attempted) {
      if (this.attempted.size <= this.settings.rememberedEventIds) break;
      this.attempted.delete(oldest);
    }
    return tried || event.attempt > 0;
  }

  store(event: ValidEvent, images: readonly ProcessedImage[]): Promise<StoredImage[]> {
    const headFirst = this.headFirst(event);
    return Promise.all(images.map((img) => this.storeOne(event, img, headFirst)));
  }

  private async storeOne(event: ValidEvent, img: ProcessedImage, headFirst: boolean): Promise<StoredImage> {
    const key = imageKey(this.settings.keyPrefix, event.runId, event.eventId, img.view, img.extension);
    const t0 = performance.now();
    try {
      const put = await this.blobs.put({
        key,
        bytes: img.bytes,
        contentType: img.contentType,
        sha256: img.sha256,
        headFirst,
        metadata: { width: String(img.width), height: String(img.height), "run-id": event.runId, "event-id": event.eventId, view: img.view },
      });
      if (put.uploaded) this.metrics.blobBytes.inc(img.bytes.length);
      this.metrics.blobRequests.inc({ request: "put" }, put.requests.put);
      this.metrics.blobRequests.inc({ request: "head" }, put.requests.head);
      this.metrics.blobSeconds.observe((performance.now() - t0) / 1000);
      return { view: img.view, cameraPrimPath: img.cameraPrimPath, uri: put.uri, sha256: img.sha256, sizeBytes: img.bytes.length, contentType: img.contentType, width: img.width, height: img.height };
    } catch (err) {
      const e = asGatewayError(err);
      if (e.code === "GW_ERR_STORAGE_UNAVAILABLE") this.health.reportFailure("s3", e.message);
      throw e;
    }
  }
}
