// The images stage: verify each image (complete, well-formed, of the declared encoding and dimensions),
// refuse oversized ones before decoding, convert raw RGBA8 to PNG or WebP, and compute sha256.
// Already encoded images pass through byte for byte: they are never re-encoded.
import { createHash } from "node:crypto";
import sharp from "sharp";
import { GatewayError } from "../../errors/gateway-error.js";
import type { ProcessedImage } from "../../model/outcome.js";
import type { ImageStage } from "../../model/stages.js";
import { IMAGE_ENCODINGS, type ValidImage } from "../validate/event-schema.js";
import { checkJpeg, checkPng, checkPngData, checkWebp, type StructureResult } from "./structure.js";

export interface ImageOptions {
  verify: "container" | "structural" | "decode";
  rawFormat: "png" | "webp";
  maxImagePixels: number;
}

const FORMATS = {
  [IMAGE_ENCODINGS.PNG]: { name: "png", contentType: "image/png", extension: "png", check: checkPng },
  [IMAGE_ENCODINGS.JPEG]: { name: "jpeg", contentType: "image/jpeg", extension: "jpg", check: checkJpeg },
  [IMAGE_ENCODINGS.WEBP]: { name: "webp", contentType: "image/webp", extension: "webp", check: checkWebp },
} as const;

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // Synchronous on purpose: WebCrypto's thread-pool digest costs more CPU (it copies the input); the
  // measurement is in test/bench/design-measurements.md.
  return createHash("sha256").update(bytes).digest("hex");
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export class ImageProcessor implements ImageStage {
  constructor(private readonly options: ImageOptions) {}

  async process(image: ValidImage, where: string): Promise<ProcessedImage> {
    const declaredPixels = image.width * image.height;
    if (declaredPixels > this.options.maxImagePixels) {
      throw new GatewayError("GW_ERR_IMAGE_PIXEL_LIMIT", `${where}: declared ${image.width}x${image.height} exceeds ${this.options.maxImagePixels} pixels`);
    }
    const data = asBuffer(image.data);
    if (image.encoding === IMAGE_ENCODINGS.RAW_RGBA8) return this.convertRaw(image, data, where);

    const format = FORMATS[image.encoding];
    const structure: StructureResult = format.check(data);
    if (!structure.ok) {
      const code = structure.reason === "truncated" ? "GW_ERR_IMAGE_TRUNCATED" : "GW_ERR_IMAGE_NOT_AN_IMAGE";
      throw new GatewayError(code, `${where}: not a complete ${format.name}: ${structure.detail}`);
    }
    if (structure.width * structure.height > this.options.maxImagePixels) {
      throw new GatewayError("GW_ERR_IMAGE_PIXEL_LIMIT", `${where}: ${structure.width}x${structure.height} exceeds ${this.options.maxImagePixels} pixels`);
    }
    if (structure.width !== image.width || structure.height !== image.height) {
      throw new GatewayError("GW_ERR_IMAGE_DIMENSIONS", `${where}: declared ${image.width}x${image.height}, the ${format.name} is ${structure.width}x${structure.height}`);
    }
    if (structure.pngData && this.options.verify !== "container") {
      // After the pixel and dimension checks, so the inflated size is bounded by the pixel limit.
      const bad = await checkPngData(structure.pngData);
      if (bad && !bad.ok) throw new GatewayError("GW_ERR_IMAGE_TRUNCATED", `${where}: not a complete png: ${bad.detail}`);
    }
    if (this.options.verify === "decode") await this.decodeFully(data, format.name, where);
    return {
      view: image.view,
      cameraPrimPath: image.cameraPrimPath,
      bytes: data,
      contentType: format.contentType,
      extension: format.extension,
      width: structure.width,
      height: structure.height,
      sha256: await sha256Hex(data),
    };
  }

  private async decodeFully(data: Buffer, expected: string, where: string): Promise<void> {
    try {
      const { info } = await sharp(data, { failOn: "truncated", limitInputPixels: this.options.maxImagePixels })
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.width <= 0) throw new Error("empty image");
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      const code = /unsupported image format/i.test(text) ? "GW_ERR_IMAGE_NOT_AN_IMAGE" : "GW_ERR_IMAGE_TRUNCATED";
      throw new GatewayError(code, `${where}: the ${expected} does not decode: ${text}`);
    }
  }

  private async convertRaw(image: ValidImage, data: Buffer, where: string): Promise<ProcessedImage> {
    const expected = image.width * image.height * 4;
    if (data.length !== expected) {
      throw new GatewayError("GW_ERR_IMAGE_DIMENSIONS", `${where}: raw RGBA8 ${image.width}x${image.height} needs ${expected} bytes, got ${data.length}`);
    }
    const pipeline = sharp(data, { raw: { width: image.width, height: image.height, channels: 4 }, limitInputPixels: this.options.maxImagePixels });
    const webp = this.options.rawFormat === "webp";
    // exact: keep the RGB of fully transparent pixels (libwebp otherwise drops it to compress better),
    // so the stored image is pixel-exact, alpha 0 included.
    const bytes = webp ? await pipeline.webp({ lossless: true, exact: true, effort: 2 }).toBuffer() : await pipeline.png({ compressionLevel: 6 }).toBuffer();
    return {
      view: image.view,
      cameraPrimPath: image.cameraPrimPath,
      bytes,
      contentType: webp ? "image/webp" : "image/png",
      extension: webp ? "webp" : "png",
      width: image.width,
      height: image.height,
      sha256: await sha256Hex(bytes),
    };
  }
}
