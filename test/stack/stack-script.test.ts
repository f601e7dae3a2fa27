// deploy/local/stack as a user meets it: idempotent `up`, `down` by pid, a taken port and a failed
// download named in the error. Runs a private S3Proxy on its own ports and state directory, so the
// shared stack is untouched.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../support/ports.js";

const root = resolve(import.meta.dirname, "../..");
const stack = join(root, "deploy/local/stack");
const state = mkdtempSync(join(tmpdir(), "simgate-stack-test-"));

function run(args: string[], env: Record<string, string>) {
  const res = spawnSync("bash", [stack, ...args], { env: { ...process.env, SIMGATE_STATE: state, ...env }, encoding: "utf8", timeout: 120_000 });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

let env: Record<string, string> = {};
afterAll(() => {
  run(["down", "s3"], env);
  rmSync(state, { recursive: true, force: true });
});

describe("deploy/local/stack", () => {
  it("makes Kafka cluster ids that the storage tool's option parser takes: never with a leading '-' (1 in 64 of them did, and `up` failed)", () => {
    const res = spawnSync("bash", ["-c", `. "${join(root, "deploy/local/lib.sh")}" && new_kafka_cluster_id 5000`], { encoding: "utf8", timeout: 60_000 });
    expect(res.status, res.stderr).toBe(0);
    const ids = res.stdout.trim().split("\n");
    expect(ids).toHaveLength(5000);
    expect(ids.filter((id) => !/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(5000);
  });

  it("starts a service once, says where it listens, and stops exactly that process", async () => {
    env = { S3_PORT: String(await freePort()) };
    const first = run(["up", "s3"], env);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain(`http://127.0.0.1:${env.S3_PORT}`);
    const pid = readFileSync(join(state, "run/s3.pid"), "utf8").trim();
    expect(() => process.kill(Number(pid), 0)).not.toThrow();

    const second = run(["up", "s3"], env);
    expect(second.code, second.err).toBe(0);
    expect(readFileSync(join(state, "run/s3.pid"), "utf8").trim()).toBe(pid);
    expect(second.err).not.toContain("started:");

    const down = run(["down", "s3"], env);
    expect(down.code).toBe(0);
    expect(down.out).toContain(`down s3 (pid ${pid})`);
    expect(() => process.kill(Number(pid), 0)).toThrow();
  });

  it("names the port when it is already taken, and starts nothing", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const res = run(["up", "s3"], { S3_PORT: String(port) });
      expect(res.code).not.toBe(0);
      expect(res.err).toContain(`port ${port}`);
      expect(res.err).toContain("already taken");
      expect(res.err).toContain("set S3_PORT");
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("checks every port before starting anything: a taken Kafka controller port is named and s3 is not started either", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const ports = { S3_PORT: String(await freePort()), KAFKA_PORT: String(await freePort()), KAFKA_CONTROLLER_PORT: String(port) };
      const res = run(["up", "s3", "kafka"], ports);
      expect(res.code).not.toBe(0);
      expect(res.err).toContain(`kafka: port ${port}`);
      expect(res.err).toContain("set KAFKA_CONTROLLER_PORT");
      expect(existsSync(join(state, "run/s3.pid")), "s3 must not have been started").toBe(false);
      expect(existsSync(join(state, "run/kafka.pid"))).toBe(false);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("env prints export lines that reach programs started from the shell", () => {
    const res = spawnSync("bash", ["-c", `eval "$(bash ${JSON.stringify(stack)} env)"; node -e 'console.log(process.env.KAFKA_BOOTSTRAP, process.env.NESSIE_URI)'`], {
      env: { ...process.env, KAFKA_BOOTSTRAP: "", NESSIE_URI: "", KAFKA_PORT: "29092", NESSIE_PORT: "29120", SIMGATE_STATE: state },
      encoding: "utf8",
    });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe("127.0.0.1:29092 http://127.0.0.1:29120/api/v2");
  });

  it("ends a failed download with a message that names it, without hanging", () => {
    const cache = mkdtempSync(join(tmpdir(), "simgate-empty-cache-"));
    const settings = join(cache, "settings.xml");
    // A mirror that refuses every connection: the download must fail fast and say so.
    writeFileSync(settings, `<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf><url>http://127.0.0.1:9/</url></mirror></mirrors></settings>`);
    try {
      const started = Date.now();
      const res = spawnSync("bash", [join(root, "deploy/local/fetch"), "s3proxy"], {
        env: { ...process.env, SIMGATE_CACHE: cache, SIMGATE_MAVEN_SETTINGS: settings },
        encoding: "utf8",
        timeout: 110_000,
      });
      expect(res.status).not.toBe(0);
      expect(res.stderr).toContain("download failed");
      expect(Date.now() - started).toBeLessThan(110_000);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
