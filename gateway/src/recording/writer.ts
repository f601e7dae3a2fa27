// Writes .simrec files: the preamble and header once, then one frame per ClientFrame, appended as the
// run goes. A recording can be reopened to append more frames; a torn tail (a frame cut short by a
// crash) is reported, or cut off when the caller asks for it.
import { open, type FileHandle } from "node:fs/promises";
import "./protobuf-numbers.js";
import type { simgate } from "../generated/simgate.js";
import { encodeClientFrame, encodeRecordingHeader } from "./canonical.js";
import { RecordingError, RecordingErrorCode } from "./errors.js";
import { FORMAT_VERSION, encodeFrame, preamble } from "./format.js";
import { RecordingReader } from "./reader.js";

export interface CreateOptions {
  /** Replace an existing file (default false: refuse, so a recording is never clobbered by mistake). */
  overwrite?: boolean;
  /** fsync after every frame (for live recording), default false: the caller calls flush(). */
  syncEachFrame?: boolean;
}

export interface AppendOptions {
  /** Cut off a damaged or truncated tail instead of refusing to append (default false). */
  repairTail?: boolean;
  syncEachFrame?: boolean;
}

/** The header with the format version filled in. */
export function headerWithVersion(header: simgate.v1.IRecordingHeader): simgate.v1.IRecordingHeader {
  return { ...header, formatVersion: FORMAT_VERSION };
}

/** A whole recording in memory: what the writer would put in a file, byte for byte. */
export function encodeRecording(header: simgate.v1.IRecordingHeader, frames: Iterable<simgate.v1.IClientFrame>): Buffer {
  const parts: Buffer[] = [preamble(), encodeFrame(encodeRecordingHeader(headerWithVersion(header)))];
  for (const frame of frames) parts.push(encodeFrame(encodeClientFrame(frame)));
  return Buffer.concat(parts);
}

export class RecordingWriter {
  private position: number;
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    start: number,
    /** Index the next appended frame will get. */
    private nextIndex: number,
    private readonly syncEachFrame: boolean,
  ) {
    this.position = start;
  }

  static async create(path: string, header: simgate.v1.IRecordingHeader, options: CreateOptions = {}): Promise<RecordingWriter> {
    const handle = await open(path, options.overwrite ? "w" : "wx");
    const writer = new RecordingWriter(handle, 0, 0, options.syncEachFrame ?? false);
    try {
      await writer.writeBytes(Buffer.concat([preamble(), encodeFrame(encodeRecordingHeader(headerWithVersion(header)))]));
    } catch (err) {
      await handle.close();
      throw err;
    }
    return writer;
  }

  /** Opens an existing recording to append frames after its last intact frame. */
  static async openForAppend(path: string, options: AppendOptions = {}): Promise<{ writer: RecordingWriter; header: simgate.v1.RecordingHeader }> {
    const reader = await RecordingReader.open(path);
    let end = reader.dataOffset;
    let count = 0;
    let damage: RecordingError | null = null;
    try {
      for await (const item of reader.frames()) {
        if (item.kind === "corrupt") {
          damage = item.error;
          break;
        }
        end = item.offset + item.byteLength;
        count += 1;
      }
    } finally {
      await reader.close();
    }
    if (damage && !options.repairTail) {
      throw new RecordingError(damage.code, `cannot append after damage: ${damage.message} (repairTail cuts it off)`, damage.frameIndex, damage.offset);
    }
    const handle = await open(path, "r+");
    if (damage) await handle.truncate(end);
    return { writer: new RecordingWriter(handle, end, count, options.syncEachFrame ?? false), header: reader.header };
  }

  /** Appends one frame and returns its index. */
  async append(frame: simgate.v1.IClientFrame): Promise<number> {
    return this.appendPayload(encodeClientFrame(frame));
  }

  /** Appends already-encoded ClientFrame bytes (e.g. copied from another recording). */
  async appendPayload(payload: Uint8Array): Promise<number> {
    await this.writeBytes(encodeFrame(payload));
    const index = this.nextIndex;
    this.nextIndex += 1;
    return index;
  }

  get framesWritten(): number {
    return this.nextIndex;
  }

  get bytesWritten(): number {
    return this.position;
  }

  async flush(): Promise<void> {
    await this.handle.sync();
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.sync();
    await this.handle.close();
  }

  private async writeBytes(bytes: Buffer): Promise<void> {
    if (this.closed) throw new Error("recording writer is closed");
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.position + done);
      done += bytesWritten;
    }
    this.position += bytes.length;
    if (this.syncEachFrame) await this.handle.sync();
  }
}

export { RecordingErrorCode };
