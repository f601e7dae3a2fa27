// The optional otelcol stack service (the peer of `npm run bench:peers`): `stack up otelcol` builds the
// collector once (deploy/local/otelcol/build, cached under $SIMGATE_CACHE), starts it on its own ports
// with a private state directory against the suite's Kafka, answers on its health endpoint, carries an
// OTLP log record into Kafka, is exported by `stack env` and stopped by `stack down otelcol`.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, REPO_ROOT, STACK, uniqueId } from "../support/gateway.js";
import { readTopic } from "../support/stack.js";
import { encodeLogRequest, OtlpLogsClient } from "../bench/otlp-logs.js";

const stack = join(REPO_ROOT, "deploy/local/stack");
const state = mkdtempSync(join(tmpdir(), "simgate-otelcol-test-"));
let env: Record<string, string> = {};

function run(args: string[], timeout = 120_000) {
  const res = spawnSync("bash", [stack, ...args], { env: { ...process.env, SIMGATE_STATE: state, ...env }, encoding: "utf8", timeout });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

afterAll(() => {
  run(["down", "otelcol"]);
  rmSync(state, { recursive: true, force: true });
});

describe("deploy/local/stack up otelcol", () => {
  // scripts/setup builds the collector (deploy/local/otelcol/build) beside its downloads; where it has not,
  // this first run builds it, hence the long timeout.
  it("starts the collector, which answers OTLP only once Kafka holds the record, and stops it", { timeout: 2_400_000 }, async () => {
    const topic = uniqueId("simgate-otelcol-test");
    env = {
      KAFKA_PORT: STACK.kafkaBootstrap.split(":")[1] ?? "9092",
      OTELCOL_PORT: String(await freePort()),
      OTELCOL_HEALTH_PORT: String(await freePort()),
      OTELCOL_TOPIC: topic,
    };
    const up = run(["up", "otelcol"], 2_300_000);
    expect(up.code, up.err).toBe(0);
    expect(up.out).toContain(`OTLP gRPC 127.0.0.1:${env["OTELCOL_PORT"]}`);
    const pid = Number(readFileSync(join(state, "run/otelcol.pid"), "utf8").trim());
    expect(() => process.kill(pid, 0)).not.toThrow();
    const health = await fetch(`http://127.0.0.1:${env["OTELCOL_HEALTH_PORT"]}/`);
    expect(health.status).toBe(200);

    const printed = run(["env"]);
    expect(printed.out).toContain(`export OTELCOL_ENDPOINT=127.0.0.1:${env["OTELCOL_PORT"]}`);
    expect(printed.out).toContain(`export OTELCOL_HEALTH_URL=http://127.0.0.1:${env["OTELCOL_HEALTH_PORT"]}/`);

    // The fair set-up (no sending queue): when Export returns, the record is in Kafka.
    const client = new OtlpLogsClient(`127.0.0.1:${env["OTELCOL_PORT"]}`);
    const body = `a log record for ${topic}`;
    try {
      expect(await client.export(encodeLogRequest(body, { "event.id": "e-1" }, Date.now()))).toBe(true);
    } finally {
      client.close();
    }
    const records = await readTopic(topic, STACK.kafkaBootstrap, 60_000);
    expect(records).toHaveLength(1);
    expect(records[0]?.value ?? "").toContain(body);

    const down = run(["down", "otelcol"]);
    expect(down.out).toContain(`down otelcol (pid ${pid})`);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it("refuses an unknown set-up by name and starts nothing", () => {
    run(["down", "otelcol"]);
    const res = spawnSync("bash", [stack, "up", "otelcol"], { env: { ...process.env, SIMGATE_STATE: state, ...env, OTELCOL_MODE: "fast" }, encoding: "utf8" });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain("no set-up 'fast'");
    expect(existsSync(join(state, "run/otelcol.pid"))).toBe(false);
  });
});
