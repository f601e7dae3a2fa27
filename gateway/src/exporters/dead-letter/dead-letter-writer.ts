// The dead-letter exporter: rejected input goes to the dead-letter topic with its reason. Payloads up to
// 64 KiB travel inline (base64); larger ones are stored under quarantine/ in the blob bucket and
// referenced by URI. Only a retryable failure marks its dependency down.
import { createHash } from "node:crypto";
import type { GatewayError } from "../../errors/gateway-error.js";
import { asGatewayError } from "../../errors/gateway-error.js";
import type { FailureReporter } from "../../model/ingest.js";
import type { DeadLetterInput, RecordLocation } from "../../model/outcome.js";
import type { DeadLetterExporter } from "../../model/stages.js";
import type { RecordSender } from "../kafka/kafka-exporter.js";
import { deadLetterRecord } from "../kafka/records.js";
import { quarantineKey } from "../s3/blob-keys.js";
import type { BlobWriter } from "../s3/image-exporter.js";

export const INLINE_PAYLOAD_LIMIT = 64 * 1024;

export class DeadLetterWriter implements DeadLetterExporter {
  constructor(
    private readonly topic: string,
    private readonly keyPrefix: string,
    private readonly blobs: BlobWriter,
    private readonly records: RecordSender,
    private readonly health: FailureReporter,
    private readonly onProduced: (topic: string, location: RecordLocation) => void,
  ) {}

  /** True once the dead letter is durable; otherwise the error that prevented it (only a retryable one
   *  marks its dependency down). */
  async write(input: DeadLetterInput): Promise<true | GatewayError> {
    try {
      let payloadBase64: string | null = null;
      let quarantineUri: string | null = null;
      if (input.raw.length <= INLINE_PAYLOAD_LIMIT) {
        payloadBase64 = input.raw.toString("base64");
      } else {
        const sha256 = createHash("sha256").update(input.raw).digest("hex");
        const day = new Date(input.receivedAtMs).toISOString().slice(0, 10);
        const key = quarantineKey(this.keyPrefix, day, sha256);
        try {
          const put = await this.blobs.put({
            key,
            bytes: input.raw,
            contentType: "application/x-protobuf",
            sha256,
            metadata: { "error-code": input.err.code, transport: input.transport },
          });
          quarantineUri = put.uri;
        } catch (err) {
          const e = asGatewayError(err);
          if (!e.permanent) this.health.reportFailure("s3", e.message);
          return e;
        }
      }
      const record = deadLetterRecord(this.topic, {
        code: input.err.code,
        message: input.err.message,
        stage: input.err.stage,
        receivedAtMs: input.receivedAtMs,
        eventId: input.eventId,
        runId: input.runId,
        connectionId: input.connectionId,
        transport: input.transport,
        payloadType: input.payloadType,
        payloadBase64,
        quarantineUri,
      });
      try {
        const location = await this.records.send(record);
        this.onProduced(this.topic, location);
        return true;
      } catch (err) {
        const e = asGatewayError(err);
        if (e.code === "GW_ERR_KAFKA_UNAVAILABLE") this.health.reportFailure("kafka", e.message);
        return e;
      }
    } catch (err) {
      return asGatewayError(err);
    }
  }
}
