// `stack up s3` about a second after a `kill -9` of S3Proxy: the dying (or not yet reaped) process still
// looks alive for a moment; up waits for it and starts a new one instead of reporting "exited during
// start-up". Runs on a private state directory and ports.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivateStack, type PrivateStack } from "../support/private-stack.js";

let stack: PrivateStack;
beforeAll(async () => {
  stack = await startPrivateStack(["s3"]);
}, 180_000);
afterAll(async () => {
  await stack?.destroy();
}, 60_000);

describe("stack up after kill -9", () => {
  it("starts S3 again 1 s after it was killed (twice)", async () => {
    for (let i = 0; i < 2; i++) {
      const pid = Number(readFileSync(join(stack.env["SIMGATE_STATE"] as string, "run/s3.pid"), "utf8").trim());
      process.kill(pid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 1000));
      await stack.up("s3");
      const res = await fetch(`${stack.s3Endpoint}/`, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => err);
      expect(res instanceof Error ? res.message : res.status).not.toBe("fetch failed");
    }
  }, 240_000);
});
