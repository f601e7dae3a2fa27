// Problems found in a recording. Codes are stable (the Python reader uses the same ones); never reuse a
// retired code.
export const RecordingErrorCode = {
  /** The file does not start with "SIMREC". */
  BadMagic: "REC_ERR_BAD_MAGIC",
  /** The preamble or header announces a format version this reader does not know. */
  UnsupportedVersion: "REC_ERR_UNSUPPORTED_VERSION",
  /** The header frame is missing, damaged or not a RecordingHeader. */
  BadHeader: "REC_ERR_BAD_HEADER",
  /** The file ends inside a frame (an interrupted write, a partial copy). */
  Truncated: "REC_ERR_TRUNCATED",
  /** A frame does not start with the frame marker: the bytes before it are damaged. */
  BadMarker: "REC_ERR_BAD_MARKER",
  /** A frame's declared length is larger than the format allows. */
  FrameTooLarge: "REC_ERR_FRAME_TOO_LARGE",
  /** The CRC-32 of a frame's payload does not match the stored one. */
  BadChecksum: "REC_ERR_BAD_CHECKSUM",
  /** The checksum matches but the payload is not a ClientFrame with a body. */
  Undecodable: "REC_ERR_UNDECODABLE",
  /** An intact frame where the run's lifecycle does not allow it: an event or a run start after the
   *  run end, a second run start or run end, a run start after events. Found by `--check` only; a
   *  replay sends the frames as they are. */
  OutOfOrder: "REC_ERR_OUT_OF_ORDER",
} as const;
export type RecordingErrorCode = (typeof RecordingErrorCode)[keyof typeof RecordingErrorCode];

export class RecordingError extends Error {
  constructor(
    readonly code: RecordingErrorCode,
    message: string,
    /** Index of the frame (0 = first frame after the header), or -1 for the preamble and header. */
    readonly frameIndex: number,
    /** Byte offset in the file where the problem starts. */
    readonly offset: number,
  ) {
    super(message);
    this.name = "RecordingError";
  }

  describe(): string {
    const where = this.frameIndex < 0 ? "header" : `frame ${this.frameIndex}`;
    return `${this.code} at ${where} (byte offset ${this.offset}): ${this.message}`;
  }
}
