import { randomBytes } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32, crc32Implementation } from "./crc32.js";

describe("crc32", () => {
  it("is zlib's CRC-32 for every length and for views at any offset", () => {
    const data = randomBytes(70_000);
    for (const [start, end] of [[0, 0], [0, 1], [3, 17], [1, 4096], [5, 65_541], [0, 70_000], [69_999, 70_000]] as const) {
      const view = data.subarray(start, end);
      expect(crc32(view), `bytes ${start}-${end}`).toBe(zlibCrc32(view));
    }
    const u8 = new Uint8Array(data.buffer, data.byteOffset + 7, 1000);
    expect(crc32(u8)).toBe(zlibCrc32(u8));
  });

  it("gives the check value of the CRC-32/ISO-HDLC catalogue entry", () => {
    expect(crc32(Buffer.from("123456789", "ascii"))).toBe(0xcbf43926);
  });

  it.runIf(process.platform === "linux" && ["x64", "arm64"].includes(process.arch))("uses the native implementation where a prebuilt binary exists", () => {
    expect(crc32Implementation).toBe("@node-rs/crc32");
  });
});
