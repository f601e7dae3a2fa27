// CRC-32 (zlib / ISO-HDLC polynomial) for the PNG chunk check and the .simrec frames. Both run over
// every byte received: a two-PNG event is ~2 MB of chunks. @node-rs/crc32 computes it with the CPU's
// carry-less multiply instructions; node:zlib's crc32 (the fallback where no prebuilt binary exists for
// the platform) does not. Same function, same results.
import { createRequire } from "node:module";
import { crc32 as zlibCrc32 } from "node:zlib";

type Crc32 = (data: Uint8Array) => number;

function load(): { crc32: Crc32; implementation: "@node-rs/crc32" | "node:zlib" } {
  try {
    const native = createRequire(import.meta.url)("@node-rs/crc32") as { crc32: (data: Buffer, initial?: number) => number };
    return {
      crc32: (data) => native.crc32(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)),
      implementation: "@node-rs/crc32",
    };
  } catch {
    return { crc32: zlibCrc32, implementation: "node:zlib" };
  }
}

const loaded = load();

/** The CRC-32 of `data` (a view is read in place), as an unsigned 32-bit number. */
export const crc32: Crc32 = loaded.crc32;
/** Which implementation `crc32` is: the native one, or node:zlib where it could not be loaded. */
export const crc32Implementation = loaded.implementation;
