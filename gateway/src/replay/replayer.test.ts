// The replayer against an in-memory transport: resend on retry-later, on a missing ack and on a broken
// channel (same event ids), rejects counted by code, duplicated ids never in flight together, --as-run.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { simgate } from "../generated/simgate.js";
import { RecordingWriter } from "../recording/writer.js";
import { replay, type ReplayOptions } from "./replayer.js";
import { TransportError, type ChannelHandlers, type EventChannel, type ReplayTransport, type RunOutcome } from "./transport.js";

const dir = mkdtempSync(join(tmpdir(), "replayer-"));

type Answer = (event: simgate.v1.IEvent, attempt: number) => simgate.v1.IAck | null | "close";

/** A gateway in memory: `answer` decides each ack (null = never answer, "close" = drop the channel). */
class FakeTransport implements ReplayTransport {
  readonly name = "grpc" as const;
  readonly target = "fake";
  readonly sent: simgate.v1.IEvent[] = [];
  readonly runs: string[] = [];
  readonly attempts = new Map<string, number>();
  maxOpen = 0;
  private readonly open = new Set<string>();
  channels = 0;
  refuseConnections = 0;

  constructor(private readonly answer: Answer) {}

  async startRun(m: simgate.v1.IRunStart): Promise<RunOutcome> {
    this.runs.push(`start:${m.runId}`);
    return { kind: "accepted" };
  }
  async endRun(m: simgate.v1.IRunEnd): Promise<RunOutcome> {
    this.runs.push(`end:${m.runId}:${m.eventsSent}`);
    return { kind: "accepted" };
  }
  async openChannel(handlers: ChannelHandlers): Promise<EventChannel> {
    if (this.refuseConnections > 0) {
      this.refuseConnections -= 1;
      throw new TransportError("connection refused");
    }
    this.channels += 1;
    let closed = false;
    return {
      send: async (event) => {
        if (closed) throw new TransportError("closed");
        const key = `${event.eventId}#${event.sequence}`;
        const attempt = (this.attempts.get(key) ?? 0) + 1;
        this.attempts.set(key, attempt);
        this.sent.push(event);
        this.open.add(event.eventId ?? "");
        this.maxOpen = Math.max(this.maxOpen, this.open.size);
        const ack = this.answer(event, attempt);
        if (ack === "close") {
          closed = true;
          setTimeout(() => handlers.onClosed("fake: channel dropped"), 1);
          return;
        }
        if (ack === null) return;
        setTimeout(() => {
          if (!ack.retryLater) this.open.delete(event.eventId ?? "");
          handlers.onAck({ eventId: event.eventId ?? "", sequence: event.sequence ?? 0, ...ack } as simgate.v1.Ack);
        }, 2);
      },
      close: () => {
        closed = true;
      },
    };
  }
  async close(): Promise<void> {}
}

async function writeRecording(name: string, ids: string[]): Promise<string> {
  const path = join(dir, name);
  const writer = await RecordingWriter.create(path, { writer: "unit", run: { runId: "rec-1" } });
  await writer.append({ runStart: { runId: "rec-1" } });
  let seq = 0;
  for (const id of ids) {
    seq += 1;
    await writer.append({ event: { eventId: id, runId: "rec-1", sequence: seq, eventType: "parking.entry", simTimeSeconds: seq * 0.01 } });
  }
  await writer.append({ runEnd: { runId: "rec-1", eventsSent: ids.length, reason: "completed" } });
  await writer.close();
  return path;
}

function options(path: string, transport: ReplayTransport, extra: Partial<ReplayOptions> = {}): ReplayOptions {
  return { path, transport, speed: "max", concurrency: 4, ackTimeoutMs: 200, maxAttempts: 5, giveUpAfterMs: 2_000, skipCorrupt: false, ...extra };
}

const ids = (n: number, prefix = "rec-1"): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(6, "0")}`);
const accepted: simgate.v1.IAck = { accepted: {} };

describe("replay", () => {
  it("sends run start, every event once, run end; never more than the window open", async () => {
    const t = new FakeTransport(() => accepted);
    const s = await replay(options(await writeRecording("a.simrec", ids(20)), t));
    expect(s.accepted).toBe(20);
    expect(t.sent).toHaveLength(20);
    expect(t.runs).toEqual(["start:rec-1", "end:rec-1:20"]);
    expect(t.maxOpen).toBeLessThanOrEqual(4);
    expect(s.fatal).toBeNull();
  });

  it("resends retry-later and unanswered events with the same id, and counts rejects by code", async () => {
    const t = new FakeTransport((e, attempt) => {
      const n = Number(e.eventId?.slice(-2));
      if (n === 3 && attempt < 3) return { retryLater: { code: "GW_ERR_THROTTLED", retryAfterMs: 10 } };
      if (n === 5 && attempt === 1) return null; // lost: resent after the ack timeout
      if (n === 7) return { rejected: { code: "GW_ERR_VALIDATION", message: "bad" } };
      return accepted;
    });
    const s = await replay(options(await writeRecording("b.simrec", ids(8)), t));
    expect(t.attempts.get("rec-1-000003#3")).toBe(3);
    expect(t.attempts.get("rec-1-000005#5")).toBe(2);
    expect(s.accepted).toBe(7);
    expect(s.rejectedByCode).toEqual({ GW_ERR_VALIDATION: 1 });
    expect(s.retryLaterAnswers).toBe(2);
    expect(s.resends).toBe(3);
    // Each send says how many came before it (Event.attempt), for the gateway's upload check.
    expect(t.sent.filter((e) => e.eventId === "rec-1-000003").map((e) => e.attempt ?? 0)).toEqual([0, 1, 2]);
    expect(t.sent.filter((e) => e.eventId === "rec-1-000005").map((e) => e.attempt ?? 0)).toEqual([0, 1]);
    expect(t.sent.filter((e) => e.eventId === "rec-1-000001").map((e) => e.attempt ?? 0)).toEqual([0]);
  });

  it("opens a new channel when one breaks and resends what it held", async () => {
    let dropped = false;
    const t = new FakeTransport((e) => {
      if (!dropped && e.eventId === "rec-1-000004") {
        dropped = true;
        return "close";
      }
      return accepted;
    });
    t.refuseConnections = 0;
    const s = await replay(options(await writeRecording("c.simrec", ids(10)), t));
    expect(s.accepted).toBe(10);
    expect(t.channels).toBe(2);
    expect(t.attempts.get("rec-1-000004#4")).toBe(2);
  });

  it("keeps an event's attempts for real answers when channels keep breaking (a restarting gateway)", async () => {
    let drops = 0;
    const t = new FakeTransport(() => (drops++ < 3 ? "close" : accepted));
    // One counted send per event: the resends after lost channels must not count.
    const s = await replay(options(await writeRecording("c2.simrec", ids(4)), t, { maxAttempts: 1, giveUpAfterMs: 10_000 }));
    expect(s.fatal).toBeNull();
    expect(s.accepted).toBe(4);
    expect(t.channels).toBe(4);
    expect(s.failedByCode).toEqual({});
  });

  it("stops when every channel breaks for longer than giveUpAfterMs", async () => {
    const t = new FakeTransport(() => "close");
    const s = await replay(options(await writeRecording("c3.simrec", ids(3)), t, { giveUpAfterMs: 800 }));
    expect(s.fatal).toMatch(/not reachable for 800 ms/);
    expect(s.accepted).toBe(0);
    expect(t.runs).toEqual(["start:rec-1"]);
  });

  it("gives up on an event after maxAttempts and does not end the run", async () => {
    const t = new FakeTransport((e) => (e.eventId === "rec-1-000002" ? { retryLater: { code: "GW_ERR_KAFKA_UNAVAILABLE" } } : accepted));
    const s = await replay(options(await writeRecording("d.simrec", ids(3)), t, { maxAttempts: 3 }));
    expect(s.accepted).toBe(2);
    expect(s.failedByCode).toEqual({ GW_ERR_KAFKA_UNAVAILABLE: 1 });
    expect(t.runs).toEqual(["start:rec-1"]);
  });

  it("stops with a reason when the gateway stays unreachable", async () => {
    const t = new FakeTransport(() => accepted);
    t.refuseConnections = 1_000;
    const s = await replay(options(await writeRecording("e.simrec", ids(2)), t, { giveUpAfterMs: 300 }));
    expect(s.fatal).toMatch(/not reachable/);
    expect(s.accepted).toBe(0);
  });

  it("never has two events with the same id in flight", async () => {
    const list = ids(6);
    list[4] = list[1] as string; // a duplicated id, as the simulator's flaw makes
    const t = new FakeTransport((e) => (e.sequence === 5 ? { duplicate: {} } : accepted));
    const s = await replay(options(await writeRecording("f.simrec", list), t));
    expect(s.accepted).toBe(5);
    expect(s.duplicate).toBe(1);
    expect(t.maxOpen).toBeLessThanOrEqual(4);
  });

  it("rewrites run and event ids with asRunId", async () => {
    const t = new FakeTransport(() => accepted);
    await replay(options(await writeRecording("g.simrec", ids(2)), t, { asRunId: "again-7" }));
    expect(t.sent.map((e) => [e.runId, e.eventId])).toEqual([
      ["again-7", "again-7-000001"],
      ["again-7", "again-7-000002"],
    ]);
    expect(t.runs).toEqual(["start:again-7", "end:again-7:2"]);
  });

  it("paces by simulation time", async () => {
    const t = new FakeTransport(() => accepted);
    const started = Date.now();
    // 10 events 0.01 s of sim time apart at 0.25x: at least 0.09 s / 0.25 = 360 ms
    await replay(options(await writeRecording("h.simrec", ids(10)), t, { speed: 0.25 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(340);
  });

  it("resumes from a checkpoint without resending what it holds", async () => {
    const path = await writeRecording("i.simrec", ids(10));
    const checkpoint = join(dir, "i.checkpoint.json");
    const first = new FakeTransport((e) => (Number(e.eventId?.slice(-2)) > 6 ? null : accepted));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const s1 = await replay(options(path, first, { checkpointPath: checkpoint, signal: controller.signal, ackTimeoutMs: 60_000, interruptGraceMs: 300 }));
    expect(s1.interrupted).toBe(true);
    expect(s1.accepted).toBe(6);
    const saved = JSON.parse(readFileSync(checkpoint, "utf8")) as { runStarted: boolean; totals: { accepted: number } };
    expect(saved.runStarted).toBe(true);
    expect(saved.totals.accepted).toBe(6);
    const second = new FakeTransport(() => accepted);
    const s2 = await replay(options(path, second, { checkpointPath: checkpoint }));
    expect(s2.skippedFromCheckpoint).toBe(6);
    expect(second.sent.map((e) => e.sequence)).toEqual([7, 8, 9, 10]);
    expect(second.runs).toEqual(["end:rec-1:10"]);
    expect(s2.totals.accepted).toBe(10);
  });
});
