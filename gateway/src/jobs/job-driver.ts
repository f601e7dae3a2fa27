// The job driver: decides when each topic's WAP job runs. Triggers are a run end, N records, or T
// milliseconds after the first record not yet handed to a job. One topic never runs twice at once: a
// trigger while its job runs is remembered (several coalesce into one) and starts one more run after it;
// at most `maxConcurrent` jobs run over all topics, first come first served. A failed run is retried
// with exponential back-off (a failed audit is not: the same data would fail again). The launcher and
// the clock are injected.
import type { Logger } from "../telemetry/logger.js";
import { MAINTENANCE_JOB, systemClock, type Clock, type JobLauncher, type JobOutcome, type JobResult, type TimerHandle, type TriggerReason } from "./job-types.js";

export interface JobDriverOptions {
  readonly topics: readonly string[];
  readonly onRunEnd: boolean;
  readonly everyRecords: number;
  readonly everyMs: number;
  readonly maxConcurrent: number;
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
  readonly timeoutMs: number;
  readonly historySize: number;
  /** Storage maintenance (MAINTENANCE_JOB) every this many ms, in the same queue as the WAP runs, so
   *  it never runs beside them (0 = off). */
  readonly maintenanceEveryMs?: number;
}

export type TopicState = "idle" | "queued" | "running" | "retry-wait";

export interface JobRun {
  readonly id: string;
  readonly topic: string;
  readonly reason: TriggerReason;
  readonly attempt: number;
  state: "running" | "succeeded" | "failed";
  readonly startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  status?: string;
  exitCode?: number | null;
  signal?: string;
  error?: string;
  result?: JobResult;
}

/** Told when runs start and finish and when triggers arrive (metrics). */
export interface JobDriverObserver {
  triggered?(topic: string, reason: TriggerReason, action: "started" | "queued" | "coalesced"): void;
  started?(run: JobRun): void;
  finished?(run: JobRun, outcome: JobOutcome): void;
  retryScheduled?(topic: string, attempt: number, delayMs: number): void;
}

export interface TopicSnapshot {
  topic: string;
  state: TopicState;
  recordsSinceLastStart: number;
  pendingReason: TriggerReason | null;
  coalescedTriggers: number;
  attempt: number;
  nextRetryAt: string | null;
  current: JobRun | null;
  last: JobRun | null;
}

export interface JobDriverSnapshot {
  launcher: string;
  running: number;
  queued: string[];
  topics: TopicSnapshot[];
  /** Finished runs, newest first. */
  history: JobRun[];
}

interface Slot {
  readonly topic: string;
  state: TopicState;
  /** Records since the last start; `dirty` until the first start (records from before a restart). */
  records: number;
  dirty: boolean;
  pendingReason: TriggerReason | null;
  coalesced: number;
  reason: TriggerReason;
  attempt: number;
  intervalTimer: TimerHandle | null;
  retryTimer: TimerHandle | null;
  nextRetryAt: number | null;
  current: JobRun | null;
  last: JobRun | null;
  abort: AbortController | null;
  done: Promise<void> | null;
}

type DriverLogger = Pick<Logger, "info" | "warn" | "error">;

export class JobDriver {
  private readonly slots = new Map<string, Slot>();
  private readonly queue: string[] = [];
  private readonly history: JobRun[] = [];
  private active = 0;
  private sequence = 0;
  private stopping = false;
  private idleWaiters: Array<() => void> = [];
  private maintenanceTimer: TimerHandle | null = null;

  constructor(
    private readonly options: JobDriverOptions,
    private readonly launcher: JobLauncher,
    private readonly clock: Clock = systemClock,
    private readonly observer: JobDriverObserver = {},
    private readonly logger?: DriverLogger,
  ) {
    const jobs = (options.maintenanceEveryMs ?? 0) > 0 ? [...options.topics, MAINTENANCE_JOB] : options.topics;
    for (const topic of jobs) {
      this.slots.set(topic, {
        topic,
        state: "idle",
        records: 0,
        dirty: true,
        pendingReason: null,
        coalesced: 0,
        reason: "manual",
        attempt: 0,
        intervalTimer: null,
        retryTimer: null,
        nextRetryAt: null,
        current: null,
        last: null,
        abort: null,
        done: null,
      });
    }
  }

  get topics(): string[] {
    return [...this.slots.keys()].filter((t) => t !== MAINTENANCE_JOB);
  }

  /** Arms the maintenance timer (when configured); the plugin calls it when the gateway starts. */
  startSchedules(): void {
    const every = this.options.maintenanceEveryMs ?? 0;
    if (every <= 0 || this.stopping || this.maintenanceTimer !== null) return;
    this.maintenanceTimer = this.clock.setTimeout(() => {
      this.maintenanceTimer = null;
      this.trigger(MAINTENANCE_JOB, "interval");
      this.startSchedules();
    }, every);
  }

  /** A record was acknowledged by Kafka on `topic` (other topics are ignored). */
  recordProduced(topic: string): void {
    const slot = this.slots.get(topic);
    if (slot === undefined || this.stopping) return;
    slot.records += 1;
    if (this.options.everyMs > 0 && slot.intervalTimer === null) {
      slot.intervalTimer = this.clock.setTimeout(() => {
        slot.intervalTimer = null;
        this.trigger(topic, "interval");
      }, this.options.everyMs);
    }
    // After the timer: a start clears it, since the job covers these records.
    if (this.options.everyRecords > 0 && slot.records === this.options.everyRecords) this.trigger(topic, "records");
  }

  /** A run ended: every topic with records since its last start (or since the driver started) gets
   *  one job, in configuration order. */
  runEnded(_runId: string): void {
    if (!this.options.onRunEnd || this.stopping) return;
    for (const slot of this.slots.values()) {
      if (slot.topic !== MAINTENANCE_JOB && (slot.records > 0 || slot.dirty)) this.trigger(slot.topic, "run-end");
    }
  }

  /** Asks for a run of `topic`; returns false for a topic without a job. */
  trigger(topic: string, reason: TriggerReason): boolean {
    const slot = this.slots.get(topic);
    if (slot === undefined || this.stopping) return false;
    switch (slot.state) {
      case "idle":
        slot.state = "queued";
        slot.reason = reason;
        slot.attempt = 1;
        slot.coalesced = 0;
        this.queue.push(topic);
        this.observer.triggered?.(topic, reason, "queued");
        this.pump();
        break;
      case "queued":
      case "retry-wait":
        // The run that is about to start reads everything published so far: this trigger is covered.
        slot.coalesced += 1;
        this.observer.triggered?.(topic, reason, "coalesced");
        break;
      case "running":
        slot.pendingReason ??= reason;
        slot.coalesced += 1;
        this.observer.triggered?.(topic, reason, "coalesced");
        break;
    }
    return true;
  }

  snapshot(): JobDriverSnapshot {
    return {
      launcher: this.launcher.kind,
      running: this.active,
      queued: [...this.queue],
      topics: [...this.slots.values()].map((s) => ({
        topic: s.topic,
        state: s.state,
        recordsSinceLastStart: s.records,
        pendingReason: s.pendingReason,
        coalescedTriggers: s.coalesced,
        attempt: s.attempt,
        nextRetryAt: s.nextRetryAt === null ? null : new Date(s.nextRetryAt).toISOString(),
        current: s.current === null ? null : { ...s.current },
        last: s.last === null ? null : { ...s.last },
      })),
      history: this.history.map((r) => ({ ...r })),
    };
  }

  /** Resolves when no job runs, waits or is queued. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cancels timers and stops running jobs (the WAP job is safe to kill: it resumes from the published
   *  offsets). Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.length = 0;
    if (this.maintenanceTimer) this.clock.clearTimeout(this.maintenanceTimer);
    this.maintenanceTimer = null;
    const running: Promise<void>[] = [];
    for (const slot of this.slots.values()) {
      if (slot.intervalTimer) this.clock.clearTimeout(slot.intervalTimer);
      if (slot.retryTimer) this.clock.clearTimeout(slot.retryTimer);
      slot.intervalTimer = slot.retryTimer = null;
      slot.pendingReason = null;
      if (slot.abort) slot.abort.abort(new Error("the gateway is stopping"));
      if (slot.done) running.push(slot.done);
      if (slot.state !== "running") slot.state = "idle";
    }
    await Promise.all(running);
    await this.launcher.close?.();
    this.notifyIfIdle();
  }

  private isIdle(): boolean {
    return this.active === 0 && this.queue.length === 0 && [...this.slots.values()].every((s) => s.state === "idle");
  }

  private notifyIfIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private pump(): void {
    while (!this.stopping && this.active < this.options.maxConcurrent && this.queue.length > 0) {
      const topic = this.queue.shift() as string;
      const slot = this.slots.get(topic);
      if (slot !== undefined) this.start(slot);
    }
  }

  private start(slot: Slot): void {
    this.active += 1;
    slot.state = "running";
    slot.records = 0;
    slot.dirty = false;
    slot.nextRetryAt = null;
    if (slot.intervalTimer) this.clock.clearTimeout(slot.intervalTimer);
    slot.intervalTimer = null;
    const run: JobRun = {
      id: `job-${slot.topic}-${++this.sequence}`,
      topic: slot.topic,
      reason: slot.reason,
      attempt: slot.attempt,
      state: "running",
      startedAt: new Date(this.clock.now()).toISOString(),
    };
    const startedAt = this.clock.now();
    slot.current = run;
    const abort = new AbortController();
    slot.abort = abort;
    const timeout = this.clock.setTimeout(() => abort.abort(new Error(`timed out after ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
    this.observer.started?.(run);
    this.logger?.info({ job: run.id, topic: run.topic, reason: run.reason, attempt: run.attempt }, "job started");
    slot.done = this.launcher
      .launch(
        { id: run.id, topic: run.topic, attempt: run.attempt, reason: run.reason, ...(run.topic === MAINTENANCE_JOB ? { topics: this.topics } : {}) },
        abort.signal,
      )
      .catch((err: unknown): JobOutcome => ({ ok: false, status: "failed", retryable: true, error: err instanceof Error ? err.message : String(err) }))
      .then((outcome) => {
        this.clock.clearTimeout(timeout);
        this.finish(slot, run, outcome, this.clock.now() - startedAt);
      });
  }

  private finish(slot: Slot, run: JobRun, outcome: JobOutcome, durationMs: number): void {
    this.active -= 1;
    run.state = outcome.ok ? "succeeded" : "failed";
    run.finishedAt = new Date(this.clock.now()).toISOString();
    run.durationMs = durationMs;
    run.status = outcome.status;
    if (outcome.exitCode !== undefined) run.exitCode = outcome.exitCode;
    if (outcome.signal !== undefined) run.signal = outcome.signal;
    if (outcome.error !== undefined) run.error = outcome.error;
    if (outcome.result !== undefined) run.result = outcome.result;
    slot.current = null;
    slot.last = run;
    slot.abort = null;
    slot.done = null;
    this.history.unshift(run);
    this.history.length = Math.min(this.history.length, this.options.historySize);
    this.observer.finished?.(run, outcome);
    const log = { job: run.id, topic: run.topic, status: run.status, durationMs, error: run.error };
    if (outcome.ok) this.logger?.info(log, "job finished");
    else this.logger?.warn(log, "job failed");

    if (this.stopping) {
      slot.state = "idle";
    } else if (!outcome.ok && outcome.retryable && slot.attempt < this.options.maxAttempts) {
      const delay = Math.min(this.options.backoffMs * 2 ** (slot.attempt - 1), this.options.backoffMaxMs);
      slot.state = "retry-wait";
      slot.attempt += 1;
      slot.pendingReason = null; // the retry reads everything, including what the pending trigger wanted
      slot.nextRetryAt = this.clock.now() + delay;
      this.observer.retryScheduled?.(slot.topic, slot.attempt, delay);
      slot.retryTimer = this.clock.setTimeout(() => {
        slot.retryTimer = null;
        if (this.stopping) return;
        slot.state = "queued";
        this.queue.push(slot.topic);
        this.pump();
      }, delay);
    } else {
      if (!outcome.ok) this.logger?.error({ job: run.id, topic: run.topic, attempts: slot.attempt }, "job given up until the next trigger");
      slot.state = "idle";
      slot.attempt = 0;
      const pending = slot.pendingReason;
      slot.pendingReason = null;
      if (pending !== null) this.trigger(slot.topic, pending);
    }
    this.pump();
    this.notifyIfIdle();
  }
}
