import { createHash } from "node:crypto";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../errors/gateway-error.js";
import { ImageProcessor } from "./image-processor.js";
import { deflateSync, crc32 } from "node:zlib";
import { checkJpeg, checkPng, checkWebp, pngInflatedSize } from "./structure.js";

function noisyRgba(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 4);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = i % 4 === 3 ? 255 : (s >>> 16) & 0xff;
  }
  return data;
}

const W = 64;
const H = 48;
let rgba: Buffer;
let png: Buffer;
let jpeg: Buffer;
let progressiveJpeg: Buffer;
let webp: Buffer;

beforeAll(async () => {
  rgba = noisyRgba(W, H);
  const input = (): sharp.Sharp => sharp(rgba, { raw: { width: W, height: H, channels: 4 } });
  png = await input().png().toBuffer();
  jpeg = await input().jpeg().toBuffer();
  progressiveJpeg = await input().jpeg({ progressive: true }).toBuffer();
  webp = await input().webp().toBuffer();
});

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

async function codeOf(p: ImageProcessor, encoding: 1 | 2 | 3 | 4, data: Buffer, width = W, height = H): Promise<string> {
  try {
    await p.process({ view: "v", cameraPrimPath: "", encoding, width, height, data }, "img");
    return "ok";
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

describe("structure checks", () => {
  it("read the dimensions of complete images", () => {
    expect(checkPng(png)).toMatchObject({ ok: true, width: W, height: H });
    expect(checkJpeg(jpeg)).toEqual({ ok: true, width: W, height: H });
    expect(checkJpeg(progressiveJpeg)).toEqual({ ok: true, width: W, height: H });
    expect(checkWebp(webp)).toEqual({ ok: true, width: W, height: H });
  });

  it("find truncation anywhere", () => {
    for (const cut of [0.1, 0.5, 0.9, 0.999]) {
      expect(checkPng(png.subarray(0, Math.floor(png.length * cut))).ok).toBe(false);
      expect(checkJpeg(jpeg.subarray(0, Math.floor(jpeg.length * cut))).ok).toBe(false);
      expect(checkWebp(webp.subarray(0, Math.floor(webp.length * cut))).ok).toBe(false);
    }
    expect(checkJpeg(jpeg.subarray(0, jpeg.length - 2)).ok).toBe(false);
  });

  it("find a flipped byte in PNG data through the chunk CRC", () => {
    const corrupt = Buffer.from(png);
    const at = Math.floor(corrupt.length / 2);
    corrupt[at] = (corrupt[at] ?? 0) ^ 0xff;
    expect(checkPng(corrupt)).toMatchObject({ ok: false, reason: "truncated" });
  });
});

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/** A PNG built chunk by chunk (correct CRCs), so that only what a case changes is wrong. */
function craftPng(width: number, height: number, depth: number, colourType: number, idat: Buffer, interlace = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([depth, colourType, 0, 0, interlace], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

describe("PNG image data (IHDR combinations, IDAT inflated to the size the header implies)", () => {
  const p = new ImageProcessor({ verify: "structural", rawFormat: "png", maxImagePixels: 40_000_000 });
  const rowBytes = 1 + W * 4;
  const code = (data: Buffer, w = W, h = H): Promise<string> => codeOf(p, 1, data, w, h);

  it("accepts a crafted valid RGBA8 PNG and interlaced PNGs from sharp", async () => {
    expect(await code(craftPng(W, H, 8, 6, deflateSync(Buffer.alloc(rowBytes * H))))).toBe("ok");
    for (const [w, h] of [[W, H], [1, 1], [3, 7], [9, 2]] as const) {
      const interlaced = await sharp(noisyRgba(w, h), { raw: { width: w, height: h, channels: 4 } }).png({ progressive: true }).toBuffer();
      expect(interlaced[28], "interlace byte").toBe(1);
      expect(await code(interlaced, w, h), `${w}x${h}`).toBe("ok");
    }
  });

  it("computes the Adam7 sizes", () => {
    expect(pngInflatedSize(1, 1, 32, true)).toBe(1 + 4);
    // 8x8 at 8 bits: passes are 1x1, 1x1, 2x1, 2x2, 4x2, 4x4, 8x4 → rows (1+w) each.
    expect(pngInflatedSize(8, 8, 8, true)).toBe(1 * 2 + 1 * 2 + 1 * 3 + 2 * 3 + 2 * 5 + 4 * 5 + 4 * 9);
    expect(pngInflatedSize(10, 3, 1, false)).toBe(3 * (1 + 2));
  });

  it("rejects random IDAT bytes, one row only, a 6000x6000 header with a tiny IDAT, trailing zlib data", async () => {
    const random = Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 7919 + 13) & 0xff));
    expect(await code(craftPng(W, H, 8, 6, random))).toBe("GW_ERR_IMAGE_TRUNCATED");
    expect(await code(craftPng(W, H, 8, 6, deflateSync(Buffer.alloc(rowBytes))))).toBe("GW_ERR_IMAGE_TRUNCATED");
    expect(await code(craftPng(6000, 6000, 8, 6, deflateSync(Buffer.alloc(rowBytes))), 6000, 6000)).toBe("GW_ERR_IMAGE_TRUNCATED");
    expect(await code(craftPng(W, H, 8, 6, deflateSync(Buffer.alloc(rowBytes * H + 1))))).toBe("GW_ERR_IMAGE_TRUNCATED");
    const cut = deflateSync(Buffer.alloc(rowBytes * H));
    expect(await code(craftPng(W, H, 8, 6, cut.subarray(0, cut.length - 3)))).toBe("GW_ERR_IMAGE_TRUNCATED");
  });

  it("container mode skips the IDAT inflation (cheaper) and so accepts what only it catches", async () => {
    const container = new ImageProcessor({ verify: "container", rawFormat: "png", maxImagePixels: 40_000_000 });
    expect(await codeOf(container, 1, craftPng(W, H, 8, 6, deflateSync(Buffer.alloc(rowBytes))), W, H)).toBe("ok");
    expect(await codeOf(container, 1, craftPng(W, H, 7, 6, deflateSync(Buffer.alloc(rowBytes))), W, H)).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
  });

  it("rejects invalid IHDR combinations", async () => {
    const idat = deflateSync(Buffer.alloc(rowBytes * H));
    for (const [depth, colourType] of [[7, 6], [4, 6], [16, 3], [8, 5], [2, 2], [1, 4]] as const) {
      expect(await code(craftPng(W, H, depth, colourType, idat)), `depth ${depth} type ${colourType}`).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
    }
    expect(await code(craftPng(W, H, 8, 6, idat, 2))).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
  });
});

describe("consistent handling of trailing and missing bytes", () => {
  it("rejects bytes after a JPEG's EOI as after a PNG's IEND", () => {
    expect(checkJpeg(Buffer.concat([jpeg, Buffer.from("trailer")]))).toMatchObject({ ok: false, reason: "truncated" });
    expect(checkPng(Buffer.concat([png, Buffer.from("trailer")]))).toMatchObject({ ok: false, reason: "truncated" });
    expect(checkWebp(Buffer.concat([webp, Buffer.from("trailer")]))).toMatchObject({ ok: false, reason: "truncated" });
  });

  it("calls a WebP cut anywhere after its 12-byte signature truncated", () => {
    for (let n = 12; n < webp.length; n++) expect(checkWebp(webp.subarray(0, n)), `cut at ${n}`).toMatchObject({ ok: false, reason: "truncated" });
  });
});

describe.each(["structural", "decode"] as const)("ImageProcessor (%s)", (verify) => {
  const p = new ImageProcessor({ verify, rawFormat: "png", maxImagePixels: 10_000 });

  it("passes PNG, JPEG and WebP through byte for byte with their sha256", async () => {
    for (const [encoding, data, type] of [[1, png, "image/png"], [2, jpeg, "image/jpeg"], [4, webp, "image/webp"]] as const) {
      const out = await p.process({ view: "v", cameraPrimPath: "/c", encoding, width: W, height: H, data }, "img");
      expect(out.bytes.equals(data)).toBe(true);
      expect(out.sha256).toBe(sha(data));
      expect(out.contentType).toBe(type);
      expect([out.width, out.height]).toEqual([W, H]);
    }
  });

  it("rejects a truncated PNG and JPEG", async () => {
    expect(await codeOf(p, 1, png.subarray(0, png.length - 20))).toBe("GW_ERR_IMAGE_TRUNCATED");
    expect(await codeOf(p, 2, jpeg.subarray(0, Math.floor(jpeg.length * 0.7)))).toBe("GW_ERR_IMAGE_TRUNCATED");
  });

  it("rejects bytes that are not an image, or not of the declared encoding", async () => {
    expect(await codeOf(p, 1, Buffer.from("this is not an image at all, just some text"))).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
    expect(await codeOf(p, 1, jpeg)).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
    expect(await codeOf(p, 2, png)).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
  });

  it("rejects dimensions that disagree", async () => {
    expect(await codeOf(p, 1, png, W + 1, H)).toBe("GW_ERR_IMAGE_DIMENSIONS");
    expect(await codeOf(p, 2, jpeg, W, H - 1)).toBe("GW_ERR_IMAGE_DIMENSIONS");
    expect(await codeOf(p, 3, rgba.subarray(4), W, H)).toBe("GW_ERR_IMAGE_DIMENSIONS");
  });

  it("refuses images over the pixel limit, declared or real", async () => {
    expect(await codeOf(p, 1, png, 200, 200)).toBe("GW_ERR_IMAGE_PIXEL_LIMIT");
    const small = new ImageProcessor({ verify, rawFormat: "png", maxImagePixels: W * H - 1 });
    // Declared small, real size over the limit: refused from the header, before any decoding.
    expect(await codeOf(small, 1, png, 10, 10)).toBe("GW_ERR_IMAGE_PIXEL_LIMIT");
  });
});

describe("raw RGBA8 conversion", () => {
  it.each(["png", "webp"] as const)("encodes to lossless %s", async (rawFormat) => {
    const p = new ImageProcessor({ verify: "structural", rawFormat, maxImagePixels: 10_000 });
    const out = await p.process({ view: "v", cameraPrimPath: "", encoding: 3, width: W, height: H, data: rgba }, "img");
    expect(out.contentType).toBe(`image/${rawFormat}`);
    expect(out.sha256).toBe(sha(out.bytes));
    const back = await sharp(out.bytes).ensureAlpha().raw().toBuffer();
    expect(back.equals(rgba)).toBe(true);
  });

  it.each(["png", "webp"] as const)("keeps every channel of transparent and half-transparent pixels in %s", async (rawFormat) => {
    const data = noisyRgba(W, H);
    for (let i = 0; i < W * H; i++) data[i * 4 + 3] = i % 3 === 0 ? 0 : i % 3 === 1 ? 128 : 255;
    const p = new ImageProcessor({ verify: "structural", rawFormat, maxImagePixels: 10_000 });
    const out = await p.process({ view: "v", cameraPrimPath: "", encoding: 3, width: W, height: H, data }, "img");
    const back = await sharp(out.bytes).ensureAlpha().raw().toBuffer();
    expect(back.length).toBe(data.length);
    let differing = 0;
    for (let i = 0; i < data.length; i++) if (back[i] !== data[i]) differing++;
    expect(differing).toBe(0);
  });
});
