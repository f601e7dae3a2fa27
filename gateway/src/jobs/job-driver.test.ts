import { describe, expect, it } from "vitest";
import { JobDriver, type JobDriverOptions } from "./job-driver.js";
import type { Clock, JobLauncher, JobOutcome, JobRequest, TimerHandle } from "./job-types.js";

class ManualClock implements Clock {
  private t = 1_700_000_000_000;
  private next = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.next;
    this.timers.set(id, { at: this.t + ms, fn });
    return { id };
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }
  /** Moves time forward, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = end;
  }
  pending(): number {
    return this.timers.size;
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** Each launch waits until the test finishes it. */
class FakeLauncher implements JobLauncher {
  readonly kind = "fake";
  readonly launches: JobRequest[] = [];
  private readonly open = new Map<string, (o: JobOutcome) => void>();
  private readonly signals = new Map<string, AbortSignal>();
  launch(request: JobRequest, signal: AbortSignal): Promise<JobOutcome> {
    this.launches.push(request);
    this.signals.set(request.id, signal);
    return new Promise((resolve) => {
      this.open.set(request.id, resolve);
      signal.addEventListener("abort", () => resolve({ ok: false, status: "cancelled", retryable: true, error: String(signal.reason) }));
    });
  }
  running(): string[] {
    return this.launches.filter((l) => this.open.has(l.id)).map((l) => l.topic);
  }
  async finish(topic: string, outcome: JobOutcome = { ok: true, status: "published", retryable: false }): Promise<void> {
    const request = [...this.launches].reverse().find((l) => l.topic === topic && this.open.has(l.id));
    if (request === undefined) throw new Error(`no running job for ${topic}`);
    const resolve = this.open.get(request.id) as (o: JobOutcome) => void;
    this.open.delete(request.id);
    resolve(outcome);
    await settle();
  }
  launchesOf(topic: string): JobRequest[] {
    return this.launches.filter((l) => l.topic === topic);
  }
}

const base: JobDriverOptions = {
  topics: ["entries", "exits"],
  onRunEnd: true,
  everyRecords: 0,
  everyMs: 0,
  maxConcurrent: 2,
  maxAttempts: 3,
  backoffMs: 1000,
  backoffMaxMs: 10_000,
  timeoutMs: 60_000,
  historySize: 10,
};

function setup(options: Partial<JobDriverOptions> = {}) {
  const clock = new ManualClock();
  const launcher = new FakeLauncher();
  const driver = new JobDriver({ ...base, ...options }, launcher, clock);
  return { clock, launcher, driver };
}

describe("JobDriver", () => {
  it("starts exactly one job per topic when a run ends", async () => {
    const { launcher, driver } = setup();
    driver.recordProduced("entries");
    driver.recordProduced("exits");
    driver.recordProduced("simgate-runs"); // not a job topic: ignored
    driver.runEnded("run-1");
    await settle();
    expect(launcher.launches.map((l) => [l.topic, l.reason])).toEqual([
      ["entries", "run-end"],
      ["exits", "run-end"],
    ]);
    await launcher.finish("entries");
    await launcher.finish("exits");
    await driver.whenIdle();
    expect(launcher.launches).toHaveLength(2);
    expect(driver.snapshot().history.map((r) => r.state)).toEqual(["succeeded", "succeeded"]);
  });

  it("queues a second trigger while the topic's job runs, coalesces more, and never runs two at once", async () => {
    const { launcher, driver } = setup();
    driver.trigger("entries", "manual");
    await settle();
    expect(launcher.running()).toEqual(["entries"]);
    driver.recordProduced("entries");
    driver.runEnded("run-2");
    driver.trigger("entries", "manual");
    await settle();
    expect(launcher.launchesOf("entries")).toHaveLength(1); // not in parallel
    const topic = driver.snapshot().topics.find((t) => t.topic === "entries");
    expect(topic?.pendingReason).toBe("run-end");
    expect(topic?.coalescedTriggers).toBe(2);

    await launcher.finish("entries");
    expect(launcher.launchesOf("entries")).toHaveLength(2); // the queued one, once
    expect(launcher.launchesOf("entries")[1]?.reason).toBe("run-end");
    expect(launcher.running().sort()).toEqual(["entries", "exits"]); // exits: dirty since start, run end
    await launcher.finish("entries");
    await launcher.finish("exits");
    await driver.whenIdle();
    expect(launcher.launchesOf("entries")).toHaveLength(2);
  });

  it("runs at most maxConcurrent jobs, in trigger order", async () => {
    const { launcher, driver } = setup({ maxConcurrent: 1 });
    driver.runEnded("run-3"); // both topics dirty since start
    await settle();
    expect(launcher.running()).toEqual(["entries"]);
    expect(driver.snapshot().queued).toEqual(["exits"]);
    await launcher.finish("entries");
    expect(launcher.running()).toEqual(["exits"]);
    await launcher.finish("exits");
    await driver.whenIdle();
  });

  it("triggers after N records and T milliseconds", async () => {
    const { clock, launcher, driver } = setup({ everyRecords: 3, everyMs: 5000, onRunEnd: false });
    driver.recordProduced("entries");
    driver.recordProduced("entries");
    await settle();
    expect(launcher.launches).toHaveLength(0);
    driver.recordProduced("entries");
    await settle();
    expect(launcher.launches.map((l) => l.reason)).toEqual(["records"]);
    await launcher.finish("entries");

    driver.recordProduced("exits");
    await clock.advance(4999);
    expect(launcher.launchesOf("exits")).toHaveLength(0);
    await clock.advance(1);
    expect(launcher.launchesOf("exits").map((l) => l.reason)).toEqual(["interval"]);
    await launcher.finish("exits");
    await driver.whenIdle();
    expect(clock.pending()).toBe(0);
    driver.runEnded("ignored"); // onRunEnd off
    await settle();
    expect(launcher.launches).toHaveLength(2);
  });

  it("retries a failed run with exponential back-off, then gives up until the next trigger", async () => {
    const { clock, launcher, driver } = setup({ maxAttempts: 3, backoffMs: 1000 });
    const crash: JobOutcome = { ok: false, status: "failed", retryable: true, exitCode: 1, error: "boom" };
    driver.trigger("entries", "manual");
    await settle();
    await launcher.finish("entries", crash);
    expect(driver.snapshot().topics[0]?.state).toBe("retry-wait");
    driver.trigger("entries", "records"); // covered by the retry
    await clock.advance(999);
    expect(launcher.launchesOf("entries")).toHaveLength(1);
    await clock.advance(1);
    expect(launcher.launchesOf("entries").map((l) => l.attempt)).toEqual([1, 2]);
    await launcher.finish("entries", crash);
    await clock.advance(1999);
    expect(launcher.launchesOf("entries")).toHaveLength(2);
    await clock.advance(1);
    expect(launcher.launchesOf("entries").map((l) => l.attempt)).toEqual([1, 2, 3]);
    await launcher.finish("entries", crash);
    await driver.whenIdle();
    await clock.advance(60_000);
    expect(launcher.launchesOf("entries")).toHaveLength(3);
    expect(driver.snapshot().topics[0]?.last?.status).toBe("failed");

    driver.trigger("entries", "manual");
    await settle();
    expect(launcher.launchesOf("entries").at(-1)?.attempt).toBe(1);
    await launcher.finish("entries");
  });

  it("does not retry a failed audit", async () => {
    const { clock, launcher, driver } = setup();
    driver.trigger("exits", "manual");
    await settle();
    await launcher.finish("exits", { ok: false, status: "audit_failed", retryable: false, exitCode: 2 });
    await clock.advance(60_000);
    expect(launcher.launchesOf("exits")).toHaveLength(1);
    expect(driver.snapshot().history[0]?.status).toBe("audit_failed");
  });

  it("stops a job that runs longer than the timeout and retries it", async () => {
    const { clock, launcher, driver } = setup({ timeoutMs: 10_000, backoffMs: 100 });
    driver.trigger("entries", "manual");
    await settle();
    await clock.advance(10_000);
    expect(driver.snapshot().history[0]?.status).toBe("cancelled");
    await clock.advance(100);
    expect(launcher.launchesOf("entries")).toHaveLength(2);
    await launcher.finish("entries");
  });

  it("stop() aborts running jobs, cancels timers and is safe twice", async () => {
    const { clock, launcher, driver } = setup({ everyMs: 1000 });
    driver.trigger("entries", "manual");
    driver.recordProduced("exits");
    await settle();
    await driver.stop();
    await driver.stop();
    expect(clock.pending()).toBe(0);
    expect(driver.snapshot().topics.every((t) => t.state === "idle")).toBe(true);
    expect(driver.trigger("entries", "manual")).toBe(false);
    expect(launcher.launches).toHaveLength(1);
  });
});

describe("JobDriver maintenance", () => {
  it("runs maintenance on its schedule, in the same queue as the WAP runs, never on run end", async () => {
    const { clock, launcher, driver } = setup({ maintenanceEveryMs: 60_000, maxConcurrent: 1, timeoutMs: 3_600_000 });
    expect(driver.topics).toEqual(["entries", "exits"]);
    driver.startSchedules();
    driver.runEnded("run-1"); // entries, exits; not maintenance
    await settle();
    expect(launcher.running()).toEqual(["entries"]);
    await clock.advance(60_000);
    expect(driver.snapshot().queued).toEqual(["exits", "@maintenance"]);
    await launcher.finish("entries");
    await launcher.finish("exits");
    expect(launcher.running()).toEqual(["@maintenance"]);
    expect(launcher.launchesOf("@maintenance")[0]?.topics).toEqual(["entries", "exits"]);
    await launcher.finish("@maintenance");
    await clock.advance(60_000);
    expect(launcher.launchesOf("@maintenance")).toHaveLength(2);
    await launcher.finish("@maintenance");
    await driver.stop();
    expect(clock.pending()).toBe(0);
  });
});
