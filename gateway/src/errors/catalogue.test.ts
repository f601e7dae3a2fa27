import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_CATALOGUE, RETIRED_CODES, wireAnswer } from "./catalogue.js";
import { GatewayError, asGatewayError } from "./gateway-error.js";

describe("error catalogue", () => {
  it("uses GW_ERR_ names with a class and a stage", () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      expect(code).toMatch(/^GW_ERR_[A-Z0-9_]+$/);
      expect(["permanent", "retryable", "throttled"]).toContain(spec.class);
      expect(spec.description.length).toBeGreaterThan(10);
    }
  });

  it("is listed in full in docs/errors.md", () => {
    const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) expect(doc).toContain(`| \`${code}\` | ${spec.class} |`);
  });

  it("keeps retired codes listed as retired and never reuses them", () => {
    const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    for (const code of Object.keys(RETIRED_CODES)) {
      expect(Object.keys(ERROR_CATALOGUE)).not.toContain(code);
      expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| \\*retired\\*`));
    }
  });

  it("carries class and retry delay on the error", () => {
    const permanent = new GatewayError("GW_ERR_IMAGE_TRUNCATED", "x");
    expect(permanent.permanent).toBe(true);
    expect(permanent.retryAfterMs).toBe(0);
    const retry = new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "y");
    expect(retry.permanent).toBe(false);
    expect(retry.retryAfterMs).toBeGreaterThan(0);
    expect(asGatewayError(new Error("boom")).code).toBe("GW_ERR_INTERNAL");
  });

  it("registers every GW_ERR_ code the source uses (the replayer's included)", () => {
    const src = fileURLToPath(new URL("../", import.meta.url));
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === "generated" ? [] : files(join(dir, e.name))) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : []));
    const used = new Set(files(src).flatMap((f) => [...readFileSync(f, "utf8").matchAll(/"(GW_ERR_[A-Z0-9_]+)"/g)].map((m) => m[1] as string)));
    const unknown = [...used].filter((c) => !(c in ERROR_CATALOGUE) && !(c in RETIRED_CODES));
    expect(unknown).toEqual([]);
  });

  it("gives one wire answer per code: the class's, with the code's overrides", () => {
    expect(wireAnswer("GW_ERR_IMAGE_TRUNCATED")).toEqual({ grpcStatus: "INVALID_ARGUMENT", httpStatus: 400, retryAfterMs: 0 });
    expect(wireAnswer("GW_ERR_KAFKA_UNAVAILABLE")).toEqual({ grpcStatus: "UNAVAILABLE", httpStatus: 503, retryAfterMs: 1000 });
    expect(wireAnswer("GW_ERR_THROTTLED").retryAfterMs).toBe(200);
    expect(new GatewayError("GW_ERR_THROTTLED", "x").retryAfterMs).toBe(200);
    expect(wireAnswer("GW_ERR_UNAUTHENTICATED")).toMatchObject({ grpcStatus: "UNAUTHENTICATED", httpStatus: 401 });
    expect(wireAnswer("GW_ERR_NOT_FOUND").httpStatus).toBe(404);
    expect(wireAnswer("GW_ERR_TOO_MANY_CONNECTIONS")).toMatchObject({ grpcStatus: "RESOURCE_EXHAUSTED", httpStatus: 503 });
  });
});
