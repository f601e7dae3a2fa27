// One event's way through the gateway: validate → images → blobs → record → ack. The stages are
// injected (built in the composition root, service/gateway.ts) as the interfaces of model/stages.ts;
// this file only sequences them and turns every outcome into exactly one ack. "accepted" is answered
// only after the blobs are stored and Kafka has acknowledged the record. Keys, topics and records are
// the exporters' business, health the exporters' and the receivers'.
import { simgate } from "../generated/simgate.js";
import { GatewayError, asGatewayError } from "../errors/gateway-error.js";
import { errorSpec, isErrorCode } from "../errors/catalogue.js";
import type { RecordLocation } from "../model/outcome.js";
import type { BlobExporter, DeadLetterExporter, ImageStage, MessageChecks, PipelineEvents, RecordExporter } from "../model/stages.js";
import type { GatewayMetrics, Outcome, Transport } from "../telemetry/metrics.js";
import type { Logger } from "../telemetry/logger.js";
import { DedupeCache } from "./dedupe-cache.js";
import { bytesSha256, eventFingerprint } from "./event-fingerprint.js";
import type { HealthView, IncomingEvent, IngestConsumer, MessageOrigin, PayloadType } from "../model/ingest.js";
import { RunLedger, runMessageFingerprint } from "./run-ledger.js";

/** Records what was accepted, per run (recording/run-recorder.ts). Its promises never reject: a
 *  recording failure is reported by the recorder and never fails an event. */
export interface RunRecording {
  runStarted(runStart: simgate.v1.IRunStart): Promise<void>;
  eventAccepted(event: simgate.v1.IEvent): Promise<void>;
  runEnded(runEnd: simgate.v1.IRunEnd): Promise<void>;
}

export interface PipelineStages {
  /** Optional: records each run's accepted messages (recording.mode). */
  recorder?: RunRecording;
  validator: MessageChecks;
  images: ImageStage;
  blobs: BlobExporter;
  records: RecordExporter;
  deadLetter: DeadLetterExporter;
  health: HealthView;
  /** Told when a run has ended (the plugins' listeners, fanned out by the composition root). */
  events?: PipelineEvents;
}

export interface PipelineSettings {
  maxMessageBytes: number;
  dedupeEntries: number;
  /** Runs remembered for the run lifecycle (run-ledger.ts). */
  maxRuns: number;
}

interface Stored {
  blobs: simgate.v1.IBlobRef[];
  record: RecordLocation;
  /** Content fingerprint of the accepted event (event-fingerprint.ts). */
  fingerprint: string;
}

/** The dedupe window keeps an accepted event as one flat string: every full garbage collection walks
 *  the window, and in the image path one comes every few dozen events, so one object per event instead
 *  of the ~17 of its blobs, record and fingerprint as objects keeps that walk short. JSON.stringify
 *  returns a longer text as a tree of string pieces; decoding its bytes gives one flat string. Read
 *  back only for a resend. */
const remember = (stored: Stored): string => Buffer.from(JSON.stringify(stored)).toString();
const recall = (kept: string): Stored => JSON.parse(kept) as Stored;

/** Same content, images compared by the sha256 of their bytes (only computed when two events share an id). */
function sameContent(a: simgate.v1.IEvent, b: simgate.v1.IEvent): boolean {
  return a === b || eventFingerprint(a, (_i, img) => bytesSha256(img)) === eventFingerprint(b, (_i, img) => bytesSha256(img));
}

function retryLater(err: GatewayError): simgate.v1.IRetryLater {
  return { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs };
}

export class EventPipeline implements IngestConsumer {
  private readonly accepted: DedupeCache<string>;
  private readonly inProgress = new Map<string, { event: simgate.v1.IEvent; ack: Promise<simgate.v1.IAck> }>();
  private readonly runs: RunLedger;
  private draining = false;

  constructor(
    private readonly stages: PipelineStages,
    private readonly settings: PipelineSettings,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.accepted = new DedupeCache(settings.dedupeEntries);
    this.runs = new RunLedger(settings.maxRuns);
  }

  /** From now on new events are answered retry-later (GW_ERR_DRAINING). */
  startDraining(): void {
    this.draining = true;
  }

  /** Answers one event; never throws. A RunStart or RunEnd of its run being handled is waited for
   *  first; the event then counts as in flight for its run until answered (a RunEnd waits for it). */
  async handleEvent(input: IncomingEvent): Promise<simgate.v1.IAck> {
    const runId = input.event.runId ?? "";
    let run = runId !== "" ? this.runs.get(runId) : undefined;
    while (run?.busy) {
      await run.busy;
      run = this.runs.get(runId);
    }
    const work = this.answerEvent(input);
    if (runId !== "") this.runs.track(runId, work);
    return work;
  }

  private async answerEvent(input: IncomingEvent): Promise<simgate.v1.IAck> {
    const started = performance.now();
    const eventId = input.event.eventId ?? "";
    const sequence = Number(input.event.sequence ?? 0);
    let ack: simgate.v1.IAck | undefined;
    // The same event id in flight already (on this stream or another): wait for its verdict. Identical
    // content shares it; other content is checked on its own once the first is answered (then the
    // dedupe cache tells a duplicate from a conflict).
    for (let existing = this.inProgress.get(eventId); eventId !== "" && existing !== undefined; existing = this.inProgress.get(eventId)) {
      const first = await existing.ack;
      if (!sameContent(existing.event, input.event)) continue;
      if (first.accepted) {
        ack = { eventId, sequence, duplicate: first.accepted };
      } else {
        ack = { ...first, eventId, sequence };
        const code = first.rejected?.code ?? first.retryLater?.code;
        if (typeof code === "string" && isErrorCode(code)) this.metrics.errors.inc({ code, stage: errorSpec(code).stage });
      }
      break;
    }
    if (ack === undefined) {
      const work = this.process(input, eventId, sequence);
      if (eventId !== "") this.inProgress.set(eventId, { event: input.event, ack: work });
      try {
        ack = await work;
      } finally {
        if (eventId !== "" && this.inProgress.get(eventId)?.ack === work) this.inProgress.delete(eventId);
      }
    }
    const outcome: Outcome = ack.accepted ? "accepted" : ack.duplicate ? "duplicate" : ack.rejected ? "rejected" : "retry_later";
    const code = ack.rejected?.code ?? ack.retryLater?.code ?? "";
    this.metrics.events.inc({ transport: input.transport, outcome, code });
    this.metrics.receivedBytes.inc({ transport: input.transport }, input.raw.length);
    this.metrics.ackSeconds.observe({ transport: input.transport, outcome }, (performance.now() - started) / 1000);
    return ack;
  }

  private async process(input: IncomingEvent, eventId: string, sequence: number): Promise<simgate.v1.IAck> {
    const receivedAtMs = Date.now();
    try {
      if (this.draining) throw new GatewayError("GW_ERR_DRAINING", "the gateway is shutting down");
      const known = eventId !== "" ? this.accepted.get(eventId) : undefined;
      if (known !== undefined) return await this.duplicateOrConflict(input, eventId, sequence, recall(known), receivedAtMs);
      if (eventId !== "" && input.event.runId && this.runs.get(input.event.runId)?.ended) {
        throw new GatewayError("GW_ERR_RUN_ENDED", `run ${input.event.runId} has ended on this gateway; an event after its RunEnd is refused`);
      }
      if (!this.stages.health.ready) throw this.notReady();
      if (input.raw.length > this.settings.maxMessageBytes) {
        throw new GatewayError("GW_ERR_MESSAGE_TOO_LARGE", `message of ${input.raw.length} bytes exceeds ${this.settings.maxMessageBytes}`);
      }
      const event = this.stages.validator.validateEvent(input.event);
      this.stages.records.checkRoutable(event.eventType);
      const processed = await Promise.all(event.images.map((img, i) => this.stages.images.process(img, `images[${i}] (${img.view})`)));
      const stored = await this.stages.blobs.store(event, processed);
      const record = await this.stages.records.publishEvent(event, stored, receivedAtMs);
      const blobs = stored.map((s) => ({ view: s.view, uri: s.uri, sha256: s.sha256, sizeBytes: s.sizeBytes, contentType: s.contentType, width: s.width, height: s.height }));
      const fingerprint = eventFingerprint(input.event, (i, img) => (img.encoding === simgate.v1.ImageEncoding.IMAGE_ENCODING_RAW_RGBA8 ? bytesSha256(img) : (processed[i]?.sha256 ?? bytesSha256(img))));
      this.accepted.set(event.eventId, remember({ blobs, record, fingerprint }));
      // Awaited (a local append) so that the images it holds count against the in-flight limits.
      if (this.stages.recorder) await this.stages.recorder.eventAccepted(input.event);
      return { eventId, sequence, accepted: { blobs, record } };
    } catch (err) {
      return this.failure(asGatewayError(err), input, eventId, sequence, receivedAtMs);
    }
  }

  /** A resend of an accepted event id: "duplicate" when its content is the same, else a conflict. */
  private async duplicateOrConflict(input: IncomingEvent, eventId: string, sequence: number, known: Stored, receivedAtMs: number): Promise<simgate.v1.IAck> {
    if (eventFingerprint(input.event, (_i, img) => bytesSha256(img)) === known.fingerprint) {
      return { eventId, sequence, duplicate: { blobs: known.blobs, record: known.record } };
    }
    const err = new GatewayError("GW_ERR_EVENT_ID_CONFLICT", `event id already used with different content: ${eventId} was accepted (${known.record.topic}/${known.record.partition}@${known.record.offset}) with other fields or images`);
    return this.failure(err, input, eventId, sequence, receivedAtMs);
  }

  private notReady(): GatewayError {
    const down = Object.entries(this.stages.health.status()).filter(([, s]) => !s.up).map(([d]) => d);
    // Readiness is false only while a dependency is down (draining is answered before this), so the
    // answer names it; GW_ERR_NOT_READY is retired (docs/errors.md).
    const code = down.includes("kafka") || !down.includes("s3") ? "GW_ERR_KAFKA_UNAVAILABLE" : "GW_ERR_STORAGE_UNAVAILABLE";
    return new GatewayError(code, `not ready: ${down.join(", ") || "starting"} unavailable`);
  }

  private async failure(err: GatewayError, input: IncomingEvent, eventId: string, sequence: number, receivedAtMs: number): Promise<simgate.v1.IAck> {
    this.metrics.errors.inc({ code: err.code, stage: err.stage });
    if (!err.permanent) {
      if (err.code === "GW_ERR_INTERNAL") this.logger.error({ err: err.cause ?? err, eventId }, "internal error");
      return { eventId, sequence, retryLater: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } };
    }
    // Rejected input is kept with its reason before the sender hears "rejected"; if that fails the
    // sender is asked to retry, so nothing vanishes.
    const kept = await this.stages.deadLetter.write({
      err,
      raw: input.raw,
      transport: input.transport,
      payloadType: input.transport === "ws" ? "simgate.v1.ClientFrame" : "simgate.v1.Event",
      connectionId: input.connectionId,
      eventId: eventId === "" ? null : eventId,
      runId: input.event.runId ? input.event.runId : null,
      receivedAtMs,
    });
    if (kept !== true) return { eventId, sequence, retryLater: retryLater(this.notKept(err, kept, "event")) };
    this.logger.info({ eventId, code: err.code, transport: input.transport }, `rejected: ${err.message}`);
    return { eventId, sequence, rejected: { code: err.code, message: err.message } };
  }

  /** A message that could not even be decoded: dead-lettered, answered with an error frame/status. */
  async handleUndecodable(raw: Buffer, transport: Transport, connectionId: string, detail: string, sentAs: PayloadType = transport === "ws" ? "simgate.v1.ClientFrame" : "simgate.v1.Event"): Promise<GatewayError> {
    return this.rejectFrame(new GatewayError("GW_ERR_DECODE", `not a valid protobuf message: ${detail}`), raw, transport, connectionId, sentAs);
  }

  /** A WebSocket frame that carries nothing to process (text, empty, no body): GW_ERR_EMPTY_FRAME,
   *  the same code in the answer, the dead letter and the metrics. */
  async handleEmptyFrame(raw: Buffer, transport: Transport, connectionId: string, detail: string, isText: boolean): Promise<GatewayError> {
    return this.rejectFrame(new GatewayError("GW_ERR_EMPTY_FRAME", detail), raw, transport, connectionId, isText ? "text" : "simgate.v1.ClientFrame");
  }

  private async rejectFrame(err: GatewayError, raw: Buffer, transport: Transport, connectionId: string, payloadType: PayloadType): Promise<GatewayError> {
    this.metrics.errors.inc({ code: err.code, stage: err.stage });
    this.metrics.events.inc({ transport, outcome: "rejected", code: err.code });
    const kept = await this.stages.deadLetter.write({ err, raw, transport, payloadType, connectionId, eventId: null, runId: null, receivedAtMs: Date.now() });
    if (kept === true) return err;
    return this.notKept(err, kept, "message");
  }

  /** A RunStart: published once per run. A resend with the same content is answered with the first
   *  record's location; other content is GW_ERR_RUN_CONFLICT; after the run's end GW_ERR_RUN_ENDED. */
  async startRun(message: simgate.v1.IRunStart, from: MessageOrigin): Promise<simgate.v1.IRunAck> {
    const runId = message.runId ?? "";
    try {
      if (this.draining) throw new GatewayError("GW_ERR_DRAINING", "the gateway is shutting down");
      const run = this.stages.validator.validateRunStart(message);
      const fingerprint = runMessageFingerprint(run);
      return await this.runs.exclusive(run.runId, async (state) => {
        if (state.started) {
          // A resend (a lost ack, a replay of the whole run) is answered as the first, even after the end.
          if (state.started.fingerprint === fingerprint) return { runId, accepted: state.started.location };
          throw new GatewayError("GW_ERR_RUN_CONFLICT", `run ${run.runId} was started with other content (${state.started.location.topic}/${state.started.location.partition}@${state.started.location.offset})`);
        }
        if (state.ended) throw new GatewayError("GW_ERR_RUN_ENDED", `run ${run.runId} has ended on this gateway; a RunStart after its RunEnd is refused`);
        if (!this.stages.health.ready) throw this.notReady();
        const location = await this.stages.records.publishRunStart(run, Date.now());
        state.started = { fingerprint, location };
        if (this.stages.recorder) await this.stages.recorder.runStarted(message);
        return { runId, accepted: location };
      });
    } catch (err) {
      return this.runFailure(asGatewayError(err), runId, from, "simgate.v1.RunStart");
    }
  }

  /** A RunEnd: waits for the run's events in flight, then publishes run.end once. A resend with the
   *  same content is answered with the first record's location; other content is GW_ERR_RUN_CONFLICT. */
  async endRun(message: simgate.v1.IRunEnd, from: MessageOrigin): Promise<simgate.v1.IRunAck> {
    const runId = message.runId ?? "";
    try {
      const run = this.stages.validator.validateRunEnd(message);
      const fingerprint = runMessageFingerprint(run);
      return await this.runs.exclusive(run.runId, async (state) => {
        if (state.ended) {
          if (state.ended.fingerprint === fingerprint) return { runId, accepted: state.ended.location };
          throw new GatewayError("GW_ERR_RUN_CONFLICT", `run ${run.runId} was ended with other content (${state.ended.location.topic}/${state.ended.location.partition}@${state.ended.location.offset})`);
        }
        await this.runs.settled(run.runId);
        if (!this.stages.health.ready && !this.draining) throw this.notReady();
        const location = await this.stages.records.publishRunEnd(run, Date.now());
        state.ended = { fingerprint, location };
        this.stages.events?.onRunEnded?.(run.runId, location);
        // Not awaited: it closes the file and uploads it; shutdown waits for it (RunRecorder.close).
        if (this.stages.recorder) void this.stages.recorder.runEnded(message);
        return { runId, accepted: location };
      });
    } catch (err) {
      return this.runFailure(asGatewayError(err), runId, from, "simgate.v1.RunEnd");
    }
  }

  /** A refusal whose dead letter could not be written: answered retry-later, never rejected, so that
   *  nothing the sender gives up on is lost. */
  private notKept(err: GatewayError, kept: GatewayError, what: string): GatewayError {
    this.metrics.errors.inc({ code: "GW_ERR_DEAD_LETTER_UNAVAILABLE", stage: "export" });
    return new GatewayError("GW_ERR_DEAD_LETTER_UNAVAILABLE", `could not keep the rejected ${what} (${err.code}: ${err.message}): ${kept.code}: ${kept.message}`, { cause: kept });
  }

  private async runFailure(err: GatewayError, runId: string, from: MessageOrigin, sentAs: PayloadType): Promise<simgate.v1.IRunAck> {
    this.metrics.errors.inc({ code: err.code, stage: err.stage });
    if (!err.permanent) return { runId, retryLater: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } };
    // A rejected run message is kept like a rejected event (the dead letter's eventId is null).
    const payloadType = from.transport === "ws" ? "simgate.v1.ClientFrame" : sentAs;
    const kept = await this.stages.deadLetter.write({ err, raw: from.raw, transport: from.transport, payloadType, connectionId: from.connectionId, eventId: null, runId: runId === "" ? null : runId, receivedAtMs: Date.now() });
    if (kept !== true) return { runId, retryLater: retryLater(this.notKept(err, kept, "run message")) };
    return { runId, rejected: { code: err.code, message: err.message } };
  }
}
