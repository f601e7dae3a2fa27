// A replay killed (SIGKILL) half-way resumes from its checkpoint: what was checkpointed is not sent
// again, what was accepted but not yet checkpointed is answered duplicate by the gateway, and every
// event reaches Kafka exactly once.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_MAIN, REPO_ROOT, pollUntil, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { recordedEvents, runCli, runRecords, summaryOf } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "replay-resume-"));
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  if (gw) expect(await gw.stop()).toBe(0);
});

interface CheckpointFile {
  doneBelow: number;
  done: number[];
  totals: { accepted: number; duplicate: number };
}

describe("resume after kill", () => {
  it("sends nothing twice that the checkpoint holds, and Kafka gets each event once", async () => {
    const recording = join(dir, "run.simrec");
    const runId = uniqueId("resume");
    // Many cars a minute so the recording's cadence is quick; paced at 20x it takes several seconds.
    const sim = await runCli(["simulate", "--seed", "11", "--events", "60", "--out", recording, "--run-id", runId,
      "--width", "160", "--height", "90", "--format", "jpeg", "--arrivals-per-minute", "30", "--mean-dwell", "60"]);
    expect(sim.code, sim.stderr).toBe(0);
    const events = await recordedEvents(recording);
    expect(events).toHaveLength(60);
    const checkpoint = join(dir, "run.checkpoint.json");

    const child = spawn(process.execPath, [GATEWAY_MAIN, "replay", recording, "--speed", "20", "--gateway", gw.grpcAddress,
      "--checkpoint", checkpoint, "--concurrency", "4", "--progress", "none"], { cwd: REPO_ROOT, stdio: "ignore" });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const atKill = await pollUntil("the checkpoint to hold 10 answered events", async () => {
      if (!existsSync(checkpoint)) return undefined;
      const data = JSON.parse(readFileSync(checkpoint, "utf8")) as CheckpointFile;
      return data.totals.accepted >= 10 ? data : undefined;
    }, 60_000, 20);
    child.kill("SIGKILL");
    await exited;
    const afterKill = JSON.parse(readFileSync(checkpoint, "utf8")) as CheckpointFile;
    expect(afterKill.totals.accepted).toBeGreaterThanOrEqual(atKill.totals.accepted);
    expect(afterKill.totals.accepted).toBeLessThan(60); // killed half-way, not after the end

    const summaryPath = join(dir, "second.json");
    const second = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--checkpoint", checkpoint, "--summary-json", summaryPath]);
    expect(second.code, second.stderr + second.stdout).toBe(0);
    const s = await summaryOf(summaryPath);
    // What the checkpoint held was skipped, the rest was sent; nothing was sent twice.
    expect(s["skippedFromCheckpoint"]).toBe(afterKill.totals.accepted);
    expect(Number(s["sent"]) + Number(s["skippedFromCheckpoint"])).toBe(60);
    // Accepted by the killed session but not checkpointed in time: the gateway says duplicate.
    expect(Number(s["accepted"]) + Number(s["duplicate"])).toBe(Number(s["sent"]));
    expect(s["runEnd"]).toBe("accepted");

    const records = await runRecords([gw.topics.entries, gw.topics.exits], runId);
    const ids = records.map((r) => r.body.eventId);
    expect(new Set(ids).size).toBe(60);
    expect(ids).toHaveLength(60);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.eventId)));
  });

  it("Ctrl-C stops after the answers of what was sent; the resumed replay sends only the rest", async () => {
    const recording = join(dir, "interrupt.simrec");
    const runId = uniqueId("interrupt");
    const sim = await runCli(["simulate", "--seed", "13", "--events", "30", "--out", recording, "--run-id", runId,
      "--width", "160", "--height", "90", "--format", "jpeg", "--arrivals-per-minute", "30", "--mean-dwell", "60"]);
    expect(sim.code, sim.stderr).toBe(0);
    const checkpoint = join(dir, "interrupt.checkpoint.json");
    const child = spawn(process.execPath, [GATEWAY_MAIN, "replay", recording, "--speed", "20", "--gateway", gw.grpcAddress,
      "--checkpoint", checkpoint, "--progress", "none"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await pollUntil("5 answered events", async () => {
      if (!existsSync(checkpoint)) return undefined;
      return (JSON.parse(readFileSync(checkpoint, "utf8")) as CheckpointFile).totals.accepted >= 5 ? true : undefined;
    }, 60_000, 20);
    child.kill("SIGINT");
    expect(await exited).toBe(1);
    expect(output).toContain("interrupted: run again with the same --checkpoint to resume");
    const saved = JSON.parse(readFileSync(checkpoint, "utf8")) as CheckpointFile;

    const summaryPath = join(dir, "interrupt-second.json");
    const second = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--checkpoint", checkpoint, "--summary-json", summaryPath]);
    expect(second.code, second.stderr).toBe(0);
    const s = await summaryOf(summaryPath);
    // A graceful stop waited for its answers: nothing it sent is sent again.
    expect(s["skippedFromCheckpoint"]).toBe(saved.totals.accepted);
    expect(s["duplicate"]).toBe(0);
    expect(s["accepted"]).toBe(30 - saved.totals.accepted);
    const records = await runRecords([gw.topics.entries, gw.topics.exits], runId);
    expect(records).toHaveLength(30);
    expect(new Set(records.map((r) => r.body.eventId)).size).toBe(30);
  });

  it("refuses a checkpoint that belongs to another run", async () => {
    const recording = join(dir, "other.simrec");
    const sim = await runCli(["simulate", "--seed", "12", "--events", "3", "--out", recording, "--width", "32", "--height", "18", "--format", "jpeg"]);
    expect(sim.code).toBe(0);
    const checkpoint = join(dir, "other.checkpoint.json");
    const first = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--checkpoint", checkpoint, "--as-run", uniqueId("cp-a")]);
    expect(first.code, first.stderr).toBe(0);
    const second = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--checkpoint", checkpoint, "--as-run", uniqueId("cp-b")]);
    expect(second.code).not.toBe(0);
    expect(second.stderr + second.stdout).toMatch(/belongs to another replay/);
  });
});
