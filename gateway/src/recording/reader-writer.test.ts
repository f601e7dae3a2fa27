import { appendFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { simgate } from "../generated/simgate.js";
import { RecordingErrorCode } from "./errors.js";
import { FRAME_HEADER_BYTES, PREAMBLE_BYTES } from "./format.js";
import { RecordingReader, type RecordingItem } from "./reader.js";
import { RecordingWriter, encodeRecording } from "./writer.js";

const header: simgate.v1.IRecordingHeader = {
  createdUnixMs: 1_767_254_400_000,
  writer: "unit-test/1",
  run: { runId: "unit-run", startedUnixMs: 1_767_254_400_000 },
};

function event(sequence: number): simgate.v1.IClientFrame {
  return {
    event: {
      eventId: `unit-run-${sequence}`,
      runId: "unit-run",
      sequence,
      eventType: "parking.entry",
      simTimeSeconds: sequence * 1.5,
      carId: `CAR${sequence}`,
      images: [{ view: "entry", encoding: 1, width: 4, height: 4, data: Buffer.alloc(1000 + sequence, sequence) }],
    },
  };
}

async function readAll(path: string, skipCorrupt = false): Promise<RecordingItem[]> {
  const reader = await RecordingReader.open(path);
  const out: RecordingItem[] = [];
  for await (const item of reader.frames({ skipCorrupt })) out.push(item);
  await reader.close();
  return out;
}

function tempFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), "simrec-")), name);
}

describe("RecordingWriter and RecordingReader", () => {
  it("writes what encodeRecording produces, and reads it back in order", async () => {
    const path = tempFile("a.simrec");
    const writer = await RecordingWriter.create(path, header);
    for (let i = 1; i <= 5; i++) expect(await writer.append(event(i))).toBe(i - 1);
    await writer.close();
    await writer.close(); // safe twice
    expect(readFileSync(path).equals(encodeRecording(header, [1, 2, 3, 4, 5].map(event)))).toBe(true);
    const items = await readAll(path);
    expect(items.map((i) => (i.kind === "frame" ? i.frame.event?.sequence : -1))).toEqual([1, 2, 3, 4, 5]);
    const offsets = items.map((i) => (i.kind === "frame" ? i.offset : -1));
    expect(offsets[0]).toBeGreaterThan(PREAMBLE_BYTES);
    expect(new Set(offsets).size).toBe(5);
  });

  it("refuses to overwrite an existing recording unless asked", async () => {
    const path = tempFile("b.simrec");
    await (await RecordingWriter.create(path, header)).close();
    await expect(RecordingWriter.create(path, header)).rejects.toThrow(/EEXIST/);
    await (await RecordingWriter.create(path, header, { overwrite: true })).close();
  });

  it("appends to an existing recording, and sees frames appended while it reads", async () => {
    const path = tempFile("c.simrec");
    const first = await RecordingWriter.create(path, header);
    await first.append(event(1));
    await first.close();
    const reader = await RecordingReader.open(path);
    const seen: number[] = [];
    const { writer } = await RecordingWriter.openForAppend(path);
    for await (const item of reader.frames()) {
      if (item.kind !== "frame") throw new Error(item.error.describe());
      seen.push(item.frame.event?.sequence ?? -1);
      if (seen.length === 1) {
        await writer.append(event(2));
        await writer.append(event(3));
        await writer.flush();
      }
    }
    await writer.close();
    await reader.close();
    expect(seen).toEqual([1, 2, 3]);
  });

  it("refuses to append after a torn tail, and cuts it off with repairTail", async () => {
    const path = tempFile("d.simrec");
    writeFileSync(path, encodeRecording(header, [event(1), event(2)]));
    const full = readFileSync(path).length;
    truncateSync(path, full - 10);
    await expect(RecordingWriter.openForAppend(path)).rejects.toMatchObject({ code: RecordingErrorCode.Truncated, frameIndex: 1 });
    const { writer } = await RecordingWriter.openForAppend(path, { repairTail: true });
    await writer.append(event(3));
    await writer.close();
    const items = await readAll(path);
    expect(items.map((i) => (i.kind === "frame" ? i.frame.event?.sequence : i.error.code))).toEqual([1, 3]);
  });

  it("rejects files that are not recordings, or of an unknown version", async () => {
    const notRec = tempFile("e.simrec");
    writeFileSync(notRec, "PK\u0003\u0004 this is a zip");
    await expect(RecordingReader.open(notRec)).rejects.toMatchObject({ code: RecordingErrorCode.BadMagic });
    const future = tempFile("f.simrec");
    const bytes = encodeRecording(header, []);
    bytes.writeUInt16BE(99, 6);
    writeFileSync(future, bytes);
    await expect(RecordingReader.open(future)).rejects.toMatchObject({ code: RecordingErrorCode.UnsupportedVersion });
    const cut = tempFile("g.simrec");
    writeFileSync(cut, encodeRecording(header, []).subarray(0, PREAMBLE_BYTES + FRAME_HEADER_BYTES + 3));
    await expect(RecordingReader.open(cut)).rejects.toMatchObject({ code: RecordingErrorCode.Truncated, frameIndex: -1 });
  });

  it("skips garbage between frames when skipping corrupt frames", async () => {
    const path = tempFile("h.simrec");
    writeFileSync(path, encodeRecording(header, [event(1)]));
    appendFileSync(path, Buffer.from("SGFR garbage that looks like a marker SGFRSGFR"));
    // The frames of a second recording without its preamble and header.
    appendFileSync(path, encodeRecording(header, [event(2)]).subarray(encodeRecording(header, []).length));
    const strict = await readAll(path);
    expect(strict.map((i) => i.kind)).toEqual(["frame", "corrupt"]);
    const skipping = await readAll(path, true);
    expect(skipping.map((i) => (i.kind === "frame" ? i.frame.event?.sequence : i.error.code))).toEqual([
      1,
      RecordingErrorCode.FrameTooLarge,
      2,
    ]);
  });
});
