import { defineConfig } from "vitest/config";

// The dashboard's browser test: run by scripts/test-analytics against a stack of its own that the demo
// filled (Trino, Superset, the imported bundle), not by the main vitest run.
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ["*.browser.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
