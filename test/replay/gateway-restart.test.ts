// The gateway is killed (SIGKILL) in the middle of a replay and started again on the same ports: the
// replayer reconnects, resends what was not answered with the same event ids, and finishes the run.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GATEWAY_MAIN, REPO_ROOT, pollUntil, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { recordedEvents, runCli, runRecords, summaryOf } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "replay-restart-"));
const gateways: TestGateway[] = [];
const restarted: ChildProcess[] = [];

afterAll(async () => {
  for (const gw of gateways) await gw.stop();
  for (const child of restarted) {
    if (child.exitCode !== null) continue;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
});

/** The same gateway again: same ports, topics and settings (startGateway picks new ports). */
async function restart(gw: TestGateway): Promise<ChildProcess> {
  const child = spawn(process.execPath, [GATEWAY_MAIN, "gateway"], {
    cwd: REPO_ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...gw.env },
    stdio: "ignore",
  });
  restarted.push(child);
  await pollUntil("the restarted gateway's /readyz", async () => {
    if (child.exitCode !== null) throw new Error(`the restarted gateway exited with ${child.exitCode}`);
    const res = await fetch(`${gw.httpUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200;
  }, 60_000, 100);
  return child;
}

describe("gateway restart during a replay", () => {
  for (const transport of ["grpc", "ws"] as const) it(`the replay reconnects and every event reaches Kafka (${transport})`, async () => {
    const first = await startGateway();
    gateways.push(first);

    const recording = join(dir, `${transport}.simrec`);
    const runId = uniqueId("restart-run");
    const sim = await runCli(["simulate", "--seed", "31", "--events", "40", "--out", recording, "--run-id", runId,
      "--width", "160", "--height", "90", "--format", "jpeg", "--arrivals-per-minute", "30", "--mean-dwell", "60"]);
    expect(sim.code, sim.stderr).toBe(0);
    const checkpoint = join(dir, `${transport}.ckpt`);
    const summaryPath = join(dir, `${transport}.summary.json`);
    const child = spawn(process.execPath, [GATEWAY_MAIN, "replay", recording, "--speed", "15", "--transport", transport, "--gateway", transport === "grpc" ? first.grpcAddress : first.wsUrl,
      "--checkpoint", checkpoint, "--summary-json", summaryPath, "--ack-timeout", "5000", "--give-up-after", "60000", "--progress", "lines"],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));

    await pollUntil("10 answered events", async () => {
      if (!existsSync(checkpoint)) return undefined;
      const totals = (JSON.parse(readFileSync(checkpoint, "utf8")) as { totals: { accepted: number } }).totals;
      return totals.accepted >= 10 ? true : undefined;
    }, 60_000, 20);
    await first.kill();
    await restart(first);

    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 90_000))]);
    expect(code, output).toBe(0);
    const s = await summaryOf(summaryPath);
    expect(s["fatal"]).toBeNull();
    expect(Number(s["accepted"]) + Number(s["duplicate"])).toBe(40);
    expect(s["runEnd"]).toBe("accepted");
    expect(output).toMatch(/resending \d+ unacknowledged events|reconnecting/);

    // Each event at least once; a resend of an event accepted by the killed gateway but not answered in
    // time may be a second record with the same id (the dedupe window died with it): the lakehouse drops it.
    const records = await runRecords([first.topics.entries, first.topics.exits], runId);
    const ids = new Set(records.map((r) => r.body.eventId));
    expect(ids).toEqual(new Set((await recordedEvents(recording)).map((e) => e.eventId)));
    expect(records.length - ids.size).toBeLessThanOrEqual(16); // at most the replay window
  });
});
