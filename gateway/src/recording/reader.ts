// Reads .simrec files frame by frame, without loading the file: each frame is checked (marker, length,
// CRC-32, protobuf) and problems are reported at the exact frame and byte offset.
import "./protobuf-numbers.js";
import { simgate } from "../generated/simgate.js";
import { BufferSource, FileSource, type ByteSource } from "./byte-source.js";
import { RecordingError, RecordingErrorCode } from "./errors.js";
import {
  FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  FRAME_MARKER,
  MAGIC,
  MAX_FRAME_PAYLOAD_BYTES,
  PREAMBLE_BYTES,
  payloadChecksum,
} from "./format.js";

export interface RecordedFrame {
  kind: "frame";
  /** 0 for the first frame after the header. */
  index: number;
  /** Byte offset of the frame's marker: a stable identity of the frame within its file. */
  offset: number;
  /** Bytes of the whole frame, marker to end of payload. */
  byteLength: number;
  frame: simgate.v1.ClientFrame;
}

export interface CorruptFrame {
  kind: "corrupt";
  error: RecordingError;
}

export type RecordingItem = RecordedFrame | CorruptFrame;

export interface ReadOptions {
  /** Go on after a damaged frame at the next frame whose marker and checksum are good. */
  skipCorrupt?: boolean;
}

type RawFrame = { ok: true; payload: Buffer; next: number } | { ok: false; error: RecordingError };

const SCAN_CHUNK_BYTES = 1024 * 1024;

export class RecordingReader {
  private constructor(
    private readonly source: ByteSource,
    readonly header: simgate.v1.RecordingHeader,
    /** The header frame's payload bytes, e.g. to fingerprint the recording. */
    readonly headerPayload: Buffer,
    /** Offset of the first frame after the header. */
    readonly dataOffset: number,
  ) {}

  static async open(path: string): Promise<RecordingReader> {
    const source = await FileSource.open(path);
    try {
      return await RecordingReader.fromSource(source);
    } catch (err) {
      await source.close();
      throw err;
    }
  }

  static async fromBytes(bytes: Uint8Array): Promise<RecordingReader> {
    return RecordingReader.fromSource(new BufferSource(bytes));
  }

  static async fromSource(source: ByteSource): Promise<RecordingReader> {
    const pre = await source.read(0, PREAMBLE_BYTES);
    if (pre.length < MAGIC.length || !pre.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new RecordingError(RecordingErrorCode.BadMagic, 'not a recording: the file does not start with "SIMREC"', -1, 0);
    }
    if (pre.length < PREAMBLE_BYTES) {
      throw new RecordingError(RecordingErrorCode.Truncated, "the file ends inside the preamble", -1, pre.length);
    }
    const version = pre.readUInt16BE(MAGIC.length);
    if (version !== FORMAT_VERSION) {
      throw new RecordingError(
        RecordingErrorCode.UnsupportedVersion,
        `format version ${version}; this reader knows version ${FORMAT_VERSION}`,
        -1,
        MAGIC.length,
      );
    }
    const raw = await readRawFrame(source, PREAMBLE_BYTES, -1);
    if (!raw.ok) {
      const e = raw.error;
      const code = e.code === RecordingErrorCode.Truncated ? e.code : RecordingErrorCode.BadHeader;
      throw new RecordingError(code, `header frame: ${e.message}`, -1, e.offset);
    }
    let header: simgate.v1.RecordingHeader;
    try {
      header = simgate.v1.RecordingHeader.decode(raw.payload);
    } catch (err) {
      throw new RecordingError(RecordingErrorCode.BadHeader, `header is not a RecordingHeader: ${errText(err)}`, -1, PREAMBLE_BYTES);
    }
    if (header.formatVersion !== version) {
      throw new RecordingError(
        RecordingErrorCode.UnsupportedVersion,
        `header says format version ${header.formatVersion}, preamble says ${version}`,
        -1,
        PREAMBLE_BYTES,
      );
    }
    return new RecordingReader(source, header, Buffer.from(raw.payload), raw.next);
  }

  /**
   * The frames after the header, in file order. A damaged frame is yielded as `corrupt`; reading stops
   * there unless `skipCorrupt` is set, in which case it resumes at the next intact frame.
   */
  async *frames(options: ReadOptions = {}): AsyncGenerator<RecordingItem> {
    let offset = this.dataOffset;
    let index = 0;
    for (;;) {
      const size = await this.source.size();
      if (offset >= size) return;
      const raw = await readRawFrame(this.source, offset, index);
      if (raw.ok) {
        const decoded = decodeClientFrame(raw.payload, index, offset);
        if (decoded instanceof RecordingError) {
          yield { kind: "corrupt", error: decoded };
          if (!options.skipCorrupt) return;
        } else {
          yield { kind: "frame", index, offset, byteLength: raw.next - offset, frame: decoded };
        }
        offset = raw.next;
        index += 1;
        continue;
      }
      yield { kind: "corrupt", error: raw.error };
      if (!options.skipCorrupt) return;
      const resumeAt = await findNextFrame(this.source, offset + 1);
      if (resumeAt === null) return;
      offset = resumeAt;
      index += 1;
    }
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

function decodeClientFrame(payload: Buffer, index: number, offset: number): simgate.v1.ClientFrame | RecordingError {
  try {
    const frame = simgate.v1.ClientFrame.decode(payload);
    if (!frame.body) {
      return new RecordingError(RecordingErrorCode.Undecodable, "the frame holds no event, run start or run end", index, offset);
    }
    return frame;
  } catch (err) {
    return new RecordingError(RecordingErrorCode.Undecodable, `not a ClientFrame: ${errText(err)}`, index, offset);
  }
}

async function readRawFrame(source: ByteSource, offset: number, index: number): Promise<RawFrame> {
  const head = await source.read(offset, FRAME_HEADER_BYTES);
  const fail = (code: RecordingErrorCode, message: string): RawFrame => ({
    ok: false,
    error: new RecordingError(code, message, index, offset),
  });
  if (head.length < FRAME_HEADER_BYTES) {
    return fail(RecordingErrorCode.Truncated, `the file ends ${head.length} bytes into the ${FRAME_HEADER_BYTES}-byte frame header`);
  }
  if (!head.subarray(0, 4).equals(FRAME_MARKER)) {
    return fail(RecordingErrorCode.BadMarker, `expected the frame marker "SGFR", found 0x${head.subarray(0, 4).toString("hex")}`);
  }
  const length = head.readUInt32BE(4);
  const expected = head.readUInt32BE(8);
  if (length > MAX_FRAME_PAYLOAD_BYTES) {
    return fail(RecordingErrorCode.FrameTooLarge, `declared payload of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD_BYTES}`);
  }
  const payload = await source.read(offset + FRAME_HEADER_BYTES, length);
  if (payload.length < length) {
    return fail(RecordingErrorCode.Truncated, `the file ends ${payload.length} bytes into a payload of ${length} bytes`);
  }
  const actual = payloadChecksum(payload);
  if (actual !== expected) {
    return fail(
      RecordingErrorCode.BadChecksum,
      `CRC-32 of the ${length}-byte payload is ${hex32(actual)}, the frame says ${hex32(expected)}`,
    );
  }
  return { ok: true, payload, next: offset + FRAME_HEADER_BYTES + length };
}

/** The offset of the next intact frame (marker, sane length, good checksum) at or after `from`. */
async function findNextFrame(source: ByteSource, from: number): Promise<number | null> {
  let position = from;
  for (;;) {
    const size = await source.size();
    if (position + FRAME_HEADER_BYTES > size) return null;
    const chunk = await source.read(position, Math.min(SCAN_CHUNK_BYTES, size - position));
    let at = chunk.indexOf(FRAME_MARKER);
    while (at !== -1) {
      const candidate = position + at;
      const raw = await readRawFrame(source, candidate, 0);
      if (raw.ok) return candidate;
      at = chunk.indexOf(FRAME_MARKER, at + 1);
    }
    // Keep the last bytes: a marker may straddle two chunks.
    position += Math.max(1, chunk.length - (FRAME_MARKER.length - 1));
  }
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
