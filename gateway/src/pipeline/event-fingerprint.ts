// A content fingerprint of an event, kept with its dedupe entry so that a resend with the same event id
// but other content (another car, type, image, ...) is told apart from a true duplicate. It covers every
// field as received (attributes sorted by key) and, for images, their metadata and the sha256 of their
// bytes as received. For encoded images that sha256 is the one the images stage computes anyway; only
// raw RGBA frames (whose stored sha256 is of the PNG/WebP they became) are hashed once more.
import { createHash } from "node:crypto";
import type { simgate } from "../generated/simgate.js";

const num = (n: number | { toString(): string } | null | undefined): string => {
  if (n === null || n === undefined) return "0";
  if (typeof n !== "number") return n.toString();
  return Object.is(n, -0) ? "-0" : String(n);
};
const str = (s: string | null | undefined): string => s ?? "";

/** sha256 (hex) over a canonical form of the event; imageSha256(i) gives the sha256 of image i's bytes. */
export function eventFingerprint(event: simgate.v1.IEvent, imageSha256: (index: number, image: simgate.v1.IImage) => string): string {
  const c = event.coordinates;
  const canonical = [
    str(event.eventId),
    str(event.runId),
    num(event.sequence),
    str(event.eventType),
    num(event.simTimeSeconds),
    num(event.captureTimeUnixMs),
    str(event.carId),
    str(event.text),
    c ? [str(c.slotId), num(c.x), num(c.y), num(c.z), num(c.yawDeg)] : null,
    Object.entries(event.attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    (event.images ?? []).map((img, i) => [str(img.view), str(img.cameraPrimPath), num(img.encoding), num(img.width), num(img.height), imageSha256(i, img)]),
  ];
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** sha256 (hex) of an image's bytes as received. */
export function bytesSha256(image: simgate.v1.IImage): string {
  return createHash("sha256").update(image.data ?? new Uint8Array(0)).digest("hex");
}
