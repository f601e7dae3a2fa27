// End to end: a simulated run with known flaws is replayed through a real gateway whose job driver
// launches the real WAP job (local launcher: the project's Python, Spark in local mode) when the run
// ends; the tables land in Iceberg on the shared Nessie. A second gateway (fresh dedupe memory) gets
// the same recording again: production gains nothing.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { JobDriverSnapshot, JobRun } from "../../gateway/src/jobs/job-driver.js";
import { PYTHON, REPO_ROOT, runCli, runRecords } from "../replay/helpers.js";
import { pollUntil, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";

const NESSIE = process.env["NESSIE_URI"] ?? "http://127.0.0.1:19120/api/v2";
const dir = mkdtempSync(join(tmpdir(), "gateway-wap-"));
const suffix = uniqueId("wap");
const topics = { entries: `parking-entries-${suffix}`, exits: `parking-exits-${suffix}`, runs: `simgate-runs-${suffix}` };
const runId = uniqueId("wap-run");
const recording = join(dir, "flawed.simrec");
const gateways: TestGateway[] = [];
/** Production's event ids per topic after the first run, read back from the tables on main. */
let firstProduction: Record<string, string[]> | undefined;

// The flaw the simulator marks → the reason the lakehouse must give (docs/recording-format.md, "Flaws").
const REASON_OF_FLAW: Record<string, string> = {
  missing_car_id: "missing:carId",
  coordinates_outside_lot: "coordinates_out_of_bounds",
  exit_without_entry: "exit_without_entry",
  time_out_of_order: "time_out_of_order",
  duplicate_event_id: "duplicate_in_batch",
};

afterAll(async () => {
  for (const gw of gateways) await gw.stop();
});

async function gatewayWithJobs(): Promise<TestGateway> {
  const wapConfig = join(dir, "wap.json");
  writeFileSync(
    wapConfig,
    JSON.stringify({
      runsTopic: topics.runs,
      topics: {
        [topics.entries]: { eventType: "parking.entry", requiredFields: ["eventId", "runId", "eventType", "timeStamp", "carId", "sequence", "coordinates"], orderWith: [topics.exits] },
        [topics.exits]: { eventType: "parking.exit", entryTopic: topics.entries, orderWith: [topics.entries] },
      },
    }),
  );
  const passThrough = Object.fromEntries(["NESSIE_URI", "SPARK_JARS_DIR", "SIMGATE_CACHE"].flatMap((k) => (process.env[k] ? [[k, process.env[k] as string]] : [])));
  const gw = await startGateway({
    topicSuffix: suffix,
    env: {
      ...passThrough,
      SIMGATE_JOBS_LAUNCHER: "local",
      SIMGATE_WAP_CONFIG: wapConfig,
      SIMGATE_JOBS_MAX_CONCURRENT: "1",
      SIMGATE_JOBS_BACKOFF_MS: "2000",
    },
  });
  gateways.push(gw);
  return gw;
}

async function jobs(gw: TestGateway): Promise<JobDriverSnapshot> {
  const res = await gw.get("/jobs");
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as JobDriverSnapshot;
}

async function finishedRuns(gw: TestGateway, count: number): Promise<JobRun[]> {
  return pollUntil(
    `${count} finished job runs`,
    async () => {
      const s = await jobs(gw);
      return s.history.length >= count && s.running === 0 && s.topics.every((t) => t.state === "idle") ? s.history : undefined;
    },
    8 * 60_000,
    1000,
  );
}

/** Reads the topics' production and untrusted tables on Nessie's main with Spark (the lakehouse's own
 *  query module), as a reader of the lakehouse would. */
function dumpTables(): Record<string, { production: string[]; untrusted: Array<[string | null, string[]]> }> {
  const dump = spawnSync(PYTHON, ["-m", "simgate.lakehouse.queries", "--dump", topics.entries, "--dump", topics.exits], { cwd: REPO_ROOT, encoding: "utf8", timeout: 600_000 });
  expect(dump.status, dump.stderr.slice(-2000)).toBe(0);
  return JSON.parse(dump.stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, { production: string[]; untrusted: Array<[string | null, string[]]> }>;
}

async function nessieJson(path: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${NESSIE}${path}`);
  return res.status === 404 ? undefined : ((await res.json()) as Record<string, unknown>);
}

async function mainLog(): Promise<Array<{ message: string; parentCommitHashes: string[] }>> {
  const body = (await nessieJson("/trees/main/history?maxRecords=300")) as { logEntries: Array<{ commitMeta: { message: string; parentCommitHashes: string[] } }> };
  return body.logEntries.map((e) => e.commitMeta);
}

/** What each topic's run must report, from the records the gateway actually put in Kafka. */
async function expectedPerTopic(): Promise<Record<string, { trusted: number; reasons: Record<string, number> }>> {
  const records = await runRecords([topics.entries, topics.exits], runId);
  const out: Record<string, { trusted: number; reasons: Record<string, number> }> = {
    [topics.entries]: { trusted: 0, reasons: {} },
    [topics.exits]: { trusted: 0, reasons: {} },
  };
  for (const r of records) {
    const slot = out[r.record.topic] as { trusted: number; reasons: Record<string, number> };
    const flaw = r.body.attributes["sim.flaw"];
    if (flaw === undefined) slot.trusted += 1;
    else {
      const reason = REASON_OF_FLAW[flaw];
      expect(reason, `a reason for flaw ${flaw}`).toBeDefined();
      slot.reasons[reason as string] = (slot.reasons[reason as string] ?? 0) + 1;
    }
  }
  return out;
}

describe("the gateway drives the WAP jobs", () => {
  it("publishes a replayed run with known flaws: one job per topic on run end, valid events once, each flaw with its reason, one merge and one tag per run", async () => {
    const sim = await runCli(["simulate", "--seed", "4242", "--events", "40", "--flaw-rate", "0.3", "--width", "64", "--height", "36", "--out", recording, "--quiet"]);
    expect(sim.code, sim.stderr).toBe(0);

    const gw = await gatewayWithJobs();
    const replay = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--as-run", runId, "--quiet"], 180_000);
    // The recording's duplicate_event_id copies (same id, another image) may be rejected by the gateway
    // (GW_ERR_EVENT_ID_CONFLICT, dead-lettered); they never reach the event topics then.
    if (replay.code !== 0) expect(replay.stderr).toMatch(/rejected \(GW_ERR_EVENT_ID_CONFLICT=\d+\)\s*$/);
    expect([0, 1]).toContain(replay.code);

    const runs = await finishedRuns(gw, 2);
    await new Promise((r) => setTimeout(r, 2000)); // nothing else may start
    const snapshot = await jobs(gw);
    expect(snapshot.history).toHaveLength(2); // exactly one job per topic
    const byTopic = new Map(runs.map((r) => [r.topic, r]));
    expect([...byTopic.keys()].sort()).toEqual([topics.entries, topics.exits].sort());
    // One at a time, entries first (configuration order), both started by the run end.
    expect(runs.map((r) => r.topic).reverse()).toEqual([topics.entries, topics.exits]);

    const expected = await expectedPerTopic();
    const flawKinds = new Set(Object.values(expected).flatMap((e) => Object.keys(e.reasons)));
    expect(flawKinds.size).toBeGreaterThanOrEqual(4); // the recording exercises the rules
    const log = await mainLog();
    for (const topic of [topics.entries, topics.exits]) {
      const run = byTopic.get(topic) as JobRun;
      expect(run.reason).toBe("run-end");
      expect(run.status, run.error).toBe("published");
      const result = run.result as { trusted: number; untrusted: number; reasons: Record<string, number>; wapRunId: string; tag: string; mergedHash: string; branch: string };
      const want = expected[topic] as { trusted: number; reasons: Record<string, number> };
      expect(result.trusted).toBe(want.trusted);
      expect(result.reasons).toEqual(want.reasons);
      expect(result.untrusted).toBe(Object.values(want.reasons).reduce((a, b) => a + b, 0));

      expect(log.filter((c) => c.message.startsWith(`WAP publish ${topic} run ${result.wapRunId}:`))).toHaveLength(1);
      const tag = (await nessieJson(`/trees/${result.tag}`)) as { reference: { type: string; hash: string } };
      expect(tag.reference).toMatchObject({ type: "TAG", hash: result.mergedHash });
      expect(await nessieJson(`/trees/${result.branch}`)).toBeUndefined();
    }

    // The tables themselves, read back on main: each valid event once, each flawed one with its reason.
    const tables = dumpTables();
    firstProduction = Object.fromEntries([topics.entries, topics.exits].map((t) => [t, tables[t]?.production ?? []]));
    const records = await runRecords([topics.entries, topics.exits], runId);
    for (const topic of [topics.entries, topics.exits]) {
      const ofTopic = records.filter((r) => r.record.topic === topic);
      const valid = ofTopic.filter((r) => r.body.attributes["sim.flaw"] === undefined).map((r) => r.body.eventId).sort();
      expect(tables[topic]?.production).toEqual(valid);
      const flawed = ofTopic
        .filter((r) => r.body.attributes["sim.flaw"] !== undefined)
        .map((r) => [r.body.eventId, [REASON_OF_FLAW[r.body.attributes["sim.flaw"] as string]]] as [string, string[]])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      expect(tables[topic]?.untrusted).toEqual(flawed);
    }

    const metrics = await gw.get("/metrics");
    expect(metrics.body).toMatch(new RegExp(`simgate_jobs_runs_total\\{topic="${topics.entries}",status="published"\\} 1`));
    expect(await gw.stop()).toBe(0);
  }, 900_000);

  it("replaying the same run again through a fresh gateway adds nothing to production", async () => {
    const gw = await gatewayWithJobs();
    const replay = await runCli(["replay", recording, "--max", "--gateway", gw.grpcAddress, "--as-run", runId, "--quiet"], 180_000);
    // Without the first gateway's memory, the recording's duplicate_event_id copies (same id, another
    // image) meet the stored blobs and are rejected by the gateway; everything else is accepted again.
    if (replay.code !== 0) expect(replay.stderr).toMatch(/rejected \(GW_ERR_EVENT_ID_CONFLICT=\d+\)\s*$/);
    expect([0, 1]).toContain(replay.code);
    const runs = await finishedRuns(gw, 2);
    for (const run of runs) {
      expect(run.status, run.error).toBe("published");
      const result = run.result as { trusted: number; untrusted: number; reasons: Record<string, number> };
      expect(result.trusted).toBe(0);
      expect(result.untrusted).toBeGreaterThan(0);
      // Every copy with an event id already published is refused as such.
      expect(result.reasons["duplicate_of_published"]).toBeGreaterThan(0);
    }
    // The production tables, read back on main, hold exactly what the first run published.
    expect(firstProduction, "the first test read production back").toBeDefined();
    const tables = dumpTables();
    for (const topic of [topics.entries, topics.exits]) {
      expect(tables[topic]?.production).toEqual(firstProduction?.[topic]);
      expect(new Set(tables[topic]?.production).size).toBe(tables[topic]?.production.length);
    }
  }, 900_000);
});
