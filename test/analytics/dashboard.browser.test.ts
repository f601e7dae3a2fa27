// A real headless Chromium (Debian's chromium, driven by puppeteer-core) logs in to the local Superset,
// opens the Parking dashboard and waits until every chart of the bundle has rendered: no chart loading
// or in error, each drew a canvas or a table; the screenshot is not one flat colour.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
// @ts-expect-error - a plain ES module shared with scripts/demo
import { screenshotDashboard } from "../../scripts/dashboard-browser.mjs";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (eval "$(deploy/local/stack env)")`);
  return v;
};

const bundle = (load(readFileSync(join(__dirname, "../../deploy/k8s/base/superset/provisioning.yaml"), "utf8")) as { data: Record<string, string> }).data;
const chartTitles = Object.entries(bundle)
  .filter(([k]) => k.startsWith("chart-"))
  .map(([, v]) => (load(v) as { slice_name: string }).slice_name)
  .sort();

describe("the Parking dashboard in a browser", () => {
  it("logs in, and every chart of the bundle renders with data", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "simgate-dashboard-")), "dashboard.png");
    const { states, colours } = await screenshotDashboard({
      base: env("SUPERSET_URL"),
      user: env("SUPERSET_ADMIN_USER"),
      password: env("SUPERSET_ADMIN_PASSWORD"),
      expected: chartTitles.length,
      out,
    });
    expect(states).toHaveLength(chartTitles.length);
    for (const s of states) {
      expect(s.error, s.title).toBeNull();
      expect(s.loading, s.title).toBe(false);
      expect(s.canvases + s.cells, s.title).toBeGreaterThan(0);
    }
    expect(states.map((s: { title: string }) => s.title).sort()).toEqual(chartTitles);
    expect(colours).toBeGreaterThanOrEqual(32);
  });
});
