// deploy/local/stack as a user meets it: idempotent `up`, `down` by pid, a taken port and a failed
// download named in the error. Runs a private S3Proxy on its own ports and state directory, so the
// shared stack is untouched.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const stack = join(root, "deploy/local/stack");
const state = mkdtempSync(join(tmpdir(), "simgate-stack-test-"));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

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
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
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
