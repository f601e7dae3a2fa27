// Structural checks of encoded images: walk the container without decoding pixels. Cheap (a pass over
// the bytes) and enough to catch truncation and most corruption: PNG chunks carry CRCs, the IHDR must be
// a valid combination and the IDAT stream must inflate (zlib integrity) to exactly the size the header
// implies; a JPEG must reach its EOI marker with nothing after it; a WebP's RIFF size must match.
// Full decoding is the "decode" verify mode.
import { createInflate } from "node:zlib";
import { crc32 } from "../../checksums/crc32.js";

export type StructureResult =
  | { ok: true; width: number; height: number; pngData?: PngData }
  | { ok: false; reason: "not-an-image" | "truncated"; detail: string };

/** A PNG's compressed image data and the size it must inflate to (checked by checkPngData). */
export interface PngData {
  idat: Buffer[];
  expectedBytes: number;
}

// Allowed bit depths per colour type (PNG spec, table 11.1) and samples per pixel.
const PNG_COLOUR_TYPES: Readonly<Record<number, { depths: readonly number[]; channels: number }>> = {
  0: { depths: [1, 2, 4, 8, 16], channels: 1 },
  2: { depths: [8, 16], channels: 3 },
  3: { depths: [1, 2, 4, 8], channels: 1 },
  4: { depths: [8, 16], channels: 2 },
  6: { depths: [8, 16], channels: 4 },
};

// Adam7 passes: x start, y start, x step, y step.
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Bytes of filtered scanlines (one filter byte per row) the IDAT stream must inflate to. */
export function pngInflatedSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number): number => (w === 0 || h === 0 ? 0 : h * (1 + Math.ceil((w * bitsPerPixel) / 8)));
  if (!interlaced) return rows(width, height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) total += rows(Math.max(0, Math.ceil((width - x0) / dx)), Math.max(0, Math.ceil((height - y0) / dy)));
  return total;
}

function checkIhdr(data: Buffer, at: number): string | undefined {
  const width = data.readUInt32BE(at);
  const height = data.readUInt32BE(at + 4);
  const depth = data[at + 8] as number;
  const colourType = data[at + 9] as number;
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) return `IHDR size ${width}x${height} is invalid`;
  const spec = PNG_COLOUR_TYPES[colourType];
  if (!spec) return `IHDR colour type ${colourType} is invalid`;
  if (!spec.depths.includes(depth)) return `IHDR bit depth ${depth} is invalid for colour type ${colourType}`;
  if (data[at + 10] !== 0) return `IHDR compression method ${data[at + 10]} is invalid`;
  if (data[at + 11] !== 0) return `IHDR filter method ${data[at + 11]} is invalid`;
  if (data[at + 12] !== 0 && data[at + 12] !== 1) return `IHDR interlace method ${data[at + 12]} is invalid`;
  return undefined;
}

// Output piece size: zlib's default 16 KiB piece makes inflating a whole frame markedly slower (fewer,
// larger pieces; test/bench/image-verify.ts); 1 MiB per check in flight is the memory price.
const INFLATE_CHUNK = 1024 * 1024;

/**
 * Inflates a PNG's IDAT stream (zlib, no defiltering) and checks its integrity (zlib header, deflate
 * data, Adler-32, complete) and that it holds exactly the bytes the header implies. Runs on the zlib
 * thread pool, in 1 MiB pieces that are counted and dropped, so memory stays small whatever the size.
 */
export async function checkPngData(png: PngData): Promise<StructureResult | undefined> {
  // At most a few at once: each running check holds a copy of the IDAT data and a 1 MiB output piece,
  // so unbounded the peak memory grows with the events in flight (test/bench/design-measurements.md).
  while (running >= MAX_CONCURRENT_INFLATES) await new Promise<void>((wake) => waiting.push(wake));
  running++;
  try {
    return await inflateAndCount(png);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

const MAX_CONCURRENT_INFLATES = 2;
let running = 0;
const waiting: Array<() => void> = [];

function inflateAndCount(png: PngData): Promise<StructureResult | undefined> {
  return new Promise((resolve) => {
    let size = 0;
    let settled = false;
    const finish = (result: StructureResult | undefined): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const inflate = createInflate({ chunkSize: INFLATE_CHUNK });
    inflate.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > png.expectedBytes) {
        finish({ ok: false, reason: "truncated", detail: `IDAT data inflates to more than the ${png.expectedBytes} bytes the header implies` });
        inflate.destroy();
      }
    });
    inflate.on("error", (err: Error) => finish({ ok: false, reason: "truncated", detail: `IDAT data is not a valid zlib stream: ${err.message}` }));
    inflate.on("end", () =>
      finish(size === png.expectedBytes ? undefined : { ok: false, reason: "truncated", detail: `IDAT data inflates to ${size} bytes, the header implies ${png.expectedBytes}` }),
    );
    // One write: the encoder's many small IDAT chunks written one by one cost about twice the time.
    inflate.end(png.idat.length === 1 ? png.idat[0] : Buffer.concat(png.idat));
  });
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function checkPng(data: Buffer): StructureResult {
  if (data.length < 8 || !data.subarray(0, 8).equals(PNG_SIGNATURE)) {
    return { ok: false, reason: "not-an-image", detail: "no PNG signature" };
  }
  let pos = 8;
  let width = 0;
  let height = 0;
  let bitsPerPixel = 0;
  let interlaced = false;
  let colourType = 0;
  let sawPlte = false;
  const idat: Buffer[] = [];
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
      const bad = checkIhdr(data, pos + 8);
      if (bad !== undefined) return { ok: false, reason: "not-an-image", detail: bad };
      width = data.readUInt32BE(pos + 8);
      height = data.readUInt32BE(pos + 12);
      colourType = data[pos + 17] as number;
      bitsPerPixel = (data[pos + 16] as number) * (PNG_COLOUR_TYPES[colourType]?.channels ?? 0);
      interlaced = data[pos + 20] === 1;
      first = false;
    }
    if (type === "PLTE") sawPlte = true;
    if (type === "IDAT") idat.push(data.subarray(pos + 8, pos + 8 + length));
    if (type === "IEND") {
      if (idat.length === 0) return { ok: false, reason: "truncated", detail: "no IDAT chunk" };
      if (colourType === 3 && !sawPlte) return { ok: false, reason: "truncated", detail: "palette image without a PLTE chunk" };
      if (end !== data.length) return { ok: false, reason: "truncated", detail: `${data.length - end} bytes after IEND` };
      return { ok: true, width, height, pngData: { idat, expectedBytes: pngInflatedSize(width, height, bitsPerPixel, interlaced) } };
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
      if (pos !== data.length) return { ok: false, reason: "truncated", detail: `${data.length - pos} bytes after EOI` };
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
  if (data.length < 12 || data.toString("latin1", 0, 4) !== "RIFF" || data.toString("latin1", 8, 12) !== "WEBP") {
    return { ok: false, reason: "not-an-image", detail: "no RIFF/WEBP header" };
  }
  const riffSize = data.readUInt32LE(4);
  if (riffSize + 8 > data.length) return { ok: false, reason: "truncated", detail: `RIFF size ${riffSize + 8} > ${data.length} bytes: truncated` };
  if (riffSize + 8 < data.length) return { ok: false, reason: "truncated", detail: `${data.length - riffSize - 8} bytes after the RIFF chunk` };
  if (data.length < 30) return { ok: false, reason: "truncated", detail: `${data.length} bytes: too short for a WebP header` };
  const chunkSize = data.readUInt32LE(16);
  if (20 + chunkSize > data.length) return { ok: false, reason: "truncated", detail: `first chunk runs past the end (${20 + chunkSize} > ${data.length})` };
  const chunk = data.toString("latin1", 12, 16);
  if (chunk === "VP8X") return { ok: true, width: 1 + data.readUIntLE(24, 3), height: 1 + data.readUIntLE(27, 3) };
  if (chunk === "VP8L") {
    const b = data.readUInt32LE(21);
    return { ok: true, width: (b & 0x3fff) + 1, height: ((b >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8 ") return { ok: true, width: data.readUInt16LE(26) & 0x3fff, height: data.readUInt16LE(28) & 0x3fff };
  return { ok: false, reason: "not-an-image", detail: `unknown WebP chunk ${chunk}` };
}
