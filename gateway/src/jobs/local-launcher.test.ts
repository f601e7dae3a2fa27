import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jobArgs, LocalLauncher, outcomeOf, wapRunId } from "./local-launcher.js";

describe("local launcher outcome", () => {
  it("maps the WAP job's exit codes to outcomes", () => {
    expect(outcomeOf(0, null, { status: "published", trusted: 3 }, "", undefined)).toMatchObject({ ok: true, status: "published", retryable: false });
    expect(outcomeOf(0, null, { status: "nothing_to_publish" }, "", undefined)).toMatchObject({ ok: true, status: "nothing_to_publish" });
    const audit = outcomeOf(2, null, { status: "audit_failed", problems: ["schema change suspected"] }, "", undefined);
    expect(audit).toMatchObject({ ok: false, status: "audit_failed", retryable: false, error: "schema change suspected" });
    expect(outcomeOf(3, null, { status: "failed", problems: ["merge conflict: 409"] }, "", undefined)).toMatchObject({ ok: false, retryable: true, error: "merge conflict: 409" });
    expect(outcomeOf(64, null, undefined, "wap: --topic must be ...\n", undefined)).toMatchObject({ ok: false, status: "bad_usage", retryable: false, error: "exit code 64: wap: --topic must be ..." });
    expect(outcomeOf(null, "SIGKILL", undefined, "", undefined)).toMatchObject({ ok: false, status: "failed", retryable: true, error: "killed by SIGKILL" });
    expect(outcomeOf(null, "SIGTERM", undefined, "", "the gateway is stopping")).toMatchObject({ ok: false, status: "cancelled", error: "the gateway is stopping" });
  });

  it("reports a signal as the signal and an exit code as the code, never Spark's progress bar", () => {
    const progress = "wap t: run 1 on branch b\n[Stage 3:>                                                          (0 + 2) / 2]\r[Stage 3:=============>                                             (1 + 1) / 2]\r";
    expect(outcomeOf(null, "SIGKILL", undefined, progress, undefined)).toMatchObject({ ok: false, status: "failed", retryable: true, error: "killed by SIGKILL", signal: "SIGKILL" });
    expect(outcomeOf(null, "SIGSEGV", { status: "running" }, progress, undefined)).toMatchObject({ error: "killed by SIGSEGV" });
    expect(outcomeOf(1, null, undefined, progress, undefined)).toMatchObject({ ok: false, error: "exit code 1: wap t: run 1 on branch b" });
    expect(outcomeOf(137, null, undefined, "[Stage 1:>  (0 + 1) / 1]\r", undefined)).toMatchObject({ error: "exit code 137" });
    // The job's own words win when it printed its result line.
    expect(outcomeOf(1, null, { status: "failed", problems: ["the Spark JVM died (killed by SIGKILL) during stage"] }, progress, undefined)).toMatchObject({
      error: "the Spark JVM died (killed by SIGKILL) during stage",
    });
  });

  it("a real job process killed by SIGKILL after Spark's progress output is reported as killed by SIGKILL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "launcher-"));
    const python = join(dir, "python");
    // Stands in for the job: Spark's progress bar on stderr, then the process is killed outright.
    writeFileSync(python, '#!/bin/sh\nprintf "[Stage 3:>   (0 + 2) / 2]\\r[Stage 3:=====>  (1 + 1) / 2]\\r" >&2\nkill -9 $$\n');
    chmodSync(python, 0o755);
    const outcome = await new LocalLauncher({ python }).launch({ id: "job-t-1", topic: "t", attempt: 1, reason: "manual" }, new AbortController().signal);
    expect(outcome).toMatchObject({ ok: false, status: "failed", retryable: true, error: "killed by SIGKILL", signal: "SIGKILL", exitCode: null });
  });

  it("keeps a conflicted run's counts and offsets from its result line", () => {
    const result = { status: "merge_conflict", read: 141, trusted: 130, untrusted: 11, offsets: "0:0-141", problems: ["merge conflict: 409"] };
    const outcome = outcomeOf(3, null, result, progress(), undefined);
    expect(outcome).toMatchObject({ ok: false, status: "merge_conflict", retryable: true, error: "merge conflict: 409", result: { read: 141, offsets: "0:0-141" } });
  });

  it("runs the whole storage maintenance (compaction, warehouse GC, blob sweep) as the maintenance job", () => {
    expect(jobArgs({ id: "job-m-1", topic: "@maintenance", topics: ["a", "b"], attempt: 1, reason: "interval" })).toEqual([
      "-m", "simgate.lakehouse.maintenance", "all", "--topic", "a", "--topic", "b",
    ]);
    const wap = jobArgs({ id: "job-a-1", topic: "a", attempt: 1, reason: "manual" }, { wapConfigFile: "/w.json" });
    expect(wap.slice(0, 4)).toEqual(["-m", "simgate.lakehouse.wap", "--topic", "a"]);
    expect(wap.slice(-2)).toEqual(["--config", "/w.json"]);
  });

  it("makes WAP run ids the job accepts", () => {
    const id = wapRunId({ id: "job-x-1", topic: "x", attempt: 1, reason: "manual" }, new Date("2026-11-27T12:34:56.789Z"));
    expect(id).toMatch(/^20261127T123456Z-[0-9a-f]{8}$/);
  });
});

function progress(): string {
  return "[Stage 7:>   (0 + 2) / 2]\r";
}
