// The stages as the sequencer (pipeline/) sees them: the validate and images processors, the blob,
// record and dead-letter exporters. The composition root (service/) builds the real ones; unit tests
// pass fakes. The sequencer imports these interfaces only, never a processor or an exporter.
import type { simgate } from "../generated/simgate.js";
import type { GatewayError } from "../errors/gateway-error.js";
import type { DeadLetterInput, ProcessedImage, RecordKind, RecordLocation, StoredImage } from "./outcome.js";
import type { ValidEvent, ValidImage, ValidRunEnd, ValidRunStart } from "./valid-event.js";

/** Checks a decoded message's form; throws a GatewayError with the first failing field's code. */
export interface MessageChecks {
  validateEvent(event: simgate.v1.IEvent): ValidEvent;
  validateRunStart(message: simgate.v1.IRunStart): ValidRunStart;
  validateRunEnd(message: simgate.v1.IRunEnd): ValidRunEnd;
}

/** Verifies (or converts) one image; throws a GatewayError (GW_ERR_IMAGE_*). */
export interface ImageStage {
  process(image: ValidImage, where: string): Promise<ProcessedImage>;
}

/** Stores an event's images under keys of its own choosing; throws a GatewayError (permanent or
 *  retryable; only a retryable one marks the store down). */
export interface BlobExporter {
  store(event: ValidEvent, images: readonly ProcessedImage[]): Promise<StoredImage[]>;
}

/** Chooses each record's topic, builds it and has Kafka acknowledge it; throws a GatewayError. */
export interface RecordExporter {
  /** Throws GW_ERR_UNKNOWN_EVENT_TYPE when no topic takes this event type (checked before any work). */
  checkRoutable(eventType: string): void;
  publishEvent(event: ValidEvent, images: readonly StoredImage[], receivedAtMs: number): Promise<RecordLocation>;
  publishRunStart(run: ValidRunStart, atMs: number): Promise<RecordLocation>;
  publishRunEnd(run: ValidRunEnd, atMs: number): Promise<RecordLocation>;
}

/** Keeps a refused message with its reason: true once durable, else the error that prevented it. */
export interface DeadLetterExporter {
  write(input: DeadLetterInput): Promise<true | GatewayError>;
}

/** Told after Kafka acknowledged a record, and when a run has ended. Listeners must not throw or
 *  block; errors are logged. */
export interface PipelineEvents {
  onRecordProduced?(topic: string, location: RecordLocation, kind: RecordKind): void;
  /** A run's end record is in the runs topic (after onRecordProduced for it). */
  onRunEnded?(runId: string, location: RecordLocation): void;
}
