// Runs the WAP job on this machine: `<venv>/bin/python -m simgate.lakehouse.wap --topic T`, Spark in
// local mode with the pinned jars (the job's own session factory finds them). The job's environment is
// the gateway's (the stack settings KAFKA_BOOTSTRAP, S3_*, NESSIE_URI, SPARK_JARS_DIR pass through)
// plus the configured extras. Its last stdout line `SIMGATE_WAP_RESULT {json}` is the result. By default
// the WAP runs go to a warm worker (warm-worker.ts) that keeps one Spark session between runs; the
// maintenance job always runs in a process of its own.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MAINTENANCE_JOB, type JobLauncher, type JobOutcome, type JobRequest, type JobResult } from "./job-types.js";
import { WarmWorker } from "./warm-worker.js";

export const RESULT_PREFIX = "SIMGATE_WAP_RESULT ";
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface LocalLauncherOptions {
  /** Default <repo>/.venv/bin/python. */
  python?: string | undefined;
  wapConfigFile?: string | undefined;
  env?: Record<string, string>;
  /** Python module to run (tests use it to point at a stand-in). */
  module?: string;
  /** Kept from the job's stderr for the run's error message. */
  stderrTailBytes?: number;
  /** Grace between SIGTERM and SIGKILL when a run is stopped. */
  killGraceMs?: number;
  /** WAP runs go to a warm worker (`python -m simgate.lakehouse.worker`) that keeps its Spark session
   *  between runs; false: one process per run. Maintenance always gets a process of its own. Default true. */
  warm?: boolean;
  /** An idle warm worker is stopped after this long (its JVM holds about 1 GB). Default 600000. */
  warmIdleMs?: number;
  /** Python module of the warm worker (tests use it to point at a stand-in). */
  workerModule?: string;
}

/** The last line of a job's stderr that is a message, not Spark's progress bar (`[Stage 3:>  (0 + 2) / 2]`,
 *  redrawn with carriage returns). */
export function lastMessageLine(stderrTail: string): string {
  const lines = stderrTail.split(/\r\n|\r|\n/).map((l) => l.trim());
  return lines.filter((l) => l !== "" && !/^\[Stage \d+/.test(l)).at(-1) ?? "";
}

/** Exit codes of simgate.lakehouse.wap (see its docstring) → outcome. A job that ended by a signal is
 *  reported as such ("killed by SIGKILL"), one that exited without saying why by its exit code; the
 *  job's own problems (its result line) come first when it printed them. */
export function outcomeOf(exitCode: number | null, signal: NodeJS.Signals | null, result: JobResult | undefined, stderrTail: string, aborted: string | undefined): JobOutcome {
  const status = typeof result?.["status"] === "string" ? (result["status"] as string) : undefined;
  const lastLine = lastMessageLine(stderrTail);
  const problems = Array.isArray(result?.["problems"]) ? (result["problems"] as unknown[]).map(String).join("; ") : "";
  const base = { exitCode, ...(signal ? { signal } : {}), ...(result ? { result } : {}) };
  if (aborted !== undefined) return { ...base, ok: false, status: "cancelled", retryable: true, error: aborted };
  if (exitCode === 0) return { ...base, ok: true, status: status ?? "succeeded", retryable: false };
  const ended = signal ? `killed by ${signal}` : `exit code ${String(exitCode)}`;
  const error = signal ? ended : problems || (lastLine ? `${ended}: ${lastLine}` : ended);
  if (exitCode === 2) return { ...base, ok: false, status: "audit_failed", retryable: false, error };
  if (exitCode === 64) return { ...base, ok: false, status: "bad_usage", retryable: false, error };
  return { ...base, ok: false, status: status && status !== "running" ? status : "failed", retryable: true, error };
}

export class LocalLauncher implements JobLauncher {
  readonly kind = "local";
  readonly python: string;
  /** Warm workers not running anything (at most one per concurrent run the driver has had). */
  private readonly idleWorkers: WarmWorker[] = [];
  private readonly idleTimers = new Map<WarmWorker, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly options: LocalLauncherOptions = {}) {
    this.python = options.python ?? resolve(REPO_ROOT, ".venv", "bin", "python");
  }

  launch(request: JobRequest, signal: AbortSignal): Promise<JobOutcome> {
    if (!existsSync(this.python)) {
      return Promise.resolve({ ok: false, status: "failed", retryable: false, error: `no Python at ${this.python}: run scripts/setup (or set SIMGATE_JOBS_PYTHON)` });
    }
    if (request.topic !== MAINTENANCE_JOB && (this.options.warm ?? true) && !this.closed) return this.launchWarm(request, signal);
    return this.launchProcess(request, signal);
  }

  /** Stops the idle warm workers (the gateway is stopping). Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    const workers = this.idleWorkers.splice(0);
    for (const w of workers) this.clearIdleTimer(w);
    // A worker that never ran a job (a prewarm, maybe still warming up) holds nothing worth a grace:
    // it is stopped at once, so a gateway stopped right after its start does not wait for the warm-up.
    await Promise.all(workers.map((w) => (w.runs === 0 ? w.close(0) : w.close())));
  }

  /** Starts a warm worker now, before any run, that starts Spark and warms up the run's read paths
   *  (worker.py --warm-up), so the first run after the gateway starts does not pay a cold JVM. It waits
   *  idle like any other (warmIdleMs). `count` workers at most wait (one per run the driver may run at
   *  once). Returns the first new pid, or undefined when nothing was started (warm off, closed, no
   *  Python, or enough workers already waiting). */
  prewarm(count = 1): number | undefined {
    if (!(this.options.warm ?? true) || this.closed || !existsSync(this.python)) return undefined;
    let first: number | undefined;
    const config = this.options.wapConfigFile;
    for (let waiting = this.idleWorkers.filter((w) => w.idle).length; waiting < count; waiting++) {
      const worker = this.newWorker(["--warm-up", ...(config ? ["--config", config] : [])]);
      this.keepIdle(worker);
      first ??= worker.pid;
    }
    return first;
  }

  private newWorker(extraArgs: string[] = []): WarmWorker {
    return new WarmWorker({
      python: this.python,
      args: ["-m", this.options.workerModule ?? "simgate.lakehouse.worker", ...extraArgs],
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.options.env },
      stderrTailBytes: this.options.stderrTailBytes ?? 8192,
      killGraceMs: this.options.killGraceMs ?? 10_000,
      resultPrefix: RESULT_PREFIX,
      outcomeOf,
    });
  }

  private async launchWarm(request: JobRequest, signal: AbortSignal): Promise<JobOutcome> {
    let worker = this.idleWorkers.pop();
    while (worker !== undefined && !worker.idle) worker = this.idleWorkers.pop();
    if (worker !== undefined) this.clearIdleTimer(worker);
    worker ??= this.newWorker();
    const outcome = await worker.run(
      { jobId: request.id, topic: request.topic, wapRunId: wapRunId(request), config: this.options.wapConfigFile ?? null },
      signal,
    );
    if (worker.idle && !this.closed) this.keepIdle(worker);
    else void worker.close();
    return outcome;
  }

  private keepIdle(worker: WarmWorker): void {
    this.idleWorkers.push(worker);
    const timer = setTimeout(() => {
      this.idleTimers.delete(worker);
      const i = this.idleWorkers.indexOf(worker);
      if (i >= 0) this.idleWorkers.splice(i, 1);
      void worker.close();
    }, this.options.warmIdleMs ?? 600_000);
    timer.unref();
    this.idleTimers.set(worker, timer);
  }

  private clearIdleTimer(worker: WarmWorker): void {
    const timer = this.idleTimers.get(worker);
    if (timer !== undefined) clearTimeout(timer);
    this.idleTimers.delete(worker);
  }

  private launchProcess(request: JobRequest, signal: AbortSignal): Promise<JobOutcome> {
    const args = jobArgs(request, this.options);
    const tailBytes = this.options.stderrTailBytes ?? 8192;
    return new Promise((resolveOutcome) => {
      // Own process group: stopping the job stops its Spark JVM too.
      const child = spawn(this.python, args, {
        cwd: REPO_ROOT,
        env: { ...process.env, ...this.options.env, SIMGATE_JOB_ID: request.id },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let stdout = "";
      let stderr = "";
      let result: JobResult | undefined;
      let aborted: string | undefined;
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
        const lines = stdout.split("\n");
        stdout = lines.pop() ?? "";
        for (const line of lines) if (line.startsWith(RESULT_PREFIX)) result = parseResult(line) ?? result;
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr = (stderr + chunk).slice(-tailBytes);
      });
      const killGroup = (sig: NodeJS.Signals): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      const onAbort = (): void => {
        aborted = signal.reason instanceof Error ? signal.reason.message : "stopped";
        killGroup("SIGTERM");
        setTimeout(() => killGroup("SIGKILL"), this.options.killGraceMs ?? 10_000).unref();
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      child.once("error", (err) => {
        signal.removeEventListener("abort", onAbort);
        resolveOutcome({ ok: false, status: "failed", retryable: true, error: `could not start ${this.python}: ${err.message}` });
      });
      child.once("close", (code, sig) => {
        signal.removeEventListener("abort", onAbort);
        if (stdout.startsWith(RESULT_PREFIX)) result = parseResult(stdout) ?? result;
        resolveOutcome(outcomeOf(code, sig, result, stderr, aborted));
      });
    });
  }
}

/** The job's command line: a WAP run, or the storage maintenance (`all`: compaction of the topics'
 *  tables, the warehouse GC, the blob sweep; their settings come from SIMGATE_GC_CUTOFF,
 *  SIMGATE_GC_MIN_AGE and SIMGATE_BLOB_GRACE in the environment). */
export function jobArgs(request: JobRequest, options: Pick<LocalLauncherOptions, "module" | "wapConfigFile"> = {}): string[] {
  if (request.topic === MAINTENANCE_JOB) {
    return ["-m", "simgate.lakehouse.maintenance", "all", ...(request.topics ?? []).flatMap((t) => ["--topic", t])];
  }
  const args = ["-m", options.module ?? "simgate.lakehouse.wap", "--topic", request.topic, "--wap-run-id", wapRunId(request)];
  if (options.wapConfigFile) args.push("--config", options.wapConfigFile);
  return args;
}

function parseResult(line: string): JobResult | undefined {
  try {
    const value: unknown = JSON.parse(line.slice(RESULT_PREFIX.length));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as JobResult) : undefined;
  } catch {
    return undefined;
  }
}

/** The WAP run id (as the job makes its own: UTC time and random hex), chosen here so that /jobs shows
 *  it before the job ends and it can be found in Nessie's tags (`wap-<topic>-<id>`). */
export function wapRunId(_request: JobRequest, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(4).toString("hex")}`;
}
