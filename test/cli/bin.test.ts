// The `simgate` command as the README calls it (`npx simgate ...`): npm links node_modules/.bin/simgate
// to gateway/bin/simgate.js at install time, which runs the built CLI.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/gateway.js";

describe("the simgate command", () => {
  it("is linked by npm and runs the built CLI", () => {
    const bin = join(REPO_ROOT, "node_modules", ".bin", "simgate");
    expect(existsSync(bin), `${bin} (npm ci links it)`).toBe(true);
    const version = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 30_000 });
    expect(version.stderr).toBe("");
    expect(version.stdout.trim()).toBe("0.1.0");
    const npx = spawnSync("npx", ["--no-install", "simgate", "contract"], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
    expect(npx.status, npx.stderr).toBe(0);
    expect(npx.stdout.split("\n")).toContain("Event");
  });
});
