import { describe, expect, it } from "vitest";
import { outcomeOf, wapRunId } from "./local-launcher.js";

describe("local launcher outcome", () => {
  it("maps the WAP job's exit codes to outcomes", () => {
    expect(outcomeOf(0, null, { status: "published", trusted: 3 }, "", undefined)).toMatchObject({ ok: true, status: "published", retryable: false });
    expect(outcomeOf(0, null, { status: "nothing_to_publish" }, "", undefined)).toMatchObject({ ok: true, status: "nothing_to_publish" });
    const audit = outcomeOf(2, null, { status: "audit_failed", problems: ["schema change suspected"] }, "", undefined);
    expect(audit).toMatchObject({ ok: false, status: "audit_failed", retryable: false, error: "schema change suspected" });
    expect(outcomeOf(3, null, { status: "failed", problems: ["merge conflict: 409"] }, "", undefined)).toMatchObject({ ok: false, retryable: true, error: "merge conflict: 409" });
    expect(outcomeOf(64, null, undefined, "wap: --topic must be ...\n", undefined)).toMatchObject({ ok: false, status: "bad_usage", retryable: false, error: "wap: --topic must be ..." });
    expect(outcomeOf(null, "SIGKILL", undefined, "", undefined)).toMatchObject({ ok: false, status: "failed", retryable: true, error: "killed by SIGKILL" });
    expect(outcomeOf(null, "SIGTERM", undefined, "", "the gateway is stopping")).toMatchObject({ ok: false, status: "cancelled", error: "the gateway is stopping" });
  });

  it("makes WAP run ids the job accepts", () => {
    const id = wapRunId({ id: "job-x-1", topic: "x", attempt: 1, reason: "manual" }, new Date("2026-11-27T12:34:56.789Z"));
    expect(id).toMatch(/^20261127T123456Z-[0-9a-f]{8}$/);
  });
});
