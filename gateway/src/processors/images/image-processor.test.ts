import { createHash } from "node:crypto";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../errors/gateway-error.js";
import { ImageProcessor } from "./image-processor.js";
import { checkJpeg, checkPng, checkWebp } from "./structure.js";

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
    expect(checkPng(png)).toEqual({ ok: true, width: W, height: H });
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
