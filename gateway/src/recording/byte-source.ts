// Where a reader gets its bytes: a file (which may still be growing while a run is recorded) or memory.
import { open, type FileHandle } from "node:fs/promises";

export interface ByteSource {
  /** Current size in bytes; asked again before every frame so that appended frames are seen. */
  size(): Promise<number>;
  /** Up to `length` bytes from `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export class BufferSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  async size(): Promise<number> {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.bytes.length, offset + length);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + offset, Math.max(0, end - offset));
  }
  async close(): Promise<void> {}
}

export class FileSource implements ByteSource {
  private constructor(private readonly handle: FileHandle) {}

  static async open(path: string): Promise<FileSource> {
    return new FileSource(await open(path, "r"));
  }
  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === length ? buffer : buffer.subarray(0, filled);
  }
  async close(): Promise<void> {
    await this.handle.close();
  }
}
