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

  it("names SIMGATE_* variables nothing reads", () => {
    expect(unknownEnvNames({ SIMGATE_MAX_INFLIGHT: "4", SIMGATE_TOKEN: "x", SIMGATE_JOBS_TOPICS: "t", PATH: "/bin", SIMGATE_CONFIG: "f" })).toEqual(["SIMGATE_MAX_INFLIGHT"]);
  });
});
