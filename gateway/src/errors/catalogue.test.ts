import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CATALOGUE, RETIRED_CODES } from "./catalogue.js";
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
});
