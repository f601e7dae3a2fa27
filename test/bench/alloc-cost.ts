// What a fresh large buffer costs, against the checks the gateway runs on every PNG frame: CPU time per
// call (process.cpuUsage, so it holds on a loaded machine). Run it twice, with and without glibc's
// malloc kept from returning large blocks to the kernel, to see the page-fault cost of each new buffer:
//   npx tsx test/bench/alloc-cost.ts
//   MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728 npx tsx test/bench/alloc-cost.ts
import { createHash } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, crc32Implementation } from "../../gateway/src/checksums/crc32.js";

const frame = Buffer.alloc(1_100_000);
for (let i = 0; i < frame.length; i++) frame[i] = (i * 2654435761) >>> 24;

function time(label: string, fn: () => unknown, n = 200): void {
  for (let i = 0; i < 5; i++) fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const c = process.cpuUsage(c0);
  console.log(`${label.padEnd(58)} ${((c.user + c.system) / 1000 / n).toFixed(3).padStart(7)} ms CPU`);
}

time("CRC-32 of a 1.1 MB frame, node:zlib", () => zlibCrc32(frame));
time(`CRC-32 of a 1.1 MB frame, the gateway's (${crc32Implementation})`, () => crc32(frame));
time("sha256 of a 1.1 MB frame", () => createHash("sha256").update(frame).digest("hex"));
time("a new 2.2 MB buffer, two frames copied in (reassembly)", () => {
  const out = Buffer.allocUnsafe(2 * frame.length);
  frame.copy(out);
  frame.copy(out, frame.length);
});
time("35 new 64 KiB socket chunks concatenated (2.2 MB)", () => Buffer.concat(Array.from({ length: 35 }, () => Buffer.allocUnsafe(65536))));
