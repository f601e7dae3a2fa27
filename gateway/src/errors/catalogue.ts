// The one catalogue of gateway error codes. A code is never reused once retired: add new codes at the
// end of their group and mark retired ones in docs/errors.md instead of deleting them.
//
// The class says what the sender should do next:
//   permanent  — the input is wrong; do not resend it (ack: rejected)
//   retryable  — a downstream dependency failed; resend the same event later (ack: retry-later)
//   throttled  — the gateway is full or draining; resend after retryAfterMs (ack: retry-later)
export type ErrorClass = "permanent" | "retryable" | "throttled";
export type ErrorStage = "receive" | "validate" | "image" | "export";

export interface ErrorSpec {
  readonly class: ErrorClass;
  readonly stage: ErrorStage;
  readonly description: string;
  /** Overrides of the class's wire answer (WIRE_BY_CLASS) for this code. */
  readonly wire?: Partial<WireAnswer>;
}

/** How an error is answered on each transport when it ends a call or refuses a connection (in an ack
 *  the code travels as it is): the gRPC status name, the HTTP status of a refused WebSocket upgrade, and
 *  the retry delay given to the sender. */
export interface WireAnswer {
  grpcStatus: "INVALID_ARGUMENT" | "UNAVAILABLE" | "RESOURCE_EXHAUSTED" | "UNAUTHENTICATED" | "NOT_FOUND" | "INTERNAL";
  httpStatus: number;
  retryAfterMs: number;
}

export const WIRE_BY_CLASS: Readonly<Record<ErrorClass, WireAnswer>> = {
  permanent: { grpcStatus: "INVALID_ARGUMENT", httpStatus: 400, retryAfterMs: 0 },
  retryable: { grpcStatus: "UNAVAILABLE", httpStatus: 503, retryAfterMs: 1000 },
  throttled: { grpcStatus: "UNAVAILABLE", httpStatus: 503, retryAfterMs: 1000 },
};

export const ERROR_CATALOGUE = {
  // receive
  GW_ERR_DECODE: { class: "permanent", stage: "receive", description: "The bytes are not a valid protobuf message of the expected type." },
  GW_ERR_MESSAGE_TOO_LARGE: { class: "permanent", stage: "receive", description: "The message exceeds limits.maxMessageBytes; the payload is quarantined in the object store.", wire: { grpcStatus: "RESOURCE_EXHAUSTED", httpStatus: 413 } },
  GW_ERR_UNAUTHENTICATED: { class: "permanent", stage: "receive", description: "Missing or wrong bearer token (gRPC UNAUTHENTICATED, WebSocket HTTP 401).", wire: { grpcStatus: "UNAUTHENTICATED", httpStatus: 401 } },
  GW_ERR_EMPTY_FRAME: { class: "permanent", stage: "receive", description: "A WebSocket ClientFrame with no body, or a text frame." },
  // validate
  GW_ERR_INVALID_ID: { class: "permanent", stage: "validate", description: "event_id or run_id missing, too long, outside [A-Za-z0-9._:-], or a path-traversal form ('.', '..', leading dot)." },
  GW_ERR_UNKNOWN_EVENT_TYPE: { class: "permanent", stage: "validate", description: "event_type is malformed or not in the configured event-type → topic mapping." },
  GW_ERR_INVALID_COORDINATES: { class: "permanent", stage: "validate", description: "A coordinate is not a finite number, or the slot id is malformed." },
  GW_ERR_INVALID_TIME: { class: "permanent", stage: "validate", description: "sim_time_seconds is negative or not finite, or capture_time_unix_ms is outside the accepted window." },
  GW_ERR_INVALID_FIELD: { class: "permanent", stage: "validate", description: "Another field is out of bounds: car id, text, attributes, sequence, run lifecycle fields." },
  GW_ERR_INVALID_IMAGE_METADATA: { class: "permanent", stage: "validate", description: "Image view, camera path, encoding or declared dimensions are malformed, or there are too many images or duplicate views." },
  // image
  GW_ERR_IMAGE_PIXEL_LIMIT: { class: "permanent", stage: "image", description: "The declared or actual image size exceeds limits.maxImagePixels (refused before decoding)." },
  GW_ERR_IMAGE_NOT_AN_IMAGE: { class: "permanent", stage: "image", description: "The bytes are not an image of the declared encoding." },
  GW_ERR_IMAGE_TRUNCATED: { class: "permanent", stage: "image", description: "The image is truncated or corrupted (bad structure, checksum or compressed data)." },
  GW_ERR_IMAGE_DIMENSIONS: { class: "permanent", stage: "image", description: "The image's real dimensions differ from the declared width/height (or raw RGBA length ≠ w·h·4)." },
  // export
  GW_ERR_STORAGE_UNAVAILABLE: { class: "retryable", stage: "export", description: "The object store could not be reached or failed; nothing was acknowledged." },
  GW_ERR_KAFKA_UNAVAILABLE: { class: "retryable", stage: "export", description: "Kafka could not be reached or did not acknowledge the record; nothing was acknowledged." },
  GW_ERR_THROTTLED: { class: "throttled", stage: "receive", description: "In-flight limit reached with limits.whenFull = reject; resend after 200 ms (slots free up as events are answered).", wire: { retryAfterMs: 200 } },
  GW_ERR_DRAINING: { class: "throttled", stage: "receive", description: "The gateway is shutting down; resend to another replica or later." },
  GW_ERR_TOO_MANY_CONNECTIONS: { class: "throttled", stage: "receive", description: "limits.maxConnections reached (gRPC RESOURCE_EXHAUSTED, WebSocket HTTP 503).", wire: { grpcStatus: "RESOURCE_EXHAUSTED" } },
  GW_ERR_INTERNAL: { class: "retryable", stage: "export", description: "An unexpected internal error; resend later. A bug: report it." },
  // added later (kept at the end so the order of the table stays stable)
  GW_ERR_EVENT_ID_CONFLICT: { class: "permanent", stage: "export", description: "The event id was already used with different content (an image stored under its key has another sha256, or a resend within the dedupe window differs from the accepted event); nothing is overwritten." },
  GW_ERR_RUN_ENDED: { class: "permanent", stage: "validate", description: "This gateway already accepted the run's RunEnd: an event or RunStart for it after that is refused (dead-lettered). A resend of an event accepted before the end is still a duplicate." },
  GW_ERR_RUN_CONFLICT: { class: "permanent", stage: "validate", description: "A second RunStart or RunEnd for a run, with other content than the one accepted (an identical resend is answered with the first record's location)." },
  GW_ERR_RECORD_REJECTED: { class: "permanent", stage: "export", description: "Kafka refused the record for good (too large for the topic, not authorised, invalid topic); resending cannot help. Does not touch readiness." },
  GW_ERR_STORAGE_REJECTED: { class: "permanent", stage: "export", description: "The object store refused the write for good (a 4xx other than throttling: access denied, no such bucket, invalid request); resending cannot help. Does not touch readiness." },
  GW_ERR_NOT_FOUND: { class: "permanent", stage: "receive", description: "A WebSocket upgrade on a path that is not http.wsPath (HTTP 404).", wire: { grpcStatus: "NOT_FOUND", httpStatus: 404 } },
  GW_ERR_DEAD_LETTER_UNAVAILABLE: { class: "retryable", stage: "export", description: "Input that would be rejected could not be kept in the dead-letter topic (or the quarantine); it is answered retry-later instead of rejected, so nothing is lost." },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Codes that are no longer emitted. They stay listed (docs/errors.md, marked retired) and are never
 *  given to a new meaning. */
export const RETIRED_CODES: Readonly<Record<string, ErrorSpec & { retiredBecause: string }>> = {
  GW_ERR_NOT_READY: {
    class: "retryable",
    stage: "receive",
    description: "A dependency is down (readiness false); resend later.",
    retiredBecause: "never emitted: a gateway that is not ready always knows which dependency is down and answers GW_ERR_KAFKA_UNAVAILABLE or GW_ERR_STORAGE_UNAVAILABLE (or GW_ERR_DRAINING)",
  },
};

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERROR_CATALOGUE[code];
}

/** The one mapping from a code to its answer on the wire: its class's, with the code's overrides. */
export function wireAnswer(code: ErrorCode): WireAnswer {
  const spec: ErrorSpec = ERROR_CATALOGUE[code];
  return { ...WIRE_BY_CLASS[spec.class], ...spec.wire };
}
