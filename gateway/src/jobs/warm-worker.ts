// A warm WAP worker: `<venv>/bin/python -m simgate.lakehouse.worker`, one Spark session kept between
// runs (lakehouse-jobs/simgate/lakehouse/worker.py). It gets one run request per stdin line and answers
// with the run's SIMGATE_WAP_RESULT line and a SIMGATE_WORKER_DONE line carrying the exit code the
// one-shot job would have had (and `workerExits: true` when it is about to exit). One run at a time per worker. A worker that ends while a run is under
// way (killed, crashed) reports that run as the one-shot job's process would be reported ("killed by
// SIGKILL"); a worker whose Spark JVM died reports the run with that cause, then exits, and is not used
// again: the launcher's next run starts a new one.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { JobOutcome, JobResult } from "./job-types.js";

export const DONE_PREFIX = "SIMGATE_WORKER_DONE ";

export interface WarmRunRequest {
  readonly jobId: string;
  readonly topic: string;
  readonly wapRunId: string;
  readonly config: string | null;
}

export interface WarmWorkerOptions {
  python: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  stderrTailBytes: number;
  killGraceMs: number;
  resultPrefix: string;
  /** (exit code, signal, result, stderr tail, aborted) → outcome: the one-shot job's mapping. */
  outcomeOf: (exitCode: number | null, signal: NodeJS.Signals | null, result: JobResult | undefined, stderrTail: string, aborted: string | undefined) => JobOutcome;
}

interface PendingRun {
  readonly jobId: string;
  result: JobResult | undefined;
  aborted: string | undefined;
  resolve: (outcome: JobOutcome) => void;
}

export class WarmWorker {
  private readonly child: ChildProcessWithoutNullStreams;
  private stdout = "";
  private stderr = "";
  private pending: PendingRun | undefined;
  private exited = false;
  private retiring = false;
  private readonly exitWaiters: Array<() => void> = [];
  /** Runs this worker has answered. */
  runs = 0;

  constructor(private readonly options: WarmWorkerOptions) {
    // Own process group: stopping the worker stops its Spark JVM too.
    this.child = spawn(options.python, options.args, { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.child.stdin.on("error", () => {
      // the worker is gone; its close event reports the run
    });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => this.onStdout(chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-options.stderrTailBytes);
    });
    this.child.once("error", (err) => this.onExit(null, null, `could not start ${options.python}: ${err.message}`));
    this.child.once("close", (code, signal) => this.onExit(code, signal, undefined));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Alive, not running anything, and not about to exit. */
  get idle(): boolean {
    return !this.exited && !this.retiring && this.pending === undefined;
  }

  get alive(): boolean {
    return !this.exited;
  }

  run(request: WarmRunRequest, signal: AbortSignal): Promise<JobOutcome> {
    if (this.exited) return Promise.resolve({ ok: false, status: "failed", retryable: true, error: "the warm worker has exited" });
    if (this.pending !== undefined) return Promise.resolve({ ok: false, status: "failed", retryable: true, error: "the warm worker is busy" });
    this.stderr = "";
    return new Promise((resolve) => {
      const run: PendingRun = { jobId: request.jobId, result: undefined, aborted: undefined, resolve };
      const onAbort = (): void => {
        run.aborted = signal.reason instanceof Error ? signal.reason.message : "stopped";
        this.kill();
      };
      run.resolve = (outcome) => {
        signal.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      this.pending = run;
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      this.child.stdin.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Ends the worker: end of input (it stops Spark and exits), then SIGTERM and SIGKILL to its group
   *  if it lingers. Resolves when it has exited. */
  close(graceMs = this.options.killGraceMs): Promise<void> {
    if (this.exited) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    this.child.stdin.end();
    const term = setTimeout(() => this.signalGroup("SIGTERM"), graceMs);
    const kill = setTimeout(() => this.signalGroup("SIGKILL"), 2 * graceMs);
    term.unref();
    kill.unref();
    return exited.finally(() => {
      clearTimeout(term);
      clearTimeout(kill);
    });
  }

  /** Stops the worker now (a run's abort): SIGTERM to its group, SIGKILL after the grace. */
  kill(): void {
    this.signalGroup("SIGTERM");
    setTimeout(() => this.signalGroup("SIGKILL"), this.options.killGraceMs).unref();
  }

  private signalGroup(sig: NodeJS.Signals): void {
    if (this.exited) return;
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, sig);
    } catch {
      // already gone
    }
  }

  private onStdout(chunk: string): void {
    this.stdout += chunk;
    const lines = this.stdout.split("\n");
    this.stdout = lines.pop() ?? "";
    for (const line of lines) {
      const run = this.pending;
      if (run === undefined) continue;
      if (line.startsWith(this.options.resultPrefix)) {
        run.result = parseObject(line.slice(this.options.resultPrefix.length)) ?? run.result;
      } else if (line.startsWith(DONE_PREFIX)) {
        const done = parseObject(line.slice(DONE_PREFIX.length));
        const code = typeof done?.["exitCode"] === "number" ? (done["exitCode"] as number) : 1;
        // It is about to exit (its JVM died, or it has run its share): never hand it another run.
        if (done?.["workerExits"] === true) this.retiring = true;
        this.pending = undefined;
        this.runs += 1;
        run.resolve(this.options.outcomeOf(code, null, run.result, this.stderr, run.aborted));
      }
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, startError: string | undefined): void {
    if (this.exited) return;
    this.exited = true;
    const run = this.pending;
    this.pending = undefined;
    if (run !== undefined) {
      if (startError !== undefined) run.resolve({ ok: false, status: "failed", retryable: true, error: startError });
      else run.resolve(this.options.outcomeOf(code, signal, run.result, this.stderr, run.aborted));
    }
    for (const w of this.exitWaiters.splice(0)) w();
  }
}

function parseObject(text: string): JobResult | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as JobResult) : undefined;
  } catch {
    return undefined;
  }
}
