// The job driver's metrics, on the gateway's registry (/metrics). Labels are bounded: topic (the
// configured job topics), reason, action, outcome status (the job's fixed set of statuses).
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { JobDriverObserver, JobRun } from "./job-driver.js";
import type { JobOutcome, TriggerReason } from "./job-types.js";

export class JobsMetrics implements JobDriverObserver {
  private readonly triggers: Counter<"topic" | "reason" | "action">;
  private readonly runs: Counter<"topic" | "status">;
  private readonly retries: Counter<"topic">;
  private readonly running: Gauge<"topic">;
  private readonly seconds: Histogram<"topic">;
  private readonly lastSuccess: Gauge<"topic">;
  private readonly rows: Counter<"topic" | "table">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.triggers = new Counter({ name: "simgate_jobs_triggers_total", help: "Job triggers by topic, reason and what the driver did (queued, coalesced)", labelNames: ["topic", "reason", "action"], registers });
    this.runs = new Counter({ name: "simgate_jobs_runs_total", help: "Finished job runs by topic and status (published, nothing_to_publish, audit_failed, failed, cancelled, ...)", labelNames: ["topic", "status"], registers });
    this.retries = new Counter({ name: "simgate_jobs_retries_total", help: "Retries scheduled after a failed run", labelNames: ["topic"], registers });
    this.running = new Gauge({ name: "simgate_jobs_running", help: "Job runs in progress", labelNames: ["topic"], registers });
    this.seconds = new Histogram({ name: "simgate_jobs_run_seconds", help: "Duration of a job run", labelNames: ["topic"], buckets: [5, 10, 20, 30, 60, 120, 300, 600, 1800], registers });
    this.lastSuccess = new Gauge({ name: "simgate_jobs_last_success_timestamp_seconds", help: "End of the topic's last successful run (Unix seconds)", labelNames: ["topic"], registers });
    this.rows = new Counter({ name: "simgate_jobs_rows_total", help: "Rows written by WAP runs, by table (trusted = published to production, untrusted)", labelNames: ["topic", "table"], registers });
  }

  triggered(topic: string, reason: TriggerReason, action: "started" | "queued" | "coalesced"): void {
    this.triggers.inc({ topic, reason, action });
  }

  started(run: JobRun): void {
    this.running.inc({ topic: run.topic });
  }

  finished(run: JobRun, outcome: JobOutcome): void {
    this.running.dec({ topic: run.topic });
    this.runs.inc({ topic: run.topic, status: outcome.status });
    if (run.durationMs !== undefined) this.seconds.observe({ topic: run.topic }, run.durationMs / 1000);
    if (outcome.ok) this.lastSuccess.set({ topic: run.topic }, Date.now() / 1000);
    if (outcome.ok && outcome.status === "published") {
      const trusted = outcome.result?.["trusted"];
      const untrusted = outcome.result?.["untrusted"];
      if (typeof trusted === "number") this.rows.inc({ topic: run.topic, table: "trusted" }, trusted);
      if (typeof untrusted === "number") this.rows.inc({ topic: run.topic, table: "untrusted" }, untrusted);
    }
  }

  retryScheduled(topic: string): void {
    this.retries.inc({ topic });
  }
}
