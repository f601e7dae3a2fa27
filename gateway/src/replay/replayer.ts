// Replays a recording to a gateway: run start, the events (paced by simulation time, N times faster,
// or as fast as acks allow, with at most `concurrency` unacknowledged), run end. Events answered
// retry-later or not answered are resent with the same event id; a checkpoint remembers which frames
// have their final answer so that an interrupted replay resumes without resending them.
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import "../recording/protobuf-numbers.js";
import type { simgate } from "../generated/simgate.js";
import type { RecordingError } from "../recording/errors.js";
import { RecordingReader } from "../recording/reader.js";
import { Checkpoint } from "./checkpoint.js";
import { TransportError, type EventChannel, type ReplayTransport, type RunOutcome } from "./transport.js";

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

interface Pending {
  offset: number;
  event: simgate.v1.IEvent;
  bytes: number;
  /** Sends that count against maxAttempts. */
  attempts: number;
  /** Every send, lost channels included. */
  sends: number;
  /** The channel of the last send. */
  channel: EventChannel | null;
  /** Waiting for a channel or for the transport to take it. */
  sending: boolean;
  sentAt: number;
  retryTimer: NodeJS.Timeout | null;
  lastCode: string;
}

const RESEND_CHECK_MS = 250;
const GRACE_ON_INTERRUPT_MS = 5_000;

export function count(map: Record<string, number>): number {
  return Object.values(map).reduce((a, b) => a + b, 0);
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

function backoffMs(attempt: number): number {
  return Math.min(5_000, 100 * 2 ** Math.min(attempt, 6));
}

class Stopped extends Error {}

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  return new Replayer(options).run();
}

class Replayer {
  private readonly inflight = new Map<string, Pending>();
  private readonly wakers = new Set<() => void>();
  private channel: EventChannel | null = null;
  private connecting: Promise<EventChannel> | null = null;
  private unreachableSince: number | null = null;
  private channelFailures = 0;
  private reconnectNotBefore = 0;
  private lastChannelProblem = "";
  private fatal: string | null = null;
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
  }

  async run(): Promise<ReplaySummary> {
    const started = performance.now();
    const reader = await RecordingReader.open(this.o.path);
    const sweeper = setInterval(() => this.resendOverdue(), RESEND_CHECK_MS);
    const onAbort = (): void => this.wake();
    this.o.signal?.addEventListener("abort", onAbort);
    try {
      const recordedRunId = reader.header.run?.runId ?? "";
      this.s.recordedRunId = recordedRunId;
      this.s.runId = this.o.asRunId ?? recordedRunId;
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
      if (!(err instanceof Stopped)) this.fatal ??= err instanceof Error ? err.message : String(err);
      if (this.o.signal?.aborted && !this.fatal) await this.graceForInflight();
    } finally {
      clearInterval(sweeper);
      this.o.signal?.removeEventListener("abort", onAbort);
      for (const p of this.inflight.values()) {
        if (p.retryTimer) clearTimeout(p.retryTimer);
        bump(this.s.failedByCode, p.lastCode || "REPLAY_NO_ACK");
      }
      this.inflight.clear();
      this.channel?.close();
      await this.checkpoint?.save();
      await reader.close();
      await this.o.transport.close();
      this.s.elapsedMs = performance.now() - started;
      this.s.interrupted = this.o.signal?.aborted ?? false;
      this.s.fatal = this.fatal;
      if (this.checkpoint) this.s.totals = structuredClone(this.checkpoint.totals);
      this.o.progress?.stop(this.progressState());
    }
    return this.s;
  }

  private async sendAll(reader: RecordingReader): Promise<void> {
    let recordedRunStart: simgate.v1.IRunStart | null = reader.header.run ?? null;
    let recordedRunEnd: simgate.v1.IRunEnd | null = null;
    const byType: Record<string, number> = {};
    let paceOrigin: { wallMs: number; simSeconds: number } | null = null;
    this.frontier = reader.dataOffset;
    let damaged: string | null = null;

    for await (const item of reader.frames({ skipCorrupt: this.o.skipCorrupt })) {
      this.checkStopped();
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
        const event = this.rewrite(frame.event);
        const sim = event.simTimeSeconds ?? 0;
        if (this.o.speed !== "max") {
          paceOrigin ??= { wallMs: Date.now(), simSeconds: sim };
          await this.sleepUntil(paceOrigin.wallMs + ((sim - paceOrigin.simSeconds) * 1000) / this.o.speed);
        }
        const id = event.eventId ?? "";
        // At most `concurrency` open events, and never two with the same id (a recording may hold a
        // duplicated id on purpose): their acks could not be told apart.
        await this.until(() => this.inflight.size < this.o.concurrency && !this.inflight.has(id));
        const pending: Pending = {
          offset: item.offset,
          event,
          bytes: item.byteLength,
          attempts: 0,
          sends: 0,
          channel: null,
          sending: false,
          sentAt: 0,
          retryTimer: null,
          lastCode: "",
        };
        this.inflight.set(id, pending);
        this.frontier = item.offset + item.byteLength;
        this.s.sent += 1;
        await this.transmit(pending, true);
        this.o.progress?.update(this.progressState());
      }
    }
    // What was sent gets its answers (and its checkpoint entries) even when the recording is damaged.
    this.frontier = damaged ? this.frontier : Number.MAX_SAFE_INTEGER;
    await this.until(() => this.inflight.size === 0);
    this.checkpoint.advance(this.lowestOpen());
    if (damaged) {
      this.fatal = damaged;
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
    const runStart = this.rewriteRunStart(recorded);
    const outcome = await this.sendRunMessage("run start", () => this.o.transport.startRun(runStart));
    this.s.runStart = describeRun(outcome);
    if (outcome.kind !== "accepted") {
      bump(this.s.rejectedByCode, `run start: ${outcome.code}`);
      this.fatal = `the gateway refused the run start: ${outcome.kind === "rejected" ? outcome.code : ""} ${outcome.message}`;
      throw new Stopped();
    }
    this.checkpoint.runStarted = true;
    this.checkpoint.touch();
  }

  /** Run start / run end: retried on retry-later and transport failures, up to giveUpAfterMs. */
  private async sendRunMessage(what: string, send: () => Promise<RunOutcome>): Promise<RunOutcome> {
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      this.checkStopped();
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
          this.fatal = `${what}: the gateway at ${this.o.transport.target} was not reachable for ${this.o.giveUpAfterMs} ms: ${err.message}`;
          throw new Stopped();
        }
        this.o.progress?.note(`${what}: ${err.message}; retrying`);
        wait = backoffMs(attempt);
      }
      await this.sleep(wait);
    }
  }

  private rewrite(event: simgate.v1.IEvent): simgate.v1.IEvent {
    const as = this.o.asRunId;
    if (!as) return event;
    const from = this.s.recordedRunId;
    const id = event.eventId ?? "";
    const eventId = from && id.startsWith(from) ? as + id.slice(from.length) : `${as}-${id}`;
    return { ...event, runId: as, eventId };
  }

  private rewriteRunStart(runStart: simgate.v1.IRunStart): simgate.v1.IRunStart {
    const as = this.o.asRunId;
    if (!as) return runStart;
    const lineage = runStart.lineage ?? {};
    return { ...runStart, runId: as, lineage: { ...lineage, extra: { ...(lineage.extra ?? {}), "replay.of": this.s.recordedRunId } } };
  }

  private async getChannel(): Promise<EventChannel> {
    if (this.channel) return this.channel;
    this.connecting ??= (async () => {
      for (let attempt = 1; ; attempt++) {
        // After a lost channel, wait out the back-off: a gateway that accepts connections and then fails
        // every stream must not be hammered, nor make events use up their attempts.
        await this.sleepUntil(this.reconnectNotBefore);
        this.checkStopped();
        this.checkReachable();
        try {
          const ref: { channel: EventChannel | null } = { channel: null };
          ref.channel = await this.o.transport.openChannel({
            onAck: (ack) => this.onAck(ack),
            onClosed: (reason) => this.onClosed(ref.channel, reason),
          });
          this.channel = ref.channel;
          return ref.channel;
        } catch (err) {
          if (!(err instanceof TransportError)) throw err;
          this.unreachableSince ??= Date.now();
          this.checkReachable(err.message);
          this.o.progress?.note(`${err.message}; reconnecting`);
          await this.sleep(backoffMs(attempt));
        }
      }
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Stops the replay when the gateway has not answered anything for giveUpAfterMs. */
  private checkReachable(detail = this.lastChannelProblem): void {
    if (this.unreachableSince !== null && Date.now() - this.unreachableSince > this.o.giveUpAfterMs) {
      this.fatal = `the gateway at ${this.o.transport.target} was not reachable for ${this.o.giveUpAfterMs} ms: ${detail}`;
      this.wake();
      throw new Stopped();
    }
  }

  /** The channel is gone: back off before the next one, and resend what was sent on it. */
  private channelLost(channel: EventChannel | null, reason: string): void {
    for (const p of this.inflight.values()) if (!p.retryTimer && (p.channel === channel || channel === null)) p.sentAt = 0;
    if (channel !== null && this.channel !== channel) return; // an older channel, already replaced
    this.channel = null;
    this.lastChannelProblem = reason;
    this.channelFailures += 1;
    this.reconnectNotBefore = Date.now() + backoffMs(this.channelFailures);
    if (this.inflight.size === 0) return;
    this.unreachableSince ??= Date.now();
    this.o.progress?.note(`${reason}; resending ${this.inflight.size} unacknowledged events`);
  }

  private onClosed(channel: EventChannel | null, reason: string): void {
    if (channel === null) return;
    this.channelLost(channel, reason);
    this.resendOverdue();
  }

  /**
   * Sends (again). `counted` sends use up one of the event's maxAttempts: the first, after retry-later,
   * after an ack timeout. Resends because the channel was lost do not: that is the gateway being away,
   * bounded by giveUpAfterMs instead.
   */
  private async transmit(p: Pending, counted: boolean): Promise<void> {
    if (counted) {
      if (p.attempts >= this.o.maxAttempts) {
        this.finish(p, "failed", p.lastCode || "REPLAY_NO_ACK");
        return;
      }
      p.attempts += 1;
    }
    if (p.sends > 0) this.s.resends += 1;
    p.sends += 1;
    p.sentAt = Date.now();
    let channel: EventChannel | null = null;
    p.sending = true; // the sweeper leaves it alone while it waits for a channel
    try {
      channel = await this.getChannel();
      p.channel = channel;
      // A resend says so (Event.attempt), so the gateway looks for images it may already have stored
      // instead of uploading them again.
      await channel.send(p.sends > 1 ? { ...p.event, attempt: p.sends - 1 } : p.event);
      p.sentAt = Date.now(); // the ack timeout runs from here
      this.s.bytesSent += p.bytes;
    } catch (err) {
      if (err instanceof Stopped) return;
      if (!(err instanceof TransportError)) throw err;
      this.channelLost(channel, err.message);
      p.lastCode = "REPLAY_TRANSPORT";
      p.sentAt = 0; // resent by the sweeper once a channel is back
    } finally {
      p.sending = false;
    }
  }

  /** Resends events whose ack is overdue (or whose channel went away). */
  private resendOverdue(): void {
    if (this.fatal) return;
    const now = Date.now();
    for (const p of this.inflight.values()) {
      if (p.retryTimer || p.sending) continue;
      const lost = p.sentAt === 0;
      if (!lost && now - p.sentAt <= this.o.ackTimeoutMs) continue;
      if (!lost) p.lastCode = "REPLAY_ACK_TIMEOUT";
      p.sentAt = now; // claimed: the next sweep does not send it twice
      void this.transmit(p, !lost).catch((err: unknown) => this.fail(err));
    }
  }

  private onAck(ack: simgate.v1.Ack): void {
    // Any answer shows the gateway is there.
    this.unreachableSince = null;
    this.channelFailures = 0;
    const p = this.inflight.get(ack.eventId);
    // A late answer to an earlier send of an event that is already settled, or not ours: ignore.
    if (!p) return;
    if (ack.sequence && p.event.sequence && ack.sequence !== p.event.sequence) return;
    if (ack.accepted) {
      if (ack.accepted.record?.topic) bump(this.s.recordsByTopic, ack.accepted.record.topic);
      this.finish(p, "accepted");
    }
    else if (ack.duplicate) this.finish(p, "duplicate");
    else if (ack.rejected) this.finish(p, "rejected", ack.rejected.code || "GW_ERR_INTERNAL");
    else if (ack.retryLater) {
      this.s.retryLaterAnswers += 1;
      p.lastCode = ack.retryLater.code || "GW_ERR_INTERNAL";
      if (p.retryTimer) return;
      const delay = Math.max(ack.retryLater.retryAfterMs ?? 0, backoffMs(p.attempts));
      p.retryTimer = setTimeout(() => {
        p.retryTimer = null;
        if (this.inflight.get(p.event.eventId ?? "") !== p) return;
        void this.transmit(p, true).catch((err: unknown) => this.fail(err));
      }, delay);
    }
  }

  private finish(p: Pending, outcome: "accepted" | "duplicate" | "rejected" | "failed", code = ""): void {
    if (p.retryTimer) clearTimeout(p.retryTimer);
    this.inflight.delete(p.event.eventId ?? "");
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
    if (outcome === "failed") this.checkpoint.advance(this.lowestOpen());
    else this.checkpoint.markDone(p.offset, this.lowestOpen());
    this.o.progress?.update(this.progressState());
    this.wake();
  }

  private lowestOpen(): number {
    let lowest = this.frontier;
    for (const p of this.inflight.values()) lowest = Math.min(lowest, p.offset);
    return lowest;
  }

  private fail(err: unknown): void {
    this.fatal ??= err instanceof Error ? err.message : String(err);
    this.wake();
  }

  private checkStopped(): void {
    if (this.fatal || this.o.signal?.aborted) throw new Stopped();
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Waits until `condition` holds; on abort gives in-flight events a short grace to be answered. */
  private async until(condition: () => boolean): Promise<void> {
    while (!condition()) {
      if (this.fatal) throw new Stopped();
      if (this.o.signal?.aborted) {
        await this.graceForInflight();
        throw new Stopped();
      }
      await this.waitForChange(1_000);
    }
  }

  /** Interrupted: give what is in flight a moment to be answered, so the checkpoint has it (once). */
  private async graceForInflight(): Promise<void> {
    if (this.graceUsed) return;
    this.graceUsed = true;
    const deadline = Date.now() + (this.o.interruptGraceMs ?? GRACE_ON_INTERRUPT_MS);
    while (this.inflight.size > 0 && Date.now() < deadline && !this.fatal) await this.waitForChange(deadline - Date.now());
  }

  private waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, timeoutMs));
      this.wakers.add(done);
    });
  }

  private async sleep(ms: number): Promise<void> {
    await this.sleepUntil(Date.now() + ms);
  }

  private async sleepUntil(wallMs: number): Promise<void> {
    while (Date.now() < wallMs) {
      this.checkStopped();
      await this.waitForChange(Math.min(1_000, wallMs - Date.now()));
    }
  }

  private progressState(): ProgressState {
    return {
      bytesRead: this.bytesRead,
      totalBytes: this.totalBytes,
      eventsSent: this.s.sent,
      accepted: this.s.accepted,
      duplicate: this.s.duplicate,
      rejected: count(this.s.rejectedByCode),
      inFlight: this.inflight.size,
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
