// Record values and keys exactly as docs/records.md (schema version 1) describes them.
import type { PayloadType } from "../../model/ingest.js";
import type { StoredImage } from "../../model/outcome.js";
import type { ValidEvent, ValidRunEnd, ValidRunStart } from "../../model/valid-event.js";
import type { OutgoingRecord } from "./record-producer.js";

export const SCHEMA_VERSION = 1;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function eventRecord(topic: string, event: ValidEvent, images: readonly StoredImage[], receivedAtMs: number, gatewayId: string): OutgoingRecord {
  const value = {
    schemaVersion: SCHEMA_VERSION,
    eventId: event.eventId,
    runId: event.runId,
    sequence: event.sequence,
    eventType: event.eventType,
    timeStamp: iso(event.captureTimeUnixMs),
    simTimeSeconds: event.simTimeSeconds,
    carId: event.carId === "" ? null : event.carId,
    text: event.text === "" ? null : event.text,
    coordinates: event.coordinates,
    images: images.map((i) => ({
      view: i.view,
      cameraPrimPath: i.cameraPrimPath,
      uri: i.uri,
      sha256: i.sha256,
      sizeBytes: i.sizeBytes,
      contentType: i.contentType,
      width: i.width,
      height: i.height,
    })),
    attributes: event.attributes,
    ingest: { receivedAt: iso(receivedAtMs), gatewayId },
  };
  return {
    topic,
    key: `${event.runId}/${event.carId}`,
    value: JSON.stringify(value),
    headers: {
      "schema-version": String(SCHEMA_VERSION),
      "content-type": "application/json",
      "run-id": event.runId,
      "event-id": event.eventId,
    },
  };
}

function runHeaders(runId: string): Record<string, string> {
  return { "schema-version": String(SCHEMA_VERSION), "content-type": "application/json", "run-id": runId };
}

export function runStartRecord(topic: string, run: ValidRunStart, atMs: number, gatewayId: string): OutgoingRecord {
  const value = {
    schemaVersion: SCHEMA_VERSION,
    kind: "run.start",
    runId: run.runId,
    at: iso(atMs),
    startedAt: run.startedUnixMs > 0 ? iso(run.startedUnixMs) : null,
    lineage: run.lineage,
    ingest: { receivedAt: iso(atMs), gatewayId },
  };
  return { topic, key: run.runId, value: JSON.stringify(value), headers: runHeaders(run.runId) };
}

export function runEndRecord(topic: string, run: ValidRunEnd, atMs: number, gatewayId: string): OutgoingRecord {
  const value = {
    schemaVersion: SCHEMA_VERSION,
    kind: "run.end",
    runId: run.runId,
    at: iso(atMs),
    endedAt: run.endedUnixMs > 0 ? iso(run.endedUnixMs) : null,
    eventsSent: run.eventsSent,
    eventsByType: run.eventsByType,
    reason: run.reason,
    ingest: { receivedAt: iso(atMs), gatewayId },
  };
  return { topic, key: run.runId, value: JSON.stringify(value), headers: runHeaders(run.runId) };
}

export interface DeadLetter {
  code: string;
  message: string;
  stage: string;
  receivedAtMs: number;
  eventId: string | null;
  runId: string | null;
  connectionId: string;
  transport: "grpc" | "ws";
  payloadType: PayloadType;
  payloadBase64: string | null;
  quarantineUri: string | null;
}

export function deadLetterRecord(topic: string, d: DeadLetter): OutgoingRecord {
  const value = {
    schemaVersion: SCHEMA_VERSION,
    code: d.code,
    message: d.message,
    stage: d.stage,
    receivedAt: iso(d.receivedAtMs),
    eventId: d.eventId,
    runId: d.runId,
    transport: d.transport,
    payloadType: d.payloadType,
    payloadBase64: d.payloadBase64,
    quarantineUri: d.quarantineUri,
  };
  const headers: Record<string, string> = { "schema-version": String(SCHEMA_VERSION), "content-type": "application/json", "error-code": d.code };
  if (d.runId) headers["run-id"] = d.runId;
  if (d.eventId) headers["event-id"] = d.eventId;
  return { topic, key: d.eventId ?? d.connectionId, value: JSON.stringify(value), headers };
}
