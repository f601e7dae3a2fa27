// Measures the cost of verifying one camera frame: the structural check (container walk, PNG CRCs)
// against a full decode with sharp. Prints per-image times; used to pick images.verify's default.
//   npx tsx test/bench/image-verify.ts [iterations]
import { performance } from "node:perf_hooks";
import sharp from "sharp";
import { checkJpeg, checkPng, checkPngData } from "../../gateway/src/processors/images/structure.js";
import { makeJpeg, makePng } from "../support/images.js";

const iterations = Number(process.argv[2] ?? 50);

async function time(label: string, fn: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await fn();
  const ms = (performance.now() - t0) / iterations;
  console.log(`${label.padEnd(44)} ${ms.toFixed(3).padStart(9)} ms/image`);
  return ms;
}

async function main(): Promise<void> {
const png = await makePng(1280, 720, 7);
const jpeg = await makeJpeg(1280, 720, 7, 80);
console.log(`1280x720 render-like frames: PNG ${(png.length / 1e6).toFixed(2)} MB, JPEG ${(jpeg.length / 1e3).toFixed(0)} KB; ${iterations} iterations, sharp concurrency ${sharp.concurrency()}`);
const decode = (b: Buffer) => sharp(b, { failOn: "truncated" }).raw().toBuffer();
const ps = await time("PNG  structural (chunks + CRC32)", () => checkPng(png));
const pngData = (() => {
  const r = checkPng(png);
  if (!r.ok || !r.pngData) throw new Error("the bench PNG does not pass the structural check");
  return r.pngData;
})();
const pi = await time("PNG  IDAT inflate + size (zlib, thread pool)", async () => {
  const bad = await checkPngData(pngData);
  if (bad) throw new Error(`unexpected: ${JSON.stringify(bad)}`);
});
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < iterations; i++) await checkPngData(pngData);
const cpu = process.cpuUsage(cpu0);
console.log(`${"PNG  IDAT inflate: process CPU (all threads)".padEnd(44)} ${((cpu.user + cpu.system) / 1000 / iterations).toFixed(3).padStart(9)} ms/image (wall ${((performance.now() - t0) / iterations).toFixed(3)} ms)`);
const pd = await time("PNG  full decode (sharp)", () => decode(png));
const js = await time("JPEG structural (segments + scan to EOI)", () => checkJpeg(jpeg));
const jd = await time("JPEG full decode (sharp)", () => decode(jpeg));
console.log(`full decode / structural: PNG ${(pd / (ps + pi)).toFixed(1)}x (structural incl. inflate ${(ps + pi).toFixed(2)} ms), JPEG ${(jd / js).toFixed(0)}x`);
}

void main();
