import { describe, expect, it } from "vitest";
import { Pacer } from "./pacer.js";
import { RunRewrite } from "./run-rewrite.js";

describe("Pacer", () => {
  it("puts events at speed x their simulation-time distance from the first paced one", () => {
    const p = new Pacer(2);
    expect(p.dueAt(10, 1_000)).toBe(1_000);
    expect(p.dueAt(11, 5_000)).toBe(1_500);
    expect(p.dueAt(14, 0)).toBe(3_000);
  });

  it("sends at once at speed max", () => {
    expect(new Pacer("max").dueAt(100, 7)).toBeUndefined();
  });
});

describe("RunRewrite", () => {
  it("re-prefixes event ids and names the replayed run in the lineage", () => {
    const r = new RunRewrite("run-a", "run-b");
    expect(r.runId).toBe("run-b");
    expect(r.event({ eventId: "run-a-0007", runId: "run-a", sequence: 7 })).toEqual({ eventId: "run-b-0007", runId: "run-b", sequence: 7 });
    expect(r.event({ eventId: "other-1", runId: "run-a" })).toEqual({ eventId: "run-b-other-1", runId: "run-b" });
    expect(r.runStart({ runId: "run-a", lineage: { seed: 3, extra: { k: "v" } } })).toEqual({ runId: "run-b", lineage: { seed: 3, extra: { k: "v", "replay.of": "run-a" } } });
  });

  it("passes everything unchanged without a new run id", () => {
    const r = new RunRewrite("run-a", undefined);
    const event = { eventId: "run-a-1", runId: "run-a" };
    expect(r.runId).toBe("run-a");
    expect(r.event(event)).toBe(event);
  });
});
