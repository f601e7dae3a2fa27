import { defineConfig } from "vitest/config";

// Unit tests live beside the code (src/**/*.test.ts); integration tests against the real local stack
// live under ../test/. Test files run one after another: they share the stack's broker and bucket.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "../test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
