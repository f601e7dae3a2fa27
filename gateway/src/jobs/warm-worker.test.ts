import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { JobRequest } from "./job-types.js";
import { LocalLauncher } from "./local-launcher.js";

// Stands in for `python -m simgate.lakehouse.worker`: the same stdin/stdout protocol, with the topic
// choosing what happens (the real worker runs against the stack in test/jobs and lakehouse-jobs/tests).
const STAND_IN = String.raw`
import json, os, signal, sys, time
if "--warm-up" in sys.argv and os.environ.get("STAND_IN_WARM_UP_S"):
    time.sleep(float(os.environ["STAND_IN_WARM_UP_S"]))  # a warm-up under way: stdin is not read yet
for line in sys.stdin:
    req = json.loads(line)
    topic = req["topic"]
    if topic == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if topic == "hang":
        time.sleep(60)
    result = {"status": "published", "topic": topic, "wapRunId": req["wapRunId"], "workerPid": os.getpid(), "read": 3, "argv": sys.argv[1:]}
    code = 0
    if topic == "conflict":
        result.update(status="merge_conflict", problems=["merge conflict: 409"], read=141)
        code = 3
    if topic == "jvm-died":
        result.update(status="failed", problems=["the Spark JVM died (killed by SIGKILL) during stage"])
        code = 1
    print("[Stage 3:>   (0 + 2) / 2]", file=sys.stderr, flush=True)
    print("SIMGATE_WAP_RESULT " + json.dumps(result), flush=True)
    print("SIMGATE_WORKER_DONE " + json.dumps({"jobId": req["jobId"], "exitCode": code, "workerExits": topic == "jvm-died"}), flush=True)
    if topic == "jvm-died":
        time.sleep(0.5)  # the real worker still stops Spark
        sys.exit(70)  # worker.py EXIT_JVM_DIED, after reporting a run whose JVM died: the launcher must replace it
`;

function standIn(): string {
  const dir = mkdtempSync(join(tmpdir(), "warm-worker-"));
  const script = join(dir, "worker.py");
  writeFileSync(script, STAND_IN);
  const python = join(dir, "python");
  writeFileSync(python, `#!/bin/sh\nexec python3 ${script} "$@"\n`);
  chmodSync(python, 0o755);
  return python;
}

let sequence = 0;
function request(topic: string): JobRequest {
  return { id: `job-${topic}-${++sequence}`, topic, attempt: 1, reason: "manual" };
}

const launchers: LocalLauncher[] = [];
function launcher(options: ConstructorParameters<typeof LocalLauncher>[0] = {}): LocalLauncher {
  const l = new LocalLauncher({ python: standIn(), killGraceMs: 500, ...options });
  launchers.push(l);
  return l;
}

afterEach(async () => {
  for (const l of launchers.splice(0)) await l.close();
});

const open = (): AbortSignal => new AbortController().signal;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls (bounded) until the condition holds; fails with the wait when it never does. */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("local launcher with a warm worker", () => {
  it("runs one topic after another in the same worker process, each with its own result", async () => {
    const l = launcher();
    const first = await l.launch(request("entries"), open());
    const second = await l.launch(request("exits"), open());
    expect(first).toMatchObject({ ok: true, status: "published", exitCode: 0, result: { topic: "entries", read: 3 } });
    expect(second).toMatchObject({ ok: true, status: "published", result: { topic: "exits" } });
    expect(second.result?.["workerPid"]).toBe(first.result?.["workerPid"]);
    expect(first.result?.["wapRunId"]).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
  });

  it("maps the run's exit code as for a one-shot job: a conflicted run keeps its counts and is retried", async () => {
    const outcome = await launcher().launch(request("conflict"), open());
    expect(outcome).toMatchObject({ ok: false, status: "merge_conflict", retryable: true, exitCode: 3, error: "merge conflict: 409", result: { read: 141 } });
  });

  it("reports a run whose JVM died with that cause, and the next run gets a fresh worker", async () => {
    const l = launcher();
    const died = await l.launch(request("jvm-died"), open());
    expect(died).toMatchObject({ ok: false, retryable: true, error: "the Spark JVM died (killed by SIGKILL) during stage" });
    const next = await l.launch(request("entries"), open());
    expect(next).toMatchObject({ ok: true, status: "published" });
    expect(next.result?.["workerPid"]).not.toBe(died.result?.["workerPid"]);
  });

  it("reports a worker killed during a run as killed by SIGKILL (not Spark's progress bar), then starts a new one", async () => {
    const l = launcher();
    const before = await l.launch(request("entries"), open());
    const killed = await l.launch(request("die"), open());
    expect(killed).toMatchObject({ ok: false, status: "failed", retryable: true, error: "killed by SIGKILL", signal: "SIGKILL", exitCode: null });
    const after = await l.launch(request("entries"), open());
    expect(after).toMatchObject({ ok: true });
    expect(after.result?.["workerPid"]).not.toBe(before.result?.["workerPid"]);
  });

  it("stops the worker when a run is aborted (timeout, gateway stopping) and reports it cancelled", async () => {
    const l = launcher();
    const abort = new AbortController();
    const pending = l.launch(request("hang"), abort.signal);
    setTimeout(() => abort.abort(new Error("timed out after 100 ms")), 300);
    expect(await pending).toMatchObject({ ok: false, status: "cancelled", retryable: true, error: "timed out after 100 ms" });
    expect(await l.launch(request("entries"), open())).toMatchObject({ ok: true });
  });

  it("stops an idle worker after warmIdleMs, and close() stops the rest", async () => {
    const l = launcher({ warmIdleMs: 1000 });
    const first = await l.launch(request("entries"), open());
    const pid = first.result?.["workerPid"] as number;
    expect(alive(pid)).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    await until(() => !alive(pid), 20_000);
    const second = await l.launch(request("entries"), open());
    expect(second.result?.["workerPid"]).not.toBe(pid);
    await l.close();
    expect(alive(second.result?.["workerPid"] as number)).toBe(false);
  });

  it("prewarm starts one worker with --warm-up before any run, and the first run goes to it", async () => {
    const l = launcher({ wapConfigFile: "/tmp/wap.json" });
    const pid = l.prewarm();
    expect(pid).toBeGreaterThan(0);
    expect(l.prewarm()).toBeUndefined(); // a worker is already waiting: no second JVM
    const first = await l.launch(request("entries"), open());
    expect(first.ok).toBe(true);
    expect(first.result?.["workerPid"]).toBe(pid);
    expect(first.result?.["argv"]).toEqual(["-m", "simgate.lakehouse.worker", "--warm-up", "--config", "/tmp/wap.json"]);
    const second = await l.launch(request("exits"), open());
    expect(second.result?.["workerPid"]).toBe(pid);
  });

  it("prewarms one worker per run the driver may run at once, and no more", async () => {
    const l = launcher();
    expect(l.prewarm(2)).toBeGreaterThan(0);
    expect(l.prewarm(2)).toBeUndefined();
    const [a, b] = await Promise.all([l.launch(request("entries"), open()), l.launch(request("exits"), open())]);
    expect(a.result?.["argv"]).toContain("--warm-up");
    expect(b.result?.["argv"]).toContain("--warm-up");
    expect(a.result?.["workerPid"]).not.toBe(b.result?.["workerPid"]);
  });

  it("stops a prewarmed worker that never ran a job at once when the gateway stops, not after the grace", async () => {
    // The grace is 60 s and the warm-up 60 s: close() resolving within the test's 5 s timeout means
    // the worker was stopped without waiting for either.
    const l = launcher({ killGraceMs: 60_000, env: { STAND_IN_WARM_UP_S: "60" } });
    const pid = l.prewarm();
    expect(pid).toBeGreaterThan(0);
    await l.close();
    expect(alive(pid as number)).toBe(false);
  });

  it("does not prewarm with warm off or once closed", async () => {
    expect(launcher({ warm: false }).prewarm()).toBeUndefined();
    const l = launcher();
    await l.close();
    expect(l.prewarm()).toBeUndefined();
  });

  it("runs one process per job with warm off", async () => {
    const l = launcher({ warm: false });
    // The stand-in reads stdin, which a one-shot job does not get: it sees end of input at once and exits 0 without a result.
    expect(await l.launch(request("entries"), open())).toMatchObject({ ok: true, status: "succeeded", exitCode: 0 });
  });
});
