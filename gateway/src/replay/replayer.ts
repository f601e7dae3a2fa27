// Replays a recording to a gateway: run start, the events (paced by simulation time, N times faster,
// or as fast as acks allow, with at most `concurrency` unacknowledged), run end. Events answered
// retry-later or not answered are resent with the same event id; a checkpoint remembers which frames
// have their final answer so that an interrupted replay resumes without resending them. The parts:
// channel-supervisor.ts (one channel, reconnects, giving up), pending-window.ts (resends, ack
// timeouts), pacer.ts (simulation-time pacing), run-rewrite.ts (--as-run); this file reads the
// recording, sends the run messages and keeps the summary and the checkpoint.
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import "../recording/protobuf-numbers.js";
import type { simgate } from "../generated/simgate.js";
import type { RecordingError } from "../recording/errors.js";
import { RecordingReader } from "../recording/reader.js";
import { ChannelSupervisor } from "./channel-supervisor.js";
import { Checkpoint } from "./checkpoint.js";
import { ReplayControl, Stopped, backoffMs, bump, count } from "./control.js";
import { Pacer } from "./pacer.js";
import { PendingWindow, type FinalOutcome, type Pending } from "./pending-window.js";
import { RunRewrite } from "./run-rewrite.js";
import { TransportError, type ReplayTransport, type RunOutcome } from "./transport.js";

export interface ReplayOptions {
  path: string;
  /** The next stage, injected: gRPC, WebSocket, or a fake in unit tests. */
  transport: ReplayTransport;
  /** Simulation-time speed-up (1 = recorded cadence), or "max": as fast as acknowledgements allow. */
  speed: number | "max";
  /** Events sent and not yet finally answered, at most. */
  concurrency: number;
  /** Resend an event that got no answer within this time. */
  ackTimeoutMs: number;
  /** Give an event up (counted as failed) after this many sends. */
  maxAttempts: number;
  /** Stop when the gateway cannot be reached for this long. */
  giveUpAfterMs: number;
  skipCorrupt: boolean;
  /** Send the run under another run id (event ids re-prefixed), e.g. to replay a recording twice. */
  asRunId?: string;
  checkpointPath?: string;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** On interrupt, how long events in flight may take to be answered (default 5 s). */
  interruptGraceMs?: number;
}

export interface ProgressState {
  bytesRead: number;
  totalBytes: number;
  eventsSent: number;
  accepted: number;
  duplicate: number;
  rejected: number;
  inFlight: number;
  resends: number;
}

export interface ProgressSink {
  start(state: ProgressState): void;
  update(state: ProgressState): void;
  note(message: string): void;
  stop(state: ProgressState): void;
}

export interface ReplaySummary {
  recording: string;
  transport: string;
  target: string;
  recordedRunId: string;
  runId: string;
  eventsInRecording: number;
  skippedFromCheckpoint: number;
  resumed: boolean;
  /** Distinct events sent in this session. */
  sent: number;
  resends: number;
  retryLaterAnswers: number;
  accepted: number;
  duplicate: number;
  rejectedByCode: Record<string, number>;
  /** Kafka records per topic, as the gateway's accepted acks located them. */
  recordsByTopic: Record<string, number>;
  /** Events with no final answer after maxAttempts sends (or when the replay stopped), by last code. */
  failedByCode: Record<string, number>;
  /** Earlier sessions included (from the checkpoint). */
  totals: { accepted: number; duplicate: number; rejectedByCode: Record<string, number> };
  corrupt: RecordingError[];
  runStart: string;
  runEnd: string;
  bytesSent: number;
  elapsedMs: number;
  interrupted: boolean;
  /** Why the replay stopped before the end, when it did. */
  fatal: string | null;
}

const RESEND_CHECK_MS = 250;
const GRACE_ON_INTERRUPT_MS = 5_000;

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  return new Replayer(options).run();
}

/** Reads the recording and sends run start, the events (through the pending window, paced) and run
 *  end; keeps the summary and the checkpoint. */
class Replayer {
  private readonly control: ReplayControl;
  private readonly window: PendingWindow;
  private readonly channels: ChannelSupervisor;
  private rewrite = new RunRewrite("", undefined);
  private frontier = 0;
  private checkpoint!: Checkpoint;
  private readonly s: ReplaySummary;
  private totalBytes = 0;
  private bytesRead = 0;
  private graceUsed = false;

  constructor(private readonly o: ReplayOptions) {
    this.s = {
      recording: o.path,
      transport: o.transport.name,
      target: o.transport.target,
      recordedRunId: "",
      runId: "",
      eventsInRecording: 0,
      skippedFromCheckpoint: 0,
      resumed: false,
      sent: 0,
      resends: 0,
      retryLaterAnswers: 0,
      accepted: 0,
      duplicate: 0,
      rejectedByCode: {},
      recordsByTopic: {},
      failedByCode: {},
      totals: { accepted: 0, duplicate: 0, rejectedByCode: {} },
      corrupt: [],
      runStart: "not sent",
      runEnd: "not sent",
      bytesSent: 0,
      elapsedMs: 0,
      interrupted: false,
      fatal: null,
    };
    this.control = new ReplayControl(o.signal);
    this.window = new PendingWindow({ ackTimeoutMs: o.ackTimeoutMs, maxAttempts: o.maxAttempts }, this.control, this.s, (p, outcome, code) => this.settled(p, outcome, code));
    this.channels = new ChannelSupervisor(o.transport, o.giveUpAfterMs, this.control, { onAck: (ack) => this.window.onAck(ack), onClosed: (channel, reason) => this.window.onClosed(channel, reason) }, (m) => o.progress?.note(m));
    this.window.sendThrough(this.channels);
  }

  async run(): Promise<ReplaySummary> {
    const started = performance.now();
    const reader = await RecordingReader.open(this.o.path);
    const sweeper = setInterval(() => this.window.resendOverdue(), RESEND_CHECK_MS);
    const onAbort = (): void => this.control.wake();
    this.o.signal?.addEventListener("abort", onAbort);
    try {
      const recordedRunId = reader.header.run?.runId ?? "";
      this.rewrite = new RunRewrite(recordedRunId, this.o.asRunId);
      this.s.recordedRunId = recordedRunId;
      this.s.runId = this.rewrite.runId;
      const identity = { recording: createHash("sha256").update(reader.headerPayload).digest("hex"), runId: this.s.runId };
      if (this.o.checkpointPath) {
        const opened = await Checkpoint.open(this.o.checkpointPath, identity);
        this.checkpoint = opened.checkpoint;
        this.s.resumed = opened.resumed;
      } else {
        this.checkpoint = Checkpoint.inMemory(identity);
      }
      this.totalBytes = await fileSize(this.o.path);
      this.o.progress?.start(this.progressState());
      await this.sendAll(reader);
    } catch (err) {
      if (!(err instanceof Stopped)) this.control.fatal ??= err instanceof Error ? err.message : String(err);
      if (this.control.aborted && !this.control.fatal) await this.graceForInflight();
    } finally {
      clearInterval(sweeper);
      this.o.signal?.removeEventListener("abort", onAbort);
      for (const code of this.window.abandon()) bump(this.s.failedByCode, code);
      this.channels.close();
      await this.checkpoint?.save();
      await reader.close();
      await this.o.transport.close();
      this.s.elapsedMs = performance.now() - started;
      this.s.interrupted = this.control.aborted;
      this.s.fatal = this.control.fatal;
      if (this.checkpoint) this.s.totals = structuredClone(this.checkpoint.totals);
      this.o.progress?.stop(this.progressState());
    }
    return this.s;
  }

  private async sendAll(reader: RecordingReader): Promise<void> {
    let recordedRunStart: simgate.v1.IRunStart | null = reader.header.run ?? null;
    let recordedRunEnd: simgate.v1.IRunEnd | null = null;
    const byType: Record<string, number> = {};
    const pacer = new Pacer(this.o.speed);
    this.frontier = reader.dataOffset;
    let damaged: string | null = null;

    for await (const item of reader.frames({ skipCorrupt: this.o.skipCorrupt })) {
      this.control.checkStopped();
      if (item.kind === "corrupt") {
        this.s.corrupt.push(item.error);
        this.o.progress?.note(item.error.describe());
        if (!this.o.skipCorrupt) {
          damaged = `recording damaged: ${item.error.describe()} (--skip-corrupt replays the rest)`;
          break;
        }
        continue;
      }
      this.bytesRead = item.offset + item.byteLength;
      const frame = item.frame;
      if (frame.runStart) {
        recordedRunStart = frame.runStart;
        await this.ensureRunStarted(recordedRunStart);
      } else if (frame.runEnd) {
        recordedRunEnd = frame.runEnd;
      } else if (frame.event) {
        this.s.eventsInRecording += 1;
        bump(byType, frame.event.eventType ?? "");
        if (this.checkpoint.isDone(item.offset)) {
          this.s.skippedFromCheckpoint += 1;
          continue;
        }
        this.frontier = item.offset;
        await this.ensureRunStarted(recordedRunStart);
        const event = this.rewrite.event(frame.event);
        const due = pacer.dueAt(event.simTimeSeconds ?? 0);
        if (due !== undefined) await this.control.sleepUntil(due);
        const id = event.eventId ?? "";
        // At most `concurrency` open events, and never two with the same id (a recording may hold a
        // duplicated id on purpose): their acks could not be told apart.
        await this.until(() => this.window.size < this.o.concurrency && !this.window.has(id));
        const pending = this.window.open(item.offset, event, item.byteLength);
        this.frontier = item.offset + item.byteLength;
        this.s.sent += 1;
        await this.window.sendFirst(pending);
        this.o.progress?.update(this.progressState());
      }
    }
    // What was sent gets its answers (and its checkpoint entries) even when the recording is damaged.
    this.frontier = damaged ? this.frontier : Number.MAX_SAFE_INTEGER;
    await this.until(() => this.window.size === 0);
    this.checkpoint.advance(this.window.lowestOffset(this.frontier));
    if (damaged) {
      this.control.fatal = damaged;
      return;
    }
    await this.ensureRunStarted(recordedRunStart);
    const runEnd: simgate.v1.IRunEnd = recordedRunEnd
      ? { ...recordedRunEnd, runId: this.s.runId }
      : {
          runId: this.s.runId,
          endedUnixMs: Date.now(),
          eventsSent: this.s.eventsInRecording,
          eventsByType: byType,
          reason: "replay: recording has no run end",
        };
    if (count(this.s.failedByCode) > 0) return; // not every event was answered: the run is not over
    if (this.checkpoint.runEnded) {
      this.s.runEnd = "already sent (checkpoint)";
      return;
    }
    const outcome = await this.sendRunMessage("run end", () => this.o.transport.endRun(runEnd));
    this.s.runEnd = describeRun(outcome);
    if (outcome.kind === "accepted") {
      this.checkpoint.runEnded = true;
      this.checkpoint.touch();
    } else {
      bump(this.s.rejectedByCode, `run end: ${outcome.code}`);
    }
  }

  private async ensureRunStarted(recorded: simgate.v1.IRunStart | null): Promise<void> {
    if (this.checkpoint.runStarted) {
      if (this.s.runStart === "not sent") this.s.runStart = "already sent (checkpoint)";
      return;
    }
    if (!recorded || !recorded.runId) {
      this.s.runStart = "none in the recording";
      this.checkpoint.runStarted = true;
      return;
    }
    const runStart = this.rewrite.runStart(recorded);
    const outcome = await this.sendRunMessage("run start", () => this.o.transport.startRun(runStart));
    this.s.runStart = describeRun(outcome);
    if (outcome.kind !== "accepted") {
      bump(this.s.rejectedByCode, `run start: ${outcome.code}`);
      this.control.fatal = `the gateway refused the run start: ${outcome.kind === "rejected" ? outcome.code : ""} ${outcome.message}`;
      throw new Stopped();
    }
    this.checkpoint.runStarted = true;
    this.checkpoint.touch();
  }

  /** Run start / run end: retried on retry-later and transport failures, up to giveUpAfterMs. */
  private async sendRunMessage(what: string, send: () => Promise<RunOutcome>): Promise<RunOutcome> {
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      this.control.checkStopped();
      let wait: number;
      try {
        const outcome = await send();
        if (outcome.kind !== "retryLater") return outcome;
        this.s.retryLaterAnswers += 1;
        wait = Math.max(outcome.retryAfterMs, backoffMs(attempt));
        if (Date.now() - since > this.o.giveUpAfterMs) return outcome;
      } catch (err) {
        if (!(err instanceof TransportError)) throw err;
        if (Date.now() - since > this.o.giveUpAfterMs) {
          this.control.fatal = `${what}: the gateway at ${this.o.transport.target} was not reachable for ${this.o.giveUpAfterMs} ms: ${err.message}`;
          throw new Stopped();
        }
        this.o.progress?.note(`${what}: ${err.message}; retrying`);
        wait = backoffMs(attempt);
      }
      await this.control.sleep(wait);
    }
  }

  /** An event left the window: counted, and its checkpoint entry written. */
  private settled(p: Pending, outcome: FinalOutcome, code: string): void {
    const totals = this.checkpoint.totals;
    if (outcome === "accepted") {
      this.s.accepted += 1;
      totals.accepted += 1;
    } else if (outcome === "duplicate") {
      this.s.duplicate += 1;
      totals.duplicate += 1;
    } else if (outcome === "rejected") {
      bump(this.s.rejectedByCode, code);
      bump(totals.rejectedByCode, code);
    } else {
      bump(this.s.failedByCode, code);
    }
    const lowest = this.window.lowestOffset(this.frontier);
    if (outcome === "failed") this.checkpoint.advance(lowest);
    else this.checkpoint.markDone(p.offset, lowest);
    this.o.progress?.update(this.progressState());
    this.control.wake();
  }

  /** Waits until `condition` holds; on abort gives in-flight events a short grace to be answered. */
  private async until(condition: () => boolean): Promise<void> {
    while (!condition()) {
      if (this.control.fatal) throw new Stopped();
      if (this.control.aborted) {
        await this.graceForInflight();
        throw new Stopped();
      }
      await this.control.waitForChange(1_000);
    }
  }

  /** Interrupted: give what is in flight a moment to be answered, so the checkpoint has it (once). */
  private async graceForInflight(): Promise<void> {
    if (this.graceUsed) return;
    this.graceUsed = true;
    const deadline = Date.now() + (this.o.interruptGraceMs ?? GRACE_ON_INTERRUPT_MS);
    while (this.window.size > 0 && Date.now() < deadline && !this.control.fatal) await this.control.waitForChange(deadline - Date.now());
  }

  private progressState(): ProgressState {
    return {
      bytesRead: this.bytesRead,
      totalBytes: this.totalBytes,
      eventsSent: this.s.sent,
      accepted: this.s.accepted,
      duplicate: this.s.duplicate,
      rejected: count(this.s.rejectedByCode),
      inFlight: this.window.size,
      resends: this.s.resends,
    };
  }
}

function describeRun(outcome: RunOutcome): string {
  if (outcome.kind === "accepted") return "accepted";
  if (outcome.kind === "rejected") return `rejected ${outcome.code}: ${outcome.message}`;
  return `retry-later ${outcome.code} (gave up): ${outcome.message}`;
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
