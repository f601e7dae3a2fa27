// Form checks on a decoded Event (zod). Only form: lengths, alphabets, finite numbers, known event type.
// Meaning (empty car id, coordinates outside the lot, entry before exit) is the lakehouse's job.
import { z } from "zod";
import type { ErrorCode } from "../../errors/catalogue.js";
import type { ValidEvent, ValidRunEnd, ValidRunStart } from "../../model/valid-event.js";

export interface ValidationLimits {
  knownEventTypes: ReadonlySet<string>;
  maxImages: number;
  maxAttributes: number;
  maxAttributeChars: number;
  maxCarIdChars: number;
  maxTextChars: number;
  maxClockSkewMs: number;
}

const ID_ALPHABET = /^[A-Za-z0-9._:-]{1,128}$/;
/** An id usable as a path segment: right alphabet and no '.', '..' or hidden-file form. */
export const safeId = z
  .string()
  .regex(ID_ALPHABET, "1..128 characters of [A-Za-z0-9._:-]")
  .refine((s) => !s.startsWith(".") && !s.includes(".."), "must not start with '.' or contain '..'");

/** A string of at most `max` UTF-16 code units, the unit the docs give (zod's own max() counts code
 *  points, which lets a string of astral characters be twice as long). */
const text = (max: number) => z.string().refine((s) => s.length <= max, `at most ${max} characters (UTF-16 code units)`);

const noControl = /^[^\p{Cc}\p{Cf}]*$/u;
const textLike = /^(?:[\t\n\r]|[^\p{Cc}])*$/u;
const finite = z.number().refine(Number.isFinite, "must be a finite number");
const EPOCH_2000_MS = 946_684_800_000;

export const IMAGE_ENCODINGS = { PNG: 1, JPEG: 2, RAW_RGBA8: 3, WEBP: 4 } as const;

export function buildEventSchema(limits: ValidationLimits) {
  const image = z.object({
    view: z.string().regex(/^[a-z0-9_-]{1,32}$/, "1..32 characters of [a-z0-9_-]"),
    cameraPrimPath: text(512).regex(noControl, "no control characters"),
    encoding: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)], "PNG, JPEG, RAW_RGBA8 or WEBP"),
    width: z.number().int().min(1, "declared width required").max(65_535),
    height: z.number().int().min(1, "declared height required").max(65_535),
    data: z.instanceof(Uint8Array).refine((d) => d.length > 0, "image data is empty"),
  });
  return z.object({
    eventId: safeId,
    runId: safeId,
    sequence: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    eventType: z
      .string()
      .regex(/^[a-z0-9._-]{1,64}$/, "1..64 characters of [a-z0-9._-]")
      .refine((t) => limits.knownEventTypes.has(t), "not in the configured event-type → topic mapping"),
    simTimeSeconds: finite.refine((v) => v >= 0, "must be >= 0"),
    captureTimeUnixMs: z
      .number()
      .int()
      .min(EPOCH_2000_MS, "must be a Unix time in milliseconds after 2000-01-01")
      .refine((v) => v <= Date.now() + limits.maxClockSkewMs, "is too far in the future"),
    carId: text(limits.maxCarIdChars)
      .regex(/^[\p{L}\p{N} ._:-]*$/u, "letters, digits, space and ._:- only"),
    text: text(limits.maxTextChars).regex(textLike, "no control characters"),
    coordinates: z
      .object({
        slotId: text(64).regex(/^[A-Za-z0-9._:-]*$/, "characters of [A-Za-z0-9._:-]"),
        x: finite,
        y: finite,
        z: finite,
        yawDeg: finite,
      })
      .nullable(),
    images: z
      .array(image)
      .max(limits.maxImages, `at most ${limits.maxImages} images`)
      .refine((imgs) => new Set(imgs.map((i) => i.view)).size === imgs.length, "image views must be unique"),
    attributes: z
      .record(text(128).min(1).regex(noControl), text(limits.maxAttributeChars).regex(textLike))
      .refine((a) => Object.keys(a).length <= limits.maxAttributes, `at most ${limits.maxAttributes} attributes`),
    /** Sends of this event before this one (a resend hint, not content). */
    attempt: z.number().int().min(0).default(0),
  });
}

export type { ValidEvent, ValidImage, ValidRunEnd, ValidRunStart } from "../../model/valid-event.js";
// What the schemas produce is a valid instance of the shared types (a compile-time check).
type Same<A, B> = [A] extends [B] ? true : false;
const schemasMatchModel: [
  Same<z.output<ReturnType<typeof buildEventSchema>>, ValidEvent>,
  Same<z.output<typeof runStartSchema>, ValidRunStart>,
  Same<z.output<typeof runEndSchema>, ValidRunEnd>,
] = [true, true, true];
void schemasMatchModel;

/** Which catalogue code a failing field maps to. */
export function codeForPath(path: readonly PropertyKey[]): ErrorCode {
  switch (path[0]) {
    case "eventId":
    case "runId":
      return "GW_ERR_INVALID_ID";
    case "eventType":
      return "GW_ERR_UNKNOWN_EVENT_TYPE";
    case "coordinates":
      return "GW_ERR_INVALID_COORDINATES";
    case "simTimeSeconds":
    case "captureTimeUnixMs":
      return "GW_ERR_INVALID_TIME";
    case "images":
      // Empty image data is not an image (the image stage's code), not a metadata problem.
      return path[2] === "data" ? "GW_ERR_IMAGE_NOT_AN_IMAGE" : "GW_ERR_INVALID_IMAGE_METADATA";
    default:
      return "GW_ERR_INVALID_FIELD";
  }
}

const lineageText = text(1024).regex(noControl, "no control characters");

export const runStartSchema = z.object({
  runId: safeId,
  startedUnixMs: z.number().int().min(0),
  lineage: z
    .object({
      source: lineageText,
      scenario: lineageText,
      stageIdentity: lineageText,
      seed: z.number().int().min(0),
      producerVersion: lineageText,
      cameras: z
        .array(
          z.object({
            cameraPrimPath: lineageText,
            width: z.number().int().min(0),
            height: z.number().int().min(0),
            focalLengthMm: finite,
            horizontalApertureMm: finite,
            verticalApertureMm: finite,
          }),
        )
        .max(64),
      extra: z.record(text(128), lineageText),
    })
    .nullable(),
});

export const runEndSchema = z.object({
  runId: safeId,
  endedUnixMs: z.number().int().min(0),
  eventsSent: z.number().int().min(0),
  eventsByType: z.record(text(64), z.number().int().min(0)),
  reason: lineageText,
});

