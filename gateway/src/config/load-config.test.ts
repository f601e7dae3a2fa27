import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load-config.js";
import { unknownEnvNames } from "./env.js";

describe("loadConfig", () => {
  it("gives the documented defaults with no file and no environment", () => {
    const c = loadConfig({ env: {} });
    expect(c.grpc.port).toBe(50051);
    expect(c.http.port).toBe(8080);
    expect(c.http.wsPath).toBe("/v1/events");
    expect(c.host).toBe("127.0.0.1");
    expect(c.auth.token).toBeUndefined();
    expect(c.kafka.topicMap).toEqual({ "parking.entry": "parking-entries", "parking.exit": "parking-exits" });
    expect(c.kafka.deadLetterTopic).toBe("simgate-dead-letter");
    expect(c.kafka.runsTopic).toBe("simgate-runs");
    expect(c.limits.whenFull).toBe("block");
  });

  it("reads the environment over the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-config-"));
    const file = join(dir, "gw.json");
    writeFileSync(file, JSON.stringify({ grpc: { port: 6000 }, http: { port: 6001 }, limits: { maxInFlight: 7 } }));
    const c = loadConfig({
      configFile: file,
      env: { SIMGATE_GRPC_PORT: "7000", SIMGATE_TOPIC_MAP: "a.b=topic-a, c=topic-c", KAFKA_BOOTSTRAP: "h1:1,h2:2" },
    });
    expect(c.grpc.port).toBe(7000);
    expect(c.http.port).toBe(6001);
    expect(c.limits.maxInFlight).toBe(7);
    expect(c.kafka.topicMap).toEqual({ "a.b": "topic-a", c: "topic-c" });
    expect(c.kafka.brokers).toEqual(["h1:1", "h2:2"]);
  });

  it("names the offending key and its variable", () => {
    expect(() => loadConfig({ env: { SIMGATE_GRPC_PORT: "http" } })).toThrow(/SIMGATE_GRPC_PORT/);
    expect(() => loadConfig({ env: { SIMGATE_HTTP_PORT: "70000" } })).toThrow(/http\.port \(env SIMGATE_HTTP_PORT\)/);
    expect(() => loadConfig({ env: { SIMGATE_WHEN_FULL: "drop" } })).toThrow(/limits\.whenFull/);
    expect(() => loadConfig({ env: { SIMGATE_TOPIC_MAP: "novalue" } })).toThrow(/SIMGATE_TOPIC_MAP/);
  });

  it("rejects unknown keys in the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-config-"));
    const file = join(dir, "gw.json");
    writeFileSync(file, JSON.stringify({ grpc: { prot: 1 } }));
    expect(() => loadConfig({ configFile: file, env: {} })).toThrow(/grpc.*prot/);
  });

  it("refuses a non-loopback address without a token", () => {
    expect(() => loadConfig({ env: { SIMGATE_HOST: "0.0.0.0" } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { SIMGATE_HOST: "0.0.0.0" } })).toThrow(/requires auth.token/);
    expect(loadConfig({ env: { SIMGATE_HOST: "0.0.0.0", SIMGATE_TOKEN: "0123456789abcdef" } }).host).toBe("0.0.0.0");
  });

  it("refuses a short token", () => {
    expect(() => loadConfig({ env: { SIMGATE_TOKEN: "short" } })).toThrow(/auth\.token/);
  });

  it("fails when SIMGATE_TOPIC_MAP maps an event type twice, naming it", () => {
    expect(() => loadConfig({ env: { SIMGATE_TOPIC_MAP: "parking.entry=a,parking.exit=b,parking.entry=c" } })).toThrow(/SIMGATE_TOPIC_MAP: parking\.entry is mapped twice/);
  });

  it("names SIMGATE_* variables nothing reads, a misspelt job driver variable included", () => {
    expect(unknownEnvNames({ SIMGATE_MAX_INFLIGHT: "4", SIMGATE_TOKEN: "x", SIMGATE_JOBS_TOPICS: "t", PATH: "/bin", SIMGATE_CONFIG: "f", SIMGATE_JOBS_CONFIG: "j", SIMGATE_JOBS_LAUNCHR: "local" })).toEqual([
      "SIMGATE_JOBS_LAUNCHR",
      "SIMGATE_MAX_INFLIGHT",
    ]);
  });

  it("gives the knobs that used to be hard-coded their documented defaults", () => {
    const c = loadConfig({ env: {} });
    expect(c.kafka).toMatchObject({ clientRetries: 2, retryInitialMs: 200, retryMaxMs: 2000, resendMaxMs: 1000, maxBatchRecords: 500 });
    expect(c.s3).toMatchObject({ connectionTimeoutMs: 3000, maxAttempts: 2, maxSockets: 0 });
    expect(c.grpc).toMatchObject({ maxConcurrentStreams: 128, keepaliveTimeMs: 0, keepaliveTimeoutMs: 20_000 });
    expect(c.http.keepAliveTimeoutMs).toBe(5000);
    expect(c.health.probeRetries).toBe(1);
    const set = loadConfig({ env: { SIMGATE_KAFKA_CLIENT_RETRIES: "5", SIMGATE_GRPC_KEEPALIVE_TIME_MS: "30000", SIMGATE_S3_MAX_ATTEMPTS: "3" } });
    expect([set.kafka.clientRetries, set.grpc.keepaliveTimeMs, set.s3.maxAttempts]).toEqual([5, 30_000, 3]);
  });
});

describe("the job driver's section (jobs)", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-config-jobs-"));

  it("is part of the one configuration: defaults, the file's jobs key, SIMGATE_JOBS_* over both", () => {
    expect(loadConfig({ env: {} }).jobs).toMatchObject({ launcher: "none", topics: [], onRunEnd: true, maxConcurrent: 1, kubernetes: { leaseName: "simgate-gateway-jobs", leaseDurationMs: 15_000 } });
    const file = join(dir, "gw.json");
    writeFileSync(file, JSON.stringify({ grpc: { port: 6000 }, jobs: { launcher: "kubernetes", maxAttempts: 7, kubernetes: { pollMs: 900 } } }));
    const c = loadConfig({ configFile: file, env: { SIMGATE_JOBS_MAX_ATTEMPTS: "2", SIMGATE_JOBS_TOPICS: "a, b", SIMGATE_WAP_CONFIG: "/etc/wap.json" } });
    expect(c.jobs).toMatchObject({ launcher: "kubernetes", maxAttempts: 2, topics: ["a", "b"], kubernetes: { pollMs: 900 }, local: { wapConfigFile: "/etc/wap.json" } });
  });

  it("still reads the old job driver file (SIMGATE_JOBS_CONFIG) into the jobs section, over the main file's", () => {
    const main = join(dir, "main.json");
    const jobs = join(dir, "jobs.json");
    writeFileSync(main, JSON.stringify({ jobs: { launcher: "local", everyMs: 5 } }));
    writeFileSync(jobs, JSON.stringify({ launcher: "kubernetes", topics: ["t"] }));
    const c = loadConfig({ configFile: main, env: { SIMGATE_JOBS_CONFIG: jobs } });
    expect(c.jobs).toMatchObject({ launcher: "kubernetes", everyMs: 5, topics: ["t"] });
  });

  it("fails with the one ConfigError, naming the key and its variable", () => {
    expect(() => loadConfig({ env: { SIMGATE_JOBS_MAX_CONCURRENT: "0" } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { SIMGATE_JOBS_MAX_CONCURRENT: "0" } })).toThrow(/jobs\.maxConcurrent \(env SIMGATE_JOBS_MAX_CONCURRENT\)/);
    expect(() => loadConfig({ env: { SIMGATE_JOBS_LAUNCHER: "spark" } })).toThrow(/jobs\.launcher/);
    expect(() => loadConfig({ env: { SIMGATE_JOBS_ON_RUN_END: "maybe" } })).toThrow(/SIMGATE_JOBS_ON_RUN_END: expected true or false/);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{ not json");
    expect(() => loadConfig({ env: { SIMGATE_JOBS_CONFIG: bad } })).toThrow(/SIMGATE_JOBS_CONFIG file/);
    writeFileSync(bad, JSON.stringify({ jobs: { lancher: "local" } }));
    expect(() => loadConfig({ configFile: bad, env: {} })).toThrow(/jobs.*lancher/);
  });
});
