// Camera images of the simulated gates: an SVG scene (asphalt, lane marks, the gate, a car of its colour
// with its plate, the time) rasterised by sharp, then asphalt texture and sensor noise from a seeded
// generator, so that the files have the size of real renders and the same seed gives the same bytes.
import sharp from "sharp";
import type { Car } from "./cars.js";
import { Prng } from "./prng.js";

export type ImageFormat = "png" | "jpeg";

export interface RenderRequest {
  seed: number;
  sequence: number;
  view: "entry" | "exit";
  cameraPrimPath: string;
  car: Car;
  /** What the plate shows: the car id, or "" when the plate is unreadable. */
  plateText: string;
  captureIso: string;
  simTimeSeconds: number;
  runId: string;
  width: number;
  height: number;
  format: ImageFormat;
  jpegQuality: number;
}

// Rendering is single-threaded per image in libvips; the simulator runs a few at once itself.
sharp.concurrency(1);
sharp.cache(false);

function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The scene in a 1280x720 view box; librsvg scales it to the requested size. */
export function sceneSvg(r: RenderRequest): string {
  const body = {
    sedan: { w: 520, h: 150, cabin: 110, cabinW: 330 },
    hatchback: { w: 470, h: 160, cabin: 120, cabinW: 300 },
    suv: { w: 560, h: 200, cabin: 130, cabinW: 400 },
    van: { w: 560, h: 260, cabin: 120, cabinW: 480 },
    pickup: { w: 580, h: 180, cabin: 120, cabinW: 260 },
  }[r.car.body];
  const cx = 640;
  const ground = 600;
  const left = cx - body.w / 2;
  const top = ground - body.h - 30;
  const armAngle = r.view === "entry" ? -62 : -70;
  const plate = r.plateText === "" ? "" : xml(r.plateText);
  const stripes = Array.from({ length: 7 }, (_, i) => `<rect x="${60 + i * 70}" y="-9" width="35" height="18" fill="#c62828"/>`).join("");
  const lanes = Array.from({ length: 9 }, (_, i) => {
    const x = -400 + i * 260;
    return `<polygon points="${x},720 ${x + 26},720 ${640 + (x - 640) * 0.18 + 4},300 ${640 + (x - 640) * 0.18},300" fill="#d8d4c4" opacity="0.55"/>`;
  }).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${r.width}" height="${r.height}" viewBox="0 0 1280 720" preserveAspectRatio="none">
<defs>
  <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#6f8fae"/><stop offset="1" stop-color="#b9c6d2"/></linearGradient>
  <linearGradient id="asphalt" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#55575a"/><stop offset="1" stop-color="#2f3134"/></linearGradient>
  <linearGradient id="glass" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#9fb4c8"/><stop offset="1" stop-color="#2b3947"/></linearGradient>
</defs>
<rect width="1280" height="300" fill="url(#sky)"/>
<rect x="0" y="190" width="1280" height="110" fill="#7b7f86"/>
${Array.from({ length: 16 }, (_, i) => `<rect x="${i * 80 + 6}" y="205" width="60" height="40" fill="#47515c"/>`).join("")}
<rect y="300" width="1280" height="420" fill="url(#asphalt)"/>
${lanes}
<g transform="translate(${r.view === "entry" ? 140 : 1140},560)">
  <rect x="-18" y="-170" width="36" height="170" fill="#e0e0e0" stroke="#333" stroke-width="3"/>
  <g transform="rotate(${r.view === "entry" ? armAngle : 180 - armAngle})"><rect x="0" y="-9" width="520" height="18" fill="#f5f5f5" stroke="#333" stroke-width="2"/>${stripes}</g>
</g>
<g>
  <ellipse cx="${cx}" cy="${ground + 8}" rx="${body.w / 2 + 30}" ry="26" fill="#000" opacity="0.45"/>
  <rect x="${cx - body.cabinW / 2}" y="${top - body.cabin}" width="${body.cabinW}" height="${body.cabin + 30}" rx="40" fill="${r.car.color.hex}" stroke="#111" stroke-width="4"/>
  <rect x="${cx - body.cabinW / 2 + 22}" y="${top - body.cabin + 18}" width="${body.cabinW - 44}" height="${body.cabin - 14}" rx="24" fill="url(#glass)"/>
  <rect x="${left}" y="${top}" width="${body.w}" height="${body.h}" rx="34" fill="${r.car.color.hex}" stroke="#111" stroke-width="4"/>
  <rect x="${left + 20}" y="${top + body.h * 0.55}" width="${body.w - 40}" height="${body.h * 0.22}" rx="10" fill="#1d1d1f"/>
  <ellipse cx="${left + 62}" cy="${top + 42}" rx="44" ry="22" fill="#fff7d6" stroke="#333" stroke-width="3"/>
  <ellipse cx="${left + body.w - 62}" cy="${top + 42}" rx="44" ry="22" fill="#fff7d6" stroke="#333" stroke-width="3"/>
  <rect x="${left + 18}" y="${ground - 40}" width="70" height="60" rx="10" fill="#111"/>
  <rect x="${left + body.w - 88}" y="${ground - 40}" width="70" height="60" rx="10" fill="#111"/>
  <rect x="${cx - 120}" y="${top + body.h - 62}" width="240" height="52" rx="6" fill="#f4f4ee" stroke="#111" stroke-width="4"/>
  <text x="${cx}" y="${top + body.h - 22}" font-family="DejaVu Sans Mono, monospace" font-weight="bold" font-size="38" text-anchor="middle" fill="#111">${plate}</text>
</g>
<rect x="0" y="0" width="1280" height="44" fill="#000" opacity="0.55"/>
<text x="16" y="30" font-family="DejaVu Sans Mono, monospace" font-size="22" fill="#f0f0f0">${xml(r.view.toUpperCase())} CAM ${xml(r.cameraPrimPath)}</text>
<text x="1264" y="30" font-family="DejaVu Sans Mono, monospace" font-size="22" fill="#f0f0f0" text-anchor="end">${xml(r.captureIso)}</text>
<rect x="0" y="684" width="1280" height="36" fill="#000" opacity="0.55"/>
<text x="16" y="710" font-family="DejaVu Sans Mono, monospace" font-size="20" fill="#f0f0f0">run ${xml(r.runId)} seq ${r.sequence} sim t=${r.simTimeSeconds.toFixed(3)} s</text>
</svg>`;
}

/** Adds a coarse asphalt texture and per-channel sensor noise in place (RGB, 8 bits per channel). */
export function addNoise(pixels: Buffer, width: number, height: number, prng: Prng): void {
  const block = 8;
  const blocksX = Math.ceil(width / block);
  const blocksY = Math.ceil(height / block);
  const coarse = new Int8Array(blocksX * blocksY);
  for (let i = 0; i < coarse.length; i++) coarse[i] = (prng.nextUint32() % 17) - 8;
  for (let y = 0; y < height; y++) {
    const rowBase = Math.floor(y / block) * blocksX;
    for (let x = 0; x < width; x++) {
      const r = prng.nextUint32();
      const grain = (((r & 0xff) + ((r >>> 8) & 0xff)) >> 4) - 16 + (coarse[rowBase + Math.floor(x / block)] ?? 0);
      const p = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const sensor = ((r >>> (16 + c * 5)) & 15) - 8;
        const v = (pixels[p + c] ?? 0) + grain + sensor;
        pixels[p + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
}

export async function renderImage(r: RenderRequest): Promise<Buffer> {
  const raster = await sharp(Buffer.from(sceneSvg(r)), { density: 72 })
    .resize(r.width, r.height, { fit: "fill" })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = raster.info;
  if (channels !== 3 || width !== r.width || height !== r.height) {
    throw new Error(`rasterised scene is ${width}x${height}x${channels}, expected ${r.width}x${r.height}x3`);
  }
  addNoise(raster.data, width, height, new Prng(r.seed, 1000 + r.sequence));
  const image = sharp(raster.data, { raw: { width, height, channels: 3 } });
  return r.format === "png"
    ? image.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer()
    : image.jpeg({ quality: r.jpegQuality, chromaSubsampling: "4:2:0" }).toBuffer();
}
