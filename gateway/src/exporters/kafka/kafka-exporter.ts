// The records exporter as the sequencer sees it: chooses each record's topic (the event type's topic, or
// the runs topic), builds the record (records.ts: value, key, headers) and has the producer deliver it.
// A retryable failure (GW_ERR_KAFKA_UNAVAILABLE) marks Kafka down; a permanent one
// (GW_ERR_RECORD_REJECTED) does not. Every acknowledged record is counted and told to the listeners.
import { GatewayError, asGatewayError } from "../../errors/gateway-error.js";
import type { FailureReporter } from "../../model/ingest.js";
import type { RecordKind, RecordLocation, StoredImage } from "../../model/outcome.js";
import type { RecordExporter } from "../../model/stages.js";
import type { ValidEvent, ValidRunEnd, ValidRunStart } from "../../model/valid-event.js";
import type { GatewayMetrics } from "../../telemetry/metrics.js";
import type { OutgoingRecord } from "./record-producer.js";
import { eventRecord, runEndRecord, runStartRecord } from "./records.js";

/** What delivers a built record (record-producer.ts; a fake in unit tests). */
export interface RecordSender {
  send(record: OutgoingRecord): Promise<RecordLocation>;
}

export interface KafkaExporterSettings {
  gatewayId: string;
  /** Event type → topic. */
  topicMap: Readonly<Record<string, string>>;
  runsTopic: string;
}

export class KafkaExporter implements RecordExporter {
  constructor(
    private readonly producer: RecordSender,
    private readonly settings: KafkaExporterSettings,
    private readonly health: FailureReporter,
    private readonly metrics: GatewayMetrics,
    private readonly onProduced: (topic: string, location: RecordLocation, kind: RecordKind) => void = () => undefined,
  ) {}

  private topicFor(eventType: string): string {
    const topic = Object.hasOwn(this.settings.topicMap, eventType) ? this.settings.topicMap[eventType] : undefined;
    if (topic === undefined) throw new GatewayError("GW_ERR_UNKNOWN_EVENT_TYPE", `event type ${eventType} has no topic`);
    return topic;
  }

  checkRoutable(eventType: string): void {
    this.topicFor(eventType);
  }

  publishEvent(event: ValidEvent, images: readonly StoredImage[], receivedAtMs: number): Promise<RecordLocation> {
    return this.deliver(eventRecord(this.topicFor(event.eventType), event, images, receivedAtMs, this.settings.gatewayId), "event");
  }

  publishRunStart(run: ValidRunStart, atMs: number): Promise<RecordLocation> {
    return this.deliver(runStartRecord(this.settings.runsTopic, run, atMs, this.settings.gatewayId), "run");
  }

  publishRunEnd(run: ValidRunEnd, atMs: number): Promise<RecordLocation> {
    return this.deliver(runEndRecord(this.settings.runsTopic, run, atMs, this.settings.gatewayId), "run");
  }

  private async deliver(record: OutgoingRecord, kind: RecordKind): Promise<RecordLocation> {
    const t0 = performance.now();
    let location: RecordLocation;
    try {
      location = await this.producer.send(record);
    } catch (err) {
      const e = asGatewayError(err);
      if (e.code === "GW_ERR_KAFKA_UNAVAILABLE") this.health.reportFailure("kafka", e.message);
      throw e;
    }
    this.metrics.produceSeconds.observe({ topic: record.topic }, (performance.now() - t0) / 1000);
    this.metrics.recordsProduced.inc({ topic: record.topic });
    this.onProduced(record.topic, location, kind);
    return location;
  }
}
