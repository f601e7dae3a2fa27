// The .simrec framing, shared by the TypeScript and Python readers and writers. Described for humans in
// docs/recording-format.md; every number here is part of the file format.
import { crc32 } from "../checksums/crc32.js";

/** File signature: the six ASCII bytes "SIMREC", then the format version as a big-endian uint16. */
export const MAGIC = Buffer.from("SIMREC", "ascii");
export const FORMAT_VERSION = 1;
export const PREAMBLE_BYTES = MAGIC.length + 2;

/** Every frame starts with this marker, so that a reader can find the next frame after a damaged one. */
export const FRAME_MARKER = Buffer.from("SGFR", "ascii");
/** marker (4) + payload length (uint32 BE) + CRC-32 of the payload (uint32 BE). */
export const FRAME_HEADER_BYTES = 12;
/** Frames larger than this are treated as damage rather than as a request to allocate the memory. */
export const MAX_FRAME_PAYLOAD_BYTES = 256 * 1024 * 1024;

export function preamble(version = FORMAT_VERSION): Buffer {
  const out = Buffer.alloc(PREAMBLE_BYTES);
  MAGIC.copy(out, 0);
  out.writeUInt16BE(version, MAGIC.length);
  return out;
}

/** One frame: marker, length, CRC-32 (zlib / ISO-HDLC polynomial) of the payload, payload. */
export function encodeFrame(payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD_BYTES) {
    throw new RangeError(`frame payload of ${payload.length} bytes exceeds ${MAX_FRAME_PAYLOAD_BYTES}`);
  }
  const head = Buffer.alloc(FRAME_HEADER_BYTES);
  FRAME_MARKER.copy(head, 0);
  head.writeUInt32BE(payload.length, 4);
  head.writeUInt32BE(crc32(payload), 8);
  return Buffer.concat([head, payload]);
}

export function payloadChecksum(payload: Uint8Array): number {
  return crc32(payload);
}
