import { defineConfig } from "vitest/config";

// Unit tests live beside the code (src/**/*.test.ts); integration tests against the real local stack
// live under ../test/. Test files run one after another: they share the stack's broker and bucket.
// The dashboard's browser test needs the analytics stack that scripts/test-analytics fills, and runs there.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "../test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "../test/analytics/**"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
