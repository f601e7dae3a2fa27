// The job driver's vocabulary: what a launcher is asked to run, what it answers, and the clock the
// scheduler runs on (injected, so the scheduling is unit-tested on a fake clock).

export type TriggerReason = "run-end" | "records" | "interval" | "manual";

/** The storage maintenance job's name among the topics (not a valid Kafka topic name). */
export const MAINTENANCE_JOB = "@maintenance";

export interface JobRequest {
  /** Unique per launch (attempts of one job get their own id). */
  readonly id: string;
  /** The topic of a WAP run, or MAINTENANCE_JOB. */
  readonly topic: string;
  /** For maintenance: the topics whose tables it maintains. */
  readonly topics?: readonly string[];
  readonly attempt: number;
  readonly reason: TriggerReason;
}

/** What the WAP job reported (its SIMGATE_WAP_RESULT line), camelCase as the job prints it. */
export type JobResult = Record<string, unknown>;

export interface JobOutcome {
  readonly ok: boolean;
  /** published | nothing_to_publish | audit_failed | failed | ... (from the job), or launcher-side. */
  readonly status: string;
  /** Worth running again (a crash, a merge conflict, the cluster); false for a failed audit. */
  readonly retryable: boolean;
  readonly exitCode?: number | null;
  /** The signal that ended the job's process, if one did. */
  readonly signal?: string;
  readonly result?: JobResult;
  readonly error?: string;
}

export interface JobLauncher {
  readonly kind: string;
  /** Runs one job to its end. Must not throw: failures are outcomes. Aborting the signal stops it. */
  launch(request: JobRequest, signal: AbortSignal): Promise<JobOutcome>;
  /** Releases what the launcher keeps between jobs (the local launcher's warm workers). */
  close?(): Promise<void>;
  /** Gets ready for a first job before there is one (the local launcher's warm worker). */
  prewarm?(count?: number): unknown;
}

export type TimerHandle = { readonly id: number };

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = (() => {
  let next = 0;
  const timers = new Map<number, NodeJS.Timeout>();
  return {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const id = ++next;
      const t = setTimeout(() => {
        timers.delete(id);
        fn();
      }, ms);
      t.unref();
      timers.set(id, t);
      return { id };
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t !== undefined) clearTimeout(t);
      timers.delete(handle.id);
    },
  };
})();
