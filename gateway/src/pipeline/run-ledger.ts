// What this gateway knows about each run: whether its start and end were accepted (with their content
// fingerprint and record location), and which of its events are in flight. Bounded: beyond maxRuns
// the oldest idle runs are forgotten. Memory only: after a restart the ledger starts empty (see
// docs/records.md, "Run lifecycle").
import { createHash } from "node:crypto";
import type { RecordLocation } from "../model/outcome.js";

export interface AcceptedRunMessage {
  fingerprint: string;
  location: RecordLocation;
}

export interface RunState {
  started?: AcceptedRunMessage;
  ended?: AcceptedRunMessage;
  /** A RunStart or RunEnd being handled; events (and other run messages) wait for it. */
  busy?: Promise<void>;
  readonly inFlight: Set<Promise<unknown>>;
}

export class RunLedger {
  private readonly runs = new Map<string, RunState>();

  constructor(private readonly maxRuns: number) {}

  get(runId: string): RunState | undefined {
    return this.runs.get(runId);
  }

  /** The run's state, created when new. */
  entry(runId: string): RunState {
    let run = this.runs.get(runId);
    if (!run) {
      run = { inFlight: new Set() };
      this.runs.set(runId, run);
      this.evict();
    }
    return run;
  }

  /** Counts work (an event) as in flight for the run until it settles. */
  track(runId: string, work: Promise<unknown>): void {
    const run = this.entry(runId);
    run.inFlight.add(work);
    const done = (): void => {
      run.inFlight.delete(work);
    };
    work.then(done, done);
  }

  /** Resolves once none of the run's events are in flight (events that arrive meanwhile included). */
  async settled(runId: string): Promise<void> {
    const run = this.runs.get(runId);
    while (run && run.inFlight.size > 0) await Promise.allSettled([...run.inFlight]);
  }

  /** Runs fn while the run is marked busy; waits for an earlier busy phase first. */
  async exclusive<T>(runId: string, fn: (run: RunState) => Promise<T>): Promise<T> {
    const run = this.entry(runId);
    while (run.busy) await run.busy;
    let release = (): void => undefined;
    run.busy = new Promise<void>((resolve) => (release = resolve));
    try {
      return await fn(run);
    } finally {
      run.busy = undefined;
      release();
    }
  }

  get size(): number {
    return this.runs.size;
  }

  private evict(): void {
    if (this.runs.size <= this.maxRuns) return;
    for (const [runId, run] of this.runs) {
      if (this.runs.size <= this.maxRuns) return;
      if (run.inFlight.size === 0 && !run.busy) this.runs.delete(runId);
    }
  }
}

/** A fingerprint of a validated run message: sha256 of its JSON with object keys sorted. */
export function runMessageFingerprint(message: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v !== null && typeof v === "object") return Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]);
    return v;
  };
  return createHash("sha256").update(JSON.stringify(canonical(message))).digest("hex");
}
