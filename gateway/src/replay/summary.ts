// The end-of-replay report, for people (lines) and for scripts (JSON).
import { count } from "./control.js";
import type { ReplaySummary } from "./replayer.js";

function codes(map: Record<string, number>): string {
  const entries = Object.entries(map).filter(([, n]) => n > 0);
  return entries.length === 0 ? "" : ` (${entries.map(([c, n]) => `${c}=${n}`).join(" ")})`;
}

export function summaryLines(s: ReplaySummary): string[] {
  const seconds = s.elapsedMs / 1000;
  const answered = s.accepted + s.duplicate + count(s.rejectedByCode);
  const run = s.runId === s.recordedRunId ? s.runId : `${s.runId} (recorded as ${s.recordedRunId})`;
  const lines = [
    `replay summary: ${s.recording} → ${s.transport} ${s.target}, run ${run}`,
    `  events in recording ${s.eventsInRecording}, skipped (checkpoint) ${s.skippedFromCheckpoint}, sent ${s.sent}, resends ${s.resends}, retry-later answers ${s.retryLaterAnswers}`,
    `  accepted ${s.accepted}, duplicate ${s.duplicate}, rejected ${count(s.rejectedByCode)}${codes(s.rejectedByCode)}, unanswered ${count(s.failedByCode)}${codes(s.failedByCode)}`,
    `  records by topic (from the acks):${codes(s.recordsByTopic) || " none"}`,
    `  run start: ${s.runStart}; run end: ${s.runEnd}`,
    `  throughput: ${(answered / Math.max(seconds, 0.001)).toFixed(1)} events/s, ${(s.bytesSent / 1e6 / Math.max(seconds, 0.001)).toFixed(2)} MB/s (${(s.bytesSent / 1e6).toFixed(2)} MB in ${seconds.toFixed(2)} s)`,
  ];
  if (s.resumed) {
    const t = s.totals;
    lines.push(`  all sessions (checkpoint): accepted ${t.accepted}, duplicate ${t.duplicate}, rejected ${count(t.rejectedByCode)}${codes(t.rejectedByCode)}`);
  }
  for (const c of s.corrupt) lines.push(`  damaged: ${c.describe()}`);
  if (s.interrupted) lines.push("  interrupted: run again with the same --checkpoint to resume");
  if (s.fatal) lines.push(`  stopped: ${s.fatal}`);
  return lines;
}

/** Why the replay did not succeed, or null when it did (nothing rejected, everything answered). */
export function failureOf(s: ReplaySummary, skipCorrupt: boolean): string | null {
  if (s.fatal) return `replay stopped: ${s.fatal}`;
  if (s.interrupted) return "replay interrupted";
  const rejected = count(s.totals.rejectedByCode) || count(s.rejectedByCode);
  if (rejected > 0) return `replay: ${rejected} rejected${codes(s.totals.rejectedByCode)}`;
  const unanswered = count(s.failedByCode);
  if (unanswered > 0) return `replay: ${unanswered} events without a final answer${codes(s.failedByCode)}`;
  if (s.corrupt.length > 0 && !skipCorrupt) return `replay: recording damaged`;
  return null;
}

export function summaryJson(s: ReplaySummary): Record<string, unknown> {
  return {
    ...s,
    rejected: count(s.rejectedByCode),
    unanswered: count(s.failedByCode),
    corrupt: s.corrupt.map((c) => ({ code: c.code, frameIndex: c.frameIndex, offset: c.offset, message: c.message })),
    eventsPerSecond: (s.accepted + s.duplicate + count(s.rejectedByCode)) / Math.max(s.elapsedMs / 1000, 0.001),
  };
}
