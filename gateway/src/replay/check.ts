// `simgate replay FILE --check`: reads a whole recording without sending it and reports what is in it
// and every problem, at its frame index and byte offset.
import { RecordingError, RecordingErrorCode } from "../recording/errors.js";
import { RecordingReader } from "../recording/reader.js";

export interface CheckReport {
  path: string;
  runId: string;
  writer: string;
  frames: number;
  runStarts: number;
  runEnds: number;
  events: number;
  eventsByType: Record<string, number>;
  imageBytes: number;
  firstSimSeconds: number | null;
  lastSimSeconds: number | null;
  problems: RecordingError[];
}

/** Throws RecordingError when the preamble or header is unusable. */
export async function checkRecording(path: string): Promise<CheckReport> {
  const reader = await RecordingReader.open(path);
  const report: CheckReport = {
    path,
    runId: reader.header.run?.runId ?? "",
    writer: reader.header.writer,
    frames: 0,
    runStarts: 0,
    runEnds: 0,
    events: 0,
    eventsByType: {},
    imageBytes: 0,
    firstSimSeconds: null,
    lastSimSeconds: null,
    problems: [],
  };
  try {
    for await (const item of reader.frames({ skipCorrupt: true })) {
      if (item.kind === "corrupt") {
        report.problems.push(item.error);
        continue;
      }
      report.frames += 1;
      const f = item.frame;
      const outOfOrder = (what: string): void => {
        report.problems.push(new RecordingError(RecordingErrorCode.OutOfOrder, what, item.index, item.offset));
      };
      if (f.runStart) {
        if (report.runEnds > 0) outOfOrder("a run start after the run end");
        else if (report.runStarts > 0) outOfOrder("a second run start");
        else if (report.events > 0) outOfOrder(`a run start after ${report.events} events`);
        report.runStarts += 1;
      } else if (f.runEnd) {
        if (report.runEnds > 0) outOfOrder("a second run end");
        report.runEnds += 1;
      } else if (f.event) {
        if (report.runEnds > 0) outOfOrder(`event ${f.event.eventId ?? ""} after the run end`);
        report.events += 1;
        const type = f.event.eventType ?? "";
        report.eventsByType[type] = (report.eventsByType[type] ?? 0) + 1;
        for (const image of f.event.images ?? []) report.imageBytes += image.data?.length ?? 0;
        const sim = f.event.simTimeSeconds ?? 0;
        report.firstSimSeconds ??= sim;
        report.lastSimSeconds = sim;
      }
    }
  } finally {
    await reader.close();
  }
  return report;
}

export function formatCheck(r: CheckReport): string[] {
  const lines = [
    `${r.path}: run ${r.runId || "(none)"}, written by ${r.writer || "(unknown)"}`,
    `  ${r.frames} intact frames: ${r.runStarts} run start, ${r.events} events (${Object.entries(r.eventsByType).map(([t, n]) => `${t}=${n}`).join(" ") || "none"}), ${r.runEnds} run end`,
    `  images ${(r.imageBytes / 1e6).toFixed(2)} MB, sim time ${r.firstSimSeconds ?? "-"} .. ${r.lastSimSeconds ?? "-"} s`,
  ];
  if (r.runEnds === 0) lines.push("  note: no run end frame (a run cut short); replay sends one");
  if (r.problems.length === 0) lines.push("  OK: every frame's marker, length, checksum and contents are good");
  for (const p of r.problems) lines.push(`  ${p.describe()}`);
  return lines;
}
