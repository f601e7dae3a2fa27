// Cross-language test vectors: the TypeScript writer must produce test/fixtures/recording/basic.simrec
// byte for byte from vectors.json (the Python writer is held to the same file by
// omni-extension/tests/test_recording_vectors.py), and the reader must report each damaged file at
// the frame where the damage is.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { encodeClientFrame } from "../../gateway/src/recording/canonical.js";
import { RecordingReader, type RecordingItem } from "../../gateway/src/recording/reader.js";
import { encodeRecording } from "../../gateway/src/recording/writer.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/recording");

interface Damaged {
  file: string;
  code: string;
  frameIndex: number;
  intactFramesBefore: number;
  intactFramesWhenSkipping?: number;
}
interface Vectors {
  expectedFile: string;
  header: simgate.v1.IRecordingHeader;
  frames: simgate.v1.IClientFrame[];
  damaged: Damaged[];
}
const vectors = JSON.parse(readFileSync(join(fixtures, "vectors.json"), "utf8")) as Vectors;

async function collect(path: string, skipCorrupt = false): Promise<RecordingItem[]> {
  const reader = await RecordingReader.open(path);
  const items: RecordingItem[] = [];
  try {
    for await (const item of reader.frames({ skipCorrupt })) items.push(item);
  } finally {
    await reader.close();
  }
  return items;
}

describe("recording test vectors", () => {
  it("the TypeScript writer produces the committed file byte for byte", () => {
    const expected = readFileSync(join(fixtures, vectors.expectedFile));
    const written = encodeRecording(vectors.header, vectors.frames);
    expect(written.length).toBe(expected.length);
    expect(written.equals(expected)).toBe(true);
  });

  it("the reader returns the frames of the committed file", async () => {
    const reader = await RecordingReader.open(join(fixtures, vectors.expectedFile));
    expect(reader.header.writer).toBe("simgate-test-vectors/1");
    expect(reader.header.run?.lineage?.seed).toBe(Number.MAX_SAFE_INTEGER);
    expect(reader.header.run?.lineage?.extra?.["émile"]).toBe("accent");
    await reader.close();

    const items = await collect(join(fixtures, vectors.expectedFile));
    expect(items.map((i) => i.kind)).toEqual(["frame", "frame", "frame", "frame"]);
    const frames = items.flatMap((i) => (i.kind === "frame" ? [i.frame] : []));
    expect(frames.map((f) => f.body)).toEqual(["runStart", "event", "event", "runEnd"]);
    expect(frames[1]?.event?.attributes?.["Ω"]).toBe("omega");
    expect(frames[1]?.event?.images?.[0]?.encoding).toBe(simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG);
    expect(frames[2]?.event?.captureTimeUnixMs).toBe(-1);
    expect(frames[2]?.event?.images).toHaveLength(2);
    expect(frames[3]?.runEnd?.eventsByType?.["parking.entry"]).toBe(1);
    // Every frame read back encodes to the same bytes as the vector it came from.
    frames.forEach((frame, i) => {
      const fromVector = Buffer.from(encodeClientFrame(vectors.frames[i] ?? {}));
      expect(Buffer.from(encodeClientFrame(frame)).equals(fromVector)).toBe(true);
    });
  });

  for (const damaged of vectors.damaged) {
    it(`reports ${damaged.file} as ${damaged.code} at frame ${damaged.frameIndex}`, async () => {
      const items = await collect(join(fixtures, damaged.file));
      const last = items.at(-1);
      expect(last?.kind).toBe("corrupt");
      if (last?.kind !== "corrupt") return;
      expect(last.error.code).toBe(damaged.code);
      expect(last.error.frameIndex).toBe(damaged.frameIndex);
      expect(items.filter((i) => i.kind === "frame")).toHaveLength(damaged.intactFramesBefore);
      expect(last.error.describe()).toContain(`frame ${damaged.frameIndex}`);
      if (damaged.intactFramesWhenSkipping !== undefined) {
        const skipping = await collect(join(fixtures, damaged.file), true);
        expect(skipping.filter((i) => i.kind === "frame")).toHaveLength(damaged.intactFramesWhenSkipping);
        expect(skipping.filter((i) => i.kind === "corrupt")).toHaveLength(1);
      }
    });
  }
});
