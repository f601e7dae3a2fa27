// Real images for tests and the benchmark, made with sharp: render-like content (gradients, texture and
// sensor noise, not flat colour) so that PNG and JPEG sizes resemble real camera frames.
import sharp from "sharp";

/** Deterministic pseudo-random generator (mulberry32), so a seed gives the same image. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Raw RGBA8 pixels of a render-like frame: sky/ground gradient, parking-bay stripes, a car-like box,
 *  per-pixel sensor noise of the given amplitude. */
export function renderLikeRgba(width: number, height: number, seed: number, noise = 18): Buffer {
  const random = rng(seed);
  const data = Buffer.alloc(width * height * 4);
  const carX = Math.floor(random() * width * 0.6);
  const carY = Math.floor(height * 0.45 + random() * height * 0.2);
  const carColour = [random() * 255, random() * 255, random() * 255];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      let r: number, g: number, b: number;
      if (y < height * 0.35) {
        r = 120 + (y / height) * 80;
        g = 160 + (y / height) * 60;
        b = 220;
      } else {
        const stripe = (x % 160) < 6 ? 90 : 0;
        r = g = b = 70 + ((x * 7 + y * 3) % 23) + stripe;
      }
      if (x > carX && x < carX + width * 0.3 && y > carY && y < carY + height * 0.2) {
        r = carColour[0] ?? 0;
        g = carColour[1] ?? 0;
        b = carColour[2] ?? 0;
      }
      const n = (random() - 0.5) * 2 * noise;
      data[i] = Math.max(0, Math.min(255, r + n));
      data[i + 1] = Math.max(0, Math.min(255, g + n));
      data[i + 2] = Math.max(0, Math.min(255, b + n));
      data[i + 3] = 255;
    }
  }
  return data;
}

export async function makePng(width: number, height: number, seed: number, noise?: number): Promise<Buffer> {
  return sharp(renderLikeRgba(width, height, seed, noise), { raw: { width, height, channels: 4 } }).png().toBuffer();
}

export async function makeJpeg(width: number, height: number, seed: number, quality = 80, noise?: number): Promise<Buffer> {
  return sharp(renderLikeRgba(width, height, seed, noise), { raw: { width, height, channels: 4 } }).jpeg({ quality }).toBuffer();
}
