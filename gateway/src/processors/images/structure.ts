// Structural checks of encoded images: walk the container without decoding pixels. Cheap (a pass over
// the bytes) and enough to catch truncation and most corruption: PNG chunks carry CRCs, a JPEG must
// reach its EOI marker, a WebP's RIFF size must match. Full decoding is the "decode" verify mode.
import { crc32 } from "node:zlib";

export type StructureResult =
  | { ok: true; width: number; height: number }
  | { ok: false; reason: "not-an-image" | "truncated"; detail: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function checkPng(data: Buffer): StructureResult {
  if (data.length < 8 || !data.subarray(0, 8).equals(PNG_SIGNATURE)) {
    return { ok: false, reason: "not-an-image", detail: "no PNG signature" };
  }
  let pos = 8;
  let width = 0;
  let height = 0;
  let sawIdat = false;
  let first = true;
  while (pos < data.length) {
    if (pos + 12 > data.length) return { ok: false, reason: "truncated", detail: `chunk header cut at byte ${pos}` };
    const length = data.readUInt32BE(pos);
    const type = data.toString("latin1", pos + 4, pos + 8);
    const end = pos + 8 + length + 4;
    if (length > 0x7fffffff || end > data.length) {
      return { ok: false, reason: "truncated", detail: `chunk ${type} runs past the end (${end} > ${data.length})` };
    }
    const crc = data.readUInt32BE(pos + 8 + length);
    if (crc32(data.subarray(pos + 4, pos + 8 + length)) !== crc) {
      return { ok: false, reason: "truncated", detail: `chunk ${type} at byte ${pos}: CRC mismatch` };
    }
    if (first) {
      if (type !== "IHDR" || length !== 13) return { ok: false, reason: "not-an-image", detail: "first chunk is not IHDR" };
      width = data.readUInt32BE(pos + 8);
      height = data.readUInt32BE(pos + 12);
      first = false;
    }
    if (type === "IDAT") sawIdat = true;
    if (type === "IEND") {
      if (!sawIdat) return { ok: false, reason: "truncated", detail: "no IDAT chunk" };
      if (end !== data.length) return { ok: false, reason: "truncated", detail: "bytes after IEND" };
      return { ok: true, width, height };
    }
    pos = end;
  }
  return { ok: false, reason: "truncated", detail: "no IEND chunk" };
}

// Markers without a length field: SOI, EOI, RSTn, TEM.
function standalone(marker: number): boolean {
  return marker === 0xd8 || marker === 0xd9 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01;
}
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

export function checkJpeg(data: Buffer): StructureResult {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8 || data[2] !== 0xff) {
    return { ok: false, reason: "not-an-image", detail: "no JPEG SOI marker" };
  }
  let pos = 2;
  let width = 0;
  let height = 0;
  let sawScan = false;
  while (pos < data.length) {
    if (data[pos] !== 0xff) return { ok: false, reason: "truncated", detail: `expected a marker at byte ${pos}` };
    while (pos < data.length && data[pos] === 0xff) pos++; // fill bytes
    if (pos >= data.length) break;
    const marker = data[pos] as number;
    pos++;
    if (marker === 0xd9) {
      if (!sawScan || width === 0) return { ok: false, reason: "truncated", detail: "EOI before any frame or scan" };
      return { ok: true, width, height };
    }
    if (standalone(marker)) continue;
    if (pos + 2 > data.length) break;
    const length = data.readUInt16BE(pos);
    if (length < 2 || pos + length > data.length) return { ok: false, reason: "truncated", detail: `segment 0x${marker.toString(16)} runs past the end` };
    if (isStartOfFrame(marker)) {
      if (length < 7) return { ok: false, reason: "truncated", detail: "short SOF segment" };
      height = data.readUInt16BE(pos + 3);
      width = data.readUInt16BE(pos + 5);
    }
    pos += length;
    if (marker === 0xda) {
      sawScan = true;
      // Entropy-coded data: skip to the next marker that is not a stuffed 0xFF00 or a restart marker.
      for (;;) {
        const ff = data.indexOf(0xff, pos);
        if (ff < 0 || ff + 1 >= data.length) return { ok: false, reason: "truncated", detail: "scan data without an end marker" };
        const next = data[ff + 1] as number;
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
          pos = next === 0xff ? ff + 1 : ff + 2;
          continue;
        }
        pos = ff;
        break;
      }
    }
  }
  return { ok: false, reason: "truncated", detail: "no EOI marker" };
}

export function checkWebp(data: Buffer): StructureResult {
  if (data.length < 30 || data.toString("latin1", 0, 4) !== "RIFF" || data.toString("latin1", 8, 12) !== "WEBP") {
    return { ok: false, reason: "not-an-image", detail: "no RIFF/WEBP header" };
  }
  const riffSize = data.readUInt32LE(4);
  if (riffSize + 8 !== data.length) return { ok: false, reason: "truncated", detail: `RIFF size ${riffSize + 8} != ${data.length} bytes` };
  const chunk = data.toString("latin1", 12, 16);
  if (chunk === "VP8X") return { ok: true, width: 1 + data.readUIntLE(24, 3), height: 1 + data.readUIntLE(27, 3) };
  if (chunk === "VP8L") {
    const b = data.readUInt32LE(21);
    return { ok: true, width: (b & 0x3fff) + 1, height: ((b >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8 ") return { ok: true, width: data.readUInt16LE(26) & 0x3fff, height: data.readUInt16LE(28) & 0x3fff };
  return { ok: false, reason: "not-an-image", detail: `unknown WebP chunk ${chunk}` };
}
