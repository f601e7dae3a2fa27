// What the stages hand on after the checks: a processed image, an image stored in the object store, a
// record's place in Kafka, and what a rejected message carries to the dead-letter exporter. Plain
// data, no logic.
import type { GatewayError } from "../errors/gateway-error.js";
import type { Transport } from "../telemetry/metrics.js";
import type { PayloadType } from "./ingest.js";

/** An image after the images stage: verified (or converted from raw RGBA8), with its sha256. */
export interface ProcessedImage {
  view: string;
  cameraPrimPath: string;
  bytes: Buffer;
  contentType: string;
  extension: string;
  width: number;
  height: number;
  sha256: string;
}

/** An image in the object store, as the event's record and ack describe it. */
export interface StoredImage {
  view: string;
  cameraPrimPath: string;
  uri: string;
  sha256: string;
  sizeBytes: number;
  contentType: string;
  width: number;
  height: number;
}

/** Where Kafka put a record. */
export interface RecordLocation {
  topic: string;
  partition: number;
  offset: number;
}

/** What a record was: an event's, a run message's, or a dead letter. */
export type RecordKind = "event" | "run" | "dead-letter";

/** A refused message on its way to the dead-letter topic. */
export interface DeadLetterInput {
  err: GatewayError;
  raw: Buffer;
  transport: Transport;
  /** What raw is: the message type it was sent as (a WebSocket frame is a ClientFrame or text). */
  payloadType: PayloadType;
  connectionId: string;
  eventId: string | null;
  runId: string | null;
  receivedAtMs: number;
}
